# Quorum writes and replica fallback on the real cluster (RF=3, W=2):
# data nodes stopped, blob files removed, bytes flipped on disk, a replica
# failing mid-body, and PUTs racing on one key.
use lib 't/lib';
use Plinth::Test;
use Time::HiRes qw(sleep time);

# One replica at a time, as an unstriped GET reads: the fallback tests
# below corrupt a block in the middle of a read and expect it resumed at
# that byte (t/94-striped-get.t covers the same with striped reads).
cluster_options(http_extra => 'plinth_stripe_size 0;');

# placement() (Plinth::Test): node ids are 1..N in the cluster file, as
# are the harness's indexes
sub put_ok {
    my ($uri, $body) = @_;
    my $r = s3_request(PUT => $uri, body => $body);
    die "PUT $uri: $r->{status} $r->{body}" unless $r->{status} == 200;
    return $r;
}


run_tests();

__DATA__

=== TEST 1: all nodes up: a PUT lands on RF=3 nodes
--- setup
put_ok('/qbk');
--- request eval
"PUT /qbk/k1\n" . ("a" x 5000)
--- error_code: 200
--- check
my ($blob, $nodes);
for (1 .. 50) {        # the third copy may be recorded just after the answer
    ($blob, $nodes) = placement('qbk', 'k1');
    last if @$nodes == 3;
    sleep 0.1;
}
like($blob, qr/^[0-9a-f]{32}$/, 'blob id is 128 random bits in hex');
is(scalar(@$nodes), 3, 'three replicas recorded');
for my $n (@$nodes) {
    ok(-f $cluster->blob_path($n, $blob), "blob file on node $n");
}



=== TEST 2: one of three nodes stopped: PUT succeeds with W=2
--- setup
$cluster->stop_node(2);
--- request eval
"PUT /qbk/k2\n" . ("b" x 7000)
--- error_code: 200
--- check
my ($blob, $nodes) = placement('qbk', 'k2');
ok(@$nodes >= 2, 'at least two replicas recorded');
ok(!grep({ $_ == 2 } @$nodes), 'the stopped node is not in the placement');



=== TEST 3: one node stopped: GET returns the object
--- request
GET /qbk/k2
--- error_code: 200
--- response_body eval
"b" x 7000



=== TEST 4: one node stopped: GET of an object that had a copy there
--- request
GET /qbk/k1
--- error_code: 200
--- response_body eval
"a" x 5000



=== TEST 5: two of three stopped: PUT is 503 and leaves no committed version
--- setup
$cluster->stop_node(3);
--- request eval
"PUT /qbk/k1\n" . ("c" x 6000)
--- error_code: 503
--- response_body_like
<Code>ServiceUnavailable</Code>
--- check
my @rows = $cluster->psql(
    "SELECT v.state FROM versions v JOIN buckets b USING (bucket_id) "
  . "WHERE b.name = 'qbk' AND v.key = 'k1' ORDER BY v.version_id");
is(scalar(@rows), 2, 'two versions of k1 were written');
is($rows[0][0], 'committed', 'the first is still committed');
is($rows[1][0], 'failed', 'the second failed, not committed');



=== TEST 6: two stopped: the previous version is still the one served
--- request
GET /qbk/k1
--- error_code: 200
--- response_body eval
"a" x 5000
--- teardown
$cluster->start_node(2);
$cluster->start_node(3);



=== TEST 7: GET falls back when the first replica is down
--- setup
put_ok('/qbk/k3', 'd' x 9000);
my ($blob, $nodes) = placement('qbk', 'k3');
$::first = $nodes->[0];
$cluster->stop_node($::first);
--- request
GET /qbk/k3
--- error_code: 200
--- response_body eval
"d" x 9000
--- teardown
$cluster->start_node($::first);



