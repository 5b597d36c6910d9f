# Object operations: PutObject, GetObject, HeadObject, DeleteObject, and
# their errors: digests, metadata, keys, ranges, lengths, request ids.
use lib 't/lib';
use Plinth::Test;
use MIME::Base64 ();
use Digest::SHA ();

# ---------------------------------------------------------------- helpers
# (package main: setup, check and eval sections call them)

our %BODY;    # bodies stored by a setup, for the check that follows

sub b64md5 { MIME::Base64::encode_base64(Digest::MD5::md5($_[0]), '') }

# percent-encodes every byte but the unreserved ones and '/'
sub pct {
    my ($s) = @_;
    $s =~ s{([^A-Za-z0-9\-._~/])}{sprintf '%%%02X', ord $1}ge;
    return $s;
}

sub xml_unescape {
    my ($s) = @_;
    $s =~ s/&lt;/</g;
    $s =~ s/&gt;/>/g;
    $s =~ s/&quot;/"/g;
    $s =~ s/&apos;/'/g;
    $s =~ s/&#(\d+);/chr $1/ge;
    $s =~ s/&amp;/&/g;
    return $s;
}

sub put_ok {
    my ($uri, $body, @headers) = @_;
    my $r = s3_request(PUT => $uri, body => $body,
        @headers ? (headers => [@headers]) : ());
    die "PUT $uri: $r->{status} " . ($r->{error} // '') . " $r->{body}\n"
        unless $r->{status} == 200;
    return $r;
}

# every key of the bucket under $prefix, as ListObjectsV2 names them
sub list_keys {
    my ($prefix) = @_;
    my $r = s3_request(GET => '/objects?list-type=2&prefix=' . pct($prefix));
    die "list: $r->{status} $r->{body}\n" unless $r->{status} == 200;
    return [ map { xml_unescape($_) } $r->{body} =~ m{<Key>(.*?)</Key>}g ];
}

run_tests();

__DATA__

=== TEST 1: create the bucket the objects live in
--- request
PUT /objects
--- error_code: 200



=== TEST 2: put: 200, quoted MD5 ETag, request id, no body
--- request
PUT /objects/hello
hello world
--- error_code: 200
--- response_headers
ETag: "5eb63bbbe01eeed093cb22bb8f5acdc3"
--- response_headers_like
x-amz-request-id: ^[0-9A-F]{16}$
--- response_body chomp



=== TEST 3: get: the body, its length, type, ETag, Last-Modified
--- request
GET /objects/hello
--- error_code: 200
--- response_headers
Content-Length: 11
Content-Type: binary/octet-stream
ETag: "5eb63bbbe01eeed093cb22bb8f5acdc3"
Accept-Ranges: bytes
!Content-Range
--- response_headers_like
Last-Modified: ^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$
x-amz-request-id: ^[0-9A-F]{16}$
--- response_body chomp
hello world



=== TEST 4: head: Content-Length, ETag, Last-Modified, type, and no body
--- request
HEAD /objects/hello
--- error_code: 200
--- response_headers
Content-Length: 11
Content-Type: binary/octet-stream
ETag: "5eb63bbbe01eeed093cb22bb8f5acdc3"
--- response_headers_like
Last-Modified: ^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$
x-amz-request-id: ^[0-9A-F]{16}$
--- response_body chomp



=== TEST 5: Last-Modified is the time of the write (within a minute)
--- request
HEAD /objects/hello
--- error_code: 200
--- check
my %mon = (Jan => 0, Feb => 1, Mar => 2, Apr => 3, May => 4, Jun => 5,
    Jul => 6, Aug => 7, Sep => 8, Oct => 9, Nov => 10, Dec => 11);
my ($d, $m, $y, $H, $M, $S) = ($res->{headers}{'last-modified'} // '')
    =~ /^\w{3}, (\d\d) (\w{3}) (\d{4}) (\d\d):(\d\d):(\d\d) GMT$/;
ok(defined $S, 'Last-Modified parses');
require Time::Local;
my $t = Time::Local::timegm($S, $M, $H, $d, $mon{$m}, $y);
ok(abs(time - $t) < 60, "Last-Modified is now (off by " . (time - $t) . "s)");



=== TEST 6: zero-byte object: put
--- request
PUT /objects/empty
--- error_code: 200
--- response_headers
ETag: "d41d8cd98f00b204e9800998ecf8427e"



=== TEST 7: zero-byte object: get is 200 with an empty body
--- request
GET /objects/empty
--- error_code: 200
--- response_headers
Content-Length: 0
ETag: "d41d8cd98f00b204e9800998ecf8427e"
--- response_body chomp



=== TEST 8: zero-byte object: head
--- request
HEAD /objects/empty
--- error_code: 200
--- response_headers
Content-Length: 0
ETag: "d41d8cd98f00b204e9800998ecf8427e"



=== TEST 9: one random byte round-trips
--- setup
$main::BODY{one} = random_bytes(1);
put_ok('/objects/rand/one', $main::BODY{one});
--- request
GET /objects/rand/one
--- error_code: 200
--- response_headers
Content-Length: 1
--- check
is($res->{body}, $main::BODY{one}, 'the same byte');
is($res->{headers}{etag}, '"' . md5_hex($main::BODY{one}) . '"', 'ETag');



=== TEST 10: 10 KiB of random bytes round-trip
--- setup
$main::BODY{ten} = random_bytes(10 * 1024);
my $r = put_ok('/objects/rand/ten', $main::BODY{ten});
die "PUT ETag $r->{headers}{etag}\n"
    unless $r->{headers}{etag} eq '"' . md5_hex($main::BODY{ten}) . '"';
--- request
GET /objects/rand/ten
--- error_code: 200
--- response_headers
Content-Length: 10240
--- check
ok($res->{body} eq $main::BODY{ten}, 'byte-identical')
    or diag('md5 got ' . md5_hex($res->{body}) . ', length '
        . length $res->{body});
is($res->{headers}{etag}, '"' . md5_hex($main::BODY{ten}) . '"', 'ETag');



=== TEST 11: 3 MiB of random bytes: PUT answers the body's MD5 as ETag
--- setup
$main::BODY{big} = random_bytes(3 * 1024 * 1024);
--- check
my $r = s3_request(PUT => '/objects/rand/big', body => $main::BODY{big},
    timeout => 60);
is($r->{status}, 200, 'PUT 200');
is($r->{headers}{etag}, '"' . md5_hex($main::BODY{big}) . '"', 'PUT ETag');
like($r->{headers}{'x-amz-request-id'} // '', qr/^[0-9A-F]{16}$/,
    'request id');



=== TEST 12: 3 MiB of random bytes: GET is byte-identical
--- request
GET /objects/rand/big
--- timeout: 60
--- error_code: 200
--- response_headers
Content-Length: 3145728
--- check
is(length $res->{body}, 3 * 1024 * 1024, 'length');
is(md5_hex($res->{body}), md5_hex($main::BODY{big}), 'md5 of the body');
is($res->{headers}{etag}, '"' . md5_hex($main::BODY{big}) . '"', 'ETag');



=== TEST 13: 3 MiB: HEAD gives the same length and ETag
--- request
HEAD /objects/rand/big
--- error_code: 200
--- response_headers
Content-Length: 3145728
--- check
is($res->{headers}{etag}, '"' . md5_hex($main::BODY{big}) . '"', 'ETag');
is($res->{body}, '', 'no body');



=== TEST 14: the ETag is the same on PUT, GET and HEAD
--- setup
$main::BODY{same} = random_bytes(777);
$main::BODY{same_put} = put_ok('/objects/same', $main::BODY{same});
--- request eval
["GET /objects/same", "HEAD /objects/same"]
--- error_code: 200
--- check
my $want = '"' . md5_hex($main::BODY{same}) . '"';
is($main::BODY{same_put}{headers}{etag}, $want, 'PUT ETag');
is($responses->[0]{headers}{etag}, $want, 'GET ETag');
is($responses->[1]{headers}{etag}, $want, 'HEAD ETag');



=== TEST 15: Content-MD5 that matches: 200
--- more_headers eval
"Content-MD5: " . b64md5("original")
--- request
PUT /objects/md5
original
--- error_code: 200
--- response_headers
ETag: "919c8b643b7133116b02fc0d9bb7df3f"



=== TEST 16: Content-MD5 that does not match: 400 BadDigest
--- more_headers eval
"Content-MD5: " . b64md5("something else")
--- request
PUT /objects/md5
changed
--- error_code: 400
--- response_headers
Content-Type: application/xml
--- response_headers_like
x-amz-request-id: ^[0-9A-F]{16}$
--- response_body_like
^<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>BadDigest</Code><Message>[^<]+</Message><Resource>/objects/md5</Resource><RequestId>[0-9A-F]{16}</RequestId></Error>$



=== TEST 17: after BadDigest the object still holds its previous body
--- request
GET /objects/md5
--- error_code: 200
--- response_headers
ETag: "919c8b643b7133116b02fc0d9bb7df3f"
--- response_body chomp
original



=== TEST 18: BadDigest on a new key does not create it
--- more_headers eval
"Content-MD5: " . b64md5("something else")
--- request eval
["PUT /objects/md5-new\nbody", "GET /objects/md5-new"]
--- error_code eval
[400, 404]
--- response_body_like eval
["<Code>BadDigest</Code>", "<Code>NoSuchKey</Code>"]



=== TEST 19: Content-MD5 that is not base64: 400 InvalidDigest
--- more_headers
Content-MD5: not*base64!
--- request
PUT /objects/md5
changed
--- error_code: 400
--- response_body_like
^<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>InvalidDigest</Code><Message>[^<]+</Message><Resource>/objects/md5</Resource><RequestId>[0-9A-F]{16}</RequestId></Error>$



=== TEST 20: Content-MD5 of 15 bytes: 400 InvalidDigest
--- more_headers eval
"Content-MD5: " . MIME::Base64::encode_base64(substr(Digest::MD5::md5("changed"), 0, 15), '')
--- request
PUT /objects/md5
changed
--- error_code: 400
--- response_body_like
<Code>InvalidDigest</Code>



=== TEST 21: Content-MD5 given as hex (24 bytes once decoded): 400 InvalidDigest
--- more_headers
Content-MD5: 8977dfac2f8e04cb96e66882235f5aba
--- request
PUT /objects/md5
changed
--- error_code: 400
--- response_body_like
<Code>InvalidDigest</Code>



=== TEST 22: after InvalidDigest the object is unchanged
--- request
GET /objects/md5
--- error_code: 200
--- response_body chomp
original



=== TEST 23: Content-MD5 checked on a 3 MiB body (spooled to disk): match
--- setup
$main::BODY{bigmd5} = random_bytes(3 * 1024 * 1024 + 17);
--- check
my $r = s3_request(PUT => '/objects/bigmd5', body => $main::BODY{bigmd5},
    headers => ['Content-MD5' => b64md5($main::BODY{bigmd5})], timeout => 60);
is($r->{status}, 200, 'PUT 200');
is($r->{headers}{etag}, '"' . md5_hex($main::BODY{bigmd5}) . '"', 'ETag');



=== TEST 24: Content-MD5 checked on a 3 MiB body: mismatch is BadDigest, object unchanged
--- check
my $other = random_bytes(3 * 1024 * 1024 + 17);
my $r = s3_request(PUT => '/objects/bigmd5', body => $other,
    headers => ['Content-MD5' => b64md5($main::BODY{bigmd5})], timeout => 60);
is($r->{status}, 400, 'PUT 400');
like($r->{body}, qr{<Code>BadDigest</Code>}, 'BadDigest');
my $g = s3_request(GET => '/objects/bigmd5', timeout => 60);
is($g->{status}, 200, 'GET 200');
is(md5_hex($g->{body}), md5_hex($main::BODY{bigmd5}), 'previous body');



=== TEST 25: Content-Type is stored
--- more_headers
Content-Type: text/plain; charset=utf-8
--- request
PUT /objects/typed
some text
--- error_code: 200



=== TEST 26: Content-Type is returned by GET
--- request
GET /objects/typed
--- error_code: 200
--- response_headers
Content-Type: text/plain; charset=utf-8
--- response_body chomp
some text



=== TEST 27: Content-Type is returned by HEAD
--- request
HEAD /objects/typed
--- error_code: 200
--- response_headers
Content-Type: text/plain; charset=utf-8



=== TEST 28: without Content-Type the type is binary/octet-stream
--- request eval
["PUT /objects/untyped\nabc", "GET /objects/untyped", "HEAD /objects/untyped"]
--- error_code eval
[200, 200, 200]
--- response_headers eval
["", "Content-Type: binary/octet-stream", "Content-Type: binary/octet-stream"]



=== TEST 29: x-amz-meta-* headers are stored
--- more_headers
X-Amz-Meta-Color: blue
x-amz-meta-Owner-Name: Ann Smith
X-AMZ-META-empty-ish: -
--- request
PUT /objects/meta
with metadata
--- error_code: 200



=== TEST 30: GET returns the metadata, names in lower case
--- request
GET /objects/meta
--- error_code: 200
--- response_headers
x-amz-meta-color: blue
x-amz-meta-owner-name: Ann Smith
x-amz-meta-empty-ish: -
--- check
my @names = grep { /^x-amz-meta-/i } map { $_->[0] } @{ $res->{header_list} };
is_deeply([sort @names],
    [qw(x-amz-meta-color x-amz-meta-empty-ish x-amz-meta-owner-name)],
    'names exactly, lower case');



=== TEST 31: HEAD returns the metadata too
--- request
HEAD /objects/meta
--- error_code: 200
--- response_headers
x-amz-meta-color: blue
x-amz-meta-owner-name: Ann Smith
Content-Length: 13



=== TEST 32: headers that are not x-amz-meta-* are not stored
--- more_headers
X-Custom: nope
x-amz-metadata-directive: COPY
--- request eval
["PUT /objects/nometa\nabc", "GET /objects/nometa"]
--- error_code: 200
--- response_headers eval
["", "!X-Custom\n!x-amz-metadata-directive"]
--- check
my @meta = grep { /^x-amz-meta/i } map { $_->[0] } @{ $res->{header_list} };
is_deeply(\@meta, [], 'no x-amz-meta* header');



=== TEST 33: metadata of about 1.9 KiB is accepted and returned whole
--- more_headers eval
"x-amz-meta-big: " . ('v' x 1900)
--- request eval
["PUT /objects/meta-big\nabc", "GET /objects/meta-big"]
--- error_code: 200
--- check
is($res->{headers}{'x-amz-meta-big'}, 'v' x 1900, 'value');



=== TEST 34: over 2 KiB of metadata: 400 MetadataTooLarge
--- more_headers eval
"x-amz-meta-big: " . ('v' x 2100)
--- request
PUT /objects/meta
replaced?
--- error_code: 400
--- response_body_like
^<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>MetadataTooLarge</Code><Message>[^<]+</Message><Resource>/objects/meta</Resource><RequestId>[0-9A-F]{16}</RequestId></Error>$



=== TEST 35: over 2 KiB of metadata in several headers: 400 MetadataTooLarge
--- more_headers eval
join "\n", map { "x-amz-meta-part$_: " . ('w' x 500) } 1 .. 5
--- request
PUT /objects/meta
replaced?
--- error_code: 400
--- response_body_like
<Code>MetadataTooLarge</Code>



=== TEST 36: after MetadataTooLarge the object and its metadata are unchanged
--- request
GET /objects/meta
--- error_code: 200
--- response_headers
x-amz-meta-color: blue
!x-amz-meta-big
!x-amz-meta-part1
--- response_body chomp
with metadata



=== TEST 37: MetadataTooLarge on a new key does not create it
--- more_headers eval
"x-amz-meta-big: " . ('v' x 2100)
--- request eval
["PUT /objects/meta-new\nabc", "HEAD /objects/meta-new"]
--- error_code eval
[400, 404]



=== TEST 38: overwrite replaces the body and the ETag
--- request eval
["PUT /objects/over\nfirst body", "PUT /objects/over\nsecond body", "GET /objects/over"]
--- error_code eval
[200, 200, 200]
--- response_headers eval
['ETag: "a97e73ad8da7f7f1a31b27954166f315"', 'ETag: "e63aeafc8ca710bbbd371f7d1730c9cc"', "ETag: \"e63aeafc8ca710bbbd371f7d1730c9cc\"\nContent-Length: 11"]
--- response_body eval
["", "", "second body"]



=== TEST 39: overwrite replaces the metadata and the type (not merged)
--- setup
put_ok('/objects/over-meta', 'one', 'Content-Type' => 'text/x-one',
    'x-amz-meta-a' => '1', 'x-amz-meta-b' => '2');
put_ok('/objects/over-meta', 'two', 'x-amz-meta-b' => '3');
--- request
GET /objects/over-meta
--- error_code: 200
--- response_headers
Content-Type: binary/octet-stream
x-amz-meta-b: 3
!x-amz-meta-a
--- response_body chomp
two



=== TEST 40: GET a missing key: 404 NoSuchKey naming the key
--- request
GET /objects/no/such/key
--- error_code: 404
--- response_headers
Content-Type: application/xml
--- response_headers_like
x-amz-request-id: ^[0-9A-F]{16}$
--- response_body_like
^<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>no/such/key</Key><Resource>/objects/no/such/key</Resource><RequestId>[0-9A-F]{16}</RequestId></Error>$



=== TEST 41: HEAD a missing key: 404 without a body
--- request
HEAD /objects/no/such/key
--- error_code: 404
--- response_headers_like
x-amz-request-id: ^[0-9A-F]{16}$
--- response_body chomp



=== TEST 42: GET in a missing bucket: 404 NoSuchBucket
--- request
GET /nobucket/some/key
--- error_code: 404
--- response_body_like
^<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><BucketName>nobucket</BucketName><Resource>/nobucket/some/key</Resource><RequestId>[0-9A-F]{16}</RequestId></Error>$



=== TEST 43: HEAD in a missing bucket: 404 without a body
--- request
HEAD /nobucket/some/key
--- error_code: 404
--- response_body chomp



=== TEST 44: PUT in a missing bucket: 404 NoSuchBucket
--- request
PUT /nobucket/some/key
abc
--- error_code: 404
--- response_body_like
<Code>NoSuchBucket</Code><Message>[^<]+</Message><BucketName>nobucket</BucketName><Resource>/nobucket/some/key</Resource>



=== TEST 45: DELETE in a missing bucket: 404 NoSuchBucket
--- request
DELETE /nobucket/some/key
--- error_code: 404
--- response_body_like
<Code>NoSuchBucket</Code>.*<Resource>/nobucket/some/key</Resource>



=== TEST 46: GET with an invalid bucket name: 400 InvalidBucketName
--- request
GET /Bad_Bucket/key
--- error_code: 400
--- response_body_like
<Code>InvalidBucketName</Code>



=== TEST 47: DELETE: 204, no body, request id
--- setup
put_ok('/objects/del', 'to be deleted');
--- request
DELETE /objects/del
--- error_code: 204
--- response_headers_like
x-amz-request-id: ^[0-9A-F]{16}$
--- response_body chomp



=== TEST 48: GET and HEAD after DELETE: 404 NoSuchKey
--- request eval
["GET /objects/del", "HEAD /objects/del"]
--- error_code: 404
--- response_body_like eval
["<Code>NoSuchKey</Code><Message>[^<]+</Message><Key>del</Key>", "^\$"]



=== TEST 49: DELETE again is idempotent: 204
--- request
DELETE /objects/del
--- error_code: 204



=== TEST 50: DELETE of a key that never existed: 204
--- request
DELETE /objects/never/existed
--- error_code: 204
--- response_body chomp



=== TEST 51: a deleted key is no longer listed
--- check
is_deeply(list_keys('del'), [], 'not listed');



=== TEST 52: a key can be written again after DELETE
--- request eval
["PUT /objects/del\nback again", "GET /objects/del"]
--- error_code: 200
--- response_body eval
["", "back again"]



=== TEST 53: a key of 1024 bytes is accepted
--- request eval
["PUT /objects/" . ('k' x 1024) . "\nlong key", "GET /objects/" . ('k' x 1024)]
--- error_code: 200
--- response_body eval
["", "long key"]



=== TEST 54: a key of 1025 bytes: 400 KeyTooLongError
--- request eval
"PUT /objects/" . ('k' x 1025) . "\nlonger key"
--- error_code: 400
--- response_body_like eval
qr{^<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>KeyTooLongError</Code><Message>[^<]+</Message><Resource>/objects/k{1025}</Resource><RequestId>[0-9A-F]{16}</RequestId></Error>$}



=== TEST 55: GET with a key of 1025 bytes: 400 KeyTooLongError
--- request eval
"GET /objects/" . ('k' x 1025)
--- error_code: 400
--- response_body_like
<Code>KeyTooLongError</Code>



=== TEST 56: the length limit counts UTF-8 bytes: 512 x "é" (1024 bytes) is accepted
--- request eval
["PUT /objects/" . ('%C3%A9' x 512) . "\naccents", "GET /objects/" . ('%C3%A9' x 512)]
--- error_code: 200
--- response_body eval
["", "accents"]



=== TEST 57: 513 x "é" (1026 bytes, 513 characters): 400 KeyTooLongError
--- request eval
"PUT /objects/" . ('%C3%A9' x 513) . "\naccents"
--- error_code: 400
--- response_body_like
<Code>KeyTooLongError</Code>



=== TEST 58: the 1025-byte key was not created
--- check
is_deeply(list_keys('kkkk'), ['k' x 1024], 'only the 1024-byte key');



=== TEST 59: "a//b" and "a/b" are distinct keys
--- request eval
["PUT /objects/k/a/b\nsingle", "PUT /objects/k/a//b\ndouble", "GET /objects/k/a/b", "GET /objects/k/a//b"]
--- error_code: 200
--- response_body eval
["", "", "single", "double"]



=== TEST 60: a leading slash in the key ("/lead") is kept
--- request eval
["PUT /objects//k-lead\nleading slash", "GET /objects//k-lead", "GET /objects/k-lead"]
--- error_code eval
[200, 200, 404]
--- response_body_like eval
["^\$", "^leading slash\$", "<Key>k-lead</Key>"]



=== TEST 61: "./" in a key is kept: "k/./c" and "k/c" are distinct
--- request eval
["PUT /objects/k/./c\ndot", "PUT /objects/k/c\nplain", "GET /objects/k/./c", "GET /objects/k/c"]
--- error_code: 200
--- response_body eval
["", "", "dot", "plain"]



=== TEST 62: "../" in a key is kept: "k/x/../d" and "k/d" are distinct
--- request eval
["PUT /objects/k/x/../d\ndotdot", "PUT /objects/k/d\nd", "GET /objects/k/x/../d", "GET /objects/k/d"]
--- error_code: 200
--- response_body eval
["", "", "dotdot", "d"]



=== TEST 63: a space (%20) in a key
--- request eval
["PUT /objects/k/with%20space\nspace", "GET /objects/k/with%20space"]
--- error_code: 200
--- response_body eval
["", "space"]



=== TEST 64: "+" sent as %2B is a plus, not a space: distinct keys
--- request eval
["PUT /objects/k/with%2Bspace\nplus", "GET /objects/k/with%2Bspace", "GET /objects/k/with%20space"]
--- error_code: 200
--- response_body eval
["", "plus", "space"]



=== TEST 65: a literal "+" in the path is a plus (not form-decoded)
--- request
GET /objects/k/with+space
--- error_code: 200
--- response_body chomp
plus



=== TEST 66: unicode (percent-encoded UTF-8) in a key
--- request eval
["PUT /objects/k/%C3%A9t%C3%A9-%E6%97%A5%E6%9C%AC-%F0%9F%98%80\nunicode", "GET /objects/k/%C3%A9t%C3%A9-%E6%97%A5%E6%9C%AC-%F0%9F%98%80"]
--- error_code: 200
--- response_body eval
["", "unicode"]



=== TEST 67: "?" encoded as %3F is part of the key, not a query
--- request eval
["PUT /objects/k/what%3Fx=1\nquestion", "GET /objects/k/what%3Fx=1", "GET /objects/k/what"]
--- error_code eval
[200, 200, 404]
--- response_body_like eval
["^\$", "^question\$", "<Key>k/what</Key>"]



=== TEST 68: "%" (%25) and "#" (%23) in a key
--- request eval
["PUT /objects/k/100%25%23hash\npercent", "GET /objects/k/100%25%23hash"]
--- error_code: 200
--- response_body eval
["", "percent"]



=== TEST 69: a key that ends with a slash
--- request eval
["PUT /objects/k/folder/\n", "GET /objects/k/folder/", "GET /objects/k/folder"]
--- error_code eval
[200, 200, 404]



=== TEST 70: ListObjectsV2 names every one of these keys exactly
--- check
my $got = list_keys('k/');
my @want = sort ("k/100%#hash", "k/./c", "k/a//b", "k/a/b", "k/c", "k/d",
    "k/folder/", "k/what?x=1", "k/with space", "k/with+space", "k/x/../d",
    "k/\xC3\xA9t\xC3\xA9-\xE6\x97\xA5\xE6\x9C\xAC-\xF0\x9F\x98\x80");
is_deeply($got, \@want, 'exact key names, byte order')
    or diag(explain($got));
is_deeply(list_keys('/k-lead'), ['/k-lead'], 'the key with a leading slash');



=== TEST 71: invalid UTF-8 in a key (%FF): 400 InvalidArgument
--- request
PUT /objects/bad%FFkey
abc
--- error_code: 400
--- response_body_like
^<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>InvalidArgument</Code><Message>[^<]+</Message><Resource>/objects/bad%FFkey</Resource><RequestId>[0-9A-F]{16}</RequestId></Error>$



=== TEST 72: invalid UTF-8 in a key on GET: 400 InvalidArgument
--- request
GET /objects/bad%FFkey
--- error_code: 400
--- response_body_like
<Code>InvalidArgument</Code>



=== TEST 73: a truncated UTF-8 sequence (%C3 at the end): 400 InvalidArgument
--- request
PUT /objects/bad%C3
abc
--- error_code: 400
--- response_body_like
<Code>InvalidArgument</Code>



=== TEST 74: an overlong UTF-8 encoding (%C0%AF): 400 InvalidArgument
--- request
PUT /objects/bad%C0%AF
abc
--- error_code: 400
--- response_body_like
<Code>InvalidArgument</Code>



=== TEST 75: a UTF-16 surrogate encoded in UTF-8 (%ED%A0%80): 400 InvalidArgument
--- request
PUT /objects/bad%ED%A0%80
abc
--- error_code: 400
--- response_body_like
<Code>InvalidArgument</Code>



=== TEST 76: no key with invalid UTF-8 was created
--- check
is_deeply(list_keys('bad'), [], 'nothing listed under "bad"');



=== TEST 77: range fixture: 20 bytes
--- request
PUT /objects/range
0123456789abcdefghij
--- error_code: 200



=== TEST 78: Range bytes=0-0: 206, the first byte
--- more_headers
Range: bytes=0-0
--- request
GET /objects/range
--- error_code: 206
--- response_headers
Content-Range: bytes 0-0/20
Content-Length: 1
ETag: "644be06dfc54061fd1e67f5ebbabcd58"
--- response_headers_like
x-amz-request-id: ^[0-9A-F]{16}$
--- response_body chomp
0



=== TEST 79: Range bytes=5-9
--- more_headers
Range: bytes=5-9
--- request
GET /objects/range
--- error_code: 206
--- response_headers
Content-Range: bytes 5-9/20
Content-Length: 5
--- response_body chomp
56789



=== TEST 80: Range bytes=5- (open end)
--- more_headers
Range: bytes=5-
--- request
GET /objects/range
--- error_code: 206
--- response_headers
Content-Range: bytes 5-19/20
Content-Length: 15
--- response_body chomp
56789abcdefghij



=== TEST 81: Range bytes=-3 (suffix)
--- more_headers
Range: bytes=-3
--- request
GET /objects/range
--- error_code: 206
--- response_headers
Content-Range: bytes 17-19/20
Content-Length: 3
--- response_body chomp
hij



=== TEST 82: Range bytes=19-19 (the last byte)
--- more_headers
Range: bytes=19-19
--- request
GET /objects/range
--- error_code: 206
--- response_headers
Content-Range: bytes 19-19/20
--- response_body chomp
j



=== TEST 83: a range past the end is clipped: bytes=5-999999
--- more_headers
Range: bytes=5-999999
--- request
GET /objects/range
--- error_code: 206
--- response_headers
Content-Range: bytes 5-19/20
Content-Length: 15
--- response_body chomp
56789abcdefghij



=== TEST 84: a suffix longer than the object is the whole object: bytes=-50
--- more_headers
Range: bytes=-50
--- request
GET /objects/range
--- error_code: 206
--- response_headers
Content-Range: bytes 0-19/20
Content-Length: 20
--- response_body chomp
0123456789abcdefghij



=== TEST 85: a range starting at the size: 416 InvalidRange, Content-Range bytes */20
--- more_headers
Range: bytes=20-
--- request
GET /objects/range
--- error_code: 416
--- response_headers
Content-Range: bytes */20
Content-Type: application/xml
--- response_headers_like
x-amz-request-id: ^[0-9A-F]{16}$
--- response_body_like
^<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>InvalidRange</Code><Message>[^<]+</Message>.*<Resource>/objects/range</Resource><RequestId>[0-9A-F]{16}</RequestId></Error>$



=== TEST 86: a range starting beyond the size: 416 InvalidRange
--- more_headers
Range: bytes=25-30
--- request
GET /objects/range
--- error_code: 416
--- response_headers
Content-Range: bytes */20
--- response_body_like
<Code>InvalidRange</Code>



=== TEST 87: any range of an empty object: 416, Content-Range bytes */0
--- more_headers
Range: bytes=0-0
--- request
GET /objects/empty
--- error_code: 416
--- response_headers
Content-Range: bytes */0
--- response_body_like
<Code>InvalidRange</Code>



=== TEST 88: a malformed range is ignored: 200 and the whole body
--- more_headers
Range: bytes=abc
--- request
GET /objects/range
--- error_code: 200
--- response_headers
!Content-Range
Content-Length: 20
--- response_body chomp
0123456789abcdefghij



=== TEST 89: a range in another unit is ignored: 200 and the whole body
--- more_headers
Range: items=0-1
--- request
GET /objects/range
--- error_code: 200
--- response_headers
!Content-Range
--- response_body chomp
0123456789abcdefghij



=== TEST 90: a reversed range (bytes=9-5) is ignored: 200 and the whole body
--- more_headers
Range: bytes=9-5
--- request
GET /objects/range
--- error_code: 200
--- response_headers
!Content-Range
--- response_body chomp
0123456789abcdefghij



=== TEST 91: several ranges: 200 and the whole body
--- more_headers
Range: bytes=0-1,5-6
--- request
GET /objects/range
--- error_code: 200
--- response_headers
!Content-Range
Content-Length: 20
--- response_body chomp
0123456789abcdefghij



=== TEST 92: a range in the middle of the 3 MiB object streams the right bytes
--- more_headers
Range: bytes=1048570-2097160
--- request
GET /objects/rand/big
--- timeout: 60
--- error_code: 206
--- response_headers
Content-Range: bytes 1048570-2097160/3145728
Content-Length: 1048591
--- check
is(md5_hex($res->{body}),
    md5_hex(substr($main::BODY{big}, 1048570, 1048591)), 'the bytes');



=== TEST 93: a suffix range of the 3 MiB object
--- more_headers
Range: bytes=-100000
--- request
GET /objects/rand/big
--- timeout: 60
--- error_code: 206
--- response_headers
Content-Range: bytes 3045728-3145727/3145728
--- check
ok($res->{body} eq substr($main::BODY{big}, -100000), 'the last 100000 bytes');



=== TEST 94: HEAD with a satisfiable Range: 206, Content-Length of the range
--- more_headers
Range: bytes=5-9
--- request
HEAD /objects/range
--- error_code: 206
--- response_headers
Content-Length: 5
Content-Range: bytes 5-9/20



=== TEST 95: PUT without Content-Length and not chunked: 411 MissingContentLength
--- raw_request eval
"PUT /objects/nolength HTTP/1.1\r\n"
. sign_request(PUT => '/objects/nolength', format => 'raw',
    headers => [Host => 'localhost', Connection => 'close'])
. "\r\n"
--- error_code: 411
--- response_headers_like
x-amz-request-id: ^[0-9A-F]{16}$
--- response_body_like
^<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>MissingContentLength</Code><Message>[^<]+</Message><Resource>/objects/nolength</Resource><RequestId>[0-9A-F]{16}</RequestId></Error>$



=== TEST 96: after 411 the key does not exist
--- request
HEAD /objects/nolength
--- error_code: 404



=== TEST 97: chunked PUT stores the decoded body
--- raw_request eval
my $body = "5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n";
"PUT /objects/chunked HTTP/1.1\r\n"
. sign_request(PUT => '/objects/chunked', format => 'raw', body => $body,
    headers => [Host => 'localhost', Connection => 'close',
        'Transfer-Encoding' => 'chunked'])
. "\r\n" . $body
--- error_code: 200
--- response_headers
ETag: "5eb63bbbe01eeed093cb22bb8f5acdc3"



=== TEST 98: GET of the chunked upload: the decoded body
--- request
GET /objects/chunked
--- error_code: 200
--- response_headers
Content-Length: 11
ETag: "5eb63bbbe01eeed093cb22bb8f5acdc3"
--- response_body chomp
hello world



=== TEST 99: chunked PUT of 3 MiB random bytes in 64 KiB chunks
--- setup
$main::BODY{chunked} = random_bytes(3 * 1024 * 1024 + 5);
--- check
my $b = $main::BODY{chunked};
my $framed = '';
for (my $o = 0; $o < length $b; $o += 65536) {
    my $c = substr($b, $o, 65536);
    $framed .= sprintf("%x\r\n", length $c) . $c . "\r\n";
}
$framed .= "0\r\n\r\n";
my $raw = "PUT /objects/chunked-big HTTP/1.1\r\n"
    . sign_request(PUT => '/objects/chunked-big', format => 'raw',
        body => $framed, headers => [Host => 'localhost',
            Connection => 'close', 'Transfer-Encoding' => 'chunked'])
    . "\r\n" . $framed;
my $r = raw_request($raw, timeout => 60);
is($r->{status}, 200, 'PUT 200');
is($r->{headers}{etag}, '"' . md5_hex($b) . '"', 'ETag');
my $g = s3_request(GET => '/objects/chunked-big', timeout => 60);
is($g->{status}, 200, 'GET 200');
is(md5_hex($g->{body}), md5_hex($b), 'byte-identical');



=== TEST 100: chunked PUT with a wrong Content-MD5: 400 BadDigest
--- raw_request eval
my $body = "7\r\nchanged\r\n0\r\n\r\n";
"PUT /objects/chunked HTTP/1.1\r\n"
. sign_request(PUT => '/objects/chunked', format => 'raw', body => $body,
    headers => [Host => 'localhost', Connection => 'close',
        'Transfer-Encoding' => 'chunked', 'Content-MD5' => b64md5("other")])
. "\r\n" . $body
--- error_code: 400
--- response_body_like
<Code>BadDigest</Code>



=== TEST 101: a PUT larger than the maximum object size: 400 EntityTooLarge
--- raw_request eval
"PUT /objects/huge HTTP/1.1\r\n"
. sign_request(PUT => '/objects/huge', format => 'raw',
    payload_hash => 'UNSIGNED-PAYLOAD',
    headers => [Host => 'localhost', Connection => 'close',
        'Content-Length' => 5368709121])
. "\r\n"
--- error_code: 400
--- response_headers_like
x-amz-request-id: ^[0-9A-F]{16}$
--- response_body_like
<Code>EntityTooLarge</Code>



=== TEST 102: every kind of response carries a distinct x-amz-request-id
--- request eval
["PUT /objects/ids\nids", "GET /objects/ids", "HEAD /objects/ids", "GET /objects/ids-missing", "PUT /objects/bad%FF\nx", "DELETE /objects/ids", "DELETE /objects/ids"]
--- error_code eval
[200, 200, 200, 404, 400, 204, 204]
--- response_headers_like
x-amz-request-id: ^[0-9A-F]{16}$
--- check
my @ids = map { $_->{headers}{'x-amz-request-id'} // '' } @$responses;
my %seen;
$seen{$_}++ for @ids;
is(scalar(keys %seen), scalar(@ids), 'all distinct') or diag(explain(\@ids));



=== TEST 103: an error's RequestId is its x-amz-request-id
--- request
GET /objects/ids-missing
--- error_code: 404
--- check
my ($id) = $res->{body} =~ m{<RequestId>([^<]*)</RequestId>};
is($id, $res->{headers}{'x-amz-request-id'}, 'the same id');



=== TEST 104: the error Resource is the request path, without the query
--- request
GET /objects/no%20such?x=1
--- error_code: 404
--- response_body_like
<Key>no such</Key><Resource>/objects/no%20such</Resource>



=== TEST 105: requests after errors on the same connection still work
--- request eval
["GET /objects/missing", "PUT /objects/bad%FF\nabc", "GET /objects/hello"]
--- error_code eval
[404, 400, 200]
--- response_body_like eval
["<Code>NoSuchKey</Code>", "<Code>InvalidArgument</Code>", "^hello world\$"]



=== TEST 106: standard headers are stored and returned
--- request eval
["PUT /objects/headers\nhello", "GET /objects/headers", "HEAD /objects/headers"]
--- more_headers eval
["Cache-Control: max-age=60\nContent-Disposition: attachment; filename=\"h.txt\"\nContent-Encoding: identity\nContent-Language: en\nExpires: Thu, 01 Dec 2094 16:00:00 GMT", "", ""]
--- error_code eval
[200, 200, 200]
--- response_headers eval
["", "Cache-Control: max-age=60\nContent-Disposition: attachment; filename=\"h.txt\"\nContent-Encoding: identity\nContent-Language: en\nExpires: Thu, 01 Dec 2094 16:00:00 GMT",
 "Cache-Control: max-age=60\nContent-Language: en"]



=== TEST 107: response-* overrides on GET change this answer only
--- request eval
["GET /objects/headers?response-content-type=text%2Fplain&response-cache-control=no-cache&response-content-disposition=inline&response-expires=0&response-content-language=fr&response-content-encoding=gzip",
 "GET /objects/headers"]
--- error_code eval
[200, 200]
--- response_headers eval
["Content-Type: text/plain\nCache-Control: no-cache\nContent-Disposition: inline\nExpires: 0\nContent-Language: fr\nContent-Encoding: gzip",
 "Cache-Control: max-age=60\nContent-Language: en"]



=== TEST 108: x-amz-checksum-* headers are verified and echoed (CRC32, CRC32C, SHA1, SHA256)
--- request eval
["PUT /objects/cks1\n123456789", "PUT /objects/cks2\n123456789", "PUT /objects/cks3\n123456789", "PUT /objects/cks4\n123456789"]
--- more_headers eval
["x-amz-checksum-crc32: y/Q5Jg==", "x-amz-checksum-crc32c: 4waSgw==",
 "x-amz-checksum-sha1: " . Digest::SHA::sha1_base64('123456789') . "=",
 "x-amz-checksum-sha256: " . Digest::SHA::sha256_base64('123456789') . "="]
--- error_code eval
[200, 200, 200, 200]
--- response_headers eval
["x-amz-checksum-crc32: y/Q5Jg==", "x-amz-checksum-crc32c: 4waSgw==",
 "x-amz-checksum-sha1: " . Digest::SHA::sha1_base64('123456789') . "=",
 "x-amz-checksum-sha256: " . Digest::SHA::sha256_base64('123456789') . "="]



=== TEST 109: a wrong checksum is BadDigest and stores nothing (CRC32C, SHA256, CRC64NVME)
--- request eval
["PUT /objects/cksbad\n123456789", "PUT /objects/cksbad\n123456789", "PUT /objects/cksbad\n123456789", "GET /objects/cksbad"]
--- more_headers eval
["x-amz-checksum-crc32c: AAAAAA==", "x-amz-checksum-sha256: " . Digest::SHA::sha256_base64('12345678') . "=", "x-amz-checksum-crc64nvme: AAAAAAAAAAA=", ""]
--- error_code eval
[400, 400, 400, 404]
--- response_body_like eval
["<Code>BadDigest</Code>", "<Code>BadDigest</Code>", "<Code>BadDigest</Code>", "<Code>NoSuchKey</Code>"]



=== TEST 109a: every checksum is stored and returned with x-amz-checksum-mode: ENABLED (HEAD, GET), not without it, not for a Range
--- check
for my $alg (qw(crc32 crc32c sha1 sha256 crc64nvme)) {
    my $data = random_bytes(3000 + length $alg);
    my $want = checksum_base64($alg, $data);
    my $r = s3_request(PUT => "/objects/stored-$alg", body => $data,
                       headers => ["x-amz-checksum-$alg" => $want]);
    is($r->{status}, 200, "$alg: PUT 200") or diag $r->{body};
    is($r->{headers}{"x-amz-checksum-$alg"}, $want, "$alg: the PUT answer echoes it");
    for my $m (qw(HEAD GET)) {
        $r = s3_request($m => "/objects/stored-$alg",
                        headers => ['x-amz-checksum-mode' => 'ENABLED']);
        is($r->{headers}{"x-amz-checksum-$alg"}, $want, "$alg: $m with checksum mode returns the stored value");
        is($r->{headers}{'x-amz-checksum-type'}, 'FULL_OBJECT', "$alg: $m: type FULL_OBJECT");
    }
    is($r->{body}, $data, "$alg: GET body intact");
    $r = s3_request(GET => "/objects/stored-$alg");
    ok(!exists $r->{headers}{"x-amz-checksum-$alg"}, "$alg: no checksum without the mode");
    $r = s3_request(GET => "/objects/stored-$alg",
                    headers => ['x-amz-checksum-mode' => 'ENABLED', Range => 'bytes=0-9']);
    is($r->{status}, 206, "$alg: Range GET 206");
    ok(!exists $r->{headers}{"x-amz-checksum-$alg"}, "$alg: no checksum for a Range");
}
my $r = s3_request(PUT => "/objects/stored-none", body => 'plain');
$r = s3_request(HEAD => "/objects/stored-none", headers => ['x-amz-checksum-mode' => 'ENABLED']);
ok(!grep(/^x-amz-checksum/, keys %{ $r->{headers} }), 'an object written without a checksum has none');



=== TEST 110: GetObjectTagging: an empty tag set (no tags are kept); tags asked for on a write are refused (501), not ignored
--- check
s3_request(PUT => '/objects/tagged', body => 'tag me');
my $r = s3_request(GET => '/objects/tagged?tagging');
is($r->{status}, 200, 'GetObjectTagging: 200');
like($r->{body}, qr{^<\?xml version="1.0" encoding="UTF-8"\?>\n<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet></TagSet></Tagging>$}, 'an empty TagSet');
$r = s3_request(GET => '/objects/no-such-key?tagging');
is($r->{status}, 404, 'of a missing key: 404');
like($r->{body}, qr{<Code>NoSuchKey</Code>}, 'NoSuchKey');
$r = s3_request(PUT => '/objects/tagged?tagging', body => '<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>');
is($r->{status}, 501, 'PutObjectTagging: 501');
$r = s3_request(PUT => '/objects/tagged2', body => 'x', headers => ['x-amz-tagging' => 'a=b']);
is($r->{status}, 501, 'PutObject with x-amz-tagging: 501');
is(s3_request(GET => '/objects/tagged2')->{status}, 404, 'nothing stored');
is(s3_request(DELETE => '/objects/tagged?tagging')->{status}, 501, 'DeleteObjectTagging: 501');
is(s3_request(GET => '/objects/tagged')->{body}, 'tag me', 'the object is untouched');
