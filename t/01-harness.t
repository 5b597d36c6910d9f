# Self-test of the harness (t/lib/Plinth): needs PostgreSQL and stock
# nginx only, not the gateway module nor the data node.
#   1. Plinth::Cluster with PostgreSQL alone: migrations, psql, stop by pid,
#      restart on the same data, stop from another object.
#   1b. Data nodes, with a stub data node (python) answering /health.
#   2. bin/plinth-cluster start/status/stop with PostgreSQL alone.
#   3. A block file whose expectation is wrong must report "not ok".
#   4. The blocks below, against plain nginx rendered from $TEMPLATE.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Temp qw(tempdir);
use Plinth::Cluster;
use Plinth::Test;

our $TEMPLATE = <<'EOF';
user @USER@;
worker_processes 1;
error_log @PREFIX@/logs/error.log info;
pid @PREFIX@/nginx.pid;
events { worker_connections 64; }
http {
    access_log @PREFIX@/logs/access.log;
    client_body_temp_path @PREFIX@/tmp/body;
    proxy_temp_path @PREFIX@/tmp/proxy;
    fastcgi_temp_path @PREFIX@/tmp/fastcgi;
    uwsgi_temp_path @PREFIX@/tmp/uwsgi;
    scgi_temp_path @PREFIX@/tmp/scgi;
    default_type text/plain;
    @HTTP_EXTRA@
    server {
        listen @LISTEN@;
        location = /hello { return 200 "hello\n"; }
        location = /echo {
            return 200 "$request_method len=$content_length x=$http_x_test\n";
        }
        location = /chunked {
            sub_filter_types *;
            sub_filter_once off;
            sub_filter 'a' 'b';
            return 200 "aaa";
        }
        location = /conn { return 200 "$connection_requests"; }
        location = /missing { root @PREFIX@/nothing; }
        @SERVER_EXTRA@
    }
}
EOF

my $ROOT = $Plinth::Cluster::ROOT;

sub write_file {
    my ($path, $text) = @_;
    open my $fh, '>', $path or die "$path: $!";
    print $fh $text;
    close $fh;
}

# Processes whose command line mentions $dir.
sub procs_under {
    my ($dir) = @_;
    my @p;
    for my $pid (grep { /^\d+$/ } map { s{^/proc/}{}r } glob('/proc/[0-9]*')) {
        next if $pid == $$;
        open my $fh, '<', "/proc/$pid/cmdline" or next;
        my $c = do { local $/; <$fh> } // '';
        $c =~ tr/\0/ /;
        push @p, "$pid $c" if index($c, $dir) >= 0;
    }
    return @p;
}

# ------------------------------------------------------------ 1. PostgreSQL