=== TEST 8: GET falls back when the first replica's blob file is missing
--- setup
put_ok('/qbk/k4', 'e' x 9000);
my ($blob, $nodes) = placement('qbk', 'k4');
unlink $cluster->blob_path($nodes->[0], $blob) or die "unlink: $!";
--- request
GET /qbk/k4
--- error_code: 200
--- response_body eval
"e" x 9000



=== TEST 9: GET falls back when a byte of the first replica is flipped
--- setup
put_ok('/qbk/k5', 'f' x 9000);
my ($blob, $nodes) = placement('qbk', 'k5');
flip_byte($cluster->blob_path($nodes->[0], $blob), 4321);
--- request
GET /qbk/k5
--- error_code: 200
--- response_body eval
"f" x 9000



=== TEST 10: 8 MiB object, first replica corrupt in a middle block: resumed at the exact byte
--- setup
$::big = random_bytes(8 * 1024 * 1024);
put_ok('/qbk/big', $::big);
my ($blob, $nodes) = placement('qbk', 'big');
flip_byte($cluster->blob_path($nodes->[0], $blob), 5 * 1024 * 1024 + 777);
--- request
GET /qbk/big
--- timeout: 30
--- error_code: 200
--- error_log
resuming on another replica
--- check
is(length($res->{body}), length($::big), 'every byte arrived');
ok($res->{body} eq $::big, 'byte-identical to what was stored');
is($res->{headers}{'content-length'}, 8 * 1024 * 1024, 'Content-Length');



=== TEST 11: a range across the corrupt block is resumed too
--- request
GET /qbk/big
--- more_headers
Range: bytes=4194304-6291455
--- timeout: 30
--- error_code: 206
--- response_headers
Content-Range: bytes 4194304-6291455/8388608
--- check
ok($res->{body} eq substr($::big, 4194304, 2097152), 'the range is byte-identical');



=== TEST 12: every replica unreadable: a clean 503 before any byte
--- setup
put_ok('/qbk/k6', 'g' x 3000);
# every node is up: wait for the third copy's record, or it would survive
my ($blob, $nodes) = placement_all('qbk', 'k6');
for my $n (@$nodes) {
    unlink $cluster->blob_path($n, $blob) or die "unlink: $!";
}
--- request
GET /qbk/k6
--- error_code: 503
--- response_body_like
<Code>ServiceUnavailable</Code>



=== TEST 13: racing PUTs of one key end with one body, whole
--- setup
put_ok('/qbk/race', 'seed');
--- request
GET /qbk/race
--- error_code: 200
--- check
for my $round (1 .. 15) {
    my $x = 'X' x (20000 + $round);
    my $y = 'Y' x (30000 + $round);
    my @codes = racing_requests([PUT => '/qbk/race', body => $x],
                                [PUT => '/qbk/race', body => $y]);
    is("@codes", "200 200", "round $round: both PUTs acknowledged");
    my $r = s3_request(GET => '/qbk/race');
    ok($r->{body} eq $x || $r->{body} eq $y,
       "round $round: the key holds one of the two bodies, whole");
    my @cur = $cluster->psql(
        "SELECT count(*) FROM objects o JOIN buckets b USING (bucket_id) "
      . "WHERE b.name = 'qbk' AND o.key = 'race'");
    is($cur[0][0], 1, "round $round: one current version");
}
# last writer wins: the current version is the one with the newest timestamp
my @lww = $cluster->psql(
    "SELECT o.version_id = (SELECT v.version_id FROM versions v "
  . "WHERE v.bucket_id = o.bucket_id AND v.key = o.key "
  . "AND v.state = 'committed' ORDER BY v.ts DESC, v.version_id DESC LIMIT 1) "
  . "FROM objects o JOIN buckets b USING (bucket_id) "
  . "WHERE b.name = 'qbk' AND o.key = 'race'");
is($lww[0][0], 't', 'the newest committed version is current');



