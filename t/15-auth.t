# Authentication and access: SigV4 in the Authorization header and in
# presigned URLs, payload hashes, the errors S3 gives for each failure,
# bucket ownership between users, and canned ACLs (private, public-read).
use lib 't/lib';
use Plinth::Test;

cluster_options(auth => 'sigv4');

run_tests();

__DATA__

=== TEST 1: a signed request works
--- request
PUT /authb
--- error_code: 200



=== TEST 2: signed PUT and GET of an object, payload hash checked
--- request eval
["PUT /authb/k\nsigned body", "GET /authb/k"]
--- error_code eval
[200, 200]
--- response_body eval
["", "signed body"]



=== TEST 3: unsigned request to a private bucket: AccessDenied
--- unsigned
--- request
GET /authb/k
--- error_code: 403
--- response_body_like
<Code>AccessDenied</Code>



=== TEST 4: unsigned ListBuckets: AccessDenied
--- unsigned
--- request
GET /
--- error_code: 403
--- response_body_like
<Code>AccessDenied</Code>



=== TEST 5: unsigned PUT: AccessDenied, nothing stored
--- unsigned
--- request
PUT /authb/anon
hello
--- error_code: 403
--- check
my $r = s3_request(GET => '/authb/anon');
is($r->{status}, 404, 'nothing was stored');



=== TEST 6: a wrong signature: SignatureDoesNotMatch
--- more_headers
Authorization: AWS4-HMAC-SHA256 Credential=AKIDNOTREAL1234567/20250101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000
--- unsigned
--- request
GET /authb/k
--- error_code: 403
--- response_body_like
<Code>(InvalidAccessKeyId|AccessDenied|RequestTimeTooSkewed)</Code>



=== TEST 7: an unknown access key: InvalidAccessKeyId
--- check
my $c = $cluster->credentials;
my $r = s3_request(GET => '/authb/k',
                   sign => { access_key => 'PLNOTAKEY000000000000', secret_key => 'x' x 40 });
is($r->{status}, 403, 'status 403');
like($r->{body}, qr{<Code>InvalidAccessKeyId</Code>}, 'InvalidAccessKeyId');



=== TEST 8: the right key with a wrong secret: SignatureDoesNotMatch
--- check
my $c = $cluster->credentials;
my $r = s3_request(GET => '/authb/k',
                   sign => { access_key => $c->{access_key}, secret_key => 'y' x 40 });
is($r->{status}, 403, 'status 403');
like($r->{body}, qr{<Code>SignatureDoesNotMatch</Code>}, 'SignatureDoesNotMatch');



=== TEST 9: a body that does not match x-amz-content-sha256: XAmzContentSHA256Mismatch, nothing stored
--- payload_hash: 0000000000000000000000000000000000000000000000000000000000000000
--- request
PUT /authb/mismatch
some bytes
--- error_code: 400
--- response_body_like
<Code>XAmzContentSHA256Mismatch</Code>
--- check
my $r = s3_request(GET => '/authb/mismatch');
is($r->{status}, 404, 'nothing was stored');



=== TEST 10: UNSIGNED-PAYLOAD is accepted
--- payload_hash: UNSIGNED-PAYLOAD
--- request
PUT /authb/unsignedpayload
free bytes
--- error_code: 200



=== TEST 11: missing x-amz-content-sha256
--- payload_hash:
--- request
GET /authb/k
--- error_code: 400
--- response_body_like
<Code>InvalidRequest</Code><Message>Missing required header for this request: x-amz-content-sha256



=== TEST 12: request time 20 minutes off: RequestTimeTooSkewed
--- sign_date: -1200
--- request
GET /authb/k
--- error_code: 403
--- response_body_like
<Code>RequestTimeTooSkewed</Code>



=== TEST 13: a malformed Authorization header: AuthorizationHeaderMalformed
--- unsigned
--- more_headers
Authorization: AWS4-HMAC-SHA256 Credential=garbage
x-amz-date: 20250101T000000Z
x-amz-content-sha256: UNSIGNED-PAYLOAD
--- request
GET /authb/k
--- error_code: 400
--- response_body_like
<Code>AuthorizationHeaderMalformed</Code>



