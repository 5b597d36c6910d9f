# What the gateway takes from repaird and gives it, through PostgreSQL:
# new writes avoid the nodes node_health says are offline or full (read
# every plinth_health_refresh, 3 s by default), never at the cost of the
# write itself; and a read that finds a replica missing or corrupt queues
# it in repair_queue at once. node_health is written here by hand, as
# repaird would (t/45-repaird*.t shows repaird writing it).
use lib 't/lib';
use Plinth::Test;
use Time::HiRes qw(sleep);

# this file's bucket; the nodes sorted. With $all, once all three copies
# are recorded (placement_all: a third acknowledged after the commit's
# linger is recorded a moment later): for tests that damage every replica,
# run while every node is healthy
sub gw_placement {
    my ($key, $all) = @_;
    my ($blob, $nodes) = $all ? placement_all('gwhealth', $key)
                              : placement('gwhealth', $key);
    return ($blob, [ sort @$nodes ]);
}

sub set_health {
    my ($node, $status, $full) = @_;
    cluster()->psql("INSERT INTO node_health (node_id, address, status, is_full) "
        . "VALUES ($node, 'test', '$status', $full) ON CONFLICT (node_id) DO UPDATE "
        . "SET status = EXCLUDED.status, is_full = EXCLUDED.is_full");
}

# one refresh and a margin
sub wait_refresh { sleep 3.6 }

sub put_many {
    my ($prefix, $n) = @_;
    my %nodes;
    for my $i (1 .. $n) {
        my $r = s3_request(PUT => "/gwhealth/$prefix$i", body => "body $prefix$i");
        die "PUT: $r->{status} $r->{body}" unless $r->{status} == 200;
        my (undef, $nodes) = gw_placement("$prefix$i");
        $nodes{join ',', @$nodes}++;
    }
    return \%nodes;
}

sub slurp_log {
    open my $fh, '<', cluster()->error_log_path or return '';
    local $/;
    return scalar <$fh>;
}

sub bad_rows {
    my ($blob) = @_;
    return map { "$_->[0]:$_->[1]" } cluster()->psql(
        "SELECT node_id, reason FROM repair_queue "
      . "WHERE blob_id = '$blob'::uuid ORDER BY node_id");
}

run_tests();

__DATA__

=== TEST 1: every node healthy: writes go to all three
--- check
is(s3_request(PUT => '/gwhealth')->{status}, 200, 'bucket');
set_health($_, 'online', 'false') for 1 .. 3;
wait_refresh();
my $n = put_many('a', 12);
is_deeply([keys %$n], ['1,2,3'], 'each object on nodes 1, 2 and 3');



=== TEST 2: node 2 offline: new writes avoid it (two copies, W = 2) and read back; the data node itself is up
--- check
set_health(2, 'offline', 'false');
wait_refresh();
my $n = put_many('b', 12);
is_deeply([keys %$n], ['1,3'], 'each new object on nodes 1 and 3 only');
is(s3_request(GET => "/gwhealth/b$_")->{body}, "body b$_", "b$_ reads back") for 1, 6, 12;
like(main::slurp_log(), qr/1 data node offline, full or draining, kept out of new writes/, 'the gateway logged the change');



=== TEST 3: node 3 full as well: one node is fewer than W, so writes are placed as if all were healthy (and succeed)
--- check
set_health(3, 'online', 'true');
wait_refresh();
my $n = put_many('c', 6);
is_deeply([keys %$n], ['1,2,3'], 'placed on all three: the fan-out decides, the write is not refused');



=== TEST 4: all healthy again: writes use every node
--- check
set_health(2, 'online', 'false');
set_health(3, 'online', 'false');
wait_refresh();
my $n = put_many('d', 6);
is_deeply([keys %$n], ['1,2,3'], 'nodes 1, 2 and 3 again');



