# Batch GET (POST /{bucket}?batch): one signed JSON request, a tar stream
# of the entries in request order, read back with Python's tarfile and
# byte-compared: whole objects, ranges, versions, a multipart object, long
# names (PAX), another bucket the caller can read and one it cannot, a
# missing key in strict and continue-on-error mode, an entry whose first
# replica is corrupt; malformed bodies answered with S3 errors and nothing
# changed; unsigned refused; each entry counted as a GET (reads, egress).
use lib 't/lib';
use Plinth::Test;
use File::Temp qw(tempfile);
use JSON::PP ();

cluster_options(auth => 'sigv4');

our %BODY;

# the archive read by Python's tarfile: [[name, size, md5 hex, type]...]
sub untar {
    my ($bytes) = @_;
    my ($fh, $path) = tempfile('plinth-batch-XXXXXX', DIR => '/tmp', UNLINK => 1);
    binmode $fh;
    print $fh $bytes;
    close $fh;
    my $py = <<'PY';
import hashlib, json, sys, tarfile
out = []
with tarfile.open(sys.argv[1], mode="r|") as t:
    for m in t:
        data = t.extractfile(m).read() if m.isfile() else b""
        out.append([m.name, m.size, hashlib.md5(data).hexdigest(),
                    m.type.decode(), m.mtime, m.mode,
                    data.decode("utf-8", "replace") if m.name.endswith(".error") else ""])
print(json.dumps(out))
PY
    my ($rc, $out, $err) = Plinth::Cluster::run_command(
        ['/usr/bin/python3', '-c', $py, $path], timeout => 60);
    return { error => "tarfile: $err" } if $rc != 0;
    require JSON::PP;
    return { entries => JSON::PP::decode_json($out) };
}

