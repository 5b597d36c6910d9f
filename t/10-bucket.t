# Bucket operations: CreateBucket, HeadBucket, ListBuckets, DeleteBucket,
# GetBucketLocation, and their errors.
use lib 't/lib';
use Plinth::Test;

run_tests();

__DATA__

=== TEST 1: create bucket
--- request
PUT /alpha
--- error_code: 200
--- response_headers_like
x-amz-request-id: ^[0-9A-F]{16}$
Location: ^/alpha$



=== TEST 2: create it again: BucketAlreadyOwnedByYou
--- request
PUT /alpha
--- error_code: 409
--- response_body_like
<Code>BucketAlreadyOwnedByYou</Code>.*<Resource>/alpha</Resource><RequestId>[0-9A-F]{16}</RequestId>



=== TEST 3: head bucket
--- request
HEAD /alpha
--- error_code: 200
--- response_headers
x-amz-bucket-region: us-east-1



=== TEST 4: head missing bucket: 404, no body
--- request
HEAD /nothere
--- error_code: 404
--- response_body chomp



=== TEST 5: list buckets
--- setup
s3_request(PUT => '/beta');
--- request
GET /
--- error_code: 200
--- response_headers
Content-Type: application/xml
--- response_body_like
<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>admin</ID><DisplayName>admin</DisplayName></Owner><Buckets><Bucket><Name>alpha</Name><CreationDate>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z</CreationDate></Bucket><Bucket><Name>beta</Name>



=== TEST 6: bucket location
--- request
GET /alpha?location
--- error_code: 200
--- response_body_like
<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></LocationConstraint>



=== TEST 7: invalid bucket names
--- request eval
[ map { "PUT /$_" } qw(ab UPPER under_score -dash dash- a..b 192.168.1.2 xn--abc b-s3alias), 'a' x 64 ]
--- error_code: 400
--- response_body_like
<Code>InvalidBucketName</Code>



=== TEST 8: valid edge names
--- request eval
[ map { "PUT /$_" } 'abc', 'a-b.c1', '1.2.3', 'a' x 63 ]
--- error_code: 200



=== TEST 9: delete a bucket that is not empty
--- setup
my $r = s3_request(PUT => '/alpha/k', body => 'x');
die "put failed: $r->{status}" unless $r->{status} == 200;
--- request
DELETE /alpha
--- error_code: 409
--- response_body_like
<Code>BucketNotEmpty</Code>



=== TEST 10: delete the object, then the bucket
--- request eval
["DELETE /alpha/k", "DELETE /alpha", "HEAD /alpha"]
--- error_code eval
[204, 204, 404]



=== TEST 11: delete a missing bucket
--- request
DELETE /alpha
--- error_code: 404
--- response_body_like
<Code>NoSuchBucket</Code><Message>[^<]+</Message><BucketName>alpha</BucketName>



=== TEST 12: a subresource not served yet is 501, never a wrong answer
--- request
GET /beta?tagging
--- error_code: 501
--- response_body_like
<Code>NotImplemented</Code>



=== TEST 13: method not allowed on a bucket
--- request
POST /beta
--- error_code: 405
--- response_body_like
<Code>MethodNotAllowed</Code>



=== TEST 14: bucket created again after delete
--- request eval
["PUT /alpha", "HEAD /alpha"]
--- error_code: 200



=== TEST 15: an error before the body is read does not poison the connection
--- request eval
[ "PUT /Bad_Name/key\n" . ("x" x 70000), "HEAD /beta" ]
--- error_code eval
[400, 200]



=== TEST 16: CreateBucket with a LocationConstraint body
--- request
PUT /gamma
<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>us-east-1</LocationConstraint></CreateBucketConfiguration>
--- error_code: 200
