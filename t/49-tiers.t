# Storage classes and node tiers on the real cluster: nine data nodes,
# three per tier (1-3 hot, 4-6 warm, 7-9 cold), RF=3, W=2.
# x-amz-storage-class on PUT places the object only on nodes of its
# class's tier (versions.nodes checked against the cluster file); GET,
# HEAD, ListObjects (v1 and v2) and ListObjectVersions show the class;
# the other S3 names map or answer 400 InvalidStorageClass (and store
# nothing); a bucket's default class (x-plinth-storage-class on
# CreateBucket) applies to writes that name none; repaird's repair keeps
# a blob on its tier's nodes.
use strict;
use warnings;

use lib 't/lib';
use Plinth::Test;
use Plinth::Cluster;
use Plinth::TestUtil;

use Digest::MD5 qw(md5_hex);

my @TIERS = (('hot') x 3, ('warm') x 3, ('cold') x 3);
my %TIER_OF = map { ($_ + 1) => $TIERS[$_] } 0 .. $#TIERS;

cluster_options(
    nodes => 9,
    tiers => \@TIERS,
    components => [qw(pg nodes nginx repaird)],
    repaird_opts => {
        health_interval    => '300ms',
        offline_after      => '3s',
        lock_retry         => '500ms',
        repair_interval    => '1s',
        scrub_interval     => 0,
        gc_interval        => 0,
        rebalance_interval => '1s',
        rebalance_rate     => 200,
    },
);

my $c = cluster();
sub metrics { $c->repaird_metrics(1) || {} }

