# aws-chunked uploads, built byte by byte by the harness's own signer
# (t/lib/Plinth/SigV4.pm): STREAMING-AWS4-HMAC-SHA256-PAYLOAD (every chunk
# signature checked), STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER and
# STREAMING-UNSIGNED-PAYLOAD-TRAILER with an x-amz-checksum-crc32 trailer.
# Each is read back byte for byte: the framing must never be stored. Each
# broken variant gets S3's error and stores nothing.
use lib 't/lib';
use Plinth::Test;

cluster_options(auth => 'sigv4');


sub put_chunked {
    my ($key, %o) = @_;
    my ($h, $body) = sign_chunked(PUT => "/chunky/$key", %o);
    $body = $o{mangle}->($body) if $o{mangle};
    if ($o{mangle_headers}) {
        my %h = @$h;
        $o{mangle_headers}->(\%h);
        $h = [%h];
    }
    return s3_request(PUT => "/chunky/$key", headers => $h, body => $body,
                      timeout => 30);
}

sub get_is {
    my ($key, $want, $name) = @_;
    my $r = s3_request(GET => "/chunky/$key", timeout => 30);
    is($r->{status}, 200, "$name: GET 200");
    ok($r->{body} eq $want, "$name: byte-identical ("
       . length($r->{body}) . " of " . length($want) . " bytes)");
    is($r->{headers}{etag}, '"' . md5_hex($want) . '"', "$name: ETag is the payload's MD5");
}

sub absent {
    my ($key, $name) = @_;
    my $r = s3_request(GET => "/chunky/$key");
    is($r->{status}, 404, "$name: nothing stored");
}

run_tests();

__DATA__

=== TEST 1: bucket
--- request
PUT /chunky
--- error_code: 200



=== TEST 2: signed chunks (64 KiB + rest), every chunk signature checked
--- check
$::DATA{a} = random_bytes(150_000);
my $r = put_chunked('a', data => $::DATA{a}, chunk_size => 65536, mode => 'signed');
is($r->{status}, 200, 'PUT 200') or diag $r->{body};
get_is('a', $::DATA{a}, 'signed');



=== TEST 3: signed chunks with a signed trailer carrying x-amz-checksum-crc32
--- check
$::DATA{b} = random_bytes(70_000);
my $r = put_chunked('b', data => $::DATA{b}, chunk_size => 65536,
                    mode => 'signed-trailer', checksum => 'crc32');
is($r->{status}, 200, 'PUT 200') or diag $r->{body};
like($r->{headers}{'x-amz-checksum-crc32'} // '', qr/^[A-Za-z0-9+\/]{6}==$/,
     'the verified CRC32 is echoed');
get_is('b', $::DATA{b}, 'signed trailer');



=== TEST 4: unsigned chunks with a CRC32 trailer (the 2025 SDK default)
--- check
$::DATA{c} = random_bytes(200_000);
my $r = put_chunked('c', data => $::DATA{c}, chunk_size => 8192,
                    mode => 'unsigned-trailer', checksum => 'crc32');
is($r->{status}, 200, 'PUT 200') or diag $r->{body};
get_is('c', $::DATA{c}, 'unsigned trailer');



=== TEST 5: an empty object, signed chunks
--- check
my $r = put_chunked('empty', data => '', mode => 'signed');
is($r->{status}, 200, 'PUT 200') or diag $r->{body};
get_is('empty', '', 'empty');



=== TEST 6: a chunk signature changed: SignatureDoesNotMatch, nothing stored
--- check
my $r = put_chunked('badsig', data => random_bytes(100_000), chunk_size => 65536,
    mode => 'signed',
    mangle => sub { my $b = shift; $b =~ s/chunk-signature=(.)/'chunk-signature=' . ($1 eq 'a' ? 'b' : 'a')/e; $b });
is($r->{status}, 403, 'status 403');
like($r->{body}, qr{<Code>SignatureDoesNotMatch</Code>}, 'SignatureDoesNotMatch');
absent('badsig', 'bad chunk signature');



=== TEST 7: one payload byte changed after signing: SignatureDoesNotMatch, nothing stored
--- check
my $r = put_chunked('badbyte', data => 'x' x 100_000, chunk_size => 65536,
    mode => 'signed',
    mangle => sub { my $b = shift; my $i = index($b, 'x' x 100) + 50; substr($b, $i, 1, 'y'); $b });
is($r->{status}, 403, 'status 403');
like($r->{body}, qr{<Code>SignatureDoesNotMatch</Code>}, 'SignatureDoesNotMatch');
absent('badbyte', 'changed byte');



=== TEST 8: a wrong CRC32 in the trailer: BadDigest, nothing stored
--- check
my $r = put_chunked('badcrc', data => random_bytes(30_000), chunk_size => 8192,
    mode => 'unsigned-trailer', checksum => 'crc32',
    mangle => sub { my $b = shift; $b =~ s/(x-amz-checksum-crc32:)(\S+)/$1AAAAAA==/; $b });
is($r->{status}, 400, 'status 400');
like($r->{body}, qr{<Code>BadDigest</Code>}, 'BadDigest');
absent('badcrc', 'wrong CRC32');



=== TEST 9: the body ends before its last chunk: IncompleteBody, nothing stored
--- check
my $r = put_chunked('short', data => random_bytes(100_000), chunk_size => 65536,
    mode => 'signed',
    mangle_headers => sub { my $h = shift;
        my ($k) = grep { lc $_ eq 'content-length' } keys %$h; $h->{$k} -= 200 },
    mangle => sub { substr($_[0], 0, length($_[0]) - 200) });
is($r->{status}, 400, 'status 400');
like($r->{body}, qr{<Code>IncompleteBody</Code>}, 'IncompleteBody');
absent('short', 'truncated');



=== TEST 10: x-amz-decoded-content-length larger than the payload: IncompleteBody
--- check
# signed as sent: the lie is the client's, not a tampering
my $r = put_chunked('liar', data => random_bytes(20_000), chunk_size => 8192,
    mode => 'unsigned-trailer', checksum => 'crc32',
    headers => [['X-Amz-Decoded-Content-Length', 20_001]]);
is($r->{status}, 400, 'status 400');
like($r->{body}, qr{<Code>IncompleteBody</Code>}, 'IncompleteBody');
absent('liar', 'decoded length lie');



=== TEST 11: Content-Encoding "aws-chunked,gzip" is stored as "gzip"
--- check
my $data = random_bytes(9000);
my $r = put_chunked('gz', data => $data, chunk_size => 8192, mode => 'signed',
                    headers => [['Content-Encoding', 'gzip']]);
is($r->{status}, 200, 'PUT 200') or diag $r->{body};
$r = s3_request(GET => '/chunky/gz');
is($r->{headers}{'content-encoding'}, 'gzip', 'aws-chunked is not part of the stored encoding');
ok($r->{body} eq $data, 'byte-identical');