=== TEST 14: a v2 signature is not accepted
--- unsigned
--- more_headers
Authorization: AWS AKIDEXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=
--- request
GET /authb/k
--- error_code: 400
--- response_body_like
<Code>InvalidArgument</Code>



=== TEST 15: presigned GET works
--- presign: 300
--- request
GET /authb/k
--- error_code: 200
--- response_body: signed body



=== TEST 16: an expired presigned URL: AccessDenied
--- check
my $url = presign_url('GET', '/authb/k', expires => 1, time => time - 120);
my $r = s3_request(GET => $url, unsigned => 1);
is($r->{status}, 403, 'status 403');
like($r->{body}, qr{<Code>AccessDenied</Code><Message>[^<]*expired}i, 'AccessDenied: expired');



=== TEST 17: another user cannot read, write or delete a private bucket
--- sign_as: user2
--- request eval
["GET /authb/k", "PUT /authb/k2\nx", "DELETE /authb/k", "DELETE /authb", "GET /authb?list-type=2", "HEAD /authb"]
--- error_code eval
[403, 403, 403, 403, 403, 403]
--- check
my $r = s3_request(GET => '/authb/k');
is($r->{body}, 'signed body', 'the owner still reads the object unchanged');



=== TEST 18: a user lists only its own buckets
--- setup
my $r = s3_request(PUT => '/user2b', sign_as => 'user2');
die "user2 create: $r->{status}" unless $r->{status} == 200;
--- sign_as: user2
--- request
GET /
--- error_code: 200
--- response_body_like
<Buckets><Bucket><Name>user2b</Name>
--- response_body_unlike
<Name>authb</Name>



=== TEST 19: public-read bucket: anyone may GET, HEAD and list, nobody else may write
--- setup
my $r = s3_request(PUT => '/pubb', headers => { 'x-amz-acl' => 'public-read' });
die "create: $r->{status}" unless $r->{status} == 200;
$r = s3_request(PUT => '/pubb/doc', body => 'public words');
die "put: $r->{status}" unless $r->{status} == 200;
--- unsigned
--- request eval
["GET /pubb/doc", "HEAD /pubb/doc", "GET /pubb?list-type=2", "HEAD /pubb", "PUT /pubb/evil\nx", "DELETE /pubb/doc"]
--- error_code eval
[200, 200, 200, 200, 403, 403]
--- check
my $r = s3_request(GET => '/pubb/doc');
is($r->{body}, 'public words', 'the object is unchanged');



=== TEST 20: public-read object in a private bucket
--- setup
my $r = s3_request(PUT => '/authb/pubobj', body => 'shared', headers => { 'x-amz-acl' => 'public-read' });
die "put: $r->{status}" unless $r->{status} == 200;
--- unsigned
--- request eval
["GET /authb/pubobj", "GET /authb/k"]
--- error_code eval
[200, 403]



=== TEST 21: an unsupported canned ACL: 501, and a made-up one: 400
--- request eval
["PUT /authb/acl1\nx", "PUT /authb/acl2\nx"]
--- more_headers eval
["x-amz-acl: authenticated-read", "x-amz-acl: everyone-please"]
--- error_code eval
[501, 400]



=== TEST 22: GetBucketAcl: the owner has FULL_CONTROL
--- request
GET /authb?acl
--- error_code: 200
--- response_body_like
<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>admin</ID><DisplayName>admin</DisplayName></Owner><AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>admin</ID><DisplayName>admin</DisplayName></Grantee><Permission>FULL_CONTROL</Permission></Grant></AccessControlList></AccessControlPolicy>