=== TEST 4c: node 3 draining (node_admin, the operator's flag): new writes avoid it
--- check
cluster()->psql("INSERT INTO node_admin (node_id, draining) VALUES (3, true) ON CONFLICT (node_id) DO UPDATE SET draining = true");
wait_refresh();
my $n = put_many('dr', 6);
is_deeply([keys %$n], ['1,2'], 'each new object on nodes 1 and 2');
cluster()->psql("UPDATE node_admin SET draining = false WHERE node_id = 3");
wait_refresh();
$n = put_many('dr2', 3);
is_deeply([keys %$n], ['1,2,3'], 'no longer draining: all three again');



=== TEST 4d: a node repaird found offline is read last (it may be slow to fail); the access log shows who served
--- check
set_health($_, 'online', 'false') for 1 .. 3;
s3_request(PUT => '/gwhealth/order', body => 'ordered');
my @rows = cluster()->psql("SELECT v.nodes[1] FROM versions v "
    . "JOIN objects o USING (version_id) JOIN buckets b ON b.bucket_id = o.bucket_id "
    . "WHERE b.name = 'gwhealth' AND o.key = 'order'");
my $first = $rows[0][0];
my $served = sub {
    my $r = s3_request(GET => '/gwhealth/order');
    my $id = $r->{headers}{'x-amz-request-id'};
    for (1 .. 30) {
        open my $fh, '<', cluster()->dir . '/logs/access.log' or die;
        for (<$fh>) {
            return $1 if /"request_id":"\Q$id\E".*"nodes":"(\d+)"/;
        }
        sleep 0.1;
    }
    return '';
};
is($served->(), $first, "healthy: the first replica (node $first) serves");
set_health($first, 'offline', 'false');
wait_refresh();
my $now = $served->();
ok($now ne '' && $now != $first, "node $first offline: another replica serves (node $now)");
set_health($first, 'online', 'false');
wait_refresh();



=== TEST 4a: a replica missing on the node read first: the GET is served by the next, and the missing one is queued
--- check
s3_request(PUT => '/gwhealth/one-gone', body => 'one copy gone');
my @rows = cluster()->psql("SELECT replace(v.blob_id::text, '-', ''), v.nodes[1] FROM versions v "
    . "JOIN objects o USING (version_id) JOIN buckets b ON b.bucket_id = o.bucket_id "
    . "WHERE b.name = 'gwhealth' AND o.key = 'one-gone'");
my ($blob, $first) = @{ $rows[0] };
unlink cluster()->blob_path($first, $blob) or die "unlink: $!";
my $r = s3_request(GET => '/gwhealth/one-gone');
is($r->{status}, 200, 'GET 200 from another replica');
is($r->{body}, 'one copy gone', 'the bytes');
my @got;
for (1 .. 50) { @got = bad_rows($blob); last if @got; sleep 0.1 }
is_deeply(\@got, ["$first:missing"], 'repair_queue: the missing replica, on the node read first');



=== TEST 5: a read that finds every replica missing queues each one as missing
--- check
s3_request(PUT => '/gwhealth/gone', body => 'soon gone');
my ($blob, $nodes) = gw_placement('gone', 'all');
unlink cluster()->blob_path($_, $blob) or die "unlink: $!" for @$nodes;
my $r = s3_request(GET => '/gwhealth/gone');
is($r->{status}, 503, 'no replica: 503');
my @want = map { "$_:missing" } @$nodes;
my @got;
for (1 .. 50) { @got = bad_rows($blob); last if @got == @want; sleep 0.1 }
is_deeply(\@got, \@want, 'repair_queue: every replica, missing');



=== TEST 6: a read that finds replicas corrupt queues them as corrupt
--- check
my $body = random_bytes(300_000);
s3_request(PUT => '/gwhealth/rot', body => $body);
my ($blob, $nodes) = gw_placement('rot', 'all');
main::flip_byte(cluster()->blob_path($_, $blob), 10) for @$nodes;
my $r = s3_request(GET => '/gwhealth/rot');
is($r->{status}, 503, 'every replica corrupt in its first block: 503, no byte sent');
my @want = map { "$_:corrupt" } @$nodes;
my @got;
for (1 .. 50) { @got = bad_rows($blob); last if @got == @want; sleep 0.1 }
is_deeply(\@got, \@want, 'repair_queue: every replica, corrupt');



=== TEST 7: plinth_health_refresh 0 turns the reading off; nginx -t takes a time
--- http_config
plinth_health_refresh 0;
--- check
set_health(2, 'offline', 'false');
sleep 1;
my $n = put_many('e', 6);
is_deeply([keys %$n], ['1,2,3'], 'with the reading off, node 2 still gets writes');
set_health(2, 'online', 'false');
