# The gateway's Prometheus metrics (plinth_metrics, at /metrics in
# conf/nginx.conf): counters in shared memory, the same whichever worker
# answers and kept across nginx -s reload; the output passes promtool.
use lib 't/lib';
use Plinth::Test;
use Time::HiRes qw(sleep);

sub scrape {
    my $r = s3_request(GET => '/metrics', unsigned => 1);
    die "metrics: $r->{status}" unless $r->{status} == 200;
    return $r;
}

# name{labels} -> value
sub metrics {
    my %m;
    for (split /\n/, scrape()->{body}) {
        next if /^#/ || !/\S/;
        my ($k, $v) = /^(\S+)\s+(\S+)$/ or next;
        $m{$k} = $v;
    }
    return \%m;
}

sub req_total {
    my ($m, $op, $status) = @_;
    return $m->{"plinth_http_requests_total{operation=\"$op\",status=\"$status\"}"} // 0;
}

run_tests();

__DATA__

=== TEST 1: the exposition passes promtool check metrics
--- check
is(s3_request(PUT => '/met')->{status}, 200, 'bucket');
s3_request(PUT => '/met/a', body => 'x' x 1000);
s3_request(GET => '/met/a');
my $r = scrape();
like($r->{headers}{'content-type'}, qr{^text/plain; version=0\.0\.4}, 'Content-Type of the text format');
my ($rc, $out) = Plinth::Cluster::run_command(['/usr/bin/promtool', 'check', 'metrics'],
    stdin => $r->{body}, merge => 1, timeout => 30);
