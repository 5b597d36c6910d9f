# CopyObject: within a bucket and across buckets, metadata COPY and
# REPLACE, onto itself, from a multipart object, conditions on the source,
# and who may copy what. A copy refers to the source's blobs: the source
# may be overwritten or deleted afterwards and the copy still reads whole.
use lib 't/lib';
use Plinth::Test;

cluster_options(auth => 'sigv4');

run_tests();

__DATA__

=== TEST 1: source object
--- setup
s3_request(PUT => '/copysrc');
s3_request(PUT => '/copydst');
--- request
PUT /copysrc/orig
original bytes
--- more_headers
Content-Type: text/x-original
x-amz-meta-colour: green
--- error_code: 200
--- check
$::etag = $res->{headers}{etag};



=== TEST 2: copy within the bucket keeps type and metadata (COPY)
--- more_headers
x-amz-copy-source: /copysrc/orig
--- request
PUT /copysrc/copy1
--- error_code: 200
--- response_body_like
<CopyObjectResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LastModified>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z</LastModified><ETag>&quot;[0-9a-f]{32}&quot;</ETag></CopyObjectResult>
--- check
my $r = s3_request(GET => '/copysrc/copy1');
is($r->{body}, 'original bytes', 'same bytes');
is($r->{headers}{etag}, $::etag, 'same ETag');
is($r->{headers}{'content-type'}, 'text/x-original', 'type copied');
is($r->{headers}{'x-amz-meta-colour'}, 'green', 'metadata copied');



=== TEST 3: copy to another bucket with REPLACE takes the request's metadata
--- more_headers
x-amz-copy-source: copysrc/orig
x-amz-metadata-directive: REPLACE
Content-Type: text/x-new
x-amz-meta-size: large
--- request
PUT /copydst/copy2
--- error_code: 200
--- check
my $r = s3_request(GET => '/copydst/copy2');
is($r->{body}, 'original bytes', 'same bytes');
is($r->{headers}{'content-type'}, 'text/x-new', 'type replaced');
is($r->{headers}{'x-amz-meta-size'}, 'large', 'new metadata');
ok(!exists $r->{headers}{'x-amz-meta-colour'}, 'old metadata gone');



=== TEST 4: onto itself without REPLACE: InvalidRequest; with REPLACE: allowed
--- request eval
["PUT /copysrc/orig", "PUT /copysrc/orig"]
--- more_headers eval
["x-amz-copy-source: /copysrc/orig", "x-amz-copy-source: /copysrc/orig\nx-amz-metadata-directive: REPLACE\nx-amz-meta-colour: blue"]
--- error_code eval
[400, 200]
--- response_body_like eval
["<Code>InvalidRequest</Code>", "<CopyObjectResult"]
--- check
my $r = s3_request(GET => '/copysrc/orig');
is($r->{body}, 'original bytes', 'bytes kept');
is($r->{headers}{'x-amz-meta-colour'}, 'blue', 'metadata replaced in place');



=== TEST 5: the copy survives the source being overwritten and deleted
--- setup
s3_request(PUT => '/copysrc/orig', body => 'newer bytes');
s3_request(DELETE => '/copysrc/orig');
--- request
GET /copydst/copy2
--- error_code: 200
--- response_body: original bytes



=== TEST 6: copy of a multipart object
--- setup
my $part = random_bytes(5 * 1024 * 1024);
my $last = random_bytes(1000);
my $r = s3_request(POST => '/copysrc/mp?uploads');
my ($id) = $r->{body} =~ m{<UploadId>([^<]+)</UploadId>} or die "no upload id: $r->{body}";
my $e1 = s3_request(PUT => "/copysrc/mp?partNumber=1&uploadId=$id", body => $part, timeout => 30)->{headers}{etag};
my $e2 = s3_request(PUT => "/copysrc/mp?partNumber=2&uploadId=$id", body => $last)->{headers}{etag};
$r = s3_request(POST => "/copysrc/mp?uploadId=$id", body =>
    "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>$e1</ETag></Part>"
  . "<Part><PartNumber>2</PartNumber><ETag>$e2</ETag></Part></CompleteMultipartUpload>");
