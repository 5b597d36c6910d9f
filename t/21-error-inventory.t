# The error inventory: every S3 error code Plinth must give for bad input
# (issue "Complete S3", item 7), each with its exact status, each aimed at
# a key that already holds an object (and a versioned key with an older
# version, an open multipart upload), and after each one everything that
# was stored reads back exactly as before: same bytes, same ETag, same
# versions, the upload still open with its part.
use lib 't/lib';
use Plinth::Test;
use Digest::MD5 ();
use MIME::Base64 qw(encode_base64);

cluster_options(auth => 'sigv4');

our ($VERSIONING, $UP, $BEFORE);    # set and read by the blocks
$::VERSIONING = '<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>';

# what is stored, as a string to compare before and after every error
sub snapshot {
    my @s;
    for my $k ('/errs/k', '/errv/k') {
        my $r = s3_request(GET => $k);
        push @s, "$k $r->{status} " . ($r->{headers}{etag} // '') . ' '
            . ($r->{status} == 200 ? md5_hex($r->{body}) : '');
    }
    my $v = s3_request(GET => '/errv?versions');
    push @s, join ',', $v->{body} =~ m{<VersionId>([^<]+)</VersionId>}g;
    my $p = s3_request(GET => "/errs/mp?uploadId=$::UP");
    push @s, "parts $p->{status} " . join ',', $p->{body} =~ m{<ETag>([^<]+)</ETag>}g;
    my $l = s3_request(GET => '/errs?list-type=2');
    push @s, join ',', $l->{body} =~ m{<Key>([^<]+)</Key>}g;
    return join "\n", @s;
}

# a signed request whose head is written by hand (no Content-Length, or
# one that announces more than is sent)
sub raw_put {
    my ($uri, @headers) = @_;
    return raw_request("PUT $uri HTTP/1.1\r\n"
        . sign_request(PUT => $uri, format => 'raw', payload_hash => 'UNSIGNED-PAYLOAD',
                       headers => [Host => 'localhost', Connection => 'close', @headers])
        . "\r\n");
}

run_tests();

__DATA__

=== TEST 1: what is stored before the errors: an object, a versioned key with two versions, an open upload with a part
--- check
is(s3_request(PUT => '/errs')->{status}, 200, 'bucket errs');
is(s3_request(PUT => '/errv')->{status}, 200, 'bucket errv');
is(s3_request(PUT => '/errv?versioning', body => $::VERSIONING)->{status}, 200, 'errv versioned');
is(s3_request(PUT => '/errs/k', body => 'the original bytes')->{status}, 200, 'errs/k');
is(s3_request(PUT => '/errv/k', body => 'version one')->{status}, 200, 'errv/k v1');
is(s3_request(PUT => '/errv/k', body => 'version two')->{status}, 200, 'errv/k v2');
my $r = s3_request(POST => '/errs/mp?uploads');
($::UP) = $r->{body} =~ m{<UploadId>([^<]+)</UploadId>};
ok($::UP, 'an open upload');
is(s3_request(PUT => "/errs/mp?partNumber=1&uploadId=$::UP", body => 'part one')->{status}, 200, 'its part');
$::BEFORE = snapshot();
note($::BEFORE);



=== TEST 2: every error code: exact status and code, and nothing stored changes
--- timeout: 120
--- check
my $dm_vid;
{
    # a delete marker to read by its id (405), made on a key of its own
    s3_request(PUT => '/errv/marked', body => 'x');
    $dm_vid = s3_request(DELETE => '/errv/marked')->{headers}{'x-amz-version-id'};
    $::BEFORE = snapshot();
}
my $md5 = encode_base64(Digest::MD5::md5('something else'), '');
my @cases = (
    [MalformedXML => 400, sub { s3_request(PUT => '/errv?versioning', body => '<VersioningConfiguration><Status>Enabled') }],
    [MalformedXML => 400, sub { s3_request(POST => "/errs/mp?uploadId=$::UP", body => '<CompleteMultipartUpload><Part>') }],
    [MalformedXML => 400, sub { s3_request(POST => '/errs?delete', body => '<Delete><Object><Key>k</Key></Object>') }],
    [InvalidArgument => 400, sub { s3_request(PUT => "/errs/mp?partNumber=0&uploadId=$::UP", body => 'zero') }],
    [InvalidArgument => 400, sub { s3_request(GET => '/errv/k?versionId=not-a-version') }],
    [InvalidArgument => 400, sub { s3_request(DELETE => '/errv/k?versionId=not-a-version') }],
    [InvalidArgument => 400, sub { s3_request(PUT => '/errs/k', headers => ['x-amz-copy-source' => '/errs']) }],
    [InvalidBucketName => 400, sub { s3_request(PUT => '/Bad_Bucket') }],
    [InvalidBucketName => 400, sub { s3_request(PUT => '/ab') }],
    [KeyTooLongError => 400, sub { s3_request(PUT => '/errs/' . ('k' x 1025), body => 'long') }],
    [MissingContentLength => 411, sub { raw_put('/errs/k') }],
    [EntityTooLarge => 400, sub { raw_put('/errs/k', 'Content-Length' => 5 * 1024 ** 3 + 1) }],
    [InvalidRange => 416, sub { s3_request(GET => '/errs/k', headers => [Range => 'bytes=1000-2000']) }],
    [NoSuchUpload => 404, sub { s3_request(PUT => '/errs/mp?partNumber=1&uploadId=' . ('0' x 64), body => 'p') }],
    [NoSuchUpload => 404, sub { s3_request(POST => '/errs/mp?uploadId=' . ('0' x 64), body => '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>') }],
    [NoSuchVersion => 404, sub { s3_request(GET => '/errv/k?versionId=' . ('0' x 32)) }],
    [NoSuchVersion => 404, sub { s3_request(DELETE => '/errv/k?versionId=' . ('0' x 32)) }],
    [BadDigest => 400, sub { s3_request(PUT => '/errs/k', body => 'new bytes', headers => ['Content-MD5' => $md5]) }],
    [BadDigest => 400, sub { s3_request(PUT => '/errv/k', body => 'new bytes', headers => ['x-amz-checksum-crc32' => 'AAAAAA==']) }],
    [BadDigest => 400, sub { s3_request(PUT => "/errs/mp?partNumber=1&uploadId=$::UP", body => 'other part', headers => ['Content-MD5' => $md5]) }],
    [XAmzContentSHA256Mismatch => 400, sub { s3_request(PUT => '/errs/k', body => 'new bytes', payload_hash => '0' x 64) }],
    [XAmzContentSHA256Mismatch => 400, sub { s3_request(PUT => '/errv/k', body => 'new bytes', payload_hash => '0' x 64) }],
    [InvalidDigest => 400, sub { s3_request(PUT => '/errs/k', body => 'new bytes', headers => ['Content-MD5' => 'not base64!']) }],
    [InvalidDigest => 400, sub { s3_request(PUT => '/errs/k', body => 'new bytes', headers => ['Content-MD5' => encode_base64('short', '')]) }],
    [PreconditionFailed => 412, sub { s3_request(PUT => '/errs/k', body => 'new bytes', headers => ['If-None-Match' => '*']) }],
    [PreconditionFailed => 412, sub { s3_request(PUT => '/errs/k', body => 'new bytes', headers => ['If-Match' => '"' . md5_hex('not it') . '"']) }],
    [PreconditionFailed => 412, sub { s3_request(GET => '/errs/k', headers => ['If-Match' => '"' . md5_hex('not it') . '"']) }],
    [PreconditionFailed => 412, sub { s3_request(DELETE => '/errs/k', headers => ['If-Match' => '"' . md5_hex('not it') . '"']) }],
    [PreconditionFailed => 412, sub { s3_request(PUT => '/errs/copy', headers => ['x-amz-copy-source' => '/errs/k', 'x-amz-copy-source-if-match' => '"0"']) }],
    [MethodNotAllowed => 405, sub { s3_request(GET => "/errv/marked?versionId=$dm_vid") }],
    [MethodNotAllowed => 405, sub { s3_request(HEAD => "/errv/marked?versionId=$dm_vid") }],
);
my %seen;
for my $c (@cases) {
    my ($code, $status, $do) = @$c;
    my $r = $do->();
    my $n = ++$seen{$code};
    is($r->{status}, $status, "$code #$n: status $status");
    if ($r->{body} ne '' || $status != 405 && $status != 412) {
        like($r->{body}, qr{<Error><Code>\Q$code\E</Code><Message>[^<]+</Message>}, "$code #$n: <Code>$code</Code> with a message")
            or diag($r->{body});
    } else {
        ok(($r->{headers}{'x-amz-request-id'} // '') ne '', "$code #$n: a HEAD answer has no body, but a request id");
    }
    is(snapshot(), $::BEFORE, "$code #$n: everything stored is as it was");
}
my @codes = qw(MalformedXML InvalidArgument InvalidBucketName KeyTooLongError
    MissingContentLength EntityTooLarge InvalidRange NoSuchUpload NoSuchVersion
    BadDigest XAmzContentSHA256Mismatch InvalidDigest PreconditionFailed MethodNotAllowed);
is(join(' ', grep { !$seen{$_} } @codes), '', 'every code of the inventory was exercised');
