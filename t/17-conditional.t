# Conditional requests: If-Match, If-None-Match, If-Modified-Since and
# If-Unmodified-Since on GET and HEAD (304, 412 PreconditionFailed), and
# conditional PUT (If-None-Match: * creates only, If-Match replaces only
# that ETag), decided atomically by the database: of ten racing creators
# exactly one wins.
use lib 't/lib';
use Plinth::Test;
use IO::Socket::INET;
use Time::HiRes qw(time);
use POSIX qw(strftime);

cluster_options(auth => 'sigv4');

sub http_date { strftime('%a, %d %b %Y %H:%M:%S GMT', gmtime($_[0])) }

run_tests();

__DATA__

=== TEST 1: setup
--- request eval
["PUT /cond", "PUT /cond/k\nversion one"]
--- error_code eval
[200, 200]
--- check
$::etag = $res->{headers}{etag};
like($::etag, qr/^"[0-9a-f]{32}"$/, 'ETag');



=== TEST 2: If-Match with the ETag, with "*", and with another
--- request eval
["GET /cond/k", "GET /cond/k", "GET /cond/k", "HEAD /cond/k"]
--- more_headers eval
["If-Match: $::etag", "If-Match: *", "If-Match: \"0123456789abcdef0123456789abcdef\"", "If-Match: \"nope\""]
--- error_code eval
[200, 200, 412, 412]
--- response_body_like eval
["^version one\\z", "^version one\\z", "<Code>PreconditionFailed</Code>", "^\\z"]



=== TEST 3: If-None-Match with the ETag is 304 with no body; another is 200
--- request eval
["GET /cond/k", "GET /cond/k", "GET /cond/k", "HEAD /cond/k"]
--- more_headers eval
["If-None-Match: $::etag", "If-None-Match: \"x\", $::etag", "If-None-Match: \"other\"", "If-None-Match: $::etag"]
--- error_code eval
[304, 304, 200, 304]
--- response_body_like eval
["^\\z", "^\\z", "^version one\\z", "^\\z"]
--- response_headers eval
["ETag: $::etag", "ETag: $::etag", "ETag: $::etag", "ETag: $::etag"]



=== TEST 4: If-Modified-Since
--- request eval
["GET /cond/k", "GET /cond/k"]
--- more_headers eval
["If-Modified-Since: " . http_date(time + 3600), "If-Modified-Since: " . http_date(time - 86400)]
--- error_code eval
[304, 200]



=== TEST 5: If-Unmodified-Since
--- request eval
["GET /cond/k", "GET /cond/k"]
--- more_headers eval
["If-Unmodified-Since: " . http_date(time - 86400), "If-Unmodified-Since: " . http_date(time + 3600)]
--- error_code eval
[412, 200]



=== TEST 6: If-Match that holds makes If-Unmodified-Since irrelevant; If-None-Match that fails makes If-Modified-Since irrelevant
--- request eval
["GET /cond/k", "GET /cond/k"]
--- more_headers eval
["If-Match: $::etag\nIf-Unmodified-Since: " . http_date(time - 86400),
 "If-None-Match: \"other\"\nIf-Modified-Since: " . http_date(time + 3600)]
--- error_code eval
[200, 200]



=== TEST 7: PUT If-None-Match: * on an existing key: 412, the object unchanged
--- more_headers
If-None-Match: *
--- request
PUT /cond/k
version two
--- error_code: 412
--- response_body_like
<Code>PreconditionFailed</Code>
--- check
my $r = s3_request(GET => '/cond/k');
is($r->{body}, 'version one', 'unchanged');



=== TEST 8: PUT If-None-Match: * on a new key creates it
--- more_headers
If-None-Match: *
--- request
PUT /cond/new
fresh
--- error_code: 200
--- check
is(s3_request(GET => '/cond/new')->{body}, 'fresh', 'created');



=== TEST 9: PUT If-Match with the current ETag replaces; with another: 412, unchanged
--- request eval
["PUT /cond/k\nversion two", "PUT /cond/k\nversion three"]
--- more_headers eval
["If-Match: $::etag", "If-Match: $::etag"]
--- error_code eval
[200, 412]
--- check
is(s3_request(GET => '/cond/k')->{body}, 'version two', 'the matching write won, the stale one did not');



