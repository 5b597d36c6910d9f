# End to end with s3cmd (Debian's s3cmd, /usr/bin/s3cmd): mb, put, get,
# ls, la, info, du, del, rb, with a configuration file written here (path
# style: host_bucket without %(bucket)s; SigV4; us-east-1; plain HTTP).
# s3cmd runs in a clean environment (env -i), HOME in a temp dir.
use strict;
use warnings;

use lib 't/lib';
use Plinth::Test;
use Plinth::Cluster;

use File::Temp qw(tempdir);

# ------------------------------------------------------------ switches
# Set to 1 when the gateway has the feature: the skipped blocks then run,
# and TODO: the options that avoid it below can go.

# Multipart upload: implemented; s3cmd uses it for files over its chunk
# size (15 MiB by default).
our $MULTIPART = 1;

# DeleteObjects (POST /bucket?delete: 501 today), which `s3cmd del
# --recursive` and `s3cmd rb --recursive` use, with no option to avoid it.
# Until then objects are deleted one by one (s3cmd del KEY KEY ...).
our $MULTI_DELETE = 1;

# Keys: the cluster's admin key (made at its first start), or
# $PLINTH_TEST_ACCESS_KEY / $PLINTH_TEST_SECRET_KEY: client_credentials().

our $S3CMD = '/usr/bin/s3cmd';
our $TMP = tempdir('plinth-t91-XXXXXX', DIR => '/tmp', CLEANUP => 1);
our %FILE;          # name => bytes uploaded

