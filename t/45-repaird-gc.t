# repaird's garbage collection on the real cluster (PostgreSQL, three data
# nodes, nginx, RF=3): blobs of overwritten and deleted versions, aborted
# and expired multipart uploads, pending writes that never committed and
# orphan blob files go after their grace periods; blobs still in use (a
# copy sharing a deleted object's blob, a versioned bucket's older
# versions, young orphans) stay, and every live object reads back.
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
    nodes => 3,
    components => [qw(pg nodes nginx repaird)],
    repaird_opts => {
        health_interval => '300ms',
        offline_after   => '3s',
        lock_retry      => '500ms',
        repair_interval => '2s',
        scrub_interval  => '1s',
        scrub_grace     => '1s',
        gc_interval     => '500ms',
        gc_grace        => '2s',
        pending_grace   => '3s',
        upload_max_age  => '6s',
        orphan_grace    => '20s',
    },
);

my $c = cluster();
my $http = HTTP::Tiny->new(timeout => 10);

sub put_ok {
    my ($uri, $body, %h) = @_;
    my $r = s3_request(PUT => $uri, body => $body // '', headers => {%h});
    die "PUT $uri: $r->{status} $r->{body}" unless $r->{status} == 200;
    return $r;
}

# blob and nodes of a version row
sub version_blob {
    my ($key, $where) = @_;
    my @r = $c->psql("SELECT replace(v.blob_id::text, '-', ''), "
        . "array_to_string(v.nodes, ','), v.version_id FROM versions v "
        . "JOIN buckets b USING (bucket_id) WHERE b.name = 'gbk' "
        . "AND v.key = '$key' " . ($where // '') . " ORDER BY v.version_id");
    return map { { blob => $_->[0], nodes => [split /,/, $_->[1] // ''],
                   id => $_->[2] } } @r;
}

sub files_of {
    my ($blob, @nodes) = @_;
    return scalar grep { -f $c->blob_path($_, $blob) } @nodes;
}

sub metrics { $c->repaird_metrics(1) || {} }

wait_for(sub { (metrics()->{plinth_repaird_leader} // 0) == 1 }, 10, 'repaird works');

put_ok('/gbk');
my %want;

# overwritten
put_ok('/gbk/over', 'first version ' x 1000);
my ($old) = version_blob('over');
is(files_of($old->{blob}, 1 .. 3), 3, 'overwritten object: 3 copies of v1');
put_ok('/gbk/over', 'second version ' x 1000);
$want{over} = md5_hex('second version ' x 1000);

# deleted
put_ok('/gbk/gone', 'deleted soon ' x 1000);
my ($gone) = version_blob('gone');
is(s3_request(DELETE => '/gbk/gone')->{status}, 204, 'object deleted');

# deleted, but a copy shares its blob
put_ok('/gbk/orig', 'shared body ' x 1000);
my ($shared) = version_blob('orig');
is(s3_request(PUT => '/gbk/copy', headers => { 'x-amz-copy-source' => '/gbk/orig' })->{status},
    200, 'copy of orig');
is(s3_request(DELETE => '/gbk/orig')->{status}, 204, 'orig deleted; copy keeps the blob');
$want{copy} = md5_hex('shared body ' x 1000);

# aborted multipart upload
my $r = s3_request(POST => '/gbk/mp?uploads');
my ($up) = $r->{body} =~ m{<UploadId>([^<]+)</UploadId>};
is(s3_request(PUT => "/gbk/mp?partNumber=1&uploadId=$up", body => 'p' x 5000)->{status},
    200, 'part uploaded');
my ($part) = $c->psql("SELECT replace(blob_id::text, '-', '') FROM upload_parts "
    . "WHERE upload_id = '$up'");
$part = $part->[0];
is(files_of($part, 1 .. 3), 3, 'the part has 3 copies');
is(s3_request(DELETE => "/gbk/mp?uploadId=$up")->{status}, 204, 'upload aborted');

# an open upload left to expire (upload_max_age 6s)
$r = s3_request(POST => '/gbk/mp2?uploads');
my ($up2) = $r->{body} =~ m{<UploadId>([^<]+)</UploadId>};
is(s3_request(PUT => "/gbk/mp2?partNumber=1&uploadId=$up2", body => 'q' x 5000)->{status},
    200, 'part of an upload left open');
my ($part2) = $c->psql("SELECT replace(blob_id::text, '-', '') FROM upload_parts "
    . "WHERE upload_id = '$up2'");
$part2 = $part2->[0];

# a write that never committed
$c->psql("INSERT INTO versions (bucket_id, key, state) SELECT bucket_id, "
    . "'never', 'pending' FROM buckets WHERE name = 'gbk'");

# a versioned bucket keeps its older versions
put_ok('/vbk');
is(s3_request(PUT => '/vbk?versioning',
    body => '<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>')->{status},
    200, 'versioning enabled on vbk');
my $v1 = put_ok('/vbk/k', 'version one')->{headers}{'x-amz-version-id'};
put_ok('/vbk/k', 'version two');

# orphans: one old (mtime an hour ago), one young
my $o_old = md5_hex('orphan-old');
my $o_new = md5_hex('orphan-new');
is($c->node_request(1, 'PUT', "/blobs/$o_old", { content => 'x' x 1000 })->{status}, 201, 'orphan stored on node 1');
is($c->node_request(1, 'PUT', "/blobs/$o_new", { content => 'y' x 1000 })->{status}, 201, 'young orphan stored on node 1');
utime(time - 3600, time - 3600, $c->blob_path(1, $o_old)) or die "utime: $!";

# several objects that must all survive
for my $i (1 .. 50) {
    my $b = random_bytes(1 + int(rand(30_000)));
    put_ok("/gbk/keep/$i", $b);
    $want{"keep/$i"} = md5_hex($b);
}

my $t0 = time;
wait_for(sub { files_of($old->{blob}, 1 .. 3) == 0 }, 30, 'v1 of the overwritten object collected');
pass(sprintf 'overwritten version: its 3 copies deleted %.1fs later (gc_grace 2s)', time - $t0);
wait_for(sub { files_of($gone->{blob}, 1 .. 3) == 0 }, 30, 'deleted object collected');
pass('deleted object: its copies deleted');
wait_for(sub { files_of($part, 1 .. 3) == 0 }, 30, 'aborted upload part collected');
pass('aborted upload: its part deleted');
wait_for(sub { my @r = $c->psql("SELECT 1 FROM versions WHERE key = 'never'"); !@r }, 30,
    'pending row dropped');
pass('a write pending longer than pending_grace is dropped');
wait_for(sub { !-f $c->blob_path(1, $o_old) }, 30, 'old orphan deleted');
pass('an orphan blob older than orphan_grace is deleted');
ok(-f $c->blob_path(1, $o_new), 'a young orphan stays');
wait_for(sub { files_of($part2, 1 .. 3) == 0 }, 30, 'expired upload collected');
my ($st) = $c->psql("SELECT state FROM uploads WHERE upload_id = '$up2'");
is($st->[0], 'aborted', 'an upload older than upload_max_age is aborted, its part deleted');

wait_for(sub { ($c->psql("SELECT count(*) FROM versions WHERE state IN ('garbage', 'failed') "
    . "AND state_changed < now() - interval '3 seconds'"))[0][0] == 0 }, 30,
    'dead version rows gone');
pass('dead version rows are removed once their copies are gone');
wait_for(sub { ($c->psql("SELECT count(*) FROM garbage_blobs WHERE since < now() - interval '3 seconds'"))[0][0] == 0 },
    30, 'garbage_blobs emptied');
pass('garbage_blobs rows are removed once their copies are gone');

is(files_of($shared->{blob}, 1 .. 3), 3, 'a deleted object\'s blob shared by a copy keeps its 3 copies');
for my $k (sort keys %want) {
    my $g = s3_request(GET => "/gbk/$k");
    is(md5_hex($g->{body}), $want{$k}, "GET $k: byte-identical") if $k !~ m{^keep/};
}
my $wrong = grep { my $g = s3_request(GET => "/gbk/$_");
    $g->{status} != 200 || md5_hex($g->{body}) ne $want{$_} } grep { m{^keep/} } keys %want;
is($wrong, 0, 'every other object reads back byte-identical');
my $g1 = s3_request(GET => "/vbk/k?versionId=$v1");
is($g1->{body}, 'version one', 'a versioned bucket keeps its older version');

my $bad = 0;
for my $p ($c->psql("SELECT replace(blob_id::text, '-', ''), array_to_string(nodes, ',') "
        . "FROM plinth_live_blobs")) {
    $bad += 3 - files_of($p->[0], split /,/, $p->[1]);
}
is($bad, 0, 'every copy of every live blob is still on disk');
my $m = metrics();
ok($m->{'plinth_repair_operations_total{kind="gc"}'} >= 12,
    'plinth_repair_operations_total{kind="gc"} = ' . $m->{'plinth_repair_operations_total{kind="gc"}'});
ok($m->{plinth_gc_orphans_total} >= 1, 'plinth_gc_orphans_total = ' . $m->{plinth_gc_orphans_total});

# repaird's exposition passes promtool, and plinth_objects_total (from
# cost_tracking at each full repair pass) is what versions hold
my $raw = HTTP::Tiny->new(timeout => 5)->get('http://127.0.0.1:' . $c->repaird_port(1) . '/metrics');
is($raw->{status}, 200, "repaird's /metrics");
my ($prc, $pout) = Plinth::Cluster::run_command(['/usr/bin/promtool', 'check', 'metrics'],
    stdin => $raw->{content}, merge => 1, timeout => 30);
is($prc, 0, "repaird's /metrics: promtool check metrics: no problem") or diag($pout);
my ($want, $got) = (-1, -2);
for (1 .. 100) {    # bounded: 100 x 0.2 s; a full pass runs every repair_interval
    ($want) = map { $_->[0] } $c->psql("SELECT count(*) FROM versions "
        . "WHERE state = 'committed' AND NOT delete_marker");
    my $mm = metrics();
    $got = 0;
    $got += $mm->{qq{plinth_objects_total{tier="$_"}}} // -1000 for qw(hot warm cold);
    last if $got == $want;
    sleep 0.2;
}
is($got, $want, "plinth_objects_total (hot + warm + cold) = the committed versions ($want)");

done_testing();