{
    my $sql = tempdir('plinth-sql-XXXXXX', DIR => '/tmp', CLEANUP => 1);
    write_file("$sql/001_a.sql",
        "create table t1 (x int, s text);\ninsert into t1 values (1, E'a\\tb\\nc'), (2, null);\n");
    write_file("$sql/002_b.sql", "create table t2 (y text);\n");

    my $pg = Plinth::Cluster->new(nodes => 0, components => ['pg'],
        sql_dir => $sql, log => sub { note($_[0]) });
    ok($pg->start, 'pg: cluster with PostgreSQL alone starts');
    ok($pg->alive('pg'), 'pg: postmaster alive');
    my $dir = $pg->dir;
    ok(-e "$dir/pids/pg.pid", 'pg: pid file written');
    ok(-e "$dir/pg/PG_VERSION", 'pg: initdb ran');

    is_deeply([$pg->psql("select to_regclass('schema_migrations') is not null")],
        [['t']], 'pg: schema_migrations exists');
    is_deeply([$pg->psql('select version from schema_migrations order by 1')],
        [['001_a'], ['002_b']], 'pg: migrations applied and recorded in order');
    is_deeply([$pg->psql('select x, s from t1 order by x')],
        [[1, "a\tb\nc"], [2, undef]], 'pg: psql rows; NULL is undef')
        or diag(Test::More::explain([$pg->psql('select x, s from t1 order by x')]));
    is_deeply(scalar $pg->psql('select 1, 2'), [[1, 2]],
        'pg: psql in scalar context gives an arrayref');
    is(($pg->psql("select tableowner from pg_tables where tablename = 't1'"))[0][0],
        'plinth', 'pg: migrations run as (and owned by) plinth');
    ok(!eval { $pg->psql('select no_such_column'); 1 }, 'pg: psql error dies');
    like($@, qr/no_such_column/, 'pg: ... with the server message');

    write_file("$sql/003_bad.sql", "create table t3 (z int);\nselect 1/0;\n");
    ok(!eval { $pg->migrate; 1 }, 'pg: a failing migration dies');
    like($@, qr/division by zero/, "pg: ... with psql's message");
    is_deeply([$pg->psql("select to_regclass('t3') is null, "
            . "(select count(*) from schema_migrations where version = '003_bad')")],
        [['t', 0]], 'pg: ... and nothing of it is applied or recorded');
    unlink "$sql/003_bad.sql";
    write_file("$sql/003_c.sql", "alter table t2 add column z int;\n");
    is_deeply([$pg->migrate], ['003_c'], 'pg: migrate applies only new files');
    is_deeply([$pg->migrate], [], 'pg: migrate again applies nothing');

    my $pid = $pg->pid_of('pg');
    my @kids = Plinth::Cluster::_descendants($pid);
    ok(scalar @kids, 'pg: postmaster has children (' . scalar(@kids) . ')');
    $pg->stop;
    ok(!grep({ Plinth::Cluster::pid_alive($_) } $pid, @kids),
        'pg: stop leaves neither postmaster nor its children');
    ok(!-e "$dir/pids/pg.pid", 'pg: pid file removed');
    is_deeply([procs_under($dir)], [], 'pg: no process mentions the cluster dir');

    ok($pg->start, 'pg: starts again on the same data');
    is_deeply([$pg->psql('select count(*) from t1')], [[2]],
        'pg: data from before the stop is there');

    # stop from another object, as bin/plinth-cluster stop does
    $pid = $pg->pid_of('pg');
    Plinth::Cluster->new(dir => $dir, nodes => 0, components => ['pg'],
        keep => 1)->stop;
    ok(!Plinth::Cluster::pid_alive($pid), 'pg: stopped through another object');
    ok(!$pg->alive('pg'), 'pg: ... which the first one sees');
    is_deeply([procs_under($dir)], [], 'pg: no process left');
}

# ------------------------------------------------------------ 1b. nodes

# A stub data node: reads the YAML it is given, answers GET /health.
my $STUB = <<'EOF';
#!/usr/bin/python3
import http.server, json, sys
conf = {}
for line in open(sys.argv[2]):
    if ':' in line and not line.startswith('#'):
        k, v = line.split(':', 1)
        conf[k.strip()] = v.strip().strip('"')
host, port = conf['listen'].rsplit(':', 1)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({'status': 'healthy', 'node_id': conf['node_id'],
                           'accept': self.headers.get('Accept')}).encode()
        self.send_response(200 if self.path == '/health' else 404)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer((host, int(port)), H).serve_forever()
EOF

{
    my $bin = tempdir('plinth-stub-XXXXXX', DIR => '/tmp', CLEANUP => 1);
    write_file("$bin/plinth-datanode", $STUB);
    chmod 0755, "$bin/plinth-datanode";
    my $c = Plinth::Cluster->new(nodes => 2, components => ['nodes'],
        datanode => "$bin/plinth-datanode", node_opts => { log_level => 'debug' },
        per_node_opts => { 2 => { capacity_bytes => 12345 } },
        log => sub { note($_[0]) });
    ok($c->start, 'nodes: two stub data nodes start');
    my $dir = $c->dir;
    ok($c->alive('node1') && $c->alive('node2'), 'nodes: both alive');
    my $y1 = do { local (@ARGV, $/) = $c->node_yaml(1); <> };
    my $p1 = $c->node_port(1);
    like($y1, qr/^listen: 127\.0\.0\.1:$p1$/m, 'nodes: yaml listen');
    like($y1, qr/^data_dir: \Q$dir\E\/node1\/data$/m, 'nodes: yaml data_dir');
    like($y1, qr/^log_level: debug$/m, 'nodes: node_opts applied');
    my $y2 = do { local (@ARGV, $/) = $c->node_yaml(2); <> };
    like($y2, qr/^capacity_bytes: 12345$/m, 'nodes: per_node_opts applied');
    my $cy = do { local (@ARGV, $/) = $c->cluster_yaml; <> };
    like($cy, qr/^  - id: 2\n    address: 127\.0\.0\.1:\d+\n    zone: z2\n    tier: hot\n    weight: 1$/m,
        'nodes: cluster.yaml lists the nodes');
    is($c->blob_path(1, '0123456789abcdef0123456789abcdef'),
        "$dir/node1/data/objects/01/23/0123456789abcdef0123456789abcdef",
        'nodes: blob_path');

    my $pid1 = $c->pid_of('node1');
    $c->stop_node(1);
    ok(!Plinth::Cluster::pid_alive($pid1) && !$c->alive('node1'),
        'nodes: stop_node stops node 1');
    ok($c->alive('node2'), 'nodes: ... and only it');
    $c->start_node(1);
    ok($c->alive('node1'), 'nodes: start_node starts it again');
    my $pid2 = $c->pid_of('node2');
    $c->kill_node(2);
    ok(!Plinth::Cluster::pid_alive($pid2), 'nodes: kill_node');
    $c->stop;
    is_deeply([procs_under($dir)], [], 'nodes: stop leaves no process');
}

