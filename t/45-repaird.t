# plinth-repaird on the real cluster (PostgreSQL, four data nodes, nginx,
# RF=3, W=2) with fault injection: health and node_health, the advisory
# lock and a standby taking over, a data node killed (-9) while a client
# writes (offline, then re-replication to RF live replicas, every object
# byte-identical), bytes flipped and blob files deleted behind the
# system's back (one scrub finds them, repair rebuilds them), PostgreSQL
# restarted (repaird reconnects and works again), and the data node's
# pull and scrub endpoints on their own.
use strict;
use warnings;

use lib 't/lib';
use Plinth::Test;
use Plinth::Cluster;
use Plinth::TestUtil;

use Digest::MD5 qw(md5_hex);
use HTTP::Tiny;
use Time::HiRes qw(sleep time);

cluster_options(
    nodes => 4,
    components => [qw(pg nodes nginx repaird)],
    repaird_opts => {
        health_interval => '300ms',
        probe_timeout   => '500ms',
        offline_after   => '3s',
        lock_retry      => '500ms',
        repair_interval => '2s',
        repair_rate     => 0,
        scrub_interval  => 0,
        scrub_grace     => '1s',
        http_timeout    => '20s',
    },
);

my $c = cluster();
my $http = HTTP::Tiny->new(timeout => 10, keep_alive => 1);

sub metrics { $c->repaird_metrics(@_) || {} }

