# repaird carries out lifecycle rules and Plinth's access-based tiering on
# the real cluster: nine data nodes, three per tier (1-3 hot, 4-6 warm,
# 7-9 cold), RF=3, with a "day" of one second (lifecycle_day_seconds).
#   * Transition: objects under a prefix move STANDARD -> STANDARD_IA ->
#     GLACIER on the days given; each time their copies end up on nodes of
#     the new tier only, the old copies are collected, and every GET during
#     and after the moves returns the bytes written;
#   * Expiration: the current version is deleted (a delete marker in a
#     versioned bucket); NoncurrentVersionExpiration removes old versions;
#     a Disabled rule and keys outside the prefix are left alone;
#   * the access rule: objects not read for N days go one tier down, one
#     read often again comes back up one tier at a time.
# The test's own GETs (every object read back byte-exact while it moves)
# must not count as reads, or nothing would ever go unread: the gateway
# counts no reads (plinth_usage_flush 0) while the access rule's moves are
# driven by object_access rows written as the gateways' flush writes them
# (an UPSERT adding to read_count and raising last_access). The last part
# turns the gateway's counting on (plinth_usage_flush 1s) and moves a cold
# object up a tier by real GETs alone, end to end.
use strict;
use warnings;

use lib 't/lib';
use Plinth::Test;
use Plinth::Cluster;
use Plinth::TestUtil;

use Digest::MD5 qw(md5_hex);
use Time::HiRes qw(sleep time);

my @TIERS = (('hot') x 3, ('warm') x 3, ('cold') x 3);
my %TIER_OF = map { ($_ + 1) => $TIERS[$_] } 0 .. $#TIERS;
my %TIER_OF_CLASS = (STANDARD => 'hot', STANDARD_IA => 'warm',
    GLACIER => 'cold', DEEP_ARCHIVE => 'cold');

cluster_options(
    nodes => 9,
    tiers => \@TIERS,
    components => [qw(pg nodes nginx repaird)],
    http_extra => 'plinth_usage_flush 0;',
    repaird_opts => {
        health_interval       => '300ms',
        offline_after         => '5s',
        lock_retry            => '500ms',
        repair_interval       => '1s',
        scrub_interval        => 0,
        gc_interval           => '500ms',
        gc_grace              => '2s',
        rebalance_interval    => '1s',
        rebalance_rate        => 200,
        lifecycle_interval    => '300ms',
        lifecycle_day_seconds => 1,
    },
);

my $c = cluster();
sub metrics { $c->repaird_metrics(1) || {} }