# ------------------------------------------------------------ 2. launcher

{
    my $dir = tempdir('plinth-cli-XXXXXX', DIR => '/tmp', CLEANUP => 1);
    my $cli = "$ROOT/bin/plinth-cluster";
    my ($rc, $out) = Plinth::Cluster::run_command(
        [$^X, $cli, 'start', '--dir', $dir, '--only', 'pg'],
        timeout => 120, merge => 1);
    is($rc, 0, 'cli: start --only pg exits 0') or diag($out);
    like($out, qr/Started: pg/, 'cli: says what it started');
    ($rc, $out) = Plinth::Cluster::run_command(
        [$^X, $cli, 'start', '--dir', $dir, '--only', 'pg'], merge => 1);
    is($rc, 0, 'cli: a second start exits 0') or diag($out);
    like($out, qr/already running/, 'cli: ... saying it is already running');
    ($rc, $out) = Plinth::Cluster::run_command(
        [$^X, $cli, 'status', '--dir', $dir, '--only', 'pg'], merge => 1);
    like($out, qr/^pg\s+\d+\s+running$/m, 'cli: status shows pg running')
        or diag($out);
    ($rc, $out) = Plinth::Cluster::run_command(
        [$^X, $cli, 'stop', '--dir', $dir, '--only', 'pg'], merge => 1,
        timeout => 60);
    is($rc, 0, 'cli: stop exits 0') or diag($out);
    like($out, qr/Stopped: pg/, 'cli: says what it stopped');
    is_deeply([procs_under($dir)], [], 'cli: no process left');
    ($rc, $out) = Plinth::Cluster::run_command(
        [$^X, $cli, 'status', '--dir', $dir, '--only', 'pg'], merge => 1);
    like($out, qr/^pg\s+\S+\s+stopped$/m, 'cli: status shows pg stopped');
}

# ------------------------------------------------------------ 3. failures

{
    my $dir = tempdir('plinth-fail-XXXXXX', DIR => '/tmp', CLEANUP => 1);
    write_file("$dir/fail.t", <<"EOF" . <<'EOF2');
use lib '$FindBin::Bin/lib';
use Plinth::Test;
our \$T = <<'TPL';
$TEMPLATE
TPL
cluster_options(components => ['nginx'], nodes => 0,
    template_text => \$main::T);
run_tests();
EOF
__DATA__

=== TEST 1: wrong status on purpose
--- request
GET /hello
--- error_code: 404
--- response_body
hello
EOF2
    my ($rc, $out) = Plinth::Cluster::run_command([$^X, "$dir/fail.t"],
        timeout => 120, merge => 1);
    isnt($rc, 0, 'failures: a failing block file exits non-zero');
    like($out, qr/^not ok \d+ - TEST 1: wrong status on purpose - status code ok$/m,
        'failures: the failing check is "not ok" with the block title');
    like($out, qr/^ok \d+ - TEST 1: wrong status on purpose - response_body/m,
        'failures: the other checks still run');
    like($out, qr/^#\s+response: 200/m,
        'failures: the response is shown') or diag($out);
    like($out, qr/^#\s+error\.log during the block/m,
        'failures: the error log is shown');
}

# ------------------------------------------------------------ 4. blocks