is($rc, 0, 'promtool check metrics: no problem') or diag($out);
for my $name (qw(plinth_http_requests_total plinth_http_request_duration_seconds
                 plinth_http_received_bytes_total plinth_http_sent_bytes_total
                 plinth_upstream_errors_total plinth_pg_pool_connections
                 plinth_pg_pool_queued plinth_pg_pool_wait_seconds)) {
    like($r->{body}, qr/^# TYPE $name /m, "$name is described");
}



=== TEST 2: counts by operation and status, from every worker (40 requests on 40 connections)
--- check
my $before = metrics();
my @codes = racing_requests(map { [PUT => "/met/k$_", body => "body $_"] } 1 .. 20);
is(scalar(grep { $_ == 200 } @codes), 20, '20 PUTs, each on its own connection');
@codes = racing_requests(map { [GET => "/met/missing$_"] } 1 .. 20);
is(scalar(grep { $_ == 404 } @codes), 20, '20 GETs of missing keys');
sleep 0.2;
my $after = metrics();
is(req_total($after, 'PutObject', 200) - req_total($before, 'PutObject', 200), 20, 'PutObject 200: +20');
is(req_total($after, 'GetObject', 404) - req_total($before, 'GetObject', 404), 20, 'GetObject 404: +20');
my $c = 'plinth_http_request_duration_seconds_count{operation="PutObject"}';
is($after->{$c} - ($before->{$c} // 0), 20, 'the PutObject histogram counted 20');
my $inf = 'plinth_http_request_duration_seconds_bucket{operation="PutObject",le="+Inf"}';
is($after->{$inf}, $after->{$c}, '+Inf bucket = count');
my $bi = 'plinth_http_received_bytes_total{operation="PutObject"}';
cmp_ok($after->{$bi} - ($before->{$bi} // 0), '>=', 20 * 6, 'received bytes grew by at least the bodies');
cmp_ok($after->{'plinth_pg_pool_connections{state="configured"}'}, '>=', 2, 'pool connections of the workers, summed');



=== TEST 3: nginx -s reload keeps the counters
--- check
my $before = metrics();
my $n = req_total($before, 'PutObject', 200);
cmp_ok($n, '>', 0, "PutObject 200 before: $n");
cluster()->reload_nginx;
s3_request(PUT => '/met/after-reload', body => 'x');
my $after = metrics();
is(req_total($after, 'PutObject', 200), $n + 1, 'after the reload: the same count, plus one');



=== TEST 4: a data node that cannot be reached is counted against it
--- timeout: 60
--- check
s3_request(PUT => "/met/n$_", body => "n$_") for 1 .. 6;
my $before = metrics();
cluster()->stop_node(2);
s3_request(GET => "/met/n$_") for 1 .. 6;
s3_request(PUT => "/met/w$_", body => "w$_") for 1 .. 6;
my $after = metrics();
cluster()->start_node(2);
my $k = 'plinth_upstream_errors_total{node="2"}';
cmp_ok(($after->{$k} // 0) - ($before->{$k} // 0), '>', 0, 'node 2: errors counted (' . ($after->{$k} // 0) . ')');
is($after->{'plinth_upstream_errors_total{node="1"}'} // 0, $before->{'plinth_upstream_errors_total{node="1"}'} // 0, 'node 1: none');



=== TEST 5: only GET and HEAD
--- request
POST /metrics
--- unsigned
--- error_code: 405



=== TEST 6: every data node's /metrics (unsigned, like /health) passes promtool, counts the requests it served and agrees with its /health
--- timeout: 60
--- check
my $c = cluster();
is(s3_request(PUT => '/dnm')->{status}, 200, 'bucket dnm');
is(s3_request(PUT => '/dnm/k', body => 'y' x 5000)->{status}, 200, 'a 5000-byte object: a copy on each of the 3 nodes');
is(s3_request(GET => '/dnm/k')->{status}, 200, '... read once');
my $http = $c->node_http(timeout => 10);
my $read_sent = 0;
for my $i (1 .. $c->nodes) {
    my $r = $http->get($c->node_url($i) . '/metrics');
    is($r->{status}, 200, "node $i: /metrics answers without the cluster's signature");
    like($r->{headers}{'content-type'}, qr{^text/plain; version=0\.0\.4}, "node $i: the text format");
    my ($rc, $out) = Plinth::Cluster::run_command(['/usr/bin/promtool', 'check', 'metrics'],
        stdin => $r->{content}, merge => 1, timeout => 30);
    is($rc, 0, "node $i: promtool check metrics: no problem") or diag($out);
    my %m;
    for (split /\n/, $r->{content}) {
        next if /^#/;
        $m{$1} = $2 if /^(\S+) (\S+)$/;
    }
    cmp_ok($m{qq{plinth_node_http_requests_total{node="$i",method="PUT",code="201"}}} // 0, '>=', 1,
        "node $i: its blob PUT counted");
    cmp_ok($m{qq{plinth_node_received_bytes_total{node="$i"}}} // 0, '>=', 5000,
        "node $i: the 5000 body bytes received");
    ok(defined $m{qq{plinth_node_disk_usage_bytes{node="$i"}}}, "node $i: plinth_node_disk_usage_bytes");
    is($m{qq{plinth_node_writable{node="$i"}}}, 1, "node $i: writable");
    is($m{qq{plinth_node_http_request_duration_seconds_count{node="$i"}}},
       $m{qq{plinth_node_http_request_duration_seconds_bucket{node="$i",le="+Inf"}}},
       "node $i: the histogram's count is its +Inf bucket");
    my $h = $http->get($c->node_url($i) . '/health', { headers => { Accept => 'application/json' } });
    my ($blobs) = $h->{content} =~ /"blob_count":(\d+)/;
    is($m{qq{plinth_node_blobs{node="$i"}}}, $blobs, "node $i: blobs as /health counts them ($blobs)");
    $read_sent += $m{qq{plinth_node_sent_bytes_total{node="$i"}}} // 0;
}
cmp_ok($read_sent, '>=', 5000, "the GET's 5000 bytes were sent by a node ($read_sent in all)");
my $u = $c->node_request(1, GET => '/blobs', { sign => 0 });
is($u->{status}, 403, 'a blob listing without the signature is still refused');