sub nodes_of {
    my ($bucket, $key) = @_;
    my ($row) = $c->psql("SELECT array_to_string(v.nodes, ','), "
        . "v.storage_class FROM versions v JOIN buckets b USING (bucket_id) "
        . "JOIN objects o ON o.version_id = v.version_id "
        . "WHERE b.name = '$bucket' AND v.key = '$key'");
    return ([split /,/, $row->[0] // ''], $row->[1]);
}

sub stored_count {
    my ($r) = $c->psql("SELECT count(*) FROM versions");
    return $r->[0];
}

wait_for(sub { (metrics()->{plinth_repaird_leader} // 0) == 1 }, 15,
    'repaird works');

is(s3_request(PUT => '/tbk')->{status}, 200, 'bucket');

my %want;   # key -> [md5, class, tier]
my %TIER_OF_CLASS = (STANDARD => 'hot', STANDARD_IA => 'warm',
    GLACIER => 'cold', DEEP_ARCHIVE => 'cold');

# ------------------------------------------------- PUT with each class

for my $class (qw(STANDARD STANDARD_IA GLACIER DEEP_ARCHIVE)) {
    for my $i (1 .. 8) {
        my $body = random_bytes(100 + int(rand(50_000)));
        my $key = "$class/o$i";
        my $r = s3_request(PUT => "/tbk/$key", body => $body,
            headers => { 'x-amz-storage-class' => $class });
        is($r->{status}, 200, "PUT $key") or diag($r->{body});
        $want{$key} = [md5_hex($body), $class, $TIER_OF_CLASS{$class}];
    }
}
# no header: the bucket's default (STANDARD)
{
    my $body = random_bytes(3000);
    is(s3_request(PUT => '/tbk/plain', body => $body)->{status}, 200,
        'PUT without a class');
    $want{plain} = [md5_hex($body), 'STANDARD', 'hot'];
}

sub check_placement {
    my ($what) = @_;
    my $bad = 0;
    for my $key (sort keys %want) {
        my ($nodes, $class) = nodes_of('tbk', $key);
        if ($key =~ m{^mp/}) {      # a multipart object: its parts' nodes
            $nodes = [map { split /,/, $_->[0] } $c->psql(
                "SELECT array_to_string(vp.nodes, ',') FROM version_parts vp "
              . "JOIN objects o ON o.version_id = vp.version_id "
              . "WHERE o.key = '$key'")];
            $nodes = [@$nodes[0 .. 2]];
        }
        my $tier = $want{$key}[2];
        my @off = grep { $TIER_OF{$_} ne $tier } @$nodes;
        if ($class ne $want{$key}[1] || @off || @$nodes < 2) {
            $bad++;
            diag("$key: class $class, nodes @$nodes (want $want{$key}[1] on $tier)");
        }
    }
    is($bad, 0, "$what: every object on nodes of its class's tier only");
}
check_placement('after PUT');

# ------------------------------------------ headers on GET and HEAD

for my $key (sort keys %want) {
    my ($md5, $class) = @{ $want{$key} };
    my $g = s3_request(GET => "/tbk/$key");
    is($g->{status}, 200, "GET $key");
    is(md5_hex($g->{body}), $md5, "GET $key: the bytes written");
    my $h = s3_request(HEAD => "/tbk/$key");
    if ($class eq 'STANDARD') {
        ok(!exists $g->{headers}{'x-amz-storage-class'}
            && !exists $h->{headers}{'x-amz-storage-class'},
            "GET/HEAD $key: no x-amz-storage-class for STANDARD (as S3)");
    } else {
        is($g->{headers}{'x-amz-storage-class'}, $class,
            "GET $key: x-amz-storage-class");
        is($h->{headers}{'x-amz-storage-class'}, $class,
            "HEAD $key: x-amz-storage-class");
    }
}

# ------------------------------------------------------------ listings

sub list_classes {
    my ($body) = @_;
    my %k;
    while ($body =~ m{<(?:Contents|Version)>(.*?)</(?:Contents|Version)>}gs) {
        my $e = $1;
        my ($key) = $e =~ m{<Key>(.*?)</Key>};
        my ($cl) = $e =~ m{<StorageClass>(.*?)</StorageClass>};
        $k{$key} = $cl;
    }
    return \%k;
}
my %classes = map { $_ => $want{$_}[1] } keys %want;
for my $q ('', '?list-type=2', '?versions') {
    my $r = s3_request(GET => "/tbk$q");
    is($r->{status}, 200, "list $q");
    is_deeply(list_classes($r->{body}), \%classes,
        "list '$q': every entry's StorageClass");
}

# ------------------------------------------------ other names, garbage

my %map = (REDUCED_REDUNDANCY => 'STANDARD', ONEZONE_IA => 'STANDARD_IA',
    GLACIER_IR => 'GLACIER');
for my $name (sort keys %map) {
    my $body = random_bytes(2000);
    my $r = s3_request(PUT => "/tbk/map/$name", body => $body,
        headers => { 'x-amz-storage-class' => $name });
    is($r->{status}, 200, "PUT with $name");
    my $h = s3_request(HEAD => "/tbk/map/$name");
    is($h->{headers}{'x-amz-storage-class'} // 'STANDARD', $map{$name},
        "$name is stored as $map{$name}");
    $want{"map/$name"} = [md5_hex($body), $map{$name}, $TIER_OF_CLASS{$map{$name}}];
}

my $before = stored_count();
for my $bad ('INTELLIGENT_TIERING', 'EXPRESS_ONEZONE', 'OUTPOSTS', 'SNOW',
    'standard', 'Glacier', 'HOT', '', 'STANDARD_', 'x' x 300)
{
    my $r = s3_request(PUT => '/tbk/bad', body => 'data',
        headers => { 'x-amz-storage-class' => $bad });
    is($r->{status}, 400, "PUT with class '" . substr($bad, 0, 20) . "': 400");
    like($r->{body}, qr{<Code>InvalidStorageClass</Code>},
        "... InvalidStorageClass");
}
is(s3_request(HEAD => '/tbk/bad')->{status}, 404, 'nothing stored under bad');
is(stored_count(), $before, 'no version row was written by a bad class');

# ------------------------------------------------ bucket default class

is(s3_request(PUT => '/tcold', headers => { 'x-plinth-storage-class' => 'GLACIER' })
    ->{status}, 200, 'CreateBucket with x-plinth-storage-class: GLACIER');
{
    my $r = s3_request(PUT => '/tbad', headers => { 'x-plinth-storage-class' => 'COLD' });
    is($r->{status}, 400, 'CreateBucket with a bad default class: 400');
    like($r->{body}, qr{<Code>InvalidStorageClass</Code>}, '... InvalidStorageClass');
    is(s3_request(HEAD => '/tbad')->{status}, 404, '... and no bucket');
    my $body = random_bytes(5000);
    is(s3_request(PUT => '/tcold/d', body => $body)->{status}, 200,
        'PUT into the GLACIER-default bucket');
    my ($nodes, $class) = nodes_of('tcold', 'd');
    is($class, 'GLACIER', "the bucket's default class is the object's");
    is(scalar(grep { $TIER_OF{$_} ne 'cold' } @$nodes), 0,
        '... on cold nodes only');
    is(s3_request(PUT => '/tcold/e', body => $body,
        headers => { 'x-amz-storage-class' => 'STANDARD' })->{status}, 200,
        'a PUT naming STANDARD there');
    ($nodes, $class) = nodes_of('tcold', 'e');
    is($class, 'STANDARD', 'the header wins over the default');
    is(scalar(grep { $TIER_OF{$_} ne 'hot' } @$nodes), 0, '... on hot nodes');
}

# ------------------------------------------------------------ CopyObject

{
    my $src = 'STANDARD/o1';
    my $r = s3_request(PUT => '/tbk/copy/plain',
        headers => { 'x-amz-copy-source' => "/tbk/$src" });
    is($r->{status}, 200, 'CopyObject without a class');
    my ($nodes, $class) = nodes_of('tbk', 'copy/plain');
    is($class, 'STANDARD', "... the bucket's default (STANDARD), as S3");
    $want{'copy/plain'} = [$want{$src}[0], 'STANDARD', 'hot'];

    $r = s3_request(PUT => '/tbk/copy/cold',
        headers => { 'x-amz-copy-source' => "/tbk/$src",
                     'x-amz-storage-class' => 'GLACIER' });
    is($r->{status}, 200, 'CopyObject with x-amz-storage-class: GLACIER');
    ($nodes, $class) = nodes_of('tbk', 'copy/cold');
    is($class, 'GLACIER', '... the copy is GLACIER');
    $want{'copy/cold'} = [$want{$src}[0], 'GLACIER', 'cold'];
    is(s3_request(HEAD => "/tbk/copy/cold")->{headers}{'x-amz-storage-class'},
        'GLACIER', '... HEAD says so');
    # it shares the source's blob: rebalancing copies it to cold nodes,
    # and the source keeps its hot copies
    wait_for(sub {
        my ($n) = nodes_of('tbk', 'copy/cold');
        @$n == 3 && !grep { $TIER_OF{$_} ne 'cold' } @$n;
    }, 60, 'the GLACIER copy reaches cold nodes');
    pass('the GLACIER copy reaches cold nodes');
    my ($sn) = nodes_of('tbk', $src);
    is(scalar(grep { $TIER_OF{$_} eq 'hot' } @$sn), 3,
        'the STANDARD source keeps its three hot copies');

    # a copy onto itself may change the class (S3's way to change one)
    $r = s3_request(PUT => '/tbk/STANDARD/o2',
        headers => { 'x-amz-copy-source' => '/tbk/STANDARD/o2',
                     'x-amz-storage-class' => 'STANDARD_IA' });
    is($r->{status}, 200, 'a copy onto itself with another class');
    $want{'STANDARD/o2'}[1] = 'STANDARD_IA';
    $want{'STANDARD/o2'}[2] = 'warm';
    $r = s3_request(PUT => '/tbk/STANDARD/o3',
        headers => { 'x-amz-copy-source' => '/tbk/STANDARD/o3' });
    is($r->{status}, 400, 'a copy onto itself changing nothing: still 400');

    my $before = stored_count();
    $r = s3_request(PUT => '/tbk/copy/bad',
        headers => { 'x-amz-copy-source' => "/tbk/$src",
                     'x-amz-storage-class' => 'COLD' });
    is($r->{status}, 400, 'CopyObject with a bad class: 400');
    like($r->{body}, qr{<Code>InvalidStorageClass</Code>}, '... InvalidStorageClass');
    is(stored_count(), $before, '... nothing stored');
}

# ------------------------------------------------------------ multipart

{
    my $before_up = ($c->psql("SELECT count(*) FROM uploads"))[0][0];
    my $r = s3_request(POST => '/tbk/mp/bad?uploads',
        headers => { 'x-amz-storage-class' => 'glacier' });
    is($r->{status}, 400, 'CreateMultipartUpload with a bad class: 400');
    like($r->{body}, qr{<Code>InvalidStorageClass</Code>}, '... InvalidStorageClass');
    is(($c->psql("SELECT count(*) FROM uploads"))[0][0], $before_up,
        '... no upload made');

    $r = s3_request(POST => '/tbk/mp/ia?uploads',
        headers => { 'x-amz-storage-class' => 'STANDARD_IA' });
    is($r->{status}, 200, 'CreateMultipartUpload with STANDARD_IA');
    my ($uid) = $r->{body} =~ m{<UploadId>([^<]+)</UploadId>};
    my @parts = (random_bytes(5 * 1024 * 1024), random_bytes(123_456));
    my @etags;
    for my $i (0, 1) {
        $r = s3_request(PUT => "/tbk/mp/ia?partNumber=" . ($i + 1) . "&uploadId=$uid",
            body => $parts[$i], timeout => 60);
        is($r->{status}, 200, 'UploadPart ' . ($i + 1));
        push @etags, $r->{headers}{etag};
    }
    my @pn = $c->psql("SELECT array_to_string(nodes, ',') FROM upload_parts "
        . "WHERE upload_id = '$uid'");
    is(scalar(grep { grep { $TIER_OF{$_} ne 'warm' } split /,/, $_->[0] } @pn), 0,
        "the parts are on warm nodes only (@{[ map { $_->[0] } @pn ]})");
    $r = s3_request(GET => "/tbk/mp/ia?uploadId=$uid");
    like($r->{body}, qr{<StorageClass>STANDARD_IA</StorageClass>},
        'ListParts: StorageClass STANDARD_IA');
    $r = s3_request(GET => '/tbk?uploads');
    like($r->{body}, qr{<UploadId>\Q$uid\E</UploadId>.*?<StorageClass>STANDARD_IA</StorageClass>}s,
        'ListMultipartUploads: StorageClass STANDARD_IA');
    my $xml = '<CompleteMultipartUpload>' . join('', map {
        '<Part><PartNumber>' . ($_ + 1) . "</PartNumber><ETag>$etags[$_]</ETag></Part>" } 0, 1)
        . '</CompleteMultipartUpload>';
    $r = s3_request(POST => "/tbk/mp/ia?uploadId=$uid", body => $xml);
    is($r->{status}, 200, 'CompleteMultipartUpload');
    my ($row) = $c->psql("SELECT v.storage_class FROM versions v JOIN objects o "
        . "ON o.version_id = v.version_id WHERE v.key = 'mp/ia'");
    is($row->[0], 'STANDARD_IA', 'the completed object is STANDARD_IA');
    my $g = s3_request(GET => '/tbk/mp/ia', timeout => 60);
    is(md5_hex($g->{body}), md5_hex($parts[0] . $parts[1]), 'its bytes');
    is($g->{headers}{'x-amz-storage-class'}, 'STANDARD_IA', '... and its class');
    $want{'mp/ia'} = [md5_hex($parts[0] . $parts[1]), 'STANDARD_IA', 'warm'];
}

# ------------------------------------- plinth-admin bucket class

{
    my $ADMIN = "$Plinth::Cluster::ROOT/bin/plinth-admin";
    my ($rc, $out, $err) = Plinth::Cluster::run_command(
        [$ADMIN, '--dir', $c->dir, 'bucket', 'class', 'tcold', 'WARM']);
    isnt($rc, 0, 'plinth-admin bucket class with a bad class: refused');
    my ($cl) = $c->psql("SELECT storage_class FROM buckets WHERE name = 'tcold'");
    is($cl->[0], 'GLACIER', '... the default unchanged');
    ($rc, $out, $err) = Plinth::Cluster::run_command(
        [$ADMIN, '--dir', $c->dir, 'bucket', 'class', 'tcold', 'STANDARD_IA']);
    is($rc, 0, 'plinth-admin bucket class tcold STANDARD_IA') or diag($err);
    is(s3_request(PUT => '/tcold/f', body => 'x' x 1000)->{status}, 200,
        'a PUT into tcold');
    my ($nodes, $class) = nodes_of('tcold', 'f');
    is($class, 'STANDARD_IA', '... gets the new default');
    is(scalar(grep { $TIER_OF{$_} ne 'warm' } @$nodes), 0, '... on warm nodes');
}

# ------------------------------------- repair stays on the blob's tier

# every copy of a warm object lost on one node: repair rebuilds it on a
# warm node, never on a hot or cold one
{
    my ($nodes) = nodes_of('tbk', 'STANDARD_IA/o1');
    my ($blob) = $c->psql("SELECT replace(v.blob_id::text, '-', '') FROM versions v "
        . "JOIN objects o ON o.version_id = v.version_id WHERE v.key = 'STANDARD_IA/o1'");
    my $victim = $nodes->[0];
    my $path = $c->blob_path($victim, $blob->[0]);
    ok(-e $path, "warm copy on node $victim");
    # the file goes first: a report of a copy that still verifies is
    # dropped (the copy is kept), as it should be
    ok(unlink($path), "the copy on node $victim is deleted");
    $c->psql("INSERT INTO repair_queue (blob_id, node_id, reason) "
        . "VALUES ('$blob->[0]'::uuid, $victim, 'test: lost')");
    # the three warm nodes are all the warm tier has: the copy comes back
    # on the same node (a hot or cold node would be the wrong tier)
    wait_for(sub {
        my ($q) = $c->psql("SELECT count(*) FROM repair_queue");
        $q->[0] == 0 && -e $path;
    }, 30, 'repair rebuilt the lost warm copy');
    my ($n) = nodes_of('tbk', 'STANDARD_IA/o1');
    is(scalar(@$n), 3, 'three copies again');
    is(scalar(grep { $TIER_OF{$_} ne 'warm' } @$n), 0,
        "the new copy is on a warm node (@$n)");
}

# rebalancing (every second) has run meanwhile: it must not have moved
# anything off its tier
wait_for(sub { (metrics()->{plinth_objects_misplaced} // -1) == 0 }, 30,
    'nothing misplaced');
check_placement('after repair and rebalancing passes');
is(metrics()->{plinth_objects_under_replicated} // -1, 0,
    'nothing under-replicated');
for my $key (sort keys %want) {
    my $g = s3_request(GET => "/tbk/$key");
    is(md5_hex($g->{body}), $want{$key}[0], "GET $key after repair");
}

# ------------------------------------- a tier without a write quorum

# two of the three warm nodes stop: a STANDARD_IA write cannot reach W=2
# warm nodes and is refused (503), never placed on another tier; the
# other classes keep working
{
    $c->stop_node($_) for 5, 6;
    my $before = ($c->psql("SELECT count(*) FROM versions WHERE state = 'committed'"))[0][0];
    my $r = s3_request(PUT => '/tbk/quorum/ia', body => random_bytes(4000),
        headers => { 'x-amz-storage-class' => 'STANDARD_IA' }, timeout => 60);
    is($r->{status}, 503, 'STANDARD_IA with one warm node up: 503');
    like($r->{body}, qr{<Code>(?:ServiceUnavailable|SlowDown|InternalError)</Code>},
        '... an S3 error document') or diag($r->{body});
    is(s3_request(HEAD => '/tbk/quorum/ia')->{status}, 404, '... nothing readable');
    is(($c->psql("SELECT count(*) FROM versions WHERE state = 'committed'"))[0][0],
        $before, '... nothing committed');
    my $b = random_bytes(4000);
    $r = s3_request(PUT => '/tbk/quorum/hot', body => $b);
    is($r->{status}, 200, 'a STANDARD write meanwhile: 200');
    my ($nodes) = nodes_of('tbk', 'quorum/hot');
    is(scalar(grep { $TIER_OF{$_} ne 'hot' } @$nodes), 0, '... on hot nodes');
    $c->start_node($_) for 5, 6;
}

done_testing();