=== TEST 14: keep-alive to the data nodes: no new connection per request
--- setup
put_ok('/qbk/ka', 'k' x 2000);
$::conns = sub {
    my $total = 0;
    for my $i (1 .. 3) {
        my ($code, $out) = Plinth::Cluster::run_command(
            ['curl', '-s', '-m', '5', '-H', 'Accept: application/json',
             'http://127.0.0.1:' . $cluster->node_port($i) . '/health']);
        $out =~ /"connections_total":(\d+)/ or die "no connections_total: $out";
        $total += $1;
    }
    return $total;
};
# warm every worker's pool
s3_request(GET => '/qbk/ka') for 1 .. 20;
$::before = $::conns->();
--- request eval
[ map { "GET /qbk/ka" } 1 .. 100 ]
--- error_code: 200
--- check
my $opened = $::conns->() - $::before - 3;     # our own three /health probes
ok($opened <= 4, "100 GETs opened $opened new connections to data nodes");



=== TEST 15: a hung data node does not hold the client's connection
--- setup
$::hung = $cluster->pid_of('node2');
kill 'STOP', $::hung or die "SIGSTOP: $!";
$::t0 = time;
--- request eval
[ map { "PUT /qbk/hung$_\n" . ("h" x 50000) } 1 .. 3 ]
--- error_code: 200
--- timeout: 20
--- error_log
after plinth_straggler_timeout
--- check
my $took = time - $::t0;
ok($took < 8, sprintf("three PUTs on one connection with a hung node took %.1f s", $took));
--- teardown
kill 'CONT', $::hung;



=== TEST 16: plinth_put_linger: with every node up the commit records all three copies, without waiting out the linger
--- setup
$cluster->reload_nginx(http_extra => 'plinth_stripe_size 0; plinth_put_linger 2s;');
--- request eval
"PUT /qbk/linger0\n" . ("l" x 3000)
--- error_code: 200
--- check
for my $i (1 .. 5) {
    my $t0 = time;
    my $r = s3_request(PUT => "/qbk/linger$i", body => "l$i" x 2000);
    my $took = time - $t0;
    my ($blob, $nodes) = placement('qbk', "linger$i");   # at once, no retry
    is($r->{status}, 200, "linger$i: 200");
    is(scalar(@$nodes), 3, "linger$i: the commit itself lists three replicas");
    ok($took < 1.9, sprintf("linger$i: answered in %.3f s, before the 2 s linger", $took));
}



=== TEST 17: plinth_put_linger: a hung node holds a PUT's answer for the linger only, then W=2 commits
--- setup
$cluster->reload_nginx(http_extra => 'plinth_stripe_size 0; plinth_put_linger 2s;');
$::hung = $cluster->pid_of('node2');
kill 'STOP', $::hung or die "SIGSTOP: $!";
$::t0 = time;
--- request eval
"PUT /qbk/linger-hung\n" . ("h" x 5000)
--- error_code: 200
--- timeout: 20
--- check
my $took = time - $::t0;
ok($took >= 1.9, sprintf("the answer waited for the linger (%.2f s)", $took));
ok($took < 8, sprintf("and no longer than the linger and the straggler timeout (%.2f s)", $took));
my ($blob, $nodes) = placement('qbk', 'linger-hung');
is(scalar(@$nodes), 2, 'two replicas recorded');
ok(!grep({ $_ == 2 } @$nodes), 'the hung node is not in the placement');
kill 'CONT', $::hung;
$cluster->reload_nginx(http_extra => 'plinth_stripe_size 0; plinth_put_linger 0;');
$::t0 = time;
kill 'STOP', $::hung;
my $r = s3_request(PUT => '/qbk/linger-hung0', body => 'z' x 5000);
my $fast = time - $::t0;
kill 'CONT', $::hung;
is($r->{status}, 200, 'plinth_put_linger 0: 200 with the node hung');
ok($fast < 1.9, sprintf("plinth_put_linger 0: answered after W, in %.3f s", $fast));
--- teardown
kill 'CONT', $::hung;
$cluster->reload_nginx(http_extra => 'plinth_stripe_size 0;');
