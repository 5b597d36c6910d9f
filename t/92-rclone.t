# End to end with rclone (Debian's rclone, /usr/bin/rclone): mkdir,
# copyto, rcat, cat, copyto back, copy of a tree and check, ls, lsf, lsd,
# lsjson, md5sum, deletefile, purge, rmdir.  The remote "plinth" is
# configured by environment variables only (RCLONE_CONFIG_PLINTH_*: type
# s3, provider Other, path style, us-east-1), in a clean environment
# (env -i: the machine's AWS_* variables, AWS_CA_BUNDLE among them, would
# change how rclone's S3 client starts).  Listing is exercised with both
# ListObjects (rclone's default for provider Other) and ListObjectsV2.
use strict;
use warnings;

use lib 't/lib';
use Plinth::Test;
use Plinth::Cluster;

use File::Path qw(make_path);
use File::Temp qw(tempdir);
use JSON::PP ();

# ------------------------------------------------------------ switches
# Set to 1 when the gateway has the feature: the skipped block then runs,
# and TODO: the option that avoids it below can go.

# Multipart upload: implemented; rclone uses it above its upload cutoff
# (200M by default, 16M in the multipart block) and for streams above
# --streaming-upload-cutoff (100k).
our $MULTIPART = 1;

# Keys: the cluster's admin key (made at its first start), or
# $PLINTH_TEST_ACCESS_KEY / $PLINTH_TEST_SECRET_KEY: client_credentials().

our $RCLONE = '/usr/bin/rclone';
our $TMP = tempdir('plinth-t92-XXXXXX', DIR => '/tmp', CLEANUP => 1);
our %FILE;          # name => bytes uploaded

if (!-x $RCLONE && !$ENV{CI}) {
    Test::More::plan(skip_all => "$RCLONE not found (Debian package rclone: scripts/install-deps.sh)");
}

sub write_file {
    my ($path, $bytes) = @_;
    open my $fh, '>:raw', $path or die "$path: $!";
    print $fh $bytes;
    close $fh or die "$path: $!";
}

sub read_file {
    my ($path) = @_;
    open my $fh, '<:raw', $path or return undef;
    local $/;
    return scalar <$fh>;
}