sub cur {
    my ($bucket, $key) = @_;
    my ($row) = $c->psql("SELECT array_to_string(v.nodes, ','), "
        . "v.storage_class, replace(v.blob_id::text, '-', '') "
        . "FROM versions v JOIN buckets b USING (bucket_id) "
        . "JOIN objects o ON o.version_id = v.version_id AND NOT o.deleted "
        . "WHERE b.name = '$bucket' AND v.key = '$key'");
    return unless $row;
    return { nodes => [split /,/, $row->[0] // ''], class => $row->[1],
             blob => $row->[2] };
}

sub on_tier {
    my ($o, $tier) = @_;
    return $o && @{ $o->{nodes} } == 3
        && !grep { $TIER_OF{$_} ne $tier } @{ $o->{nodes} };
}

my %data;    # "bucket/key" -> bytes
sub put {
    my ($bucket, $key, $size, %h) = @_;
    my $b = random_bytes($size);
    my $r = s3_request(PUT => "/$bucket/$key", body => $b, headers => \%h);
    die "PUT $bucket/$key: $r->{status}" unless $r->{status} == 200;
    $data{"$bucket/$key"} = $b;
}

# every object still there answers its bytes; returns the failures
sub read_all {
    my (@keys) = @_;
    my $bad = 0;
    for my $k (@keys) {
        my $g = s3_request(GET => "/$k");
        $bad++ unless $g->{status} == 200 && $g->{body} eq $data{$k};
    }
    return $bad;
}

# poll $cond, reading @keys all the while (bounded by $secs)
sub wait_reading {
    my ($cond, $secs, $what, @keys) = @_;
    my ($t0, $bad, $rounds) = (time, 0, 0);
    while (time - $t0 < $secs) {
        $bad += read_all(@keys);
        $rounds++;
        return ($bad, $rounds) if $cond->();
        sleep 0.2;
    }
    fail("$what: not within $secs s");
    return ($bad, $rounds);
}

sub reads {
    my ($bucket, $key, $n) = @_;
    # as the gateways' flush will: add the reads, raise last_access
    $c->psql("INSERT INTO object_access (bucket_id, key, read_count, last_access) "
        . "SELECT bucket_id, '$key', $n, now() FROM buckets WHERE name = '$bucket' "
        . "ON CONFLICT (bucket_id, key) DO UPDATE SET "
        . "read_count = object_access.read_count + EXCLUDED.read_count, "
        . "last_access = greatest(object_access.last_access, EXCLUDED.last_access)");
}

wait_for(sub { (metrics()->{plinth_repaird_leader} // 0) == 1 }, 15,
    'repaird works');

# ------------------------------------------------------------ Transition

is(s3_request(PUT => '/lct')->{status}, 200, 'bucket lct');
put('lct', "tr/o$_", 1000 + int(rand(300_000))) for 1 .. 5;
put('lct', 'keep/x', 5000);
put('lct', 'off/y', 5000);
my $lc = '<LifecycleConfiguration>'
  . '<Rule><ID>tier</ID><Filter><Prefix>tr/</Prefix></Filter><Status>Enabled</Status>'
  . '<Transition><Days>3</Days><StorageClass>STANDARD_IA</StorageClass></Transition>'
  . '<Transition><Days>7</Days><StorageClass>GLACIER</StorageClass></Transition></Rule>'
  . '<Rule><ID>off</ID><Filter><Prefix>off/</Prefix></Filter><Status>Disabled</Status>'
  . '<Expiration><Days>1</Days></Expiration></Rule>'
  . '</LifecycleConfiguration>';
is(s3_request(PUT => '/lct?lifecycle', body => $lc)->{status}, 200,
    'a Transition rule for tr/ (3 days: STANDARD_IA, 7 days: GLACIER)');

# and a multipart object under tr/: its parts' blobs move too
my ($mp_class, @mp_nodes);
sub mp_state {
    my @r = $c->psql("SELECT v.storage_class, array_to_string(vp.nodes, ',') "
        . "FROM versions v JOIN objects o ON o.version_id = v.version_id "
        . "JOIN version_parts vp ON vp.version_id = v.version_id "
        . "JOIN buckets b ON b.bucket_id = v.bucket_id "
        . "WHERE b.name = 'lct' AND v.key = 'tr/mp' ORDER BY vp.part_number");
    return ($r[0][0], map { [split /,/, $_->[1]] } @r);
}
sub mp_on_tier {
    my ($tier) = @_;
    my ($cl, @parts) = mp_state();
    return @parts == 2 && !grep { @$_ != 3 || grep { $TIER_OF{$_} ne $tier } @$_ } @parts;
}
{
    my $r = s3_request(POST => '/lct/tr/mp?uploads');
    my ($uid) = $r->{body} =~ m{<UploadId>([^<]+)</UploadId>};
    my @p = (random_bytes(5 * 1024 * 1024), random_bytes(77_777));
    my @e;
    for my $i (0, 1) {
        $r = s3_request(PUT => "/lct/tr/mp?partNumber=" . ($i + 1) . "&uploadId=$uid",
            body => $p[$i], timeout => 60);
        push @e, $r->{headers}{etag};
    }
    $r = s3_request(POST => "/lct/tr/mp?uploadId=$uid", body => '<CompleteMultipartUpload>'
        . join('', map { '<Part><PartNumber>' . ($_ + 1) . "</PartNumber><ETag>$e[$_]</ETag></Part>" } 0, 1)
        . '</CompleteMultipartUpload>');
    is($r->{status}, 200, 'a multipart object tr/mp');
    $data{'lct/tr/mp'} = $p[0] . $p[1];
    ok(mp_on_tier('hot'), 'tr/mp: its parts on hot nodes');
}
my @tr = ((map { "lct/tr/o$_" } 1 .. 5), 'lct/tr/mp');
my %hot_blob = map { $_ => cur('lct', "tr/o$_") } 1 .. 5;
ok(on_tier($hot_blob{$_}, 'hot'), "tr/o$_ starts on hot nodes") for 1 .. 5;

my ($bad, $rounds) = wait_reading(sub {
    !grep({ !on_tier(cur('lct', "tr/o$_"), 'warm') } 1 .. 5)
        && mp_on_tier('warm') }, 60,
    'all moved to STANDARD_IA', @tr);
is((mp_state())[0], 'STANDARD_IA', 'tr/mp: STANDARD_IA, its parts on warm nodes');
is($bad, 0, "every GET byte-exact while moving to warm ($rounds rounds)");
for my $i (1 .. 5) {
    my $o = cur('lct', "tr/o$i");
    is($o->{class}, 'STANDARD_IA', "tr/o$i: STANDARD_IA");
    ok(on_tier($o, 'warm'), "tr/o$i: on warm nodes only (@{ $o->{nodes} })");
    is(s3_request(HEAD => "/lct/tr/o$i")->{headers}{'x-amz-storage-class'},
        'STANDARD_IA', "HEAD tr/o$i says STANDARD_IA");
}

($bad, $rounds) = wait_reading(sub {
    !grep({ !on_tier(cur('lct', "tr/o$_"), 'cold') } 1 .. 5)
        && mp_on_tier('cold') }, 60,
    'all moved to GLACIER', @tr);
is((mp_state())[0], 'GLACIER', 'tr/mp: GLACIER, its parts on cold nodes');
is($bad, 0, "every GET byte-exact while moving to cold ($rounds rounds)");
for my $i (1 .. 5) {
    my $o = cur('lct', "tr/o$i");
    is($o->{class}, 'GLACIER', "tr/o$i: GLACIER");
    ok(on_tier($o, 'cold'), "tr/o$i: on cold nodes only");
}
{
    my @cl = s3_request(GET => '/lct?list-type=2&prefix=tr/')->{body}
        =~ m{<StorageClass>(.*?)</StorageClass>}g;
    is(join(',', @cl), join(',', ('GLACIER') x 6), 'the listing says GLACIER');
}

# the hot and warm copies are collected
wait_for(sub {
    for my $i (1 .. 5) {
        my $blob = $hot_blob{$i}{blob};
        for my $n (1 .. 6) {
            return 0 if -e $c->blob_path($n, $blob);
        }
    }
    1;
}, 60, 'the old copies are gone from hot and warm nodes');
pass('the old copies are gone from hot and warm nodes');
for my $i (1 .. 5) {
    my $o = cur('lct', "tr/o$i");
    is(scalar(grep { -e $c->blob_path($_, $o->{blob}) } @{ $o->{nodes} }), 3,
        "tr/o$i: three copies on disk on its cold nodes");
}
is(read_all(@tr), 0, 'every moved object reads back byte-exact');
is(cur('lct', 'keep/x')->{class}, 'STANDARD', 'keep/x (no rule) stays STANDARD');
ok(on_tier(cur('lct', 'keep/x'), 'hot'), '... on hot nodes');
is(s3_request(GET => '/lct/off/y')->{status}, 200,
    'off/y (a Disabled Expiration rule) is still there');

# ------------------------------------------------------------ Expiration

is(s3_request(PUT => '/lce')->{status}, 200, 'bucket lce (unversioned)');
put('lce', "ex/e$_", 3000) for 1 .. 3;
put('lce', 'stay', 3000);
is(s3_request(PUT => '/lce?lifecycle', body => '<LifecycleConfiguration>'
    . '<Rule><ID>x</ID><Prefix>ex/</Prefix><Status>Enabled</Status>'
    . '<Expiration><Days>2</Days></Expiration></Rule></LifecycleConfiguration>')
    ->{status}, 200, 'an Expiration rule: ex/ after 2 days');
wait_for(sub { !grep { s3_request(HEAD => "/lce/ex/e$_")->{status} != 404 } 1 .. 3 },
    60, 'ex/ objects expired');
is(s3_request(GET => "/lce/ex/e$_")->{status}, 404, "ex/e$_ is gone") for 1 .. 3;
is(read_all('lce/stay'), 0, 'the object outside the prefix stays');
unlike(s3_request(GET => '/lce')->{body}, qr{<Key>ex/}, 'the listing has no ex/ key');

# versioned: a delete marker; NoncurrentVersionExpiration removes v1
is(s3_request(PUT => '/lcv')->{status}, 200, 'bucket lcv');
is(s3_request(PUT => '/lcv?versioning', body =>
    '<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>')
    ->{status}, 200, 'versioning on');
put('lcv', 'ex/a', 2000);
put('lcv', 'nc/k', 2000);
my $v1 = $data{'lcv/nc/k'};
put('lcv', 'nc/k', 2100);
is(s3_request(PUT => '/lcv?lifecycle', body => '<LifecycleConfiguration>'
    . '<Rule><ID>e</ID><Filter><Prefix>ex/</Prefix></Filter><Status>Enabled</Status>'
    . '<Expiration><Days>2</Days></Expiration></Rule>'
    . '<Rule><ID>n</ID><Filter><Prefix>nc/</Prefix></Filter><Status>Enabled</Status>'
    . '<NoncurrentVersionExpiration><NoncurrentDays>2</NoncurrentDays></NoncurrentVersionExpiration></Rule>'
    . '</LifecycleConfiguration>')->{status}, 200,
    'Expiration and NoncurrentVersionExpiration in a versioned bucket');
wait_for(sub { s3_request(HEAD => '/lcv/ex/a')->{status} == 404 }, 60,
    'ex/a expired');
{
    my $g = s3_request(GET => '/lcv/ex/a');
    is($g->{status}, 404, 'ex/a: 404');
    is($g->{headers}{'x-amz-delete-marker'}, 'true', '... behind a delete marker');
    my $l = s3_request(GET => '/lcv?versions&prefix=ex/')->{body};
    like($l, qr{<DeleteMarker>.*<Key>ex/a</Key>}s, 'the delete marker is listed');
    like($l, qr{<Version>.*<Key>ex/a</Key>}s, 'the expired version is kept (versioned bucket)');
}
wait_for(sub {
    my @v = s3_request(GET => '/lcv?versions&prefix=nc/')->{body} =~ m{<Version>}g;
    @v == 1 }, 60, 'the noncurrent version of nc/k is removed');
is(read_all('lcv/nc/k'), 0, 'the current nc/k is intact');

# ------------------------------------------------------------ access rule

is(s3_request(PUT => '/lca')->{status}, 200, 'bucket lca');
put('lca', "a$_", 10_000 + int(rand(100_000))) for 1 .. 3;
put('lca', 'busy', 20_000);
# Plinth's rule for the bucket: down after 3 days unread; up after 3 reads
# within 20 days
my $ADMIN = "$Plinth::Cluster::ROOT/bin/plinth-admin";
{
    my @bad = (
        ['--down-days', '0', '--up-reads', '3', '--up-days', '20'],
        ['--down-days', '3', '--up-reads', '-1', '--up-days', '20'],
        ['--down-days', '3', '--up-reads', '3', '--up-days', 'x'],
        ['--down-days', '3', '--up-reads', '3'],
    );
    for my $b (@bad) {
        my ($rc, $out, $err) = Plinth::Cluster::run_command(
            [$ADMIN, '--dir', $c->dir, 'tiering', 'set', 'lca', @$b]);
        isnt($rc, 0, "plinth-admin tiering set @$b: refused");
    }
    my ($rc, $out, $err) = Plinth::Cluster::run_command(
        [$ADMIN, '--dir', $c->dir, 'tiering', 'set', 'nobucket',
         '--down-days', 3, '--up-reads', 3, '--up-days', 20]);
    like($err, qr/no such bucket/, 'tiering set on no bucket: refused');
    my ($n) = $c->psql("SELECT count(*) FROM bucket_tiering");
    is($n->[0], 0, '... nothing stored by refused commands');
    ($rc, $out, $err) = Plinth::Cluster::run_command(
        [$ADMIN, '--dir', $c->dir, 'tiering', 'set', 'lca',
         '--down-days', 3, '--up-reads', 3, '--up-days', 20]);
    is($rc, 0, 'plinth-admin tiering set lca') or diag($err);
    ($rc, $out) = Plinth::Cluster::run_command(
        [$ADMIN, '--dir', $c->dir, 'tiering', 'list']);
    like($out, qr/^lca\s+STANDARD\s+3\s+3\s+20$/m, 'tiering list shows it');
}
my @acc = map { "lca/a$_" } 1 .. 3;

# "busy" is read every 0.2 s throughout: it stays hot
my $busy_ok = 1;
my $cond_down = sub {
    reads('lca', 'busy', 1);
    !grep { !on_tier(cur('lca', "a$_"), 'warm') } 1 .. 3 };
($bad) = wait_reading($cond_down, 60, 'unread objects moved down to warm', @acc);
is($bad, 0, 'GETs byte-exact while moving down');
is(cur('lca', "a$_")->{class}, 'STANDARD_IA', "a$_: not read for 3 days: STANDARD_IA")
    for 1 .. 3;
($bad) = wait_reading(sub {
    reads('lca', 'busy', 1);
    !grep { !on_tier(cur('lca', "a$_"), 'cold') } 1 .. 3 }, 60,
    'still unread: down to cold', @acc);
is(cur('lca', "a$_")->{class}, 'GLACIER', "a$_: 3 more days: GLACIER") for 1 .. 3;
is(cur('lca', 'busy')->{class}, 'STANDARD', 'busy (read all along) is STANDARD');
ok(on_tier(cur('lca', 'busy'), 'hot'), '... on hot nodes');

# a1 is read often again: three reads, up one tier; three more, up again
reads('lca', 'a1', 3);
wait_for(sub { on_tier(cur('lca', 'a1'), 'warm') }, 60, 'a1 back up to warm');
is(cur('lca', 'a1')->{class}, 'STANDARD_IA', 'a1: 3 reads: STANDARD_IA');
is(cur('lca', 'a2')->{class}, 'GLACIER', 'a2 (unread) stays GLACIER');
reads('lca', 'a1', 3);
wait_for(sub { on_tier(cur('lca', 'a1'), 'hot') }, 60, 'a1 back up to hot');
is(cur('lca', 'a1')->{class}, 'STANDARD', 'a1: 3 more reads: STANDARD');
ok(!exists s3_request(HEAD => '/lca/a1')->{headers}{'x-amz-storage-class'},
    'HEAD a1: STANDARD again (no header)');
is(read_all(@acc, 'lca/busy'), 0, 'every object reads back byte-exact');

# ------------------------------------------------------------ afterwards

wait_for(sub { (metrics()->{plinth_objects_misplaced} // -1) == 0 }, 60,
    'nothing misplaced');
my $m = metrics();
is($m->{plinth_objects_under_replicated}, 0, 'nothing under-replicated');
cmp_ok($m->{plinth_tier_moves_total} // 0, '>=', 6 * 2 + 3 * 2 + 2,
    "tier moves counted ($m->{plinth_tier_moves_total})");
cmp_ok($m->{plinth_lifecycle_expirations_total} // 0, '>=', 5,
    'expirations counted');
is(read_all(grep { $_ !~ m{^lce/ex/|^lcv/ex/} && $_ ne 'lcv/nc/k' } sort keys %data), 0,
    'every object not expired reads back byte-exact');

# ------------------------------------------------------------ real GETs

# a2 has been cold all along and unread since its last move: three GETs,
# counted by the gateway and flushed within a second, take it up a tier
$c->reload_nginx(http_extra => 'plinth_usage_flush 1s;');
my ($before) = $c->psql("SELECT coalesce(sum(a.read_count), 0) FROM object_access a "
    . "JOIN buckets b USING (bucket_id) WHERE b.name = 'lca' AND a.key = 'a2'");
is(cur('lca', 'a2')->{class}, 'GLACIER', 'a2 is GLACIER before the GETs');
is(read_all('lca/a2', 'lca/a2', 'lca/a2'), 0, 'three GETs of a2, byte-exact');
wait_for(sub {
    my ($n) = $c->psql("SELECT coalesce(sum(a.read_count), 0) FROM object_access a "
        . "JOIN buckets b USING (bucket_id) WHERE b.name = 'lca' AND a.key = 'a2'");
    $n->[0] >= $before->[0] + 3 }, 30, 'the gateway flushed the three reads of a2');
wait_for(sub { on_tier(cur('lca', 'a2'), 'warm') }, 60,
    'a2 read three times through the gateway: up to warm');
is(read_all('lca/a2'), 0, 'a2 reads back byte-exact after the move');

done_testing();