die "complete: $r->{status} $r->{body}" unless $r->{status} == 200;
$::mp = $part . $last;
--- more_headers
x-amz-copy-source: /copysrc/mp
--- request
PUT /copydst/mpcopy
--- error_code: 200
--- check
my $r = s3_request(GET => '/copydst/mpcopy', timeout => 30);
ok($r->{body} eq $::mp, 'the multipart copy is byte-identical');
like($r->{headers}{etag}, qr/-2"$/, 'multipart ETag kept');
$r = s3_request(GET => '/copydst/mpcopy', headers => { Range => 'bytes=5242870-5242889' });
is($r->{status}, 206, 'range across the part boundary');
ok($r->{body} eq substr($::mp, 5242870, 20), 'range bytes');



=== TEST 7: a source for the conditions
--- request
PUT /copysrc/c
cond
--- error_code: 200
--- check
$::ce = $res->{headers}{etag};



=== TEST 8: x-amz-copy-source-if-match / -if-none-match
--- request eval
["PUT /copydst/c1", "PUT /copydst/c2", "PUT /copydst/c3", "PUT /copydst/c4"]
--- more_headers eval
["x-amz-copy-source: /copysrc/c\nx-amz-copy-source-if-match: $::ce",
 "x-amz-copy-source: /copysrc/c\nx-amz-copy-source-if-match: \"0123\"",
 "x-amz-copy-source: /copysrc/c\nx-amz-copy-source-if-none-match: $::ce",
 "x-amz-copy-source: /copysrc/c\nx-amz-copy-source-if-none-match: \"0123\""]
--- error_code eval
[200, 412, 412, 200]
--- check
is(s3_request(GET => '/copydst/c2')->{status}, 404, 'a failed condition copies nothing');



=== TEST 9: a missing source key, a missing source bucket, a malformed source
--- request eval
["PUT /copydst/x1", "PUT /copydst/x2", "PUT /copydst/x3"]
--- more_headers eval
["x-amz-copy-source: /copysrc/nothing", "x-amz-copy-source: /nobucket/k", "x-amz-copy-source: justabucket"]
--- error_code eval
[404, 404, 400]
--- response_body_like eval
["<Code>NoSuchKey</Code>", "<Code>NoSuchBucket</Code>", "<Code>InvalidArgument</Code>"]



=== TEST 10: another user may not copy from a private bucket, nor into one not theirs
--- setup
my $r = s3_request(PUT => '/user2copy', sign_as => 'user2');
die "user2 bucket: $r->{status}" unless $r->{status} == 200;
--- sign_as: user2
--- request eval
["PUT /user2copy/stolen", "PUT /copydst/planted"]
--- more_headers eval
["x-amz-copy-source: /copysrc/c", "x-amz-copy-source: /user2copy/stolen"]
--- error_code eval
[403, 403]



=== TEST 11: copy of an older version by ?versionId=: its bytes, its checksum; both version ids answered
--- check
my $v = '<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>';
is(s3_request(PUT => '/copyver')->{status}, 200, 'bucket');
is(s3_request(PUT => '/copyver?versioning', body => $v)->{status}, 200, 'versioning on');
my $r = s3_request(PUT => '/copyver/k', body => 'version one',
                   headers => ['x-amz-checksum-sha256' => checksum_base64('sha256', 'version one')]);
my $v1 = $r->{headers}{'x-amz-version-id'};
$r = s3_request(PUT => '/copyver/k', body => 'version two');
my $v2 = $r->{headers}{'x-amz-version-id'};
ok($v1 && $v2 && $v1 ne $v2, 'two versions');
$r = s3_request(PUT => '/copydst/from-v1', headers => ['x-amz-copy-source' => "/copyver/k?versionId=$v1"]);
is($r->{status}, 200, 'copy of version one: 200') or diag $r->{body};
is($r->{headers}{'x-amz-copy-source-version-id'}, $v1, 'x-amz-copy-source-version-id names the source version');
ok(!exists $r->{headers}{'x-amz-version-id'}, 'no x-amz-version-id into an unversioned bucket');
is(s3_request(GET => '/copydst/from-v1')->{body}, 'version one', 'the copy has the old bytes');
$r = s3_request(HEAD => '/copydst/from-v1', headers => ['x-amz-checksum-mode' => 'ENABLED']);
is($r->{headers}{'x-amz-checksum-sha256'}, checksum_base64('sha256', 'version one'), 'and its checksum');
# into the versioned bucket itself: a new version, answered
$r = s3_request(PUT => '/copyver/k', headers => ['x-amz-copy-source' => "/copyver/k?versionId=$v1"]);
is($r->{status}, 200, 'restoring version one over the key: 200 (no REPLACE needed for a version)') or diag $r->{body};
my $v3 = $r->{headers}{'x-amz-version-id'} // '';
like($v3, qr/^[0-9a-f]{32}$/, 'x-amz-version-id of the new version');
ok($v3 ne $v1 && $v3 ne $v2, 'a new version id');
is(s3_request(GET => '/copyver/k')->{body}, 'version one', 'the current version has the restored bytes');
is(s3_request(GET => "/copyver/k?versionId=$v2")->{body}, 'version two', 'version two is still there');



=== TEST 12: copy source versions that do not exist, a delete marker, a malformed id
--- check
my $r = s3_request(DELETE => '/copyver/k');
my $marker = $r->{headers}{'x-amz-version-id'};
ok($marker, 'a delete marker');
$r = s3_request(PUT => '/copydst/bad1', headers => ['x-amz-copy-source' => '/copyver/k?versionId=' . ('0' x 32)]);
is($r->{status}, 404, 'unknown version: 404');
like($r->{body}, qr{<Code>NoSuchVersion</Code>}, 'NoSuchVersion');
$r = s3_request(PUT => '/copydst/bad2', headers => ['x-amz-copy-source' => "/copyver/k?versionId=$marker"]);
is($r->{status}, 400, 'a delete marker by version id: 400');
like($r->{body}, qr{<Code>InvalidRequest</Code>}, 'InvalidRequest');
$r = s3_request(PUT => '/copydst/bad3', headers => ['x-amz-copy-source' => '/copyver/k?versionId=nope']);
is($r->{status}, 400, 'a malformed version id: 400');
like($r->{body}, qr{<Code>InvalidArgument</Code>}, 'InvalidArgument');
$r = s3_request(PUT => '/copydst/bad4', headers => ['x-amz-copy-source' => '/copyver/k']);
is($r->{status}, 404, 'the current version is a delete marker: 404');
like($r->{body}, qr{<Code>NoSuchKey</Code>}, 'NoSuchKey');
is(s3_request(GET => "/copydst/bad$_")->{status}, 404, "nothing copied ($_)") for 1 .. 4;
s3_request(PUT => '/copysrc/plain', body => 'plain bytes');
$r = s3_request(PUT => '/copydst/null-src', headers => ['x-amz-copy-source' => '/copysrc/plain?versionId=null']);
is($r->{status}, 200, 'the null version of an unversioned source: 200');
is($r->{headers}{'x-amz-copy-source-version-id'}, undef, 'an unversioned source has no version id to answer');
is(s3_request(GET => '/copydst/null-src')->{body}, 'plain bytes', 'copied');
