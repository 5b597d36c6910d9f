# DeleteObjects (POST /bucket?delete): the multi-delete XML body, Quiet,
# per-key results, and the errors that leave every key as it was.
use lib 't/lib';
use Plinth::Test;

cluster_options(auth => 'sigv4');

sub delete_xml {
    my ($quiet, @keys) = @_;
    my $x = '<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">';
    $x .= '<Quiet>true</Quiet>' if $quiet;
    for my $k (@keys) {
        (my $e = $k) =~ s/&/&amp;/g;
        $e =~ s/</&lt;/g;
        $x .= "<Object><Key>$e</Key></Object>";
    }
    return $x . '</Delete>';
}

sub put_keys {
    for my $k (@_) {
        (my $u = $k) =~ s/([^A-Za-z0-9._~-])/sprintf('%%%02X', ord $1)/ge;
        my $r = s3_request(PUT => "/multi/$u", body => "body of $k");
        die "PUT $k: $r->{status}" unless $r->{status} == 200;
    }
}

run_tests();

__DATA__

=== TEST 1: bucket and keys
--- setup
s3_request(PUT => '/multi');
put_keys(qw(a b c d e), 'with space', 'amp&er');
--- request
GET /multi?list-type=2
--- error_code: 200
--- response_body_like
<KeyCount>7</KeyCount>



=== TEST 2: delete three keys (one missing): each reported Deleted
--- request eval
"POST /multi?delete\n" . delete_xml(0, 'a', 'b', 'never-was')
--- error_code: 200
--- response_body_like
<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Deleted><Key>a</Key></Deleted><Deleted><Key>b</Key></Deleted><Deleted><Key>never-was</Key></Deleted></DeleteResult>
--- check
is(s3_request(GET => '/multi/a')->{status}, 404, 'a is gone');
is(s3_request(GET => '/multi/b')->{status}, 404, 'b is gone');
is(s3_request(GET => '/multi/c')->{body}, 'body of c', 'c is untouched');



=== TEST 3: Quiet: successes are not listed; escaped keys work
--- request eval
"POST /multi?delete\n" . delete_xml(1, 'c', 'with space', 'amp&er')
--- error_code: 200
--- response_body_like
<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></DeleteResult>
--- check
is(s3_request(GET => '/multi/amp%26er')->{status}, 404, 'amp&er is gone');
is(s3_request(GET => '/multi/with%20space')->{status}, 404, '"with space" is gone');



=== TEST 4: a key over 1024 bytes is reported as an Error, the others are deleted
--- request eval
"POST /multi?delete\n" . delete_xml(0, 'd', 'k' x 1025)
--- error_code: 200
--- response_body_like
<Deleted><Key>d</Key></Deleted><Error><Key>k{1025}</Key><Code>KeyTooLongError</Code>



=== TEST 5: malformed XML: MalformedXML, nothing deleted
--- request eval
"POST /multi?delete\n<Delete><Object><Key>e</Key></Object>"
--- error_code: 400
--- response_body_like
<Code>MalformedXML</Code>
--- check
is(s3_request(GET => '/multi/e')->{status}, 200, 'e is still there');



=== TEST 6: the wrong root element, an Object without a Key, no Object at all: MalformedXML
--- request eval
["POST /multi?delete\n<Remove><Object><Key>e</Key></Object></Remove>",
 "POST /multi?delete\n<Delete><Object><Version>1</Version></Object></Delete>",
 "POST /multi?delete\n<Delete><Quiet>true</Quiet></Delete>"]
--- error_code: 400
--- response_body_like
<Code>MalformedXML</Code>



=== TEST 7: more than 1000 keys: MalformedXML
--- request eval
"POST /multi?delete\n" . delete_xml(1, map { "k$_" } 1 .. 1001)
--- error_code: 400
--- response_body_like
<Code>MalformedXML</Code>



=== TEST 8: a wrong Content-MD5: BadDigest, nothing deleted
--- more_headers
Content-MD5: AAAAAAAAAAAAAAAAAAAAAA==
--- request eval
"POST /multi?delete\n" . delete_xml(0, 'e')
--- error_code: 400
--- response_body_like
<Code>BadDigest</Code>
--- check
is(s3_request(GET => '/multi/e')->{status}, 200, 'e is still there');



=== TEST 9: another user may not delete: AccessDenied, nothing deleted
--- sign_as: user2
--- request eval
"POST /multi?delete\n" . delete_xml(0, 'e')
--- error_code: 403
--- response_body_like
<Code>AccessDenied</Code>
--- check
is(s3_request(GET => '/multi/e')->{status}, 200, 'e is still there');



=== TEST 10: unsigned: AccessDenied
--- unsigned
--- request eval
"POST /multi?delete\n" . delete_xml(0, 'e')
--- error_code: 403



=== TEST 11: a missing bucket: NoSuchBucket
--- request eval
"POST /nomulti?delete\n" . delete_xml(0, 'e')
--- error_code: 404
--- response_body_like
<Code>NoSuchBucket</Code>



