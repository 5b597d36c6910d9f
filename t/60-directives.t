# Every gateway directive of README's table: a block showing it works and
# a block where a bad value makes `nginx -t` fail with a clear message.
#
# Directives that conf/nginx.conf already sets are changed by rendering the
# template with that line replaced (template_with below), for `nginx -t` or
# for a restart of nginx in a block's setup (its teardown restarts nginx
# with the default configuration again).  Blocks that need PostgreSQL to be
# slow hold a lock from a background psql (lock_table below): a gateway
# query on that table then waits, deterministically, until unlock_table.
use strict;
use warnings;

use lib 't/lib';
use Plinth::Test;
use Plinth::Cluster;
use Plinth::TestUtil;

use Errno qw(EAGAIN EINTR EWOULDBLOCK);
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(sleep time);


run_tests();

__DATA__

=== TEST 1: plinth_s3 serves the S3 API in its location only
--- config
location = /not-s3 { return 200 "plain nginx\n"; }
--- request eval
["GET /", "GET /not-s3"]
--- error_code eval
[200, 200]
--- response_body_like eval
["<ListAllMyBucketsResult ", "^plain nginx\n\\z"]
--- response_headers_like eval
["x-amz-request-id: ^[0-9A-F]{16}\$", ""]
--- check
ok(!defined $responses->[1]{headers}{'x-amz-request-id'},
    'no x-amz-request-id outside the plinth_s3 location');



=== TEST 2: plinth_s3 takes no argument
--- config
location /other/ { plinth_s3 on; }
--- nginx_t_fails
\[emerg\].*invalid number of arguments in "plinth_s3" directive in \S+:\d+



=== TEST 3: plinth_s3 is a location directive, not an http one
--- http_config
plinth_s3;
--- nginx_t_fails
\[emerg\].*"plinth_s3" directive is not allowed here in \S+:\d+



=== TEST 4: plinth_s3 twice in one location
--- config
location /other/ { plinth_s3; plinth_s3; }
--- nginx_t_fails
\[emerg\].*"plinth_s3" directive is duplicate in \S+:\d+



=== TEST 5: plinth_pg: the gateway uses the connection string it is given
--- setup
my $t = template_with(plinth_pg =>
    '    plinth_pg "@PG_CONNINFO@ application_name=plinth_gw_t60";');
restart_with($t);
--- request
PUT /pgbucket
--- error_code: 200
--- check
is_deeply([$cluster->psql("select owner_id from buckets where name = 'pgbucket'")],
    [['admin']], 'the bucket is in the database of plinth_pg');
my $n = $cluster->psql("select count(*) from pg_stat_activity "
    . "where application_name = 'plinth_gw_t60'")->[0][0];
ok($n >= 1, "the gateway's connections carry the conninfo's application_name ($n)");
--- teardown
$cluster->restart_nginx;



