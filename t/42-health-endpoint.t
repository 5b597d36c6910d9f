# GET /health (plinth_health, at /health in conf/nginx.conf): the cluster
# as node_health shows it, read from PostgreSQL for every request.
# node_health is written by hand here, as repaird would.
use lib 't/lib';
use Plinth::Test;
use JSON::PP ();

sub set_health {
    my ($node, $status, $full) = @_;
    cluster()->psql("INSERT INTO node_health (node_id, address, status, is_full, "
        . "disk_total_bytes, disk_used_bytes, last_heartbeat) "
        . "VALUES ($node, 'test', '$status', $full, 1000, 10 * $node, now()) "
        . "ON CONFLICT (node_id) DO UPDATE "
        . "SET status = EXCLUDED.status, is_full = EXCLUDED.is_full");
}

sub health {
    my $r = s3_request(GET => '/health', unsigned => 1);
    my $j = eval { JSON::PP::decode_json($r->{body}) };
    ok($j, 'the answer is JSON') or diag($r->{body});
    return ($r, $j || {});
}

run_tests();

__DATA__

=== TEST 1: before repaird has probed anything: every node "unknown", 503 unhealthy
--- check
my ($r, $j) = health();
is($r->{status}, 503, '503');
is($r->{headers}{'content-type'}, 'application/json', 'Content-Type: application/json');
is($j->{status}, 'unhealthy', 'unhealthy: no node is known to be online');
is($j->{postgresql}, 'ok', 'PostgreSQL answered');
is_deeply([map { "$_->{id}:$_->{status}" } @{ $j->{nodes} }], ['1:unknown', '2:unknown', '3:unknown'], 'the three nodes of the cluster file, unknown');
is($j->{write_quorum}, 2, 'write_quorum 2');



=== TEST 2: every node online: 200 healthy, with disk figures and heartbeats
--- check
set_health($_, 'online', 'false') for 1 .. 3;
my ($r, $j) = health();
is($r->{status}, 200, '200');
is($j->{status}, 'healthy', 'healthy');
is($j->{online}, 3, 'three online');
my ($n2) = grep { $_->{id} == 2 } @{ $j->{nodes} };
is($n2->{status}, 'online', 'node 2 online');
is($n2->{disk_used_bytes}, 20, 'node 2 disk_used_bytes');
is($n2->{disk_total_bytes}, 1000, 'node 2 disk_total_bytes');
ok(!$n2->{full}, 'node 2 not full');
like($n2->{last_heartbeat}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'last_heartbeat, ISO 8601 UTC');
like($n2->{address}, qr/^127\.0\.0\.1:\d+$/, 'the address from the cluster file');
is(s3_request(HEAD => '/health', unsigned => 1)->{status}, 200, 'HEAD 200');



=== TEST 3: a node offline or full: 200 degraded; fewer than W online: 503 unhealthy
--- check
set_health(2, 'offline', 'false');
my ($r, $j) = health();
is("$r->{status} $j->{status}", '200 degraded', 'node 2 offline: 200 degraded');
set_health(2, 'online', 'false');
set_health(3, 'online', 'true');
($r, $j) = health();
is("$r->{status} $j->{status}", '200 degraded', 'node 3 full: 200 degraded');
set_health(2, 'suspect', 'false');
set_health(3, 'offline', 'false');
($r, $j) = health();
is("$r->{status} $j->{status} $j->{online}", '503 unhealthy 1', 'one node online, W = 2: 503 unhealthy');
set_health($_, 'online', 'false') for 1 .. 3;
($r, $j) = health();
is("$r->{status} $j->{status}", '200 healthy', 'all back: healthy');



=== TEST 4: PostgreSQL unreachable: 503 unhealthy at once, and healthy again when it is back
--- timeout: 60
--- check
cluster()->stop_pg;
my ($r, $j) = health();
is("$r->{status} $j->{status} $j->{postgresql}", '503 unhealthy unreachable', '503 unhealthy, postgresql unreachable');
cluster()->start_pg;
my $ok;
for (1 .. 50) {
    my $x = s3_request(GET => '/health', unsigned => 1);
    if ($x->{status} == 200) { $ok = 1; last }
    Time::HiRes::sleep(0.2);
}
ok($ok, 'healthy again once PostgreSQL is back, without restarting nginx');



=== TEST 5: only GET and HEAD
--- request
POST /health
--- unsigned
--- error_code: 405