# rclone([{timeout => s, stdin => bytes, multipart => 1, list_version => N},] @args)
#   -> ($rc, $stdout, $stderr)
sub rclone {
    my %o = ref $_[0] eq 'HASH' ? %{ shift() } : ();
    my $c = cluster();
    my ($access_key, $secret_key) = client_credentials();
    mkdir "$TMP/home";
    my %env = (
        PATH => '/usr/bin:/bin',
        HOME => "$TMP/home",
        RCLONE_CONFIG                        => '/dev/null',   # no config file
        RCLONE_CONFIG_PLINTH_TYPE            => 's3',
        RCLONE_CONFIG_PLINTH_PROVIDER        => 'Other',
        RCLONE_CONFIG_PLINTH_ENDPOINT        => $c->endpoint,
        RCLONE_CONFIG_PLINTH_ACCESS_KEY_ID   => $access_key,
        RCLONE_CONFIG_PLINTH_SECRET_ACCESS_KEY => $secret_key,
        RCLONE_CONFIG_PLINTH_REGION          => 'us-east-1',
        RCLONE_CONFIG_PLINTH_FORCE_PATH_STYLE => 'true',
        RCLONE_CONFIG_PLINTH_LIST_VERSION    => $o{list_version} // 0,  # 0: rclone's choice (1 here)
    );
    my @opts = ('--retries', 1, '--low-level-retries', 1,   # a retry would hide a failure
        '--contimeout', '5s', '--timeout', '60s');
    if ($o{multipart}) {
        push @opts, '--s3-upload-cutoff', '16M', '--s3-chunk-size', '16M';
    }
    return Plinth::Cluster::run_command(
        ['/usr/bin/env', '-i', map({ "$_=$env{$_}" } sort keys %env), $RCLONE, @opts, @_],
        timeout => $o{timeout} // 120, stdin => $o{stdin}, cwd => $TMP);
}

# rclone_ok(@args) -> stdout; one test: exit code 0
sub rclone_ok {
    my ($rc, $out, $err) = rclone(@_);
    my @a = grep { !ref } @_;
    is($rc, 0, "rclone @a[0 .. ($#a < 2 ? $#a : 2)] exits 0") or diag("stderr:\n$err");
    return $out;
}

sub lines { [ grep { length } split /\n/, $_[0] ] }

run_tests();

__DATA__

=== TEST 1: rclone mkdir makes the bucket
--- check
main::rclone_ok(qw(mkdir plinth:rclone-bucket));
is(s3_request(HEAD => '/rclone-bucket')->{status}, 200, 'the bucket exists');
main::rclone_ok(qw(mkdir plinth:rclone-bucket));
pass('mkdir of an existing bucket succeeds (BucketAlreadyOwnedByYou is fine for rclone)');
my $out = main::rclone_ok(qw(lsd plinth:));
like($out, qr{\s-1 \S+ \S+\s+-1 rclone-bucket$}m, 'lsd plinth:: the bucket');



=== TEST 2: rclone copyto: 1 MiB of random bytes, small files under prefixes
--- check
$main::FILE{big} = random_bytes(1024 * 1024);
$main::FILE{small} = "small file\n";
main::write_file("$main::TMP/big.bin", $main::FILE{big});
main::write_file("$main::TMP/small.txt", $main::FILE{small});
utime 1700000000, 1700000000, "$main::TMP/small.txt";
main::rclone_ok('copyto', "$main::TMP/big.bin", 'plinth:rclone-bucket/dir/big.bin');
for my $k (qw(dir/sub/a.txt dir/b.txt top.txt)) {
    main::rclone_ok('copyto', "$main::TMP/small.txt", "plinth:rclone-bucket/$k");
}
my $r = s3_request(GET => '/rclone-bucket/dir/big.bin', timeout => 30);
is($r->{status}, 200, 'GET it');
ok($r->{body} eq $main::FILE{big}, 'the bytes stored are the bytes sent')
    or diag('got ' . length($r->{body}) . ' bytes');
is($r->{headers}{etag}, '"' . md5_hex($main::FILE{big}) . '"', 'ETag is the MD5');
ok(defined $r->{headers}{'x-amz-meta-mtime'}, "rclone's x-amz-meta-mtime stored and returned");



=== TEST 3: rclone copyto of 20 MiB: one PUT (no multipart)
--- timeout: 60
--- check
$main::FILE{mid} = random_bytes(20 * 1024 * 1024 + 3);
main::write_file("$main::TMP/mid.bin", $main::FILE{mid});
main::rclone_ok({ timeout => 300 }, 'copyto', "$main::TMP/mid.bin", 'plinth:rclone-bucket/mid.bin');
my $r = s3_request(HEAD => '/rclone-bucket/mid.bin');
is($r->{headers}{'content-length'}, length $main::FILE{mid}, 'stored: its length');
is($r->{headers}{etag}, '"' . md5_hex($main::FILE{mid}) . '"', 'a single-part ETag (the MD5)');



=== TEST 4: rclone rcat: a stream below --streaming-upload-cutoff is one PUT
--- check
my $body = random_bytes(50 * 1024);
main::rclone_ok({ stdin => $body }, qw(rcat plinth:rclone-bucket/streamed.bin));
my $r = s3_request(GET => '/rclone-bucket/streamed.bin');
ok($r->{body} eq $body, 'rcat: the bytes stored are the bytes sent') or diag('got ' . length($r->{body}) . ' bytes');
$main::FILE{streamed} = $body;



=== TEST 5: rclone cat and copyto back, byte for byte
--- timeout: 60
--- check
my ($rc, $out, $err) = main::rclone(qw(cat plinth:rclone-bucket/dir/big.bin));
is($rc, 0, 'rclone cat exits 0') or diag($err);
ok($out eq $main::FILE{big}, 'cat: the same bytes') or diag('got ' . length($out) . ' bytes');
($rc, $out, $err) = main::rclone(qw(cat --offset 1000 --count 10 plinth:rclone-bucket/dir/big.bin));
ok($out eq substr($main::FILE{big}, 1000, 10), 'cat --offset 1000 --count 10 (a Range GET): those bytes');
main::rclone_ok('copyto', 'plinth:rclone-bucket/dir/big.bin', "$main::TMP/big.down");
ok((main::read_file("$main::TMP/big.down") // '') eq $main::FILE{big}, 'copyto back big.bin: the same bytes');
main::rclone_ok({ timeout => 300 }, 'copyto', 'plinth:rclone-bucket/mid.bin', "$main::TMP/mid.down");
ok((main::read_file("$main::TMP/mid.down") // '') eq $main::FILE{mid}, 'copyto back mid.bin (20 MiB): the same bytes');
main::rclone_ok('copyto', 'plinth:rclone-bucket/top.txt', "$main::TMP/top.down");
is(main::read_file("$main::TMP/top.down"), $main::FILE{small}, 'copyto back top.txt: the same bytes');
is((stat "$main::TMP/top.down")[9], 1700000000, 'and its modification time (from x-amz-meta-mtime)');
# a missing key is, to rclone, an empty directory: nothing, exit 0
($rc, $out, $err) = main::rclone(qw(cat plinth:rclone-bucket/none));
is($out, '', 'cat of a missing key: nothing');
($rc, $out, $err) = main::rclone(qw(copyto plinth:rclone-bucket/none), "$main::TMP/none.down");
ok(!-e "$main::TMP/none.down", 'copyto of a missing key: no file');



=== TEST 6: rclone ls, lsf, lsjson, md5sum with ListObjects (v1) and ListObjectsV2
--- check
for my $v (1, 2) {
    my %o = (list_version => $v);
    my $out = main::rclone_ok(\%o, qw(ls plinth:rclone-bucket));
    is_deeply([ map { [split ' ', $_] } @{ main::lines($out) } ],
        [ [11, 'dir/b.txt'], [1048576, 'dir/big.bin'], [11, 'dir/sub/a.txt'], [20971523, 'mid.bin'],
          [51200, 'streamed.bin'], [11, 'top.txt'] ],
        "list v$v: ls: every key with its size, in order") or diag($out);
    $out = main::rclone_ok(\%o, qw(lsf plinth:rclone-bucket));
    is_deeply(main::lines($out), [qw(dir/ mid.bin streamed.bin top.txt)], "list v$v: lsf: the top level (delimiter /)");
    $out = main::rclone_ok(\%o, qw(lsf plinth:rclone-bucket/dir));
    is_deeply(main::lines($out), [qw(b.txt big.bin sub/)], "list v$v: lsf dir: prefix dir/, delimiter /");
    $out = main::rclone_ok(\%o, qw(lsf -R --files-only plinth:rclone-bucket));
    is_deeply(main::lines($out), [qw(dir/b.txt dir/big.bin dir/sub/a.txt mid.bin streamed.bin top.txt)],
        "list v$v: lsf -R --files-only: every key");
    $out = main::rclone_ok(\%o, qw(lsf -R --dirs-only plinth:rclone-bucket));
    is_deeply(main::lines($out), [qw(dir/ dir/sub/)], "list v$v: lsf -R --dirs-only: the directories");
    $out = main::rclone_ok(\%o, qw(lsf --files-only --include *.txt plinth:rclone-bucket));
    is_deeply(main::lines($out), ['top.txt'], "list v$v: lsf --include *.txt");
}
my $out = main::rclone_ok(qw(lsjson plinth:rclone-bucket/dir));
my $j = eval { JSON::PP::decode_json($out) } || [];
my ($big) = grep { $_->{Name} eq 'big.bin' } @$j;
is($big->{Size}, 1048576, 'lsjson: Size');
ok(!$big->{IsDir}, 'lsjson: a file');
my ($sub) = grep { $_->{Name} eq 'sub' } @$j;
ok($sub && $sub->{IsDir}, 'lsjson: sub is a directory');
$out = main::rclone_ok(qw(md5sum plinth:rclone-bucket/dir));
like($out, qr{^\Q${\ md5_hex($main::FILE{big})}\E  big\.bin$}m, 'md5sum: the ETag, the MD5 of big.bin');



=== TEST 7: rclone copy of a tree, then check against the local tree
--- timeout: 60
--- check
my $tree = "$main::TMP/tree";
my @files = ('a.txt', 'b/c.bin', 'b/d/e.txt', 'f g.txt', "\x{e9}t\x{e9}.txt", 'plus+sign.txt', 'pct%20.txt');
for my $f (@files) {
    my $p = "$tree/$f";
    utf8::encode($p);
    (my $d = $p) =~ s{/[^/]*$}{};
    make_path($d);
    main::write_file($p, random_bytes(1000 + length $f));
}
main::rclone_ok({ timeout => 300 }, 'copy', $tree, 'plinth:rclone-bucket/tree');
main::rclone_ok({ timeout => 300 }, 'check', $tree, 'plinth:rclone-bucket/tree');
main::rclone_ok({ timeout => 300 }, 'check', '--download', $tree, 'plinth:rclone-bucket/tree');
my $out = main::rclone_ok(qw(lsf -R --files-only plinth:rclone-bucket/tree));
my @want = sort map { my $x = $_; utf8::encode($x); $x } @files;
is_deeply(main::lines($out), \@want, 'lsf -R: every file, names intact (space, UTF-8, +, %)');



=== TEST 8: rclone rmdir of a bucket that is not empty fails
--- check
my ($rc, $out, $err) = main::rclone(qw(rmdir plinth:rclone-bucket));
isnt($rc, 0, 'rclone rmdir fails');
like($err, qr/BucketNotEmpty/, '... BucketNotEmpty');
is(s3_request(HEAD => '/rclone-bucket/top.txt')->{status}, 200, 'nothing deleted');



=== TEST 9: rclone deletefile, delete, purge (one DELETE an object)
--- check
main::rclone_ok(qw(deletefile plinth:rclone-bucket/top.txt));
is(s3_request(HEAD => '/rclone-bucket/top.txt')->{status}, 404, 'deletefile: top.txt is gone');
main::rclone_ok(qw(delete plinth:rclone-bucket/dir));
is_deeply(main::lines(main::rclone_ok(qw(lsf -R plinth:rclone-bucket/dir))), [], 'delete dir: nothing under dir/');
main::rclone_ok(qw(purge plinth:rclone-bucket/tree));
is_deeply(main::lines(main::rclone_ok(qw(lsf -R plinth:rclone-bucket/tree))), [], 'purge tree: nothing under tree/');
main::rclone_ok(qw(deletefile plinth:rclone-bucket/mid.bin));
main::rclone_ok(qw(deletefile plinth:rclone-bucket/streamed.bin));
my $out = main::rclone_ok(qw(lsf -R plinth:rclone-bucket));
is_deeply(main::lines($out), [], 'lsf -R: the bucket is empty');
my ($rc, $o, $err) = main::rclone(qw(deletefile plinth:rclone-bucket/nothere));
isnt($rc, 0, 'deletefile of a missing key fails (rclone looks first)');



=== TEST 10: rclone rmdir removes the empty bucket
--- check
main::rclone_ok(qw(rmdir plinth:rclone-bucket));
is(s3_request(HEAD => '/rclone-bucket')->{status}, 404, 'the bucket is gone');
my $out = main::rclone_ok(qw(lsd plinth:));
unlike($out, qr/rclone-bucket/, 'lsd: not listed');



=== TEST 11: multipart: copyto and rcat of 64 MiB + 1 in 16 MiB parts, back byte for byte
--- timeout: 60
--- check
SKIP: {
    skip 'multipart upload is not implemented yet: ?uploads answers 501 ($MULTIPART = 0)', 1
        unless $main::MULTIPART;
    my %mp = (multipart => 1, timeout => 600);
    my $body = random_bytes(64 * 1024 * 1024 + 1);
    main::write_file("$main::TMP/multi.bin", $body);
    main::rclone_ok(\%mp, qw(mkdir plinth:rclone-multipart));
    main::rclone_ok(\%mp, 'copyto', "$main::TMP/multi.bin", 'plinth:rclone-multipart/multi.bin');
    my $r = s3_request(HEAD => '/rclone-multipart/multi.bin');
    is($r->{headers}{'content-length'}, length $body, 'copyto: stored, its length');
    like($r->{headers}{etag} // '', qr/^"[0-9a-f]{32}-5"$/, 'copyto: a multipart ETag of 5 parts');
    main::rclone_ok(\%mp, 'copyto', 'plinth:rclone-multipart/multi.bin', "$main::TMP/multi.down");
    ok((main::read_file("$main::TMP/multi.down") // '') eq $body, 'copyto back: the same bytes');
    # a stream of unknown size above --streaming-upload-cutoff: multipart
    main::rclone_ok({ %mp, stdin => $body }, qw(rcat plinth:rclone-multipart/streamed.bin));
    my ($rc, $out, $err) = main::rclone(\%mp, qw(cat plinth:rclone-multipart/streamed.bin));
    ok($out eq $body, 'rcat 64 MiB: cat gives the same bytes') or diag('got ' . length($out) . " bytes; $err");
    main::rclone_ok(\%mp, qw(purge plinth:rclone-multipart));
    is(s3_request(HEAD => '/rclone-multipart')->{status}, 404, 'purge: the bucket is gone');
}