is(length(random_bytes(100_000)), 100_000, 'helpers: random_bytes');
is(md5_hex('x' x 10), '336311a016184326ddbdd61edd4eeb52', 'helpers: md5_hex');

cluster_options(components => ['nginx'], nodes => 0,
    template_text => $TEMPLATE);

our $torn_down = 0;

run_tests();

__DATA__

=== TEST 1: plain GET, exact body and headers
--- request
GET /hello
--- error_code: 200
--- response_body
hello
--- response_headers
Content-Type: text/plain
Content-Length: 6
X-Not-There:
!X-Not-There-Either
--- response_headers_like
Server: ^nginx
Date: GMT$



=== TEST 2: request body, more_headers, Content-Length added
--- request eval
"PUT /echo\n" . ("x" x 10)
--- more_headers
X-Test: blue
--- error_code: 200
--- response_body
PUT len=10 x=blue



=== TEST 3: plain request body loses its final newline
--- request
POST /echo
abc
--- response_body
POST len=3 x=



=== TEST 4: chunked response
--- request
GET /chunked
--- response_headers
Transfer-Encoding: chunked
--- response_body chomp
bbb



=== TEST 5: HEAD has no body
--- request
HEAD /hello
--- error_code: 200
--- response_headers
Content-Length: 6
--- response_body



=== TEST 6: config adds a location for this block
--- config
location = /extra { add_header X-Extra yes; return 201 "made\n"; }
--- request
GET /extra
--- error_code: 201
--- response_headers
X-Extra: yes
--- response_body_like: ^made$



=== TEST 7: ... and the default config is back after it
--- request
GET /extra
--- error_code: 404
--- response_body_unlike
made



=== TEST 8: http_config and config together
--- http_config
map $uri $plinth_test_var { default "mapped"; }
--- config
location = /mapped { return 200 "$plinth_test_var"; }
--- request
GET /mapped
--- response_body chomp
mapped



=== TEST 9: raw_request, well formed
--- raw_request eval
"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
--- error_code: 200
--- response_body
hello



=== TEST 10: raw_request, malformed header line
--- raw_request eval
"GET /hello HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"
--- error_code: 400
--- error_log
client sent invalid header line



=== TEST 11: error_log and no_error_log, literal and eval'd regex
--- request
GET /missing
--- error_code: 404
--- error_log eval
[qr/open\(\) ".*nothing\/missing" failed/, "No such file or directory"]
--- no_error_log
[alert]
[warn]



=== TEST 12: a bad directive value stops nginx -t
--- config
location = /bad { return abc; }
--- nginx_t_fails: invalid return code "abc"



=== TEST 13: setup, check (several tests, names prefixed), teardown
--- setup
$cluster->{plinth_test_mark} = 'set';
--- request
GET /hello
--- check
is($res->{status}, 200, 'status from $res');
is($res->{headers}{'content-length'}, 6, 'lower-case header names');
is($cluster->{plinth_test_mark}, 'set', 'setup ran before');
my $r = s3_request('GET', '/echo', headers => { 'X-Test' => 'h' });
is($r->{body}, "GET len= x=h\n", 's3_request helper');
--- teardown
$main::torn_down = 1;



=== TEST 14: teardown ran
--- check
ok($main::torn_down, 'teardown of the block before ran');



=== TEST 15: several requests on one keep-alive connection
--- request eval
["GET /conn", "GET /conn", "GET /nope"]
--- error_code eval
[200, 200, 404]
--- check
is($responses->[1]{body}, $responses->[0]{body} + 1,
    'second request on the same connection');
is($res, $responses->[2], '$res is the last response');



=== TEST 16: request_body_file
--- request
PUT /echo
--- request_body_file: t/01-harness.t
--- check
my $size = -s "$Plinth::Cluster::ROOT/t/01-harness.t";
is($res->{body}, "PUT len=$size x=\n", 'body read from the file');



=== TEST 17: timeout section
--- timeout: 3
--- request
GET /hello
--- response_body
hello



=== TEST 18: reload_nginx with an extra location, then back
--- setup
$cluster->reload_nginx(server_extra => 'location = /reloaded { return 200 "r"; }');
--- request
GET /reloaded
--- response_body chomp
r
--- teardown
$cluster->reload_nginx;



=== TEST 19: ... gone after the reload back
--- request
GET /reloaded
--- error_code: 404