# the metrics of the instance that works (holds the lock)
sub leader_metrics {
    for my $i (1, 2) {
        my $m = metrics($i);
        return $m if ($m->{plinth_repaird_leader} // 0) == 1;
    }
    return {};
}

sub put_ok {
    my ($uri, $body) = @_;
    my $r = s3_request(PUT => $uri, body => $body);
    die "PUT $uri: $r->{status} $r->{body}" unless $r->{status} == 200;
    return $r;
}

# every live blob reference: [blob hex, [nodes]]
sub placements {
    return map { [$_->[0], [split /,/, $_->[1] // '']] } $c->psql(
        "SELECT DISTINCT replace(blob_id::text, '-', ''), "
      . "array_to_string(nodes, ',') FROM plinth_live_blobs");
}

sub node_status {
    my %s = map { $_->[0] => $_->[1] }
        $c->psql("SELECT node_id, status FROM node_health");
    return \%s;
}

# --------------------------------------------------------------- health

my $t0 = time;
wait_for(sub { my $s = node_status(); 4 == grep { ($s->{$_} // '') eq 'online' } 1 .. 4 },
    10, 'four nodes online in node_health');
pass(sprintf 'node_health: nodes 1..4 online after %.1fs', time - $t0);
my ($row) = $c->psql("SELECT disk_total_bytes, blob_count, "
    . "last_heartbeat > now() - interval '5 seconds' FROM node_health "
    . "WHERE node_id = 1");
ok($row->[0] > 0, "disk usage recorded ($row->[0] bytes total)");
is($row->[2], 't', 'last heartbeat is recent');
wait_for(sub { (metrics()->{plinth_repaird_leader} // 0) == 1 }, 10,
    'repaird1 works (holds the lock)');
pass('repaird1 holds the lock');

# --------------------------------------------------------------- lock, standby

$c->start_repaird(2);
sleep 1.5;
is(metrics(2)->{plinth_repaird_leader}, 0, 'a second repaird stands by');
is(metrics(1)->{plinth_repaird_leader}, 1, '... while the first works');
$c->kill_repaird(1);
$t0 = time;
wait_for(sub { (metrics(2)->{plinth_repaird_leader} // 0) == 1 }, 5,
    'repaird2 takes over');
my $took = time - $t0;
ok($took < 1.5, sprintf('repaird1 killed (-9): repaird2 took over in %.2fs '
    . '(lock_retry 0.5s)', $took));
$c->start_repaird(1);
sleep 1;
is(metrics(1)->{plinth_repaird_leader}, 0, 'the restarted repaird1 stands by');

# --------------------------------------------------------------- data

put_ok('/rbk');
my %want;           # key => md5 of the body acknowledged
my $n_objects = 1000;
my $killed_at;
for my $i (1 .. $n_objects) {
    my $len = $i % 100 == 0 ? 300_000 + $i : 1 + int(rand(20_000));
    my $body = random_bytes($len);
    my $key = "obj/$i";
    my $r = s3_request(PUT => "/rbk/$key", body => $body);
    $want{$key} = md5_hex($body) if $r->{status} == 200;
    if ($i == $n_objects / 2) {
        $c->kill_node(4);           # SIGKILL while the client writes
        $killed_at = time;
    }
}
is(scalar(keys %want), $n_objects, "$n_objects PUTs acknowledged, node 4 "
    . "killed half way");

# a multipart object (its parts are blobs of their own) and a copy
my $mp = s3_request(POST => '/rbk/multi?uploads');
my ($upload) = $mp->{body} =~ m{<UploadId>([^<]+)</UploadId>};
ok($upload, 'multipart upload created');
my @parts = (random_bytes(5 * 1024 * 1024), random_bytes(123_456));
my @etags;
for my $pn (1 .. 2) {
    my $r = s3_request(PUT => "/rbk/multi?partNumber=$pn&uploadId=$upload",
        body => $parts[$pn - 1]);
    is($r->{status}, 200, "part $pn uploaded");
    push @etags, $r->{headers}{etag};
}
my $xml = '<CompleteMultipartUpload>' . join('', map {
    "<Part><PartNumber>$_</PartNumber><ETag>$etags[$_ - 1]</ETag></Part>" }
    1 .. 2) . '</CompleteMultipartUpload>';
my $done = s3_request(POST => "/rbk/multi?uploadId=$upload", body => $xml);
is($done->{status}, 200, 'multipart upload completed');
$want{multi} = md5_hex(join '', @parts);
my $cp = s3_request(PUT => '/rbk/copy-of-1',
    headers => { 'x-amz-copy-source' => '/rbk/obj/1' });
is($cp->{status}, 200, 'CopyObject (shares the blob of obj/1)');
$want{'copy-of-1'} = $want{'obj/1'};

my @under = grep { @{ $_->[1] } < 3 || grep({ $_ == 4 } @{ $_->[1] }) } placements();
note(scalar(@under) . ' blobs have a replica on node 4 or fewer than 3 '
    . 'recorded (repair may have begun: node 4 is offline 3 s after the kill)');
# the gateway moves a copy that node 4 cannot take to another node (the
# ring's next for the key): every object written after the kill has 3
# copies, none on node 4, and needs no repair
my %by_key = map { $_->[0] => [split /,/, $_->[1] // ''] } $c->psql(
    "SELECT v.key, array_to_string(v.nodes, ',') FROM versions v "
  . "JOIN buckets b USING (bucket_id) WHERE b.name = 'rbk' "
  . "AND v.state = 'committed' AND v.key LIKE 'obj/%'");
my @late = grep { m{^obj/(\d+)$} && $1 > $n_objects / 2 } keys %by_key;
my @bad = grep { my $n = $by_key{$_}; @$n != 3 || grep { $_ == 4 } @$n } @late;
is(scalar(@bad), 0, scalar(@late) . ' objects written after the kill: 3 '
    . 'copies each, none on node 4') or diag(join ' ', map { "$_=@{ $by_key{$_} }" } @bad[0 .. ($#bad < 9 ? $#bad : 9)]);

# --------------------------------------------------------------- offline, repair

wait_for(sub { (node_status()->{4} // '') eq 'offline' }, 15,
    'node 4 offline');
my $detected = time;
my ($since) = $c->psql("SELECT status_changed FROM node_health WHERE node_id = 4");
pass(sprintf 'node 4 declared offline %.1fs after the kill (offline_after 3s)',
    $detected - $killed_at);
my %ns = map { $_->[0] => [$_->[1], $_->[2]] }
    $c->psql("SELECT node_id, writable, readable FROM plinth_node_states");
is_deeply($ns{4}, ['f', 'f'], 'plinth_node_states: node 4 neither writable nor readable');
is_deeply($ns{1}, ['t', 't'], 'plinth_node_states: node 1 writable and readable');

# the working repaird crashes in the middle of the repair: the standby
# takes over and finishes it (repair is resumable and idempotent)
wait_for(sub { (metrics(2)->{'plinth_repair_operations_total{kind="replicate"}'} // 0) >= 20 },
    30, 'repair under way');
my $partial = metrics(2)->{'plinth_repair_operations_total{kind="replicate"}'};
$c->kill_repaird(2);
pass("repaird2 killed (-9) in the middle of the repair, after $partial copies");
wait_for(sub {
    my @p = placements();
    !grep { @{ $_->[1] } != 3 || grep({ $_ == 4 } @{ $_->[1] }) } @p;
}, 120, 'every blob on 3 live nodes');
is(metrics(1)->{plinth_repaird_leader}, 1, 'repaird1 took over and finished');
my $repaired = time;
my $nblobs = scalar(placements());
diag(sprintf 'detection to full repair: %.2fs for %d blobs (%d had a '
    . 'replica on node 4 or were short)', $repaired - $detected, $nblobs,
    scalar @under);
pass(sprintf 'all %d blobs back to RF=3 on live nodes, %.2fs after detection',
    $nblobs, $repaired - $detected);

my $bad = 0;
for my $p (placements()) {
    for my $n (@{ $p->[1] }) {
        $bad++ unless -f $c->blob_path($n, $p->[0]);
    }
}
is($bad, 0, 'every recorded replica exists on its node');

wait_for(sub { (leader_metrics()->{plinth_objects_under_replicated} // -1) == 0 },
    20, 'under-replicated gauge at 0');
my $m = leader_metrics();
ok($m->{'plinth_repair_operations_total{kind="replicate"}'} > 0,
    "plinth_repair_operations_total{kind=\"replicate\"} = "
    . $m->{'plinth_repair_operations_total{kind="replicate"}'}
    . " on repaird1 (and $partial on repaird2 before it died)");
is($m->{plinth_objects_under_replicated}, 0, 'plinth_objects_under_replicated 0');
is($m->{'plinth_node_up{node="4"}'}, 0, 'plinth_node_up{node="4"} 0');
is($m->{'plinth_node_up{node="1"}'}, 1, 'plinth_node_up{node="1"} 1');
ok($m->{'plinth_node_disk_usage_bytes{node="1"}'} > 0, 'plinth_node_disk_usage_bytes{node="1"} = '
    . $m->{'plinth_node_disk_usage_bytes{node="1"}'});

sub read_all {
    my ($what) = @_;
    my $wrong = 0;
    for my $k (sort keys %want) {
        my $r = s3_request(GET => "/rbk/$k");
        $wrong++ unless $r->{status} == 200 && md5_hex($r->{body}) eq $want{$k};
    }
    is($wrong, 0, "every object reads back byte-identical ($what)");
}
read_all('after the repair, node 4 still dead');

# --------------------------------------------------------------- gateway report

# a replica a gateway read found corrupt is queued and rebuilt at once
# (scrubbing is off here: only the report can find it)
{
    my ($o) = $c->psql("SELECT replace(v.blob_id::text, '-', ''), v.nodes[1], v.size "
        . "FROM objects o JOIN versions v USING (version_id) "
        . "WHERE o.key = 'obj/7'");
    my ($blob, $node, $size) = @$o;
    flip_byte($c->blob_path($node, $blob), int($size / 2));
    my $url = "/blobs/$blob/verify";
    is($c->node_request($node, 'GET', $url)->{status}, 500, "a byte of obj/7 flipped on node $node");
    my $t1 = time;
    $c->psql("SELECT plinth_report_bad_replica('$blob', $node, 'corrupt')");
    wait_for(sub { $c->node_request($node, 'GET', $url)->{status} == 200 }, 10, 'reported replica rebuilt');
    pass(sprintf 'plinth_report_bad_replica: rebuilt %.2fs after the report', time - $t1);
    my @q = $c->psql("SELECT count(*) FROM repair_queue");
    is($q[0][0], 0, '... and the queue is empty');

    # a wrong report (the copy is fine) costs nothing: the copy is kept
    my ($o2) = $c->psql("SELECT replace(v.blob_id::text, '-', ''), v.nodes[2] "
        . "FROM objects o JOIN versions v USING (version_id) WHERE o.key = 'obj/8'");
    my ($blob2, $node2) = @$o2;
    my $path2 = $c->blob_path($node2, $blob2);
    my $ino = (stat $path2)[1];
    $c->psql("SELECT plinth_report_bad_replica('$blob2', $node2, 'corrupt')");
    wait_for(sub { my @q2 = $c->psql("SELECT count(*) FROM repair_queue"); $q2[0][0] == 0 },
        10, 'wrong report handled');
    is((stat $path2)[1], $ino, 'a good copy reported bad is verified and kept (same file)');
    my ($pl) = $c->psql("SELECT array_to_string(nodes, ',') FROM versions "
        . "WHERE blob_id = '$blob2'");
    ok(grep({ $_ == $node2 } split /,/, $pl->[0]), '... and stays in the placement');

    # a report about a blob nothing refers to is dropped by the next pass
    $c->psql("SELECT plinth_report_bad_replica('0123456789abcdef0123456789abcdef', 1, 'corrupt')");
    wait_for(sub { my @q3 = $c->psql("SELECT count(*) FROM repair_queue"); $q3[0][0] == 0 },
        15, 'stale report dropped');
    pass('a report about a blob no placement names is dropped by the next repair pass');
}

# --------------------------------------------------------------- scrub

# restart with scrubbing on (also: a repaird restart loses nothing)
$c->stop_repaird(1);
$c->set_repaird_opts(scrub_interval => '2s', scrub_batch => 50);
$c->start_repaird(1);
wait_for(sub { (metrics(1)->{plinth_repaird_leader} // 0) == 1 }, 10,
    'repaird1 works again');

# single-PUT objects: key, blob, size, nodes
my @objs = map { { key => $_->[0], blob => $_->[1], size => $_->[2],
                   nodes => [split /,/, $_->[3]] } } $c->psql(
    "SELECT o.key, replace(v.blob_id::text, '-', ''), v.size, "
  . "array_to_string(v.nodes, ',') FROM objects o "
  . "JOIN versions v USING (version_id) JOIN buckets b ON b.bucket_id = o.bucket_id "
  . "WHERE b.name = 'rbk' AND v.parts IS NULL AND o.key LIKE 'obj/%' "
  . "ORDER BY o.key");
my @on1 = grep { $_->{size} > 0 && grep({ $_ == 1 } @{ $_->{nodes} }) } @objs;
my $n1 = () = glob($c->node_data_dir(1) . '/objects/*/*/*');
my $nflip = int($n1 / 100) > 5 ? int($n1 / 100) : 5;
my @flipped = @on1[map { $_ * 7 } 0 .. $nflip - 1];
my %fl = map { $_->{key} => 1 } @flipped;
my @on2 = grep { $_->{size} > 0 && grep({ $_ == 2 } @{ $_->{nodes} })
                 && !$fl{ $_->{key} } } @objs;
my @deleted = @on2[map { $_ * 5 } 0 .. 4];
my $damaged_at = time;
flip_byte($c->blob_path(1, $_->{blob}), int(rand($_->{size}))) for @flipped;
unlink($c->blob_path(2, $_->{blob})) or die "unlink: $!" for @deleted;
pass(sprintf 'flipped a byte in %d of the %d blob files on node 1 (1%%), '
    . 'deleted %d blob files on node 2', $nflip, $n1, scalar @deleted);

# (no GET touches these objects before the scrub: a gateway read would
# report what it finds, and this part is about what the scrub finds)

sub verified_on {
    my ($node, $blob) = @_;
    my $r = $c->node_request($node, 'GET', "/blobs/$blob/verify");
    return $r->{status} == 200;
}

wait_for(sub {
    my @done = $c->psql("SELECT count(*) FROM scrub_progress WHERE node_id IN (1, 2) "
        . "AND last_completed > to_timestamp($damaged_at)");
    return 0 unless $done[0][0] == 2;
    my @q = $c->psql("SELECT count(*) FROM repair_queue");
    return 0 unless $q[0][0] == 0;
    return !grep({ !verified_on(1, $_->{blob}) } @flipped)
        && !grep({ !verified_on(2, $_->{blob}) } @deleted);
}, 90, 'a scrub pass of nodes 1 and 2, and the damage repaired');
my $fixed = time;
diag(sprintf 'damage to rebuilt: %.2fs', $fixed - $damaged_at);
$m = metrics(1);
is($m->{plinth_scrub_corrupt_total}, $nflip,
    "the scrub found every flipped blob ($nflip)");
is($m->{plinth_scrub_missing_total}, scalar @deleted,
    'the scrub found every deleted blob (' . scalar(@deleted) . ')');
ok($m->{'plinth_repair_operations_total{kind="scrub_repair"}'} >= $nflip + @deleted,
    'plinth_repair_operations_total{kind="scrub_repair"} = '
    . $m->{'plinth_repair_operations_total{kind="scrub_repair"}'});
ok($m->{plinth_scrub_last_completion_timestamp_seconds} >= int($damaged_at),
    'plinth_scrub_last_completion_timestamp_seconds set');
ok($m->{'plinth_scrub_node_last_completion_timestamp_seconds{node="2"}'} >= int($damaged_at),
    'plinth_scrub_node_last_completion_timestamp_seconds{node="2"} set');
ok(defined $m->{'plinth_scrub_progress_ratio{node="1"}'}
    && $m->{'plinth_scrub_progress_ratio{node="1"}'} <= 1,
    'plinth_scrub_progress_ratio{node="1"} = ' . ($m->{'plinth_scrub_progress_ratio{node="1"}'} // 'none'));
my @bad_placement = grep { @{ $_->[1] } != 3 } placements();
is(scalar @bad_placement, 0, 'every blob still on 3 nodes');
read_all('after the scrub repairs');

# damage read through the gateway: every GET answers the right bytes (the
# gateway falls back to another replica) and the bad replicas are rebuilt
# (reported by the gateway's read, or found by the next scrub)
my @more1 = grep { !$fl{ $_->{key} } } @on1[map { 3 + $_ * 11 } 0 .. 3];
my %m1 = map { $_->{key} => 1 } @more1;
my @more2 = grep { !$m1{ $_->{key} } } @on2[map { 2 + $_ * 13 } 0 .. 2];
flip_byte($c->blob_path(1, $_->{blob}), int(rand($_->{size}))) for @more1;
unlink($c->blob_path(2, $_->{blob})) or die "unlink: $!" for @more2;
my $wrong = 0;
for my $o (@more1, @more2) {
    my $gr = s3_request(GET => "/rbk/$o->{key}");
    $wrong++ unless $gr->{status} == 200 && md5_hex($gr->{body}) eq $want{$o->{key}};
}
is($wrong, 0, 'every damaged object reads back byte-identical through the '
    . 'gateway (' . scalar(@more1) . ' flipped, ' . scalar(@more2) . ' deleted)');
wait_for(sub {
    !grep({ !verified_on(1, $_->{blob}) } @more1)
        && !grep({ !verified_on(2, $_->{blob}) } @more2);
}, 30, 'replicas damaged under reads rebuilt');
pass('... and rebuilt');

# --------------------------------------------------------------- PostgreSQL restart

$c->stop_pg;
my $pg_down = time;
wait_for(sub { (metrics(1)->{plinth_repaird_db_up} // 1) == 0 }, 10,
    'repaird notices PostgreSQL is gone');
pass('repaird noticed PostgreSQL stopped; it keeps running');
# 10 s without PostgreSQL under a write load
my (%during, $tries);
while (time - $pg_down < 10) {
    my $key = 'down/' . ++$tries;
    my $body = random_bytes(1000 + $tries);
    my $pr = s3_request(PUT => "/rbk/$key", body => $body, timeout => 5);
    $during{ $pr->{status} }++;
    $want{$key} = md5_hex($body) if $pr->{status} == 200;
    sleep 0.2;
}
ok(!$during{200}, "PUTs while PostgreSQL is down: none acknowledged ("
    . join(', ', map { "$_: $during{$_}" } sort keys %during) . ')');
ok($during{503}, '... answered 503');
ok($c->alive('repaird1'), 'repaird1 still runs after 10s without PostgreSQL');
$c->start_pg;
my $pg_up = time;
wait_for(sub { my $m2 = metrics(1);
    ($m2->{plinth_repaird_db_up} // 0) == 1 && ($m2->{plinth_repaird_leader} // 0) == 1 },
    15, 'repaird reconnected and holds the lock again');
pass(sprintf 'repaird reconnected and works again %.2fs after PostgreSQL came back',
    time - $pg_up);
wait_for(sub {
    my @r = $c->psql("SELECT count(*) FROM node_health "
        . "WHERE last_probe > to_timestamp($pg_up)");
    $r[0][0] == 4;
}, 10, 'node_health written after the restart');
pass('node_health is written again after the restart');
my $probe = 0;
my %st;
wait_for(sub { my $pr = s3_request(PUT => '/rbk/probe', body => 'p' . ++$probe, timeout => 5);
    $st{ $pr->{status} }++; $pr->{status} == 200 }, 60, 'a PUT acknowledged again');
$want{probe} = md5_hex('p' . $probe);
pass(sprintf 'the gateway recovered by itself %.1fs after PostgreSQL came back (%s)',
    time - $pg_up, join(', ', map { "$_: $st{$_}" } sort keys %st));
my $after = 0;
for my $i (1 .. 20) {
    my $body = random_bytes(2000 + $i);
    my $pr = s3_request(PUT => "/rbk/up/$i", body => $body);
    if ($pr->{status} == 200) {
        $want{"up/$i"} = md5_hex($body);
        $after++;
    }
}
ok($after >= 19, "the gateway recovered by itself: $after of 20 PUTs acknowledged");
read_all('after PostgreSQL came back');

# --------------------------------------------------------------- node 4 back

$c->start_node(4);
wait_for(sub { (node_status()->{4} // '') eq 'online' }, 10, 'node 4 online');
pass('node 4 restarted: online again');
my @g = $c->psql("SELECT count(*) FROM garbage_blobs WHERE reason = 'repaired away' "
    . "AND 4 = ANY (nodes)");
ok($g[0][0] > 0, "its replaced copies are recorded for garbage collection "
    . "($g[0][0] blobs)");

# --------------------------------------------------------------- data node pull and scrub

# every request to a data node is signed with the cluster secret
my $nr = sub { $c->node_request(@_) };
my $a1 = '127.0.0.1:' . $c->node_port(1);
my $x = md5_hex('pull-x') ; my $y = md5_hex('pull-y');
my $xbody = random_bytes(3_000_000);
is($nr->(1, 'PUT', "/blobs/$x", { content => $xbody })->{status}, 201,
    'blob X stored on node 1');
my $r = $nr->(2, 'POST', "/blobs/$x/pull?from=$a1");
is($r->{status}, 201, 'node 2 pulls X from node 1: 201');
is($r->{headers}{'x-plinth-size'}, length $xbody, '... X-Plinth-Size');
$r = $nr->(2, 'GET', "/blobs/$x");
ok($r->{status} == 200 && $r->{content} eq $xbody, '... node 2 serves X byte-identical');
is($nr->(2, 'POST', "/blobs/$x/pull?from=$a1")->{status}, 201,
    'pulling it again: 201 (idempotent)');
$r = $nr->(3, 'POST', "/blobs/$y/pull?from=$a1");
is($r->{status}, 502, 'pull of a blob the source lacks: 502');
is($r->{headers}{'x-plinth-error'}, 'source_failed', '... source_failed');
is($nr->(3, 'GET', "/blobs/$y")->{status}, 404, '... nothing stored');
is($nr->(1, 'PUT', "/blobs/$y", { content => 'y' x 100_000 })->{status}, 201,
    'blob Y stored on node 1');
flip_byte($c->blob_path(1, $y), 500);
$r = $nr->(3, 'POST', "/blobs/$y/pull?from=$a1");
is($r->{status}, 502, 'pull from a corrupt source: 502');
is($nr->(3, 'GET', "/blobs/$y")->{status}, 404, '... no copy of the corrupt blob');
$r = $nr->(1, 'GET', "/scrub?limit=10000");
is($r->{status}, 200, 'GET /scrub on node 1: 200');
ok(index($r->{content}, $y) >= 0, '... lists the corrupt blob Y');
ok(index($r->{content}, $x) < 0, '... not the good blob X');
ok($r->{headers}{'x-plinth-scrub-checked'} > 100, '... X-Plinth-Scrub-Checked: '
    . $r->{headers}{'x-plinth-scrub-checked'});
is($nr->(2, 'GET', "/blobs/$x/pull")->{status}, 405, 'GET .../pull: 405');
is($nr->(2, 'POST', "/blobs/$x/pull?from=nope")->{status}, 400, 'a bad from: 400');
is($nr->(1, 'GET', "/scrub?after=zz")->{status}, 400, 'GET /scrub with a bad after: 400');

done_testing();