if (!-x $S3CMD && !$ENV{CI}) {
    Test::More::plan(skip_all => "$S3CMD not found (Debian package s3cmd: scripts/install-deps.sh)");
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

# The s3cmd configuration for this cluster; %o overrides keys.
sub s3cfg {
    my (%o) = @_;
    my $hostport = '127.0.0.1:' . cluster()->port;
    my ($access_key, $secret_key) = client_credentials();
    my %cfg = (
        access_key        => $access_key,
        secret_key        => $secret_key,
        host_base         => $hostport,
        host_bucket       => $hostport,     # no %(bucket)s: path-style
        use_https         => 'False',
        signature_v2      => 'False',       # SigV4
        bucket_location   => 'us-east-1',
        proxy_host        => '',
        socket_timeout    => 60,
        max_retries       => 1,             # a retry would hide a failure
        progress_meter    => 'False',
        %o,
    );
    my $file = "$TMP/s3cfg-" . join('-', map { "$_=$o{$_}" } sort keys %o);
    $file =~ s/[^\w\/.=-]/_/g;
    write_file($file, "[default]\n" . join('', map { "$_ = $cfg{$_}\n" } sort keys %cfg));
    return $file;
}

# s3cmd([{cfg => {..}, timeout => s},] @args) -> ($rc, $stdout, $stderr)
sub s3cmd {
    my %o = ref $_[0] eq 'HASH' ? %{ shift() } : ();
    my $cfg = s3cfg(%{ $o{cfg} || {} });
    mkdir "$TMP/home";
    return Plinth::Cluster::run_command(
        ['/usr/bin/env', '-i', 'PATH=/usr/bin:/bin', "HOME=$TMP/home", 'LANG=C.UTF-8',
         $S3CMD, '-c', $cfg, @_],
        timeout => $o{timeout} // 120, cwd => $TMP);
}

# s3cmd_ok(@args) -> stdout; one test: exit code 0
sub s3cmd_ok {
    my ($rc, $out, $err) = s3cmd(@_);
    my @a = grep { !ref } @_;
    is($rc, 0, "s3cmd @a[0 .. ($#a < 2 ? $#a : 2)] exits 0") or diag("stdout:\n$out\nstderr:\n$err");
    return $out;
}

# the keys listed by s3cmd ls -r / la (last column), in order
sub listed {
    my ($out, $bucket) = @_;
    return [ map { m{\s\Qs3://$bucket/\E(\S.*)$} ? $1 : () } split /\n/, $out ];
}

run_tests();

__DATA__

=== TEST 1: s3cmd mb
--- check
my $out = main::s3cmd_ok(qw(mb s3://s3cmd-bucket));
like($out, qr{^Bucket 's3://s3cmd-bucket/' created$}m, "Bucket ... created");
is(s3_request(HEAD => '/s3cmd-bucket')->{status}, 200, 'the bucket exists');
my ($rc, $o, $e) = main::s3cmd(qw(mb s3://s3cmd-bucket));
isnt($rc, 0, 's3cmd mb again fails');
like("$o$e", qr/BucketAlreadyOwnedByYou/, '... with BucketAlreadyOwnedByYou');
my ($rc2, $o2, $e2) = main::s3cmd(qw(mb s3://Bad_Name));
isnt($rc2, 0, 's3cmd mb of an invalid name fails');



=== TEST 2: s3cmd put: 1 MiB of random bytes, small files under prefixes
--- check
$main::FILE{big} = random_bytes(1024 * 1024);
$main::FILE{small} = "small file\n";
main::write_file("$main::TMP/big.bin", $main::FILE{big});
main::write_file("$main::TMP/small.txt", $main::FILE{small});
my $out = main::s3cmd_ok('put', "$main::TMP/big.bin", 's3://s3cmd-bucket/dir/big.bin');
like($out, qr{upload: '\S*big\.bin' -> 's3://s3cmd-bucket/dir/big\.bin'\s+\(1048576 bytes},
    'upload: ... 1048576 bytes');
for my $k (qw(dir/sub/a.txt dir/b.txt top.txt)) {
    main::s3cmd_ok('put', "$main::TMP/small.txt", "s3://s3cmd-bucket/$k");
}
my $r = s3_request(GET => '/s3cmd-bucket/dir/big.bin', timeout => 30);
is($r->{status}, 200, 'GET it');
ok($r->{body} eq $main::FILE{big}, 'the bytes stored are the bytes sent')
    or diag('got ' . length($r->{body}) . ' bytes');
is($r->{headers}{etag}, '"' . md5_hex($main::FILE{big}) . '"', 'ETag is the MD5');
like($r->{headers}{'x-amz-meta-s3cmd-attrs'} // '', qr/md5:\Q${\ md5_hex($main::FILE{big})}\E/,
    "s3cmd's x-amz-meta-s3cmd-attrs stored and returned");



=== TEST 3: s3cmd put of 20 MiB, more than s3cmd's 15 MiB part size: one PUT
--- timeout: 60
--- check
$main::FILE{mid} = random_bytes(20 * 1024 * 1024 + 3);
main::write_file("$main::TMP/mid.bin", $main::FILE{mid});
main::s3cmd_ok({ cfg => { enable_multipart => 'False' }, timeout => 300 },
    'put', "$main::TMP/mid.bin", 's3://s3cmd-bucket/mid.bin');
my $r = s3_request(HEAD => '/s3cmd-bucket/mid.bin');
is($r->{headers}{'content-length'}, length $main::FILE{mid}, 'stored: its length');
is($r->{headers}{etag}, '"' . md5_hex($main::FILE{mid}) . '"', 'a single-part ETag (the MD5)');



=== TEST 4: s3cmd get, byte for byte
--- timeout: 60
--- check
my $out = main::s3cmd_ok('get', 's3://s3cmd-bucket/dir/big.bin', "$main::TMP/big.down");
like($out, qr{download: 's3://s3cmd-bucket/dir/big\.bin' -> '\S*big\.down'}, 'download: ... reported');
ok((main::read_file("$main::TMP/big.down") // '') eq $main::FILE{big}, 'big.bin: the same bytes');
main::s3cmd_ok({ timeout => 300 }, 'get', 's3://s3cmd-bucket/mid.bin', "$main::TMP/mid.down");
ok((main::read_file("$main::TMP/mid.down") // '') eq $main::FILE{mid}, 'mid.bin (20 MiB): the same bytes');
main::s3cmd_ok('get', 's3://s3cmd-bucket/dir/sub/a.txt', "$main::TMP/a.down");
is(main::read_file("$main::TMP/a.down"), $main::FILE{small}, 'dir/sub/a.txt: the same bytes');
my ($rc, $o, $e) = main::s3cmd('get', 's3://s3cmd-bucket/none', "$main::TMP/none.down");
isnt($rc, 0, 'get of a missing key fails');
like("$o$e", qr/does not exist|404/, '... it does not exist');



=== TEST 5: s3cmd ls: buckets, top level, a prefix, recursive
--- check
my $out = main::s3cmd_ok('ls');
like($out, qr{^\d{4}-\d\d-\d\d \d\d:\d\d\s+s3://s3cmd-bucket$}m, 'ls: the bucket');
$out = main::s3cmd_ok(qw(ls s3://s3cmd-bucket));
like($out, qr{^\s+DIR\s+s3://s3cmd-bucket/dir/$}m, 'ls bucket: DIR dir/');
like($out, qr{^\S+ \S+\s+11\s+s3://s3cmd-bucket/top\.txt$}m, 'ls bucket: top.txt, 11 bytes');
like($out, qr{^\S+ \S+\s+20971523\s+s3://s3cmd-bucket/mid\.bin$}m, 'ls bucket: mid.bin, its size');
unlike($out, qr{dir/b\.txt}, 'ls bucket: not recursive');
$out = main::s3cmd_ok(qw(ls s3://s3cmd-bucket/dir/));
like($out, qr{^\s+DIR\s+s3://s3cmd-bucket/dir/sub/$}m, 'ls dir/: DIR dir/sub/');
like($out, qr{\s1048576\s+s3://s3cmd-bucket/dir/big\.bin$}m, 'ls dir/: big.bin');
like($out, qr{\s11\s+s3://s3cmd-bucket/dir/b\.txt$}m, 'ls dir/: b.txt');
unlike($out, qr{a\.txt}, 'ls dir/: not dir/sub/a.txt');
$out = main::s3cmd_ok(qw(ls -r s3://s3cmd-bucket));
is_deeply(main::listed($out, 's3cmd-bucket'),
    [qw(dir/b.txt dir/big.bin dir/sub/a.txt mid.bin top.txt)], 'ls -r: every key, in order')
    or diag($out);
$out = main::s3cmd_ok(qw(ls -r s3://s3cmd-bucket/dir/));
is_deeply(main::listed($out, 's3cmd-bucket'), [qw(dir/b.txt dir/big.bin dir/sub/a.txt)],
    'ls -r dir/: the keys under dir/');
$out = main::s3cmd_ok(qw(ls s3://s3cmd-bucket/dir/b));
is_deeply(main::listed($out, 's3cmd-bucket'), [qw(dir/b.txt dir/big.bin)],
    'ls dir/b (a prefix that is not a directory): b.txt and big.bin') or diag($out);



=== TEST 6: s3cmd la, la -r, du, info
--- check
s3_request(PUT => '/s3cmd-other');
s3_request(PUT => '/s3cmd-other/x/y.txt', body => 'y');
my $out = main::s3cmd_ok('la');
is_deeply(main::listed($out, 's3cmd-bucket'), [qw(dir/ mid.bin top.txt)],
    'la: the top level of s3cmd-bucket') or diag($out);
is_deeply(main::listed($out, 's3cmd-other'), ['x/'], 'la: and of the other bucket');
$out = main::s3cmd_ok(qw(la -r));
is_deeply(main::listed($out, 's3cmd-bucket'),
    [qw(dir/b.txt dir/big.bin dir/sub/a.txt mid.bin top.txt)], 'la -r: every key of s3cmd-bucket')
    or diag($out);
is_deeply(main::listed($out, 's3cmd-other'), ['x/y.txt'], 'la -r: and of the other bucket');
$out = main::s3cmd_ok(qw(du s3://s3cmd-bucket));
my $total = 1048576 + 20971523 + 3 * 11;
like($out, qr{^\s*$total\s+5 objects\s+s3://s3cmd-bucket/$}m, "du: $total bytes in 5 objects") or diag($out);
$out = main::s3cmd_ok(qw(info s3://s3cmd-bucket/dir/big.bin));
like($out, qr{^\s+File size:\s+1048576$}m, 'info: File size');
like($out, qr{^\s+MD5 sum:\s+\Q${\ md5_hex($main::FILE{big})}\E$}m, 'info: MD5 sum');
is(s3_request(DELETE => '/s3cmd-other/x/y.txt')->{status}, 204, 'clean up');
is(s3_request(DELETE => '/s3cmd-other')->{status}, 204, 'clean up the other bucket');



=== TEST 7: s3cmd rb of a bucket that is not empty fails
--- check
my ($rc, $o, $e) = main::s3cmd(qw(rb s3://s3cmd-bucket));
isnt($rc, 0, 's3cmd rb fails');
like("$o$e", qr/BucketNotEmpty/, '... BucketNotEmpty');
is(s3_request(HEAD => '/s3cmd-bucket/top.txt')->{status}, 200, 'nothing deleted');



=== TEST 8: s3cmd del, one key, then several (one DELETE each)
--- check
my $out = main::s3cmd_ok(qw(del s3://s3cmd-bucket/top.txt));
like($out, qr{^delete: 's3://s3cmd-bucket/top\.txt'$}m, 'delete: ... reported');
is(s3_request(HEAD => '/s3cmd-bucket/top.txt')->{status}, 404, 'top.txt is gone');
$out = main::s3cmd_ok('del', map { "s3://s3cmd-bucket/$_" } qw(dir/big.bin dir/b.txt mid.bin));
$out = main::s3cmd_ok(qw(ls -r s3://s3cmd-bucket));
is_deeply(main::listed($out, 's3cmd-bucket'), ['dir/sub/a.txt'], 'ls -r: one key left');
my ($rc, $o, $e) = main::s3cmd(qw(del s3://s3cmd-bucket/nothere));
note("del of a missing key: exit $rc: $o$e");
main::s3cmd_ok(qw(del s3://s3cmd-bucket/dir/sub/a.txt));
$out = main::s3cmd_ok(qw(ls -r s3://s3cmd-bucket));
is_deeply(main::listed($out, 's3cmd-bucket'), [], 'ls -r: empty');



=== TEST 9: s3cmd rb
--- check
my $out = main::s3cmd_ok(qw(rb s3://s3cmd-bucket));
like($out, qr{^Bucket 's3://s3cmd-bucket/' removed$}m, 'Bucket ... removed');
is(s3_request(HEAD => '/s3cmd-bucket')->{status}, 404, 'the bucket is gone');
$out = main::s3cmd_ok('ls');
unlike($out, qr{s3cmd-bucket}, 'ls: not listed');



=== TEST 10: s3cmd del --recursive and rb --recursive (DeleteObjects)
--- check
SKIP: {
    skip 'DeleteObjects (POST ?delete) is not implemented yet ($MULTI_DELETE = 0)', 1
        unless $main::MULTI_DELETE;
    main::s3cmd_ok(qw(mb s3://s3cmd-multidel));
    for my $k (qw(a/1 a/2 b/3 c)) {
        main::s3cmd_ok('put', "$main::TMP/small.txt", "s3://s3cmd-multidel/$k");
    }
    main::s3cmd_ok(qw(del --recursive --force s3://s3cmd-multidel/a/));
    my $out = main::s3cmd_ok(qw(ls -r s3://s3cmd-multidel));
    is_deeply(main::listed($out, 's3cmd-multidel'), [qw(b/3 c)], 'del --recursive a/: a/ is gone');
    main::s3cmd_ok(qw(rb --recursive --force s3://s3cmd-multidel));
    is(s3_request(HEAD => '/s3cmd-multidel')->{status}, 404, 'rb --recursive: the bucket is gone');
}



=== TEST 11: multipart: s3cmd put of 64 MiB + 1 in 16 MiB parts, get, byte for byte
--- timeout: 60
--- check
SKIP: {
    skip 'multipart upload is not implemented yet: ?uploads answers 501 ($MULTIPART = 0)', 1
        unless $main::MULTIPART;
    my %mp = (cfg => { enable_multipart => 'True', multipart_chunk_size_mb => 16 }, timeout => 600);
    my $body = random_bytes(64 * 1024 * 1024 + 1);
    main::write_file("$main::TMP/multi.bin", $body);
    main::s3cmd_ok(\%mp, qw(mb s3://s3cmd-multipart));
    my $out = main::s3cmd_ok(\%mp, 'put', "$main::TMP/multi.bin", 's3://s3cmd-multipart/multi.bin');
    # without a progress meter s3cmd reports the file, not its parts: the
    # ETag below tells the part count
    like($out, qr{upload: '\S*multi\.bin' -> 's3://s3cmd-multipart/multi\.bin'}, 'upload: ... reported');
    my $r = s3_request(HEAD => '/s3cmd-multipart/multi.bin');
    is($r->{headers}{'content-length'}, length $body, 'stored: its length');
    like($r->{headers}{etag} // '', qr/^"[0-9a-f]{32}-5"$/, 'a multipart ETag of 5 parts');
    main::s3cmd_ok(\%mp, 'get', 's3://s3cmd-multipart/multi.bin', "$main::TMP/multi.down");
    ok((main::read_file("$main::TMP/multi.down") // '') eq $body, 'get: the same bytes');
    $out = main::s3cmd_ok(\%mp, qw(info s3://s3cmd-multipart/multi.bin));
    like($out, qr{^\s+File size:\s+67108865$}m, 'info: File size');
    main::s3cmd_ok(\%mp, qw(del s3://s3cmd-multipart/multi.bin));
    main::s3cmd_ok(\%mp, qw(rb s3://s3cmd-multipart));
}