=== TEST 10: PUT If-Match on a missing key: 404 NoSuchKey, nothing stored
--- more_headers
If-Match: "0123456789abcdef0123456789abcdef"
--- request
PUT /cond/missing
data
--- error_code: 404
--- response_body_like
<Code>NoSuchKey</Code>
--- check
is(s3_request(GET => '/cond/missing')->{status}, 404, 'still missing');



=== TEST 11: ten racing creators with If-None-Match: *: exactly one wins
--- check
for my $round (1 .. 3) {
    my @bodies = map { "creator $_ of round $round " . ('z' x (1000 * $_)) } 1 .. 10;
    my @codes = racing_requests(map { [PUT => "/cond/race$round", body => $_,
                                       headers => ['If-None-Match' => '*']] }
                                @bodies);
    my @won = grep { $codes[$_] == 200 } 0 .. $#codes;
    is(scalar(@won), 1, "round $round: exactly one 200 (@codes)");
    is(scalar(grep { $_ == 412 } @codes), 9, "round $round: nine 412");
    my $r = s3_request(GET => "/cond/race$round");
    ok(@won == 1 && $r->{body} eq $bodies[$won[0]], "round $round: the winner's body is stored, whole");
}



=== TEST 12: If-None-Match with an ETag on a write is not supported
--- more_headers
If-None-Match: "abc"
--- request
PUT /cond/k
x
--- error_code: 501



=== TEST 20: conditional DeleteObject: If-Match deletes only that ETag (412 otherwise, 404 on no key); "*" any existing object
--- check
s3_request(PUT => '/cond/del', body => 'to delete');
my $etag = '"' . md5_hex('to delete') . '"';
my $r = s3_request(DELETE => '/cond/del', headers => ['If-Match' => '"' . md5_hex('other') . '"']);
is($r->{status}, 412, 'another ETag: 412');
like($r->{body}, qr{<Code>PreconditionFailed</Code>}, 'PreconditionFailed');
is(s3_request(GET => '/cond/del')->{body}, 'to delete', 'still there');
$r = s3_request(DELETE => '/cond/del', headers => ['If-Match' => $etag]);
is($r->{status}, 204, 'its ETag: 204');
is(s3_request(GET => '/cond/del')->{status}, 404, 'deleted');
$r = s3_request(DELETE => '/cond/del', headers => ['If-Match' => $etag]);
is($r->{status}, 404, 'If-Match on a missing key: 404');
like($r->{body}, qr{<Code>NoSuchKey</Code>}, 'NoSuchKey');
s3_request(PUT => '/cond/del', body => 'again');
is(s3_request(DELETE => '/cond/del', headers => ['If-Match' => '*'])->{status}, 204, 'If-Match: * on an existing key: 204');
is(s3_request(DELETE => '/cond/del', headers => ['If-Match' => '*'])->{status}, 404, 'If-Match: * on no key: 404');
$r = s3_request(DELETE => '/cond/k', headers => ['If-None-Match' => '*']);
is($r->{status}, 501, 'If-None-Match on DELETE: 501 (never ignored)');
is(s3_request(GET => '/cond/k')->{status}, 200, 'nothing deleted');



=== TEST 21: conditional DeleteObject of a version: the named version's ETag decides
--- check
is(s3_request(PUT => '/condv')->{status}, 200, 'bucket');
is(s3_request(PUT => '/condv?versioning', body => '<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>')->{status}, 200, 'versioned');
my $v1 = s3_request(PUT => '/condv/k', body => 'one')->{headers}{'x-amz-version-id'};
my $v2 = s3_request(PUT => '/condv/k', body => 'two')->{headers}{'x-amz-version-id'};
my $r = s3_request(DELETE => "/condv/k?versionId=$v1", headers => ['If-Match' => '"' . md5_hex('two') . '"']);
is($r->{status}, 412, "the current version's ETag does not delete version one: 412");
$r = s3_request(DELETE => "/condv/k?versionId=$v1", headers => ['If-Match' => '"' . md5_hex('one') . '"']);
is($r->{status}, 204, "version one's own ETag: 204");
is(s3_request(GET => "/condv/k?versionId=$v1")->{status}, 404, 'version one is gone');
is(s3_request(GET => '/condv/k')->{body}, 'two', 'version two is current');
$r = s3_request(DELETE => '/condv/k?versionId=' . ('0' x 32), headers => ['If-Match' => '*']);
is($r->{status}, 404, 'an unknown version: 404');
like($r->{body}, qr{<Code>NoSuchVersion</Code>}, 'NoSuchVersion');