=== TEST 23: PutBucketAcl public-read opens reads to anyone; private closes them again
--- request eval
["PUT /authb?acl", "GET /authb?acl"]
--- more_headers eval
["x-amz-acl: public-read", ""]
--- error_code eval
[200, 200]
--- response_body_like eval
["", "<URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee><Permission>READ</Permission>"]
--- check
my $r = s3_request(GET => '/authb/k', unsigned => 1);
is($r->{status}, 200, 'anyone reads now');
$r = s3_request(PUT => '/authb?acl', headers => { 'x-amz-acl' => 'private' });
is($r->{status}, 200, 'back to private');
$r = s3_request(GET => '/authb/k', unsigned => 1);
is($r->{status}, 403, 'closed again');



=== TEST 24: GetObjectAcl and PutObjectAcl
--- request eval
["GET /authb/k?acl", "PUT /authb/k?acl", "GET /authb/k?acl", "GET /authb/nothere?acl"]
--- more_headers eval
["", "x-amz-acl: public-read", "", ""]
--- error_code eval
[200, 200, 200, 404]
--- response_body_like eval
["<Permission>FULL_CONTROL</Permission></Grant></AccessControlList>", "", "AllUsers</URI></Grantee><Permission>READ</Permission>", "<Code>NoSuchKey</Code>"]
--- check
my $r = s3_request(GET => '/authb/k', unsigned => 1);
is($r->{status}, 200, 'the object is readable by anyone');



=== TEST 25: ACLs are the owner's alone; a full ACL document is not supported
--- request eval
["GET /authb?acl", "PUT /authb?acl", "PUT /authb?acl\n<AccessControlPolicy/>"]
--- sign_as eval
["user2", "user2", "admin"]
--- more_headers eval
["", "x-amz-acl: public-read", ""]
--- error_code eval
[403, 403, 501]



=== TEST 26: access keys are cached per worker (plinth_key_cache, 5 s): 30 requests look the key up about once
--- check
my $c = cluster();
$c->psql("INSERT INTO users (user_id, display_name) VALUES ('cacher', 'Cacher') ON CONFLICT DO NOTHING");
$c->psql("INSERT INTO access_keys (access_key_id, secret_key, user_id) VALUES ('PLCACHEDKEY0000001', 'cachedsecret0000cachedsecret', 'cacher')");
my $who = 'PLCACHEDKEY0000001:cachedsecret0000cachedsecret';
is(s3_request(PUT => '/cachedb', sign_as => $who)->{status}, 200, 'the new key works');
my $scans = sub {
    Time::HiRes::sleep(1.2);    # PostgreSQL publishes table statistics about once a second
    my @r = $c->psql("SELECT coalesce(idx_scan, 0) + coalesce(seq_scan, 0) FROM pg_stat_user_tables WHERE relname = 'access_keys'");
    return $r[0][0];
};
my $before = $scans->();
is(s3_request(GET => '/cachedb?list-type=2', sign_as => $who)->{status}, 200, "list $_") for 1 .. 30;
my $after = $scans->();
cmp_ok($after - $before, '<=', 4, "30 requests, " . ($after - $before) . " key lookups (one per worker at most, some margin)");
my $r = s3_request(GET => '/cachedb?list-type=2', sign_as => 'PLCACHEDKEY0000001:wrongsecret0000wrongsecret');
is($r->{status}, 403, 'a cached key with a wrong secret: 403');
like($r->{body}, qr{<Code>SignatureDoesNotMatch</Code>}, 'SignatureDoesNotMatch: the cache never skips the signature check');



=== TEST 27: a deleted key stops working within plinth_key_cache
--- check
my $c = cluster();
my $who = 'PLCACHEDKEY0000001:cachedsecret0000cachedsecret';
is(s3_request(GET => '/cachedb?list-type=2', sign_as => $who)->{status}, 200, 'works (and is cached)');
$c->psql("DELETE FROM access_keys WHERE access_key_id = 'PLCACHEDKEY0000001'");
Time::HiRes::sleep(5.5);
my $r = s3_request(GET => '/cachedb?list-type=2', sign_as => $who);
is($r->{status}, 403, 'after the cache time: 403');
like($r->{body}, qr{<Code>InvalidAccessKeyId</Code>}, 'InvalidAccessKeyId');