# how many entries of the archive $t are not, in order, "$prefix$i"
# holding the bytes of /bat/$keys->[$i]
sub misplaced {
    my ($t, $prefix, $keys) = @_;
    return scalar grep {
        ($t->{entries}[$_][0] // '') ne "$prefix$_"
            || ($t->{entries}[$_][2] // '')
               ne md5_hex($::BODY{"/bat/$keys->[$_]"})
    } 0 .. $#$keys;
}

sub batch {
    my ($bucket, $json, %o) = @_;
    return s3_request(POST => "/$bucket?batch", body => $json,
                      headers => ['Content-Type' => 'application/json'],
                      timeout => 60, %o);
}

sub json_str {
    require JSON::PP;
    return JSON::PP->new->canonical->encode($_[0]);
}

sub put {
    my ($uri, $body, %o) = @_;
    my $r = s3_request(PUT => $uri, body => $body, %o);
    die "PUT $uri: $r->{status} $r->{body}" unless $r->{status} == 200;
    $::BODY{$uri} = $body;
    return $r;
}

sub snapshot {
    my @rows = cluster()->psql(
        "SELECT b.name, (SELECT string_agg(v.key || ':' || v.state, ',' "
      . "ORDER BY v.version_id) FROM versions v WHERE v.bucket_id = b.bucket_id) "
      . "FROM buckets b ORDER BY b.name");
    return join "\n", map { join '|', map { $_ // '' } @$_ } @rows;
}

# data-node requests logged since the last call: "POST /blobs/multi" lines
# and single blob GETs, over every node
our %NODE_LOG_OFF;
sub node_requests {
    my ($multi, $get) = (0, 0);
    for my $i (1 .. cluster()->nodes) {
        my $path = cluster()->dir . "/logs/node$i.log";
        open my $fh, '<', $path or next;
        seek $fh, $NODE_LOG_OFF{$i} // 0, 0;
        while (my $l = <$fh>) {
            $multi++ if $l =~ m{"msg":"POST /blobs/multi 200 };
            $get++ if $l =~ m{"msg":"GET /blobs/[0-9a-f]{32} 20[06] };
        }
        $NODE_LOG_OFF{$i} = tell $fh;
    }
    return ($multi, $get);
}

# A signed batch request for bucket bat, sent on a socket of its own
# (Connection: close) whose reading the test controls; rcvbuf sets
# SO_RCVBUF first. Returns the socket, the request written.
sub batch_socket {
    my ($json, %o) = @_;
    require Socket;
    my $c = cluster();
    my $req = { method => 'POST', uri => '/bat?batch', body => $json, version => 'HTTP/1.1',
                headers => [['Content-Type', 'application/json'], ['Connection', 'close']] };
    Plinth::Test::_sign($req, $c);
    my $bytes = Plinth::Test::_build_request($req, $c->port);
    socket(my $s, Socket::PF_INET(), Socket::SOCK_STREAM(), 0) or die "socket: $!";
    if ($o{rcvbuf}) {
        setsockopt($s, Socket::SOL_SOCKET(), Socket::SO_RCVBUF(), $o{rcvbuf})
            or die "SO_RCVBUF: $!";
    }
    connect($s, Socket::pack_sockaddr_in($c->port, Socket::inet_aton('127.0.0.1')))
        or die "connect: $!";
    binmode $s;
    my $off = 0;
    while ($off < length $bytes) {
        my $n = syswrite($s, $bytes, length($bytes) - $off, $off);
        die "write: $!" unless defined $n;
        $off += $n;
    }
    return $s;
}

run_tests();

__DATA__

=== TEST 1: the objects: small, empty, 1 MiB, a multipart one, versions, other buckets
--- timeout: 120
--- check
for my $b (qw(bat batother batv)) {
    is(s3_request(PUT => "/$b")->{status}, 200, "bucket $b");
}
is(s3_request(PUT => '/batu2', sign_as => 'user2')->{status}, 200, "user2's private bucket");
is(s3_request(PUT => '/batpub', sign_as => 'user2', headers => ['x-amz-acl' => 'public-read'])->{status},
   200, "user2's public-read bucket");
for my $i (1 .. 20) {
    main::put("/bat/small/$i", random_bytes(100 + 37 * $i));
}
main::put('/bat/empty', '');
main::put('/bat/big', random_bytes(1024 * 1024 + 7));
main::put('/bat/' . ('d' x 60) . '/' . ('n' x 80), 'a long name');
main::put('/batother/o1', random_bytes(5000));
main::put('/batu2/secret', 'not for admin', sign_as => 'user2');
main::put('/batpub/open', 'for everyone', sign_as => 'user2', headers => ['x-amz-acl' => 'public-read']);
is(s3_request(PUT => '/batv?versioning', body => '<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>')->{status}, 200, 'versioning on');
my $v1 = main::put('/batv/k', 'version one')->{headers}{'x-amz-version-id'};
my $v2 = main::put('/batv/k', 'version two, the current one')->{headers}{'x-amz-version-id'};
ok($v1 && $v2 && $v1 ne $v2, 'two versions');
$::V1 = $v1;
# multipart: 5 MiB + 3000 bytes
my $r = s3_request(POST => '/bat/mp?uploads');
my ($id) = $r->{body} =~ m{<UploadId>([^<]+)</UploadId>};
my @parts = (random_bytes(5 * 1024 * 1024), random_bytes(3000));
my @etags;
for my $n (1, 2) {
    $r = s3_request(PUT => "/bat/mp?partNumber=$n&uploadId=$id", body => $parts[$n - 1], timeout => 60);
    push @etags, $r->{headers}{etag};
}
my $xml = '<CompleteMultipartUpload>'
    . join('', map { "<Part><PartNumber>$_</PartNumber><ETag>$etags[$_ - 1]</ETag></Part>" } 1, 2)
    . '</CompleteMultipartUpload>';
is(s3_request(POST => "/bat/mp?uploadId=$id", body => $xml, timeout => 60)->{status}, 200, 'multipart object');
$::BODY{'/bat/mp'} = join '', @parts;



=== TEST 2: strict batch of whole objects: a tar of every entry, in order, byte-identical
--- timeout: 60
--- check
my @keys = ((map { "small/$_" } 1 .. 20), 'empty', 'big', 'mp');
my $r = main::batch('bat', main::json_str({ entries => [map { { key => $_ } } @keys] }));
is($r->{status}, 200, 'status 200');
is($r->{headers}{'content-type'}, 'application/x-tar', 'Content-Type application/x-tar');
is($r->{headers}{'content-length'}, length $r->{body}, 'Content-Length is the archive length');
ok($r->{headers}{'x-amz-request-id'}, 'a request id');
my $t = main::untar($r->{body});
ok(!$t->{error}, 'tarfile reads the stream') or diag $t->{error};
is(scalar @{ $t->{entries} }, scalar @keys, 'one entry per key');
is_deeply([map { $_->[0] } @{ $t->{entries} }], \@keys, 'names: the keys, in request order');
my $bad = 0;
for my $i (0 .. $#keys) {
    my $e = $t->{entries}[$i];
    my $want = $::BODY{"/bat/$keys[$i]"};
    $bad++ unless $e->[1] == length($want) && $e->[2] eq md5_hex($want);
}
is($bad, 0, 'every entry byte-identical (size and MD5), incl. empty, 1 MiB and multipart');
is($t->{entries}[0][5], 0644, 'mode 0644');
cmp_ok(abs($t->{entries}[0][4] - time), '<', 600, 'mtime from the version');
is(length($r->{body}) % 512, 0, 'whole 512-byte blocks');
is(substr($r->{body}, -1024), "\0" x 1024, 'two zero blocks at the end');



=== TEST 3: ranges, a version, names, a name over 100 bytes, another bucket, a public-read bucket of another user
--- timeout: 60
--- check
my $long = ('d' x 60) . '/' . ('n' x 80);
my $named = 'renamed/' . ('x' x 200) . '.bin';
my @e = (
    { key => 'small/3', range => 'bytes=10-49', name => 'r1' },
    { key => 'small/4', range => 'bytes=-25', name => 'r2' },
    { key => 'small/5', range => 'bytes=100-', name => 'r3' },
    { key => 'big', range => 'bytes=1048570-2000000', name => 'r4' },
    { key => 'mp', range => 'bytes=5242000-5243500', name => 'r5' },
    { key => 'k', bucket => 'batv', versionId => $::V1, name => 'v1' },
    { key => 'k', bucket => 'batv', name => 'vcur' },
    { key => $long },
    { key => 'small/6', name => $named },
    { key => 'o1', bucket => 'batother', name => 'other/o1' },
    { key => 'open', bucket => 'batpub', name => 'pub' },
);
my $r = main::batch('bat', main::json_str({ entries => \@e }));
is($r->{status}, 200, 'status 200');
my $t = main::untar($r->{body});
ok(!$t->{error}, 'tarfile reads it') or diag $t->{error};
my @want = (
    ['r1', substr($::BODY{'/bat/small/3'}, 10, 40)],
    ['r2', substr($::BODY{'/bat/small/4'}, -25)],
    ['r3', substr($::BODY{'/bat/small/5'}, 100)],
    ['r4', substr($::BODY{'/bat/big'}, 1048570)],
    ['r5', substr($::BODY{'/bat/mp'}, 5242000, 1501)],
    ['v1', 'version one'],
    ['vcur', 'version two, the current one'],
    [$long, 'a long name'],
    [$named, $::BODY{'/bat/small/6'}],
    ['other/o1', $::BODY{'/batother/o1'}],
    ['pub', 'for everyone'],
);
is(scalar @{ $t->{entries} }, scalar @want, 'every entry');
for my $i (0 .. $#want) {
    my $got = $t->{entries}[$i];
    is($got->[0], $want[$i][0], "entry $i: name $want[$i][0]" =~ s/x{20,}/x.../r);
    ok($got->[1] == length($want[$i][1]) && $got->[2] eq md5_hex($want[$i][1]),
       "entry $i: bytes identical (" . length($want[$i][1]) . ' bytes)');
}
like($r->{body}, qr/path=\Q$named\E\n/, 'the long name travels in a PAX header');



=== TEST 4: strict mode: a missing key, an unreadable bucket, a bad range: the S3 error before any tar byte
--- check
my $before = main::snapshot();
my @cases = (
    [[{ key => 'small/1' }, { key => 'nope' }], 404, 'NoSuchKey'],
    [[{ key => 'small/1' }, { key => 'secret', bucket => 'batu2' }], 403, 'AccessDenied'],
    [[{ key => 'x', bucket => 'no-such-bucket-here' }], 404, 'NoSuchBucket'],
    [[{ key => 'k', bucket => 'batv', versionId => '0' x 32 }], 404, 'NoSuchVersion'],
    [[{ key => 'small/1', range => 'bytes=100000-' }], 416, 'InvalidRange'],
    [[{ key => 'empty', range => 'bytes=0-0' }], 416, 'InvalidRange'],
);
for my $c (@cases) {
    my ($entries, $status, $code) = @$c;
    my $r = main::batch('bat', main::json_str({ entries => $entries }));
    is($r->{status}, $status, "$code: $status");
    like($r->{body}, qr{^<\?xml.*<Code>$code</Code>}s, "$code: an S3 error document");
    is($r->{headers}{'content-type'}, 'application/xml', "$code: not a tar");
}
is(main::snapshot(), $before, 'nothing stored changed');



=== TEST 5: continueOnError: the missing and unreadable entries become <name>.error entries
--- check
my $r = main::batch('bat', main::json_str({ continueOnError => JSON::PP::true(), entries => [
    { key => 'small/1' }, { key => 'nope' }, { key => 'secret', bucket => 'batu2', name => 'sec' },
    { key => 'small/2', range => 'bytes=99999-' }, { key => 'small/7' } ] }));
is($r->{status}, 200, 'status 200');
my $t = main::untar($r->{body});
ok(!$t->{error}, 'tarfile reads it') or diag $t->{error};
is_deeply([map { $_->[0] } @{ $t->{entries} }],
          ['small/1', 'nope.error', 'sec.error', 'small/2.error', 'small/7'], 'names, in order');
is($t->{entries}[0][2], md5_hex($::BODY{'/bat/small/1'}), 'the first entry intact');
is($t->{entries}[4][2], md5_hex($::BODY{'/bat/small/7'}), 'the last entry intact');
like($t->{entries}[1][6], qr/^NoSuchKey\n/, 'nope.error: NoSuchKey');
like($t->{entries}[2][6], qr/^AccessDenied\n/, 'sec.error: AccessDenied');
like($t->{entries}[3][6], qr/^InvalidRange\n/, 'small/2.error: InvalidRange');



=== TEST 6: an entry whose first replica is corrupt arrives intact from another
--- timeout: 60
--- check
main::put('/bat/rot', random_bytes(200_000));
my ($blob, $pl) = main::placement('bat', 'rot');
my @nodes = @$pl;
ok($blob && @nodes >= 2, "placed on @nodes");
main::flip_byte($cluster->blob_path($nodes[0], $blob), 10);
my $r = main::batch('bat', main::json_str({ entries => [
    { key => 'small/1' }, { key => 'rot' }, { key => 'small/2' } ] }));
is($r->{status}, 200, 'status 200');
my $t = main::untar($r->{body});
ok(!$t->{error}, 'tarfile reads it') or diag $t->{error};
is($t->{entries}[1][0], 'rot', 'the entry is there');
is($t->{entries}[1][2], md5_hex($::BODY{'/bat/rot'}), 'byte-identical despite the corrupt first replica');
is($t->{entries}[2][2], md5_hex($::BODY{'/bat/small/2'}), 'and the next entry too');



=== TEST 7: many entries through the window: 300 entries, in order
--- timeout: 60
--- check
my @keys = map { "small/" . (1 + $_ % 20) } 0 .. 299;
my $r = main::batch('bat', main::json_str({ entries => [map { { key => $keys[$_], name => "n$_" } } 0 .. $#keys] }));
is($r->{status}, 200, 'status 200');
my $t = main::untar($r->{body});
is(scalar @{ $t->{entries} // [] }, 300, '300 entries');
my $bad = main::misplaced($t, 'n', \@keys);
is($bad, 0, 'every entry in its place, byte-identical');



=== TEST 8: malformed bodies: 400 with an S3 code, nothing changes
--- check
my $before = main::snapshot();
my @cases = (
    ['not json', 'not json', 'MalformedXML'],
    ['empty body', '', 'MalformedXML'],
    ['an array', '[{"key":"a"}]', 'MalformedXML'],
    ['no entries', '{"entries":[]}', 'MalformedXML'],
    ['10,001 entries', main::json_str({ entries => [map { { key => "k$_" } } 1 .. 10001] }), 'MalformedXML'],
    ['an entry without a key', '{"entries":[{"name":"a"}]}', 'MalformedXML'],
    ['an unknown member', '{"entries":[{"key":"a","colour":"red"}]}', 'MalformedXML'],
    ['a key that is a number', '{"entries":[{"key":7}]}', 'MalformedXML'],
    ['continueOnError not a boolean', '{"entries":[{"key":"a"}],"continueOnError":"yes"}', 'MalformedXML'],
    ['a bad range', '{"entries":[{"key":"small/1","range":"bytes=5-2"}]}', 'InvalidArgument'],
    ['a range without bytes=', '{"entries":[{"key":"small/1","range":"0-10"}]}', 'InvalidArgument'],
    ['a bad version id', '{"entries":[{"key":"small/1","versionId":"../x"}]}', 'InvalidArgument'],
    ['a key over 1024 bytes', main::json_str({ entries => [{ key => 'k' x 1025 }] }), 'KeyTooLongError'],
);
for my $c (@cases) {
    my ($what, $body, $code) = @$c;
    my $r = main::batch('bat', $body);
    is($r->{status}, 400, "$what: 400");
    like($r->{body}, qr{<Code>$code</Code>}, "$what: $code");
}
is(main::snapshot(), $before, 'nothing stored changed');



=== TEST 9: unsigned, another user, a missing bucket in the URL
--- check
my $body = main::json_str({ entries => [{ key => 'small/1' }] });
my $r = main::batch('bat', $body, unsigned => 1);
is($r->{status}, 403, 'unsigned: 403');
like($r->{body}, qr{<Code>AccessDenied</Code>}, 'unsigned: AccessDenied');
$r = main::batch('bat', $body, sign_as => 'user2');
is($r->{status}, 403, 'user2 on a private bucket: 403');
like($r->{body}, qr{<Code>AccessDenied</Code>}, 'user2: AccessDenied');
$r = main::batch('no-such-bucket-b', $body);
is($r->{status}, 404, 'missing bucket: 404');
like($r->{body}, qr{<Code>NoSuchBucket</Code>}, 'NoSuchBucket');
# user2 may read its public bucket's object through its own request too
$r = main::batch('batpub', main::json_str({ entries => [{ key => 'open' }] }));
is($r->{status}, 200, 'admin on user2\'s public-read bucket: 200');



=== TEST 10: examples/plinth_batch.py iterates a dataset through batch GET (boto3 lists, botocore signs)
--- timeout: 120
--- check
my %want;
for my $i (1 .. 70) {
    my $k = sprintf 'ds/sample-%03d.bin', $i;
    my $b = random_bytes(500 + 13 * $i);
    main::put("/bat/$k", $b);
    $want{$k} = md5_hex($b);
}
my ($ak, $sk) = client_credentials();
my ($rc, $out, $err) = Plinth::Cluster::run_command(
    ['/usr/bin/python3', "$Plinth::Cluster::ROOT/examples/plinth_batch.py",
     '--endpoint', $cluster->endpoint, '--bucket', 'bat', '--prefix', 'ds/',
     '--batch-size', '32', '--shuffle', '--seed', '7'],
    timeout => 100,
    env => { AWS_ACCESS_KEY_ID => $ak, AWS_SECRET_ACCESS_KEY => $sk,
             AWS_DEFAULT_REGION => $cluster->region, AWS_CONFIG_FILE => '/dev/null',
             AWS_SHARED_CREDENTIALS_FILE => '/dev/null', AWS_EC2_METADATA_DISABLED => 'true' });
is($rc, 0, 'the example exits 0') or diag "$out\n$err";
my @lines = grep { !/^#/ } split /\n/, $out;
is(scalar @lines, 70, 'every sample once');
my %got = map { my @f = split /\t/; ($f[0] => $f[2]) } @lines;
is_deeply(\%got, \%want, 'every sample byte-identical (MD5)');
my @order = map { (split /\t/)[0] } @lines;
isnt(join(',', @order), join(',', sort keys %want), 'shuffled (seed 7)');
like($out, qr/^# 70 samples, \d+ bytes/m, 'its summary line');



=== TEST 11: plinth_batch_window 3: a small window keeps the order too (multipart, corrupt replica, ranges)
--- http_config
plinth_batch_window 3;
--- timeout: 60
--- check
my @e = ((map { { key => "small/$_" } } 1 .. 10), { key => 'mp' }, { key => 'rot' },
         { key => 'big', range => 'bytes=-1000', name => 'bigtail' }, { key => 'empty' }, { key => 'small/11' });
my $r = main::batch('bat', main::json_str({ entries => \@e }));
is($r->{status}, 200, 'status 200');
my $t = main::untar($r->{body});
ok(!$t->{error}, 'tarfile reads it') or diag $t->{error};
my @want = ((map { $::BODY{"/bat/small/$_"} } 1 .. 10), $::BODY{'/bat/mp'}, $::BODY{'/bat/rot'},
            substr($::BODY{'/bat/big'}, -1000), '', $::BODY{'/bat/small/11'});
is(scalar @{ $t->{entries} // [] }, scalar @want, 'every entry');
my $bad = grep { ($t->{entries}[$_][2] // '') ne md5_hex($want[$_]) } 0 .. $#want;
is($bad, 0, 'every entry byte-identical, in order');



=== TEST 12: plinth_batch_window out of range is refused by nginx -t
--- http_config
plinth_batch_window 0;
--- nginx_t_fails: plinth_batch_window must be 1 to 256



=== TEST 13: every replica of an entry corrupt: the archive has begun, so the connection is cut short of Content-Length (a truncated tar, no wrong byte)
--- timeout: 60
--- check
main::put('/bat/allrot', random_bytes(300_000));
my ($blob, $pl) = main::placement_all('bat', 'allrot');
my @nodes = @$pl;
main::flip_byte($cluster->blob_path($_, $blob), 10) for @nodes;
my $r = main::batch('bat', main::json_str({ entries => [
    { key => 'small/1' }, { key => 'allrot' }, { key => 'small/2' } ] }));
is($r->{status}, 200, 'the archive had begun: 200');

like($r->{error} // '', qr/connection closed in the response body/, 'the connection is cut');
cmp_ok(length($r->{body}), '<', $r->{headers}{'content-length'}, 'fewer bytes than Content-Length');
is(substr($r->{body}, 512, length $::BODY{'/bat/small/1'}), $::BODY{'/bat/small/1'},
   'the entry before it arrived whole');
ok(index($r->{body}, $::BODY{'/bat/small/2'}) < 0, 'nothing after it was sent');
my $t = main::untar($r->{body});
like($t->{error} // '', qr/ReadError|unexpected end/, 'tarfile sees a truncated archive');
--- error_log
no replica of blob
cutting the connection



=== TEST 14: the same list as XML: entries, ranges, another bucket, continue-on-error; malformed XML
--- check
my $xml = '<Batch><ContinueOnError>true</ContinueOnError>'
    . '<Entry><Key>small/1</Key></Entry>'
    . '<Entry><Key>small/3</Key><Range>bytes=10-49</Range><Name>x/r1</Name></Entry>'
    . '<Entry><Key>o1</Key><Bucket>batother</Bucket></Entry>'
    . '<Entry><Key>nope</Key></Entry>'
    . '<Entry><Key>k</Key><Bucket>batv</Bucket><VersionId>' . $::V1 . '</VersionId></Entry>'
    . '</Batch>';
my $r = main::batch('bat', $xml);
is($r->{status}, 200, 'status 200');
my $t = main::untar($r->{body});
ok(!$t->{error}, 'tarfile reads it') or diag $t->{error};
is_deeply([map { $_->[0] } @{ $t->{entries} // [] }], ['small/1', 'x/r1', 'o1', 'nope.error', 'k'], 'names, in order');
my @want = ($::BODY{'/bat/small/1'}, substr($::BODY{'/bat/small/3'}, 10, 40), $::BODY{'/batother/o1'}, undef, 'version one');
my $bad = grep { defined $want[$_] && ($t->{entries}[$_][2] // '') ne md5_hex($want[$_]) } 0 .. $#want;
is($bad, 0, 'every entry byte-identical');
like($t->{entries}[3][6] // '', qr/^NoSuchKey\n/, 'nope.error: NoSuchKey');
$r = main::batch('bat', '<Batch><Entry><Key>small/1</Key></Entry><Entry><Key>nope</Key></Entry></Batch>');
is($r->{status}, 404, 'strict XML batch with a missing key: 404');
like($r->{body}, qr{<Code>NoSuchKey</Code>}, 'NoSuchKey');
for my $c (['<Batch><Entry><Key>a</Key>', 'not well-formed'], ['<Batch/>', 'no entries'],
           ['<Batch><Entry><Colour>red</Colour><Key>a</Key></Entry></Batch>', 'an unknown element'],
           ['<Delete><Object><Key>a</Key></Object></Delete>', 'another root'],
           ['<Batch><ContinueOnError>maybe</ContinueOnError><Entry><Key>a</Key></Entry></Batch>', 'ContinueOnError not a boolean']) {
    $r = main::batch('bat', $c->[0]);
    is($r->{status}, 400, "$c->[1]: 400");
    like($r->{body}, qr{<Code>MalformedXML</Code>}, "$c->[1]: MalformedXML");
}



=== TEST 15: batch reads count as GETs do: a read per entry and its bytes as the bucket's egress (plinth_usage_flush)
--- timeout: 60
--- check
is(s3_request(PUT => '/batacct')->{status}, 200, 'bucket batacct');
main::put('/batacct/k1', random_bytes(3000));
main::put('/batacct/k2', random_bytes(5000));
my $json = main::json_str({ entries => [{ key => 'k1' }, { key => 'k2', range => 'bytes=0-99' },
                                        { key => 'k1', name => 'again' }] });
my $r = main::batch('batacct', $json);
is($r->{status}, 200, 'batch of three entries: 200');
my $sql_reads = "SELECT a.key, a.read_count FROM object_access a JOIN buckets b USING (bucket_id) "
    . "WHERE b.name = 'batacct' ORDER BY a.key";
my $sql_egress = "SELECT e.egress_bytes, e.reads FROM cost_egress e JOIN buckets b USING (bucket_id) "
    . "WHERE b.name = 'batacct'";
my ($reads, $egress);
for (1 .. 150) {    # the gateway flushes every 5 s (plinth_usage_flush's default)
    # egress first: once it shows the flush, object_access (written by the
    # same statement) does too
    ($egress) = $cluster->psql($sql_egress);
    $reads = { map { $_->[0] => $_->[1] } $cluster->psql($sql_reads) };
    last if $egress && $egress->[1] >= 3;
    select undef, undef, undef, 0.1;
}
is_deeply($reads, { k1 => 2, k2 => 1 }, 'object_access: k1 read twice, k2 once');
is($egress->[0], 3000 * 2 + 100, 'cost_egress: the bytes of every entry (a range counts its 100)');
is($egress->[1], 3, 'cost_egress: three reads');



=== TEST 16: small entries are read many at a time (POST /blobs/multi): 400 entries of 10 KiB, a few data-node requests, every byte right
--- timeout: 120
--- check
for my $i (1 .. 40) {
    main::put("/bat/ten/$i", random_bytes(10 * 1024 + $i));
}
main::node_requests();
my @keys = map { "ten/" . (1 + $_ % 40) } 0 .. 399;
my $r = main::batch('bat', main::json_str({ entries => [map { { key => $keys[$_], name => "t$_" } } 0 .. $#keys] }));
is($r->{status}, 200, 'status 200');
is(length $r->{body}, $r->{headers}{'content-length'}, 'every byte of Content-Length');
my $t = main::untar($r->{body});
ok(!$t->{error}, 'tarfile reads it') or diag $t->{error};
is(scalar @{ $t->{entries} // [] }, 400, '400 entries');
my $bad = main::misplaced($t, 't', \@keys);
is($bad, 0, 'every entry in its place, byte-identical');
my ($multi, $get) = main::node_requests();
cmp_ok($multi, '>=', 1, "read through multi-reads ($multi)");
cmp_ok($multi, '<=', 12, 'a few of them (two rounds, one per node)');
is($get, 0, 'no single blob GET');



=== TEST 17: a small entry whose first replica is corrupt: its multi-read says so, it is read from another replica, byte-identical, and reported
--- timeout: 60
--- check
main::put('/bat/srot', random_bytes(10_000));
my ($blob, $pl) = main::placement('bat', 'srot');
my @nodes = @$pl;
ok($blob && @nodes >= 2, "placed on @nodes");
main::flip_byte($cluster->blob_path($nodes[0], $blob), 10);
main::node_requests();
my $r = main::batch('bat', main::json_str({ entries => [
    { key => 'small/1' }, { key => 'srot' }, { key => 'small/2' } ] }));
is($r->{status}, 200, 'status 200');
my $t = main::untar($r->{body});
ok(!$t->{error}, 'tarfile reads it') or diag $t->{error};
is($t->{entries}[0][2], md5_hex($::BODY{'/bat/small/1'}), 'the entry before it intact');
is($t->{entries}[1][2], md5_hex($::BODY{'/bat/srot'}), 'byte-identical despite the corrupt first replica');
is($t->{entries}[2][2], md5_hex($::BODY{'/bat/small/2'}), 'the entry after it intact');
my ($multi, $get) = main::node_requests();
cmp_ok($multi, '>=', 1, 'multi-reads were used');
is($get, 1, 'one single GET: the corrupt entry, from another replica');
--- error_log
answered "corrupt"
reading it from another replica



=== TEST 18: a small entry whose blob is missing on its first node: read from another replica
--- timeout: 60
--- check
main::put('/bat/sgone', random_bytes(20_000));
my ($blob, $pl) = main::placement('bat', 'sgone');
my @nodes = @$pl;
ok(unlink($cluster->blob_path($nodes[0], $blob)), "blob removed from node $nodes[0]");
my $r = main::batch('bat', main::json_str({ entries => [
    { key => 'sgone' }, { key => 'small/3' } ] }));
is($r->{status}, 200, 'status 200');
my $t = main::untar($r->{body});
ok(!$t->{error}, 'tarfile reads it') or diag $t->{error};
is($t->{entries}[0][2], md5_hex($::BODY{'/bat/sgone'}), 'byte-identical from another replica');
is($t->{entries}[1][2], md5_hex($::BODY{'/bat/small/3'}), 'the next entry intact');
--- error_log
answered "not_found"



=== TEST 19: small and large entries mixed (multipart, 1 MiB, ranges, empty, errors), window 3: order, bytes and Content-Length kept
--- http_config
plinth_batch_window 3;
--- timeout: 90
--- check
my @e = ({ key => 'ten/1' }, { key => 'big' }, { key => 'ten/2' }, { key => 'mp', name => 'mp1' },
         { key => 'small/4', range => 'bytes=10-99', name => 'r1' }, { key => 'empty' }, { key => 'nope' },
         { key => 'big', range => 'bytes=-5000', name => 'bigtail' }, (map { { key => "ten/$_" } } 3 .. 30),
         { key => 'mp', range => 'bytes=5242870-5242899', name => 'mpedge' }, { key => 'ten/31' });
my $r = main::batch('bat', main::json_str({ entries => \@e, continueOnError => JSON::PP::true() }));
is($r->{status}, 200, 'status 200');
is(length $r->{body}, $r->{headers}{'content-length'}, 'every byte of Content-Length');
my $t = main::untar($r->{body});
ok(!$t->{error}, 'tarfile reads it') or diag $t->{error};
my @want = ($::BODY{'/bat/ten/1'}, $::BODY{'/bat/big'}, $::BODY{'/bat/ten/2'}, $::BODY{'/bat/mp'},
            substr($::BODY{'/bat/small/4'}, 10, 90), '', undef, substr($::BODY{'/bat/big'}, -5000),
            (map { $::BODY{"/bat/ten/$_"} } 3 .. 30), substr($::BODY{'/bat/mp'}, 5242870, 30),
            $::BODY{'/bat/ten/31'});
is(scalar @{ $t->{entries} // [] }, scalar @want, 'every entry');
my $bad = grep { defined $want[$_] && ($t->{entries}[$_][2] // '') ne md5_hex($want[$_]) } 0 .. $#want;
is($bad, 0, 'every entry byte-identical, in order');
is($t->{entries}[6][0], 'nope.error', 'the missing key as nope.error');



=== TEST 20: plinth_batch_multi_max 0 turns multi-reads off (one read per entry, as before)
--- http_config
plinth_batch_multi_max 0;
--- timeout: 60
--- check
main::node_requests();
my @keys = map { "ten/$_" } 1 .. 10;
my $r = main::batch('bat', main::json_str({ entries => [map { { key => $_ } } @keys] }));
is($r->{status}, 200, 'status 200');
my $t = main::untar($r->{body});
my $bad = grep { ($t->{entries}[$_][2] // '') ne md5_hex($::BODY{"/bat/$keys[$_]"}) } 0 .. $#keys;
is($bad, 0, 'every entry byte-identical');
my ($multi, $get) = main::node_requests();
is($multi, 0, 'no multi-read');
is($get, 10, 'one GET per entry');



=== TEST 21: plinth_batch_multi_max over 1m is refused by nginx -t
--- http_config
plinth_batch_multi_max 2m;
--- nginx_t_fails: plinth_batch_multi_max must be 0 to 1m



=== TEST 22: a slow client: 1,200 small entries (5 rounds of multi-reads) read at about 4 MB/s through a 64 KiB socket buffer; the rounds wait for the answers before them to be sent, and every byte arrives in order
--- timeout: 120
--- check
my @keys = map { "ten/" . (1 + $_ % 40) } 0 .. 1199;
my $json = main::json_str({ entries => [map { { key => $keys[$_], name => "s$_" } } 0 .. $#keys] });
my $s = main::batch_socket($json, rcvbuf => 65536);
my ($got, $t0) = ('', time);
while (time < $t0 + 100) {
    my $n = sysread($s, $got, 65536, length $got);
    last unless $n;
    select undef, undef, undef, 0.015;
}
close $s;
my ($head, $body) = split /\r\n\r\n/, $got, 2;
like($head, qr{^HTTP/1\.1 200 }, 'status 200');
my ($len) = $head =~ /^Content-Length: (\d+)/mi;
is(length($body // ''), $len, 'every byte of Content-Length');
my $t = main::untar($body // '');
ok(!$t->{error}, 'tarfile reads it') or diag $t->{error};
is(scalar @{ $t->{entries} // [] }, 1200, '1,200 entries');
my $bad = main::misplaced($t, 's', \@keys);
is($bad, 0, 'every entry in its place, byte-identical');



=== TEST 24: clients that hang up mid-batch (after a few KiB, and after two rounds' worth): the worker gives its multi-read buffers back and goes on; the next batches are byte-identical
--- timeout: 120
--- check
my @keys = map { "ten/" . (1 + $_ % 40) } 0 .. 599;
my $json = main::json_str({ entries => [map { { key => $keys[$_], name => "h$_" } } 0 .. $#keys] });
my @workers = Plinth::Cluster::children_of($cluster->pid_of('nginx'));
my $off = $cluster->error_log_size;
for my $round (1 .. 6) {
    my $s = main::batch_socket($json);
    # odd rounds read a few KiB, even ones about 4 MiB (past two rounds)
    my ($got, $want, $t0) = ('', $round % 2 ? 8192 : 4 << 20, time);
    while (length $got < $want && time < $t0 + 30) {
        my $n = sysread($s, $got, 65536, length $got);
        last unless $n;
    }
    ok(length $got >= ($round % 2 ? 1 : 1 << 20), "round $round: part of the archive came (" . length($got) . " bytes), then the client hung up");
    close $s;
}
select undef, undef, undef, 0.5;
my @after = Plinth::Cluster::children_of($cluster->pid_of('nginx'));
is("@after", "@workers", 'the same workers run (none crashed)');
unlike($cluster->error_log_since($off), qr/\[(alert|emerg|crit)\]|signal \d+/, 'no alert, crash or signal in error.log');
for my $n (1 .. 3) {
    my $r = main::batch('bat', $json);
    is($r->{status}, 200, "batch $n after them: 200");
    my $t = main::untar($r->{body});
    my $bad = main::misplaced($t, 'h', \@keys);
    is($bad, 0, "batch $n: 600 entries in their places, byte-identical");
}



=== TEST 23: plinth_batch_get_current (sql/026 - 028: a batch naming no version) answers as plinth_batch_get with no version ids, one row an entry and no parts: every key of three buckets (a delete marker and a multipart object among them), a missing key, a missing bucket, as the owner and as anonymous
--- check
my $c = $cluster;
main::put('/batv/gone', 'deleted next');
is(s3_request(DELETE => '/batv/gone')->{status}, 204, 'a delete marker in batv');
my ($owner) = map { $_->[0] } $c->psql("SELECT owner_id FROM buckets WHERE name = 'bat'");
my @pairs = map { [$_->[0], $_->[1]] } $c->psql(
    "SELECT b.name, o.key FROM objects o JOIN buckets b USING (bucket_id) "
  . "WHERE b.name IN ('bat', 'batv', 'batu2') ORDER BY b.name, o.key");
cmp_ok(scalar(@pairs), '>', 20, scalar(@pairs) . ' keys');
push @pairs, ['bat', 'nope'], ['no-such-bucket-here', 'x'];
my $arr = sub { '{' . join(',', map { my $s = $_; $s =~ s/(["\\])/\\$1/g; "\"$s\"" } @_) . '}' };
my $b = $arr->(map { $_->[0] } @pairs);
my $k = $arr->(map { $_->[1] } @pairs);
my $n = scalar @pairs;
for my $caller ("'$owner'", 'NULL') {
    # plinth_batch_get's first row of each entry without its seg_* columns
    my $cols = 'idx, code, vid, blob, size, etag, nodes, mtime, mp_parts';
    my ($row) = $c->psql(
        "WITH f AS (SELECT DISTINCT ON (idx) $cols FROM plinth_batch_get($caller, '$b', '$k', array_fill(NULL::text, ARRAY[$n])) ORDER BY idx), "
      . "c0 AS (SELECT * FROM plinth_batch_get_current($caller, '$b', '$k')), "
      . "c AS (SELECT $cols FROM c0) "
      . "SELECT (SELECT count(*) FROM f), (SELECT count(*) FROM c), "
      . "(SELECT count(*) FROM ((TABLE f EXCEPT ALL TABLE c) UNION ALL (TABLE c EXCEPT ALL TABLE f)) d), "
      . "(SELECT string_agg(DISTINCT coalesce(code, 'ok'), ',' ORDER BY coalesce(code, 'ok')) FROM c), "
      . "(SELECT count(*) FROM c0 WHERE num_nonnulls(seg_part, seg_blob, seg_offset, seg_size, seg_blob_offset, seg_nodes) > 0), "
      . "(SELECT count(*) FROM c WHERE mp_parts IS NOT NULL AND code IS NULL)");
    my ($nf, $nc, $diff, $codes, $segs, $mp) = @$row;
    is($nf, $n, "caller $caller: plinth_batch_get answers every entry ($nf)");
    is($nc, $n, "caller $caller: one row an entry");
    is($diff, 0, "caller $caller: the same rows but the parts");
    is($segs, 0, "caller $caller: no parts");
    is($mp, $caller eq 'NULL' ? 0 : 1, "caller $caller: a readable multipart entry shows as mp_parts ($mp)");
    like($codes, $caller eq 'NULL' ? qr/AccessDenied/ : qr/NoSuchBucket.*NoSuchKey.*ok/, "caller $caller: codes $codes");
    my ($gone) = map { $_->[0] } $c->psql(
        "SELECT code FROM plinth_batch_get_current($caller, '{batv}', '{gone}')");
    is($gone, $caller eq 'NULL' ? 'AccessDenied' : 'NoSuchKey', "caller $caller: the delete marker's key is $gone");
}



=== TEST 25: with proxy_buffering on in the data-node location, multi-reads still serve every small entry (none read one by one), every byte right
--- timeout: 120
--- check
(my $buffered = $cluster->render) =~ s/proxy_buffering off;/proxy_buffering on;/;
like($buffered, qr/proxy_buffering on;/, 'the configuration buffers the data nodes\' answers');
$cluster->restart_nginx(template_text => $buffered);
main::node_requests();
my @keys = map { "ten/" . (1 + $_ % 40) } 0 .. 399;
my $json = main::json_str({ entries => [map { { key => $keys[$_], name => "p$_" } } 0 .. $#keys] });
my $off = $cluster->error_log_size;
for my $n (1 .. 2) {
    my $r = main::batch('bat', $json);
    is($r->{status}, 200, "batch $n: status 200");
    my $t = main::untar($r->{body});
    my $bad = main::misplaced($t, 'p', \@keys);
    is($bad, 0, "batch $n: 400 entries in their places, byte-identical");
}
my ($multi, $get) = main::node_requests();
cmp_ok($multi, '>=', 2, "read through multi-reads ($multi)");
is($get, 0, 'no entry read one by one (no multi-read answer was given up)');
unlike($cluster->error_log_since($off), qr/read one by one|\[(alert|emerg|crit)\]/, 'error.log: no multi-read given up, no alert');
$cluster->restart_nginx;
is(main::batch('bat', $json)->{status}, 200, 'the usual configuration again: 200');