=== TEST 6: plinth_pg is required
--- check
my $t = template_with(plinth_pg => '');
nginx_t_fails_like($t,
    qr/\[emerg\].*plinth needs "plinth_pg" \(the metadata database's connection string\)/,
    'no plinth_pg');



=== TEST 7: plinth_pg takes one connection string
--- check
my $t = template_with(plinth_pg => '    plinth_pg "host=127.0.0.1" "port=5432";');
my $l = conf_line($t, 'plinth_pg');
nginx_t_fails_like($t,
    qr/\[emerg\].*invalid number of arguments in "plinth_pg" directive in \S+nginx-t\.conf:$l\b/,
    'two arguments');



=== TEST 8: plinth_pg with a malformed connection string fails nginx -t
--- check
# an unknown keyword and an unterminated quote: libpq's PQconninfoParse()
# rejects both, so nginx -t can say so instead of every request failing
my $t = template_with(plinth_pg =>
    '    plinth_pg "host=127.0.0.1 port=5432 dbname=plinth usr=plinth";');
nginx_t_fails_like($t,
    qr/\[emerg\].*plinth_pg.*invalid connection option "usr"/,
    'unknown conninfo keyword');
$t = template_with(plinth_pg =>
    q{    plinth_pg "host=127.0.0.1 dbname='plinth";});
nginx_t_fails_like($t, qr/\[emerg\].*plinth_pg.*unterminated quoted string/,
    'unterminated quote in the conninfo');



=== TEST 9: plinth_pg_pool_size 3: three connections per worker
--- setup
my $t = template_with(
    plinth_pg => '    plinth_pg "@PG_CONNINFO@ application_name=plinth_pool_t60";',
    plinth_pg_pool_size => '    plinth_pg_pool_size 3;',
    worker_processes => 'worker_processes 2;');
restart_with($t);
--- request
GET /
--- error_code: 200
--- check
my $n;
my $ok = eval {
    wait_for(sub {
        $n = $cluster->psql("select count(*) from pg_stat_activity "
            . "where application_name = 'plinth_pool_t60'")->[0][0];
        $n == 6;
    }, 10, '6 connections');
    1;
};
ok($ok, "2 workers x plinth_pg_pool_size 3 = 6 connections to PostgreSQL (have $n)");
sleep 0.5;
is($cluster->psql("select count(*) from pg_stat_activity "
    . "where application_name = 'plinth_pool_t60'")->[0][0], 6,
    '... and no more after a while');
--- teardown
$cluster->restart_nginx;



=== TEST 10: plinth_pg_pool_size 1: 10 concurrent requests all succeed
--- setup
my $t = template_with(plinth_pg_pool_size => '    plinth_pg_pool_size 1;');
restart_with($t);
my $r = s3_request(PUT => '/poolone');
die "PUT /poolone: $r->{status}" unless $r->{status} == 200;
--- check
my @h;
for my $i (1 .. 10) {
    push @h, $i % 2 ? http_start(PUT => "/poolone/k$i", body => "body $i")
                    : http_start(GET => '/');
}
http_wait(\@h, 20);
for my $h (@h) {
    is($h->{status}, 200, show($h));
}
for my $i (grep { $_ % 2 } 1 .. 10) {
    is(s3_request(GET => "/poolone/k$i")->{body}, "body $i", "k$i stored");
}
--- teardown
$cluster->restart_nginx;



=== TEST 11: plinth_pg_pool_size out of range or not a number
--- check
for my $v (0, 1001) {
    my $t = template_with(plinth_pg_pool_size => "    plinth_pg_pool_size $v;");
    my $l = conf_line($t, 'plinth_pg_pool_size');
    nginx_t_fails_like($t,
        qr/\[emerg\].*value must be between 1 and 1000 in \S+nginx-t\.conf:$l\b/,
        "plinth_pg_pool_size $v");
}
my $t = template_with(plinth_pg_pool_size => "    plinth_pg_pool_size many;");
nginx_t_fails_like($t, qr/\[emerg\].*"plinth_pg_pool_size" directive invalid number/,
    'plinth_pg_pool_size many');



=== TEST 12: plinth_pg_queue_size 1: one request waits, the next gets 503 SlowDown
--- setup
my $t = template_with(
    worker_processes => 'worker_processes 1;',
    plinth_pg_pool_size => "    plinth_pg_pool_size 1;\n"
        # no background query (node health) competing for the one connection
        . '    plinth_health_refresh 0;',
    plinth_pg_queue_size => '    plinth_pg_queue_size 1;');
restart_with($t);
--- check
lock_table('buckets');
my $a = http_start(GET => '/');                       # holds the connection
wait_for(sub { lock_waiters() >= 1 }, 10, 'the gateway query to wait for the lock');
my $b = http_start(GET => '/');                       # waits in the queue
sleep 0.3;
my @c = map { http_start(GET => '/') } 1 .. 3;        # beyond the queue
http_wait(\@c, 5);
for my $h (@c) {
    is($h->{status}, 503, 'beyond the queue: ' . show($h));
    like($h->{body} // '', qr{<Code>SlowDown</Code>}, '... SlowDown');
    ok(($h->{secs} // 99) < 2, sprintf('... at once (%.2fs)', $h->{secs} // -1));
}
ok(!defined $a->{status} && !defined $b->{status},
    'the running and the queued request are still waiting');
unlock_tables();
http_wait([$a, $b], 10);
is($a->{status}, 200, 'the running request succeeds: ' . show($a));
is($b->{status}, 200, 'the queued request succeeds: ' . show($b));
--- error_log
rejected: 1 queries waiting
--- teardown
unlock_tables();
$cluster->restart_nginx;



=== TEST 13: plinth_pg_queue_size 0: no waiting at all
--- setup
my $t = template_with(
    worker_processes => 'worker_processes 1;',
    plinth_pg_pool_size => "    plinth_pg_pool_size 1;\n"
        # no background query (node health) competing for the one connection
        . '    plinth_health_refresh 0;',
    plinth_pg_queue_size => '    plinth_pg_queue_size 0;');
restart_with($t);
--- check
lock_table('buckets');
my $a = http_start(GET => '/');
wait_for(sub { lock_waiters() >= 1 }, 10, 'the gateway query to wait for the lock');
my @b = map { http_start(GET => '/') } 1 .. 3;
http_wait(\@b, 5);
for my $h (@b) {
    is($h->{status}, 503, 'no free connection: ' . show($h));
    like($h->{body} // '', qr{<Code>SlowDown</Code>}, '... SlowDown');
    ok(($h->{secs} // 99) < 2, sprintf('... at once (%.2fs)', $h->{secs} // -1));
}
unlock_tables();
http_wait([$a], 10);
is($a->{status}, 200, 'the running request succeeds: ' . show($a));
is(s3_request(GET => '/')->{status}, 200, 'a request with the connection free succeeds');
--- teardown
unlock_tables();
$cluster->restart_nginx;



=== TEST 14: plinth_pg_queue_size bad values
--- check
my $t = template_with(plinth_pg_queue_size => "    plinth_pg_queue_size 1000001;");
my $l = conf_line($t, 'plinth_pg_queue_size');
nginx_t_fails_like($t,
    qr/\[emerg\].*value must be between 0 and 1000000 in \S+nginx-t\.conf:$l\b/,
    'plinth_pg_queue_size 1000001');
$t = template_with(plinth_pg_queue_size => "    plinth_pg_queue_size -1;");
nginx_t_fails_like($t, qr/\[emerg\].*"plinth_pg_queue_size" directive invalid number/,
    'plinth_pg_queue_size -1');



=== TEST 15: plinth_pg_queue_timeout 300ms: a queued request gets 503 SlowDown after it
--- setup
my $t = template_with(
    worker_processes => 'worker_processes 1;',
    plinth_pg_pool_size => "    plinth_pg_pool_size 1;\n"
        # no background query (node health) competing for the one connection
        . '    plinth_health_refresh 0;',
    plinth_pg_queue_timeout => '    plinth_pg_queue_timeout 300ms;');
restart_with($t);
--- check
lock_table('buckets');
my $a = http_start(GET => '/');
wait_for(sub { lock_waiters() >= 1 }, 10, 'the gateway query to wait for the lock');
my $b = http_start(GET => '/');
http_wait([$b], 5);
is($b->{status}, 503, 'the queued request: ' . show($b));
like($b->{body} // '', qr{<Code>SlowDown</Code>}, '... SlowDown');
ok(($b->{secs} // 0) >= 0.25 && ($b->{secs} // 99) < 2,
    sprintf('... after the queue timeout, not before (%.2fs)', $b->{secs} // -1));
unlock_tables();
http_wait([$a], 10);
is($a->{status}, 200, 'the running request succeeds: ' . show($a));
--- error_log
waited 300 ms for a connection
--- teardown
unlock_tables();
$cluster->restart_nginx;



=== TEST 16: plinth_pg_queue_timeout bad value
--- check
my $t = template_with(plinth_pg_queue_timeout => "    plinth_pg_queue_timeout 5parsecs;");
my $l = conf_line($t, 'plinth_pg_queue_timeout');
nginx_t_fails_like($t,
    qr/\[emerg\].*"plinth_pg_queue_timeout" directive invalid value in \S+nginx-t\.conf:$l\b/,
    'plinth_pg_queue_timeout 5parsecs');



=== TEST 17: plinth_pg_query_timeout 500ms: a stuck query gets 503 after it, then the pool recovers
--- setup
my $t = template_with(
    worker_processes => 'worker_processes 1;',
    plinth_pg_pool_size => "    plinth_pg_pool_size 1;\n"
        # no background query (node health) competing for the one connection
        . '    plinth_health_refresh 0;',
    plinth_pg_query_timeout => '    plinth_pg_query_timeout 500ms;');
restart_with($t);
--- check
lock_table('buckets');
my $a = http_start(GET => '/');
http_wait([$a], 5);
is($a->{status}, 503, 'the stuck query: ' . show($a));
like($a->{body} // '', qr{<Code>ServiceUnavailable</Code>}, '... ServiceUnavailable');
ok(($a->{secs} // 0) >= 0.4 && ($a->{secs} // 99) < 2.5,
    sprintf('... after the query timeout (%.2fs)', $a->{secs} // -1));
unlock_tables();
my $last;
my $t0 = time;
my $ok = eval {
    wait_for(sub { $last = s3_request(GET => '/'); $last->{status} == 200 }, 10,
        'a request to succeed again');
    1;
};
ok($ok, sprintf('the connection was reset and the pool serves again (%.2fs)', time - $t0))
    or diag("last: $last->{status} $last->{body}");
--- error_log
query "plinth_bucket_list" timed out
--- teardown
unlock_tables();
$cluster->restart_nginx;



=== TEST 18: plinth_pg_query_timeout bad value
--- check
my $t = template_with(plinth_pg_query_timeout => "    plinth_pg_query_timeout never;");
my $l = conf_line($t, 'plinth_pg_query_timeout');
nginx_t_fails_like($t,
    qr/\[emerg\].*"plinth_pg_query_timeout" directive invalid value in \S+nginx-t\.conf:$l\b/,
    'plinth_pg_query_timeout never');



=== TEST 19: plinth_replication_factor 2, plinth_write_quorum 1: two copies
--- setup
$cluster->restart_nginx(rf => 2, w => 1);
my $r = s3_request(PUT => '/rfbucket');
die "PUT /rfbucket: $r->{status}" unless $r->{status} == 200;
--- request
PUT /rfbucket/k
two copies
--- error_code: 200
--- check
my $n;
my $ok = eval {
    wait_for(sub {
        $n = $cluster->psql("select array_length(nodes, 1) from versions v "
            . "join objects o using (version_id) where o.key = 'k'")->[0][0];
        defined $n && $n == 2;
    }, 5, 'two nodes in the placement');
    1;
};
ok($ok, 'the version records 2 nodes (have ' . ($n // 'none') . ')');
my ($row) = $cluster->psql("select replace(blob_id::text, '-', ''), "
    . "array_to_string(nodes, ',') from versions v join objects o "
    . "using (version_id) where o.key = 'k'");
my @have = grep { -e $cluster->blob_path($_, $row->[0]) } 1 .. 3;
is(scalar @have, 2, "the blob is on exactly 2 data nodes (@have)");
is(join(',', sort @have), join(',', sort split /,/, $row->[1]),
    '... the ones the placement records');
is(s3_request(GET => '/rfbucket/k')->{body}, 'two copies', 'GET reads it');
--- teardown
$cluster->restart_nginx;



=== TEST 20: plinth_replication_factor 1: one copy
--- setup
$cluster->restart_nginx(rf => 1, w => 1);
--- request
PUT /rfbucket/one
one copy
--- error_code: 200
--- check
my ($row) = $cluster->psql("select array_length(nodes, 1), "
    . "replace(blob_id::text, '-', '') from versions v join objects o "
    . "using (version_id) where o.key = 'one'");
is($row->[0], 1, 'the version records 1 node');
is(scalar(grep { -e $cluster->blob_path($_, $row->[1]) } 1 .. 3), 1,
    'the blob is on exactly 1 data node');
--- teardown
$cluster->restart_nginx;



=== TEST 21: plinth_write_quorum 3 of 3 with a data node down: 503, previous version still served
--- setup
$cluster->restart_nginx(rf => 3, w => 3);
my $r = s3_request(PUT => '/rfbucket/w', body => 'old');
die "PUT /rfbucket/w: $r->{status}" unless $r->{status} == 200;
$cluster->stop_node(3);
--- request eval
["PUT /rfbucket/w\nnew", "GET /rfbucket/w"]
--- error_code eval
[503, 200]
--- response_body_like eval
["<Code>ServiceUnavailable</Code>", "^old\\z"]
--- check
is($cluster->psql("select count(*) from versions where key = 'w' and state = 'failed'")->[0][0],
    1, 'the failed write is recorded as failed');
--- teardown
$cluster->start_node(3);
$cluster->restart_nginx;



=== TEST 22: plinth_write_quorum 2 of 3 with a data node down: the PUT succeeds on 2
--- setup
$cluster->stop_node(3);
--- request eval
["PUT /rfbucket/w\nnew", "GET /rfbucket/w"]
--- error_code eval
[200, 200]
--- response_body_like eval
["", "^new\\z"]
--- check
is(join(',', sort split /,/, $cluster->psql("select array_to_string(nodes, ',') "
    . "from versions v join objects o using (version_id) where o.key = 'w'")->[0][0]),
    '1,2', 'the placement records the 2 nodes that acknowledged')
    or diag explain [$cluster->psql("select nodes from versions where key = 'w'")];
--- teardown
$cluster->start_node(3);



=== TEST 23: plinth_replication_factor out of range or not a number
--- check
for my $v (0, 8) {
    my $l = conf_line(template_text(), 'plinth_replication_factor');
    nginx_t_fails_like({ rf => $v, w => 1 },
        qr/\[emerg\].*value must be between 1 and 7 in \S+nginx-t\.conf:$l\b/,
        "plinth_replication_factor $v");
}
nginx_t_fails_like({ rf => 'three' },
    qr/\[emerg\].*"plinth_replication_factor" directive invalid number/,
    'plinth_replication_factor three');



=== TEST 24: plinth_write_quorum larger than plinth_replication_factor
--- check
nginx_t_fails_like({ rf => 3, w => 4 },
    qr/\[emerg\].*plinth_write_quorum 4 is larger than plinth_replication_factor 3/,
    'W 4 > RF 3');
nginx_t_fails_like({ rf => 2, w => 3 },
    qr/\[emerg\].*plinth_write_quorum 3 is larger than plinth_replication_factor 2/,
    'W 3 > RF 2');
my $l = conf_line(template_text(), 'plinth_write_quorum');
nginx_t_fails_like({ w => 0 },
    qr/\[emerg\].*value must be between 1 and 7 in \S+nginx-t\.conf:$l\b/,
    'W 0');



=== TEST 25: plinth_replication_factor larger than the cluster
--- check
nginx_t_fails_like({ rf => 4, w => 2 },
    qr/\[emerg\].*plinth_replication_factor 4 needs at least 4 data nodes, the cluster file has 3/,
    'RF 4 with 3 nodes');



=== TEST 26: plinth_max_object_size 1k: 1024 bytes pass, 1025 are EntityTooLarge
--- http_config
plinth_max_object_size 1k;
--- setup
s3_request(PUT => '/maxbucket');
--- request eval
["PUT /maxbucket/ok\n" . ('a' x 1024),
 "PUT /maxbucket/big\n" . ('b' x 1025),
 "GET /maxbucket/big",
 "GET /maxbucket/ok"]
--- error_code eval
[200, 400, 404, 200]
--- response_body_like eval
["", "<Code>EntityTooLarge</Code>", "<Code>NoSuchKey</Code>", "^a{1024}\\z"]



=== TEST 27: plinth_max_object_size applies to a chunked body too
--- http_config
plinth_max_object_size 1k;
--- raw_request eval
my $body = "400\r\n" . ('c' x 1024) . "\r\n" . "10\r\n" . ('c' x 16) . "\r\n0\r\n\r\n";
"PUT /maxbucket/chunked HTTP/1.1\r\n"
. sign_request(PUT => '/maxbucket/chunked', format => 'raw', body => $body,
    headers => [Host => '127.0.0.1', Connection => 'close',
        'Transfer-Encoding' => 'chunked'])
. "\r\n" . $body
--- error_code: 400
--- response_body_like
<Code>EntityTooLarge</Code>
--- check
is(s3_request(GET => '/maxbucket/chunked')->{status}, 404, 'nothing stored');



=== TEST 28: plinth_max_object_size not a size
--- http_config
plinth_max_object_size 10x;
--- nginx_t_fails
\[emerg\].*"plinth_max_object_size" directive invalid value in \S+:\d+



=== TEST 29: plinth_max_object_size 0
--- http_config
plinth_max_object_size 0;
--- nginx_t_fails
\[emerg\].*plinth_max_object_size must be positive



=== TEST 30: plinth_blob_location: the data hop goes through the location it names
--- setup
my $t = template_with(
    'location /_plinth/blobs/' => '        location /_data_hop/ {',
    qr/^[ \t]*\@HTTP_EXTRA\@[ \t]*$/m => "    plinth_blob_location /_data_hop/;\n    \@HTTP_EXTRA\@");
die 'template still has /_plinth/blobs/' if $t =~ m{^\s*location /_plinth/blobs/}m;
restart_with($t);
my $r = s3_request(PUT => '/hopbucket');
die "PUT /hopbucket: $r->{status}" unless $r->{status} == 200;
--- request eval
["PUT /hopbucket/k\nthrough the hop", "GET /hopbucket/k", "GET /_data_hop/x"]
--- error_code eval
[200, 200, 404]
--- response_body_like eval
["", "^through the hop\\z", ""]
--- teardown
$cluster->restart_nginx;



=== TEST 31: plinth_blob_location naming a location that does not exist: writes fail cleanly
--- http_config
plinth_blob_location /_nowhere/;
--- setup
my $r = s3_request(PUT => '/nowherebucket');
die "PUT /nowherebucket: $r->{status}" unless $r->{status} == 200;
--- request eval
["PUT /nowherebucket/k\nlost", "GET /nowherebucket/k"]
--- error_code eval
[503, 404]
--- response_body_like eval
["<Code>ServiceUnavailable</Code>", "<Code>NoSuchKey</Code>"]



=== TEST 32: plinth_blob_location must start and end with a slash
--- http_config
plinth_blob_location _plinth/blobs/;
--- nginx_t_fails
\[emerg\].*invalid plinth_blob_location "_plinth/blobs/": it must start and end with "/" in \S+:\d+



=== TEST 33: plinth_blob_location without the final slash
--- http_config
plinth_blob_location /_plinth/blobs;
--- nginx_t_fails
\[emerg\].*invalid plinth_blob_location "/_plinth/blobs": it must start and end with "/" in \S+:\d+



=== TEST 34: plinth_cluster: optional fields (zone, tier, weight) and a node order of our own
--- setup
my $y = "nodes:\n";
for my $i (3, 1, 2) {
    $y .= "  - id: $i\n    address: 127.0.0.1:" . $cluster->node_port($i) . "\n";
}
$y .= "    zone: z2\n    tier: warm\n    weight: 2\n";
my $f = $cluster->dir . '/cluster-t33.yaml';
write_file($f, $y);
restart_with(template_with(plinth_cluster => "        plinth_cluster $f;"));
my $r = s3_request(PUT => '/clbucket');
die "PUT /clbucket: $r->{status}" unless $r->{status} == 200;
--- request eval
["PUT /clbucket/k\nclustered", "GET /clbucket/k"]
--- error_code eval
[200, 200]
--- response_body_like eval
["", "^clustered\\z"]
--- check
my $n = $cluster->psql("select array_to_string(nodes, ',') from versions v "
    . "join objects o using (version_id) where o.key = 'k' and o.bucket_id = "
    . "(select bucket_id from buckets where name = 'clbucket')")->[0][0];
like($n // '', qr/^[123],[123](,[123])?$/, "placement uses the file's node ids ($n)");
--- teardown
$cluster->restart_nginx;



=== TEST 35: plinth_cluster: bad cluster files
--- check
my $d = $cluster->dir;
my %node = map { $_ => "  - id: $_\n    address: 127.0.0.1:" . $cluster->node_port($_) . "\n" } 1 .. 3;
my @cases = (
    ['bad YAML', "nodes:\n  - id: 1\n    address: [127.0.0.1:9101\n",
        qr/cluster file "[^"]+bad-yaml\.yaml", line \d+: did not find expected ',' or '\]'/],
    ['a tab in YAML', "nodes:\n  - id: 1\n\taddress: 127.0.0.1:9101\n",
        qr/cluster file "[^"]+", line 3: found a tab character/],
    ['unknown node key', "nodes:\n" . $node{1} . $node{2} . $node{3} . "    colour: red\n",
        qr/cluster file "[^"]+", line 8: unknown node key "colour"/],
    ['unknown top-level key', "nodes:\n" . $node{1} . $node{2} . $node{3} . "replicas: 3\n",
        qr/cluster file "[^"]+", line 8: unknown key "replicas"/],
    ['duplicate id', "nodes:\n" . $node{1} . $node{2} . "  - id: 1\n    address: 127.0.0.1:1\n",
        qr/cluster file: duplicate node id/],
    ['invalid port', "nodes:\n" . $node{1} . $node{2} . "  - id: 3\n    address: 127.0.0.1:notaport\n",
        qr/data node 3: invalid address "127\.0\.0\.1:notaport": invalid port/],
    ['port out of range', "nodes:\n" . $node{1} . $node{2} . "  - id: 3\n    address: 127.0.0.1:99999\n",
        qr/data node 3: invalid address "127\.0\.0\.1:99999": invalid port/],
    ['unknown host', "nodes:\n" . $node{1} . $node{2} . "  - id: 3\n    address: no-such-host.invalid:9101\n",
        qr/data node 3: invalid address "no-such-host\.invalid:9101": host not found/],
    ['node id 0', "nodes:\n  - id: 0\n    address: 127.0.0.1:1\n",
        qr/cluster file "[^"]+", line 2: invalid node id "0" \(1\.\.65535\)/],
    ['node id 65536', "nodes:\n  - id: 65536\n    address: 127.0.0.1:1\n",
        qr/invalid node id "65536" \(1\.\.65535\)/],
    ['node without address', "nodes:\n  - id: 1\n",
        qr/cluster file "[^"]+", line 2: a node has no address/],
    ['unknown tier', "nodes:\n  - id: 1\n    address: 127.0.0.1:1\n    tier: lukewarm\n",
        qr/invalid tier "lukewarm" \(hot, warm or cold\)/],
    ['weight 0', "nodes:\n  - id: 1\n    address: 127.0.0.1:1\n    weight: 0\n",
        qr/invalid weight "0" \(1\.\.100000\)/],
    ['no nodes', "nodes: []\n", qr/cluster file: no nodes/],
    ['nodes not a list', "nodes: 3\n", qr/"nodes" must be a list of nodes/],
    ['fewer nodes than RF 3', "nodes:\n" . $node{1} . $node{2},
        qr/plinth_replication_factor 3 needs at least 3 data nodes, the cluster file has 2/],
);
for my $case (@cases) {
    my ($name, $yaml, $re) = @$case;
    (my $file = lc $name) =~ s/\W+/-/g;
    $file = "$d/$file.yaml";
    write_file($file, $yaml);
    my $t = template_with(plinth_cluster => "        plinth_cluster $file;");
    nginx_t_fails_like($t, qr/\[emerg\].*$re/, $name);
}
my $t = template_with(plinth_cluster => "        plinth_cluster $d/no-such-file.yaml;");
nginx_t_fails_like($t,
    qr/\[emerg\].*cannot open cluster file "\Q$d\E\/no-such-file\.yaml": No such file or directory/,
    'missing file');



=== TEST 36: plinth_cluster after keepalive, twice, or outside an upstream
--- check
my $t = template_with(
    qr/^[ \t]*plinth_cluster \@CLUSTER_YAML\@;\n[ \t]*keepalive 64;[ \t]*$/m =>
    "        keepalive 64;\n        plinth_cluster \@CLUSTER_YAML\@;");
nginx_t_fails_like($t,
    qr/\[emerg\].*"plinth_cluster" directive must come before "keepalive" and other balancers/,
    'after keepalive');
$t = template_with(keepalive => "        keepalive 64;\n        plinth_cluster \@CLUSTER_YAML\@;");
nginx_t_fails_like($t, qr/\[emerg\].*"plinth_cluster" directive is duplicate/, 'twice');
$t = template_with(qr/^[ \t]*\@HTTP_EXTRA\@[ \t]*$/m => '    plinth_cluster @CLUSTER_YAML@;');
nginx_t_fails_like($t, qr/\[emerg\].*"plinth_cluster" directive is not allowed here/,
    'in the http block');
$t = template_with(plinth_cluster => '        server 127.0.0.1:1;');
nginx_t_fails_like($t,
    qr/\[emerg\].*plinth needs "plinth_cluster" in the upstream block of the data nodes/,
    'no plinth_cluster at all');



=== TEST 37: plinth_straggler_timeout: a replica write to a hung node is cancelled after it
--- http_config
plinth_straggler_timeout 200ms;
--- setup
s3_request(PUT => '/stragglers');
$::hung = $cluster->pid_of('node3');
kill 'STOP', $::hung or die "SIGSTOP: $!";
$::t0 = time;
--- request eval
[ map { "PUT /stragglers/k$_\n" . ("s" x 40000) } 1 .. 4 ]
--- error_code: 200
--- timeout: 20
--- error_log
after plinth_straggler_timeout
--- check
my $took = time - $::t0;
ok($took < 3, sprintf("four PUTs beside a hung node took %.2f s", $took));
--- teardown
kill 'CONT', $::hung;



=== TEST 38: plinth_straggler_timeout with a bad value
--- http_config
plinth_straggler_timeout soon;
--- nginx_t_fails
\[emerg\].*"plinth_straggler_timeout" directive invalid value in \S+:\d+



=== TEST 39: plinth_auth sigv4 refuses an unsigned write; off lets it through
--- setup
$cluster->restart_nginx(auth => 'sigv4');
$::r1 = s3_request(PUT => '/authdirective', unsigned => 1);
$::r2 = s3_request(PUT => '/authdirective');
$cluster->restart_nginx(auth => 'off');
$::r3 = s3_request(PUT => '/authoff', unsigned => 1);
$cluster->restart_nginx;
--- check
is($::r1->{status}, 403, 'sigv4: unsigned CreateBucket is AccessDenied');
like($::r1->{body}, qr{<Code>AccessDenied</Code>}, 'sigv4: AccessDenied');
is($::r2->{status}, 200, 'sigv4: a signed CreateBucket succeeds');
is($::r3->{status}, 200, 'off: an unsigned CreateBucket succeeds');



=== TEST 40: plinth_auth with a bad value
--- check
nginx_t_fails_like({ auth => 'maybe' },
    qr/\[emerg\].*invalid plinth_auth "maybe": it must be "sigv4" or "off" in \S+:\d+/,
    'plinth_auth maybe');



=== TEST 41: plinth_region: a credential scoped to another region is refused
--- setup
$cluster->restart_nginx(
    template_text => template_with('plinth_region' => '    plinth_region eu-west-1;'),
    auth => 'sigv4');
$::r = s3_request(GET => '/');
$cluster->restart_nginx;
--- check
is($::r->{status}, 400, 'status 400');
like($::r->{body}, qr{<Code>AuthorizationHeaderMalformed</Code>},
     'AuthorizationHeaderMalformed');



=== TEST 42: plinth_region with a bad value
--- check
nginx_t_fails_like(template_with('plinth_region' => '    plinth_region "";'),
    qr/\[emerg\].*invalid plinth_region ""/, 'plinth_region ""');



=== TEST 43: plinth_virtual_host_suffix: bucket.suffix addresses the bucket, the path is the key
--- http_config
plinth_virtual_host_suffix s3.plinth.test;
--- setup
my $r = s3_request(PUT => '/vhbucket');
die "create: $r->{status}" unless $r->{status} == 200;
--- request eval
["PUT /dir/key.txt\nvirtual hosted", "GET /dir/key.txt", "GET /?list-type=2"]
--- more_headers eval
["Host: vhbucket.s3.plinth.test", "Host: VHBucket.s3.plinth.test:9000", "Host: vhbucket.s3.plinth.test"]
--- error_code eval
[200, 200, 200]
--- response_body_like eval
["^\\z", "^virtual hosted\\z", "<Name>vhbucket</Name>.*<Key>dir/key.txt</Key>"]
--- check
my $r = s3_request(GET => '/vhbucket/dir/key.txt');
is($r->{body}, 'virtual hosted', 'the same object path-style');



=== TEST 44: plinth_virtual_host_suffix with a bad value
--- http_config
plinth_virtual_host_suffix .s3.plinth.test;
--- nginx_t_fails
\[emerg\].*invalid plinth_virtual_host_suffix "\.s3\.plinth\.test": a domain name without a leading dot, port or path



=== TEST 45: plinth_api_keys on: X-Plinth-Api-Key <id>:<secret> authenticates internal tools
--- http_config
plinth_api_keys on;
--- setup
my $c = $cluster->credentials;
$::good = "$c->{access_key}:$c->{secret_key}";
$::bad = "$c->{access_key}:" . ('x' x 40);
--- check
my $r = s3_request(PUT => '/apikeyb', unsigned => 1, headers => { 'X-Plinth-Api-Key' => $::good });
is($r->{status}, 200, 'CreateBucket with the API key');
$r = s3_request(PUT => '/apikeyb/k', unsigned => 1, body => 'tool data',
                headers => { 'X-Plinth-Api-Key' => $::good });
is($r->{status}, 200, 'PutObject with the API key');
$r = s3_request(GET => '/apikeyb/k', unsigned => 1, headers => { 'X-Plinth-Api-Key' => $::good });
is($r->{body}, 'tool data', 'GetObject with the API key');
$r = s3_request(GET => '/apikeyb/k', unsigned => 1, headers => { 'X-Plinth-Api-Key' => $::bad });
is($r->{status}, 403, 'a wrong secret is refused');
like($r->{body}, qr{<Code>SignatureDoesNotMatch</Code>}, 'SignatureDoesNotMatch');
$r = s3_request(GET => '/apikeyb/k', unsigned => 1, headers => { 'X-Plinth-Api-Key' => 'PLNOSUCHKEY0000000000:secret' });
like($r->{body}, qr{<Code>InvalidAccessKeyId</Code>}, 'an unknown key is InvalidAccessKeyId');



=== TEST 46: plinth_api_keys off (the default): the header is ignored
--- check
my $c = $cluster->credentials;
my $r = s3_request(PUT => '/apikeyoff', unsigned => 1,
                   headers => { 'X-Plinth-Api-Key' => "$c->{access_key}:$c->{secret_key}" });
is($r->{status}, 403, 'anonymous: AccessDenied');



=== TEST 47: plinth_api_keys with a bad value
--- http_config
plinth_api_keys maybe;
--- nginx_t_fails
\[emerg\].*invalid value "maybe" in "plinth_api_keys" directive, it must be "on" or "off"



=== TEST 48: plinth_health_refresh with a bad value
--- http_config
plinth_health_refresh often;
--- nginx_t_fails
\[emerg\].*"plinth_health_refresh" directive invalid value in \S+:\d+



=== TEST 49: plinth_health_refresh is an http directive
--- config
location /other/ { plinth_health_refresh 1s; }
--- nginx_t_fails
\[emerg\].*"plinth_health_refresh" directive is not allowed here in \S+:\d+



=== TEST 50: plinth_key_cache 0: every request looks its key up, so a deleted key fails at once
--- http_config
plinth_key_cache 0;
--- check
my $c = cluster();
$c->psql("INSERT INTO users (user_id, display_name) VALUES ('nocache', 'No Cache') ON CONFLICT DO NOTHING");
$c->psql("INSERT INTO access_keys (access_key_id, secret_key, user_id) VALUES ('PLNOCACHE000000001', 'nocachesecret000nocachesecret', 'nocache')");
my $who = 'PLNOCACHE000000001:nocachesecret000nocachesecret';
is(s3_request(GET => '/', sign_as => $who)->{status}, 200, 'the key works');
$c->psql("DELETE FROM access_keys WHERE access_key_id = 'PLNOCACHE000000001'");
my $r = s3_request(GET => '/', sign_as => $who);
is($r->{status}, 403, 'deleted: 403 at once');
like($r->{body}, qr{<Code>InvalidAccessKeyId</Code>}, 'InvalidAccessKeyId');



=== TEST 51: plinth_key_cache with a bad value
--- http_config
plinth_key_cache forever;
--- nginx_t_fails
\[emerg\].*"plinth_key_cache" directive invalid value in \S+:\d+



=== TEST 52: plinth_health takes no argument and belongs in a location
--- config
location = /h2 { plinth_health on; }
--- nginx_t_fails
\[emerg\].*invalid number of arguments in "plinth_health" directive in \S+:\d+



=== TEST 53: plinth_health in another location answers there
--- config
location = /status/cluster { plinth_health; }
--- request
GET /status/cluster
--- unsigned
--- error_code: 503
--- response_body_like
^\{"status": "unhealthy", "postgresql": "ok", "online": 0, "write_quorum": 2, "nodes": \[



=== TEST 54: plinth_usage_flush 0: no reads are counted, nothing is flushed
--- http_config
plinth_usage_flush 0;
--- check
is(s3_request(PUT => '/usageoff')->{status}, 200, 'bucket');
is(s3_request(PUT => '/usageoff/k', body => 'twelve bytes')->{status}, 200, 'object');
is(s3_request(GET => '/usageoff/k')->{status}, 200, 'a read') for 1 .. 3;
sleep 1;
my $m = s3_request(GET => '/metrics', unsigned => 1)->{body};
my ($before) = $m =~ /^plinth_usage_reads_total (\d+)$/m;
is(s3_request(GET => '/usageoff/k')->{status}, 200, 'one more read');
$m = s3_request(GET => '/metrics', unsigned => 1)->{body};
my ($after) = $m =~ /^plinth_usage_reads_total (\d+)$/m;
is($after, $before, 'not counted');
like($m, qr/^plinth_usage_pending_keys 0$/m, 'nothing pending');
my ($n) = cluster()->psql("SELECT count(*) FROM object_access a JOIN buckets b USING (bucket_id) WHERE b.name = 'usageoff'");
is($n->[0], 0, 'no access row');



=== TEST 55: plinth_usage_flush with a bad value
--- http_config
plinth_usage_flush soon;
--- nginx_t_fails
\[emerg\].*"plinth_usage_flush" directive invalid value in \S+:\d+



=== TEST 56: plinth_usage_entries out of range
--- http_config
plinth_usage_entries 15;
--- nginx_t_fails
\[emerg\].*value must be between 16 and 1000000 in \S+:\d+



=== TEST 57: plinth_usage_entries is an http directive
--- config
location /other/ { plinth_usage_entries 100; }
--- nginx_t_fails
\[emerg\].*"plinth_usage_entries" directive is not allowed here in \S+:\d+



=== TEST 58: plinth_put_linger with a bad value
--- http_config
plinth_put_linger later;
--- nginx_t_fails
\[emerg\].*"plinth_put_linger" directive invalid value in \S+:\d+



=== TEST 59: plinth_get_coalesce 0: GETs are answered, no lookup goes through the worker's queue
--- http_config
plinth_get_coalesce 0;
--- check
is(s3_request(PUT => '/coalesce-off')->{status}, 200, 'bucket');
is(s3_request(PUT => '/coalesce-off/k', body => 'abc')->{status}, 200, 'object');
my $l0 = s3_request(GET => '/metrics')->{body} =~ /^plinth_get_lookups_total (\d+)$/m ? $1 : undef;
my @st = racing_requests(map { [GET => '/coalesce-off/k'] } 1 .. 8);
is_deeply(\@st, [(200) x 8], 'eight GETs at once: 200 each');
my $r = s3_request(GET => '/coalesce-off/k');
is($r->{body}, 'abc', 'the bytes');
my $l1 = s3_request(GET => '/metrics')->{body} =~ /^plinth_get_lookups_total (\d+)$/m ? $1 : undef;
ok(defined $l0 && defined $l1 && $l1 == $l0, 'plinth_get_lookups_total did not move');



=== TEST 60: plinth_get_coalesce out of range or not a number
--- http_config
plinth_get_coalesce 65;
--- nginx_t_fails
\[emerg\].*value must be between 0 and 64 in \S+:\d+



=== TEST 61: plinth_get_coalesce is an http directive
--- config
location /other/ { plinth_get_coalesce 2; }
--- nginx_t_fails
\[emerg\].*"plinth_get_coalesce" directive is not allowed here in \S+:\d+