=== TEST 12: versioned bucket: VersionId removes that version for good; none writes a marker; a marker by id undeletes
--- check
my $x = sub {
    my $b = '<Delete>';
    for (@_) {
        my ($k, $v) = @$_;
        $b .= "<Object><Key>$k</Key>" . (defined $v ? "<VersionId>$v</VersionId>" : '') . '</Object>';
    }
    return $b . '</Delete>';
};
is(s3_request(PUT => '/mver')->{status}, 200, 'bucket');
is(s3_request(PUT => '/mver?versioning', body => '<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>')->{status}, 200, 'versioning on');
my @v = map { s3_request(PUT => '/mver/k', body => "v$_")->{headers}{'x-amz-version-id'} } 1 .. 3;
ok(3 == grep({ /^[0-9a-f]{32}$/ } @v), 'three versions');
my $r = s3_request(POST => '/mver?delete', body => $x->(['k', $v[0]], ['k', $v[1]]));
is($r->{status}, 200, 'DeleteObjects of two versions: 200');
like($r->{body}, qr{<Deleted><Key>k</Key><VersionId>$v[0]</VersionId></Deleted><Deleted><Key>k</Key><VersionId>$v[1]</VersionId></Deleted>}, 'each reported Deleted with its VersionId');
is(s3_request(GET => "/mver/k?versionId=$v[0]")->{status}, 404, 'version one is gone for good');
is(s3_request(GET => '/mver/k')->{body}, 'v3', 'the current version is untouched');
$r = s3_request(POST => '/mver?delete', body => $x->(['k']));
my ($m) = $r->{body} =~ m{<Deleted><Key>k</Key><DeleteMarker>true</DeleteMarker><DeleteMarkerVersionId>([0-9a-f]{32})</DeleteMarkerVersionId></Deleted>};
ok($m, 'no VersionId: a delete marker, reported with its id') or diag $r->{body};
is(s3_request(GET => '/mver/k')->{status}, 404, 'the key reads as deleted');
$r = s3_request(POST => '/mver?delete', body => $x->(['k', $m]));
like($r->{body}, qr{<Deleted><Key>k</Key><VersionId>$m</VersionId><DeleteMarker>true</DeleteMarker><DeleteMarkerVersionId>$m</DeleteMarkerVersionId></Deleted>}, 'the marker by id: Deleted, DeleteMarker true');
is(s3_request(GET => '/mver/k')->{body}, 'v3', 'undeleted: version three is current again');



=== TEST 13: per-version errors: an unknown version is NoSuchVersion, a malformed id InvalidArgument; the rest is deleted
--- check
s3_request(PUT => '/mver/other', body => 'other');
my $r = s3_request(POST => '/mver?delete', body => '<Delete><Object><Key>k</Key><VersionId>' . ('0' x 32)
    . '</VersionId></Object><Object><Key>k</Key><VersionId>nope</VersionId></Object><Object><Key>other</Key></Object>'
    . '<Object><Key>k</Key><VersionId>1</VersionId><VersionId>2</VersionId></Object></Delete>');
is($r->{status}, 400, 'two VersionIds in one Object: MalformedXML for the whole request');
like($r->{body}, qr{<Code>MalformedXML</Code>}, 'MalformedXML');
is(s3_request(GET => '/mver/other')->{body}, 'other', 'nothing deleted');
$r = s3_request(POST => '/mver?delete', body => '<Delete><Object><Key>k</Key><VersionId>' . ('0' x 32)
    . '</VersionId></Object><Object><Key>k</Key><VersionId>nope</VersionId></Object><Object><Key>other</Key></Object></Delete>');
is($r->{status}, 200, '200 with per-key results');
like($r->{body}, qr{<Error><Key>k</Key><VersionId>0{32}</VersionId><Code>NoSuchVersion</Code><Message>[^<]+</Message></Error>}, 'unknown version: NoSuchVersion');
like($r->{body}, qr{<Error><Key>k</Key><VersionId>nope</VersionId><Code>InvalidArgument</Code><Message>[^<]+</Message></Error>}, 'malformed id: InvalidArgument');
like($r->{body}, qr{<Deleted><Key>other</Key><DeleteMarker>true</DeleteMarker><DeleteMarkerVersionId>[0-9a-f]{32}</DeleteMarkerVersionId></Deleted>}, 'the other key is deleted (a marker)');
is(s3_request(GET => '/mver/k')->{body}, 'v3', 'k is untouched');



=== TEST 14: unversioned bucket: VersionId null deletes the object; an id of another form is NoSuchVersion
--- check
s3_request(PUT => '/multi/plain', body => 'plain');
my $r = s3_request(POST => '/multi?delete', body => '<Delete><Object><Key>plain</Key><VersionId>null</VersionId></Object><Object><Key>plain</Key><VersionId>' . ('a' x 32) . '</VersionId></Object></Delete>');
is($r->{status}, 200, '200');
like($r->{body}, qr{^.*<Deleted><Key>plain</Key><VersionId>null</VersionId></Deleted><Error><Key>plain</Key><VersionId>a{32}</VersionId><Code>NoSuchVersion</Code>}s, 'null: Deleted; a 32-hex id: NoSuchVersion');
is(s3_request(GET => '/multi/plain')->{status}, 404, 'deleted');
