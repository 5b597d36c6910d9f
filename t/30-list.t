# ListObjectsV2 and ListObjects (v1): order, prefix, delimiter and
# CommonPrefixes, paging (max-keys, continuation-token, start-after,
# marker), encoding-type=url, and their errors.
use lib 't/lib';
use Plinth::Test;

# ---------------------------------------------------------------- helpers
# (package main: setup, check and eval sections call them)

# Every key of the fixture, as UTF-8 bytes, in UTF-8 binary (byte) order.
our @ALL = (
    "Z",
    "a b",
    "a+b",
    "a/b/c",
    "a/b/d",
    "a/e",
    "b",
    "c/",
    "c/d",
    "z",
    "\xC3\xA9",             # U+00E9
    "\xEF\xBD\x9A",         # U+FF5A (before U+1F600 in UTF-8, after in UTF-16)
    "\xF0\x9F\x98\x80",     # U+1F600
);

sub pct {
    my ($s) = @_;
    $s =~ s{([^A-Za-z0-9\-._~])}{sprintf '%%%02X', ord $1}ge;
    return $s;
}

sub pct_path {
    my ($s) = @_;
    $s =~ s{([^A-Za-z0-9\-._~/])}{sprintf '%%%02X', ord $1}ge;
    return $s;
}

sub xml_unescape {
    my ($s) = @_;
    return undef unless defined $s;
    $s =~ s/&lt;/</g;
    $s =~ s/&gt;/>/g;
    $s =~ s/&quot;/"/g;
    $s =~ s/&apos;/'/g;
    $s =~ s/&#(\d+);/chr $1/ge;
    $s =~ s/&#x([0-9a-fA-F]+);/chr hex $1/ge;
    $s =~ s/&amp;/&/g;
    return $s;
}

# A ListBucketResult taken apart with regexes: keys, prefixes, and the
# top-level elements (undef when absent).
sub parse_list {
    my ($body) = @_;
    my %r;
    $r{root} = $body =~ m{^<\?xml version="1.0" encoding="UTF-8"\?>\s*<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">.*</ListBucketResult>\s*$}s;
    $r{contents} = [ $body =~ m{<Contents>(.*?)</Contents>}gs ];
    $r{keys} = [ map { xml_unescape((m{<Key>(.*?)</Key>}s)[0]) }
        @{ $r{contents} } ];
    $r{prefixes} = [ map { xml_unescape($_) }
        $body =~ m{<CommonPrefixes><Prefix>(.*?)</Prefix></CommonPrefixes>}gs ];
    (my $top = $body) =~ s{<Contents>.*?</Contents>}{}gs;
    $top =~ s{<CommonPrefixes>.*?</CommonPrefixes>}{}gs;
    for my $e (qw(Name Prefix Delimiter MaxKeys EncodingType IsTruncated
                  ContinuationToken NextContinuationToken StartAfter KeyCount
                  Marker NextMarker))
    {
        my @v = $top =~ m{<$e>(.*?)</$e>}gs;
        $r{"n_$e"} = scalar @v;
        $r{$e} = xml_unescape($v[0]);
        $r{$e} = '' if !defined $r{$e} && $top =~ m{<$e\s*/>};
    }
    return \%r;
}

sub list {
    my ($query) = @_;
    my $r = s3_request(GET => "/list?$query");
    die "GET /list?$query: $r->{status} " . ($r->{error} // '')
        . " $r->{body}\n" unless $r->{status} == 200;
    return parse_list($r->{body});
}

# Walks every page of a listing; returns (entries in page order, pages).
# An entry is "K:key" or "P:prefix"; within a page keys then prefixes
# are merged back in byte order.
sub walk_v2 {
    my ($query, $max) = @_;
    my (@entries, @pages, $token);
    for my $n (1 .. 100) {
        my $q = "list-type=2&max-keys=$max" . ($query ? "&$query" : '')
            . (defined $token ? '&continuation-token=' . pct($token) : '');
        my $p = list($q);
        push @pages, $p;
        push @entries, sort { substr($a, 2) cmp substr($b, 2) }
            map({ "K:$_" } @{ $p->{keys} }), map({ "P:$_" } @{ $p->{prefixes} });
        die "page $n: ContinuationToken not echoed\n"
            if defined $token && ($p->{ContinuationToken} // '') ne $token;
        last if ($p->{IsTruncated} // '') ne 'true';
        $token = $p->{NextContinuationToken};
        die "page $n: truncated without a NextContinuationToken\n"
            unless defined $token && length $token;
    }
    return (\@entries, \@pages);
}

sub walk_v1 {
    my ($query, $max) = @_;
    my (@entries, @pages, $marker);
    for my $n (1 .. 100) {
        my $q = "max-keys=$max" . ($query ? "&$query" : '')
            . (defined $marker ? '&marker=' . pct($marker) : '');
        my $p = list($q);
        push @pages, $p;
        push @entries, sort { substr($a, 2) cmp substr($b, 2) }
            map({ "K:$_" } @{ $p->{keys} }), map({ "P:$_" } @{ $p->{prefixes} });
        last if ($p->{IsTruncated} // '') ne 'true';
        # S3: NextMarker with a delimiter; without, the last key
        my $prev = $marker;
        $marker = $p->{NextMarker} // $p->{keys}[-1];
        die "page $n: truncated without anything to continue from\n"
            unless defined $marker;
        die "page $n: the listing did not move past marker '$marker'\n"
            if defined $prev && $marker eq $prev;
    }
    return (\@entries, \@pages);
}

# entries as sorted by byte order, keys "K:..." and prefixes "P:..."
sub entries {
    my ($keys, $prefixes) = @_;
    my %e = ((map { ($_ => "K:$_") } @$keys),
             (map { ($_ => "P:$_") } @$prefixes));
    return [ map { $e{$_} } sort keys %e ];
}

run_tests();

__DATA__

=== TEST 1: fixture: a bucket and 13 keys
--- setup
my $r = s3_request(PUT => '/list');
die "create bucket: $r->{status}\n" unless $r->{status} == 200;
for my $k (@main::ALL) {
    my $p = s3_request(PUT => '/list/' . pct_path($k), body => "body of $k");
    die "PUT $k: $p->{status} $p->{body}\n" unless $p->{status} == 200;
}
--- request
GET /list?list-type=2
--- error_code: 200
--- response_headers
Content-Type: application/xml
--- response_headers_like
x-amz-request-id: ^[0-9A-F]{16}$



=== TEST 2: every key, in UTF-8 binary order ("Z" < "a" < "z" < "é" < U+FF5A < U+1F600)
--- request
GET /list?list-type=2
--- error_code: 200
--- check
my $p = parse_list($res->{body});
ok($p->{root}, 'a ListBucketResult document');
is_deeply($p->{keys}, \@main::ALL, 'keys in byte order')
    or diag(explain($p->{keys}));
is_deeply($p->{prefixes}, [], 'no CommonPrefixes');



=== TEST 3: the top-level elements of a complete listing
--- request
GET /list?list-type=2
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is($p->{Name}, 'list', 'Name');
is($p->{Prefix}, '', 'Prefix empty');
is($p->{n_Delimiter}, 0, 'no Delimiter');
is($p->{MaxKeys}, 1000, 'MaxKeys 1000');
is($p->{KeyCount}, 13, 'KeyCount');
is($p->{IsTruncated}, 'false', 'IsTruncated');
is($p->{n_NextContinuationToken}, 0, 'no NextContinuationToken');
is($p->{n_ContinuationToken}, 0, 'no ContinuationToken');
is($p->{n_EncodingType}, 0, 'no EncodingType');



=== TEST 4: a Contents entry: Key, LastModified, quoted ETag, Size, StorageClass
--- request
GET /list?list-type=2&prefix=b
--- error_code: 200
--- response_body_like eval
qr{<Contents><Key>b</Key><LastModified>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z</LastModified><ETag>&quot;} . md5_hex("body of b") . qr{&quot;</ETag><Size>9</Size><StorageClass>STANDARD</StorageClass></Contents>}



=== TEST 5: v2 lists no Owner unless fetch-owner=true
--- request eval
["GET /list?list-type=2&prefix=b", "GET /list?list-type=2&prefix=b&fetch-owner=true"]
--- error_code: 200
--- response_body_like eval
["^(?!.*<Owner>)", "<Contents><Key>b</Key>.*<Owner><ID>admin</ID><DisplayName>admin</DisplayName></Owner>.*</Contents>"]



=== TEST 6: prefix a/
--- request
GET /list?list-type=2&prefix=a/
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is_deeply($p->{keys}, ['a/b/c', 'a/b/d', 'a/e'], 'keys');
is($p->{Prefix}, 'a/', 'Prefix echoed');
is($p->{KeyCount}, 3, 'KeyCount');



=== TEST 7: prefix a (not a directory: "a b", "a+b", "a/...")
--- request
GET /list?list-type=2&prefix=a
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is_deeply($p->{keys}, ['a b', 'a+b', 'a/b/c', 'a/b/d', 'a/e'], 'keys');



=== TEST 8: a prefix nothing starts with: no Contents, KeyCount 0
--- request
GET /list?list-type=2&prefix=nothing
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is_deeply($p->{keys}, [], 'no keys');
is($p->{KeyCount}, 0, 'KeyCount 0');
is($p->{IsTruncated}, 'false', 'not truncated');



=== TEST 9: a UTF-8 prefix (percent-encoded)
--- request
GET /list?list-type=2&prefix=%C3%A9
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is_deeply($p->{keys}, ["\xC3\xA9"], 'keys');
is($p->{Prefix}, "\xC3\xA9", 'Prefix echoed as UTF-8');



=== TEST 10: a key equal to the prefix is listed (prefix b)
--- request
GET /list?list-type=2&prefix=b
--- error_code: 200
--- check
is_deeply(parse_list($res->{body})->{keys}, ['b'], 'keys');



=== TEST 11: a key equal to the prefix is listed (prefix c/ : "c/" and "c/d")
--- request
GET /list?list-type=2&prefix=c/
--- error_code: 200
--- check
is_deeply(parse_list($res->{body})->{keys}, ['c/', 'c/d'], 'keys');



=== TEST 12: delimiter / at the root: keys at the top, CommonPrefixes a/ and c/
--- request
GET /list?list-type=2&delimiter=/
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is_deeply($p->{keys}, ['Z', 'a b', 'a+b', 'b', 'z', "\xC3\xA9",
    "\xEF\xBD\x9A", "\xF0\x9F\x98\x80"], 'keys directly at the root');
is_deeply($p->{prefixes}, ['a/', 'c/'], 'CommonPrefixes');
is($p->{Delimiter}, '/', 'Delimiter echoed');
is($p->{KeyCount}, 10, 'KeyCount counts keys and prefixes');
is($p->{IsTruncated}, 'false', 'not truncated');



=== TEST 13: CommonPrefixes are whole elements after the Contents
--- request
GET /list?list-type=2&delimiter=/
--- error_code: 200
--- response_body_like
</Contents><CommonPrefixes><Prefix>a/</Prefix></CommonPrefixes><CommonPrefixes><Prefix>c/</Prefix></CommonPrefixes>



=== TEST 14: prefix a/ with delimiter /: key a/e and CommonPrefix a/b/
--- request
GET /list?list-type=2&prefix=a/&delimiter=/
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is_deeply($p->{keys}, ['a/e'], 'keys directly under a/');
is_deeply($p->{prefixes}, ['a/b/'], 'CommonPrefixes');
is($p->{KeyCount}, 2, 'KeyCount');



=== TEST 15: prefix c/ with delimiter /: the key "c/" itself and c/d, no prefix
--- request
GET /list?list-type=2&prefix=c/&delimiter=/
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is_deeply($p->{keys}, ['c/', 'c/d'], 'keys');
is_deeply($p->{prefixes}, [], 'no CommonPrefixes');



=== TEST 16: prefix a/b/ with delimiter /: the two keys
--- request
GET /list?list-type=2&prefix=a/b/&delimiter=/
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is_deeply($p->{keys}, ['a/b/c', 'a/b/d'], 'keys');
is_deeply($p->{prefixes}, [], 'no CommonPrefixes');



=== TEST 17: a delimiter of several characters ("/b/")
--- request
GET /list?list-type=2&delimiter=/b/
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is_deeply($p->{prefixes}, ['a/b/'], 'CommonPrefixes');
is_deeply($p->{keys}, [grep { !m{^a/b/} } @main::ALL], 'the other keys');



=== TEST 18: max-keys=3: the first 3, IsTruncated, NextContinuationToken
--- request
GET /list?list-type=2&max-keys=3
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is_deeply($p->{keys}, ['Z', 'a b', 'a+b'], 'keys');
is($p->{MaxKeys}, 3, 'MaxKeys');
is($p->{KeyCount}, 3, 'KeyCount');
is($p->{IsTruncated}, 'true', 'IsTruncated');
ok(length($p->{NextContinuationToken} // ''), 'NextContinuationToken');



=== TEST 19: the next page from NextContinuationToken, which is echoed
--- check
my $p1 = list('list-type=2&max-keys=3');
my $p2 = list('list-type=2&max-keys=3&continuation-token='
    . pct($p1->{NextContinuationToken}));
is_deeply($p2->{keys}, ['a/b/c', 'a/b/d', 'a/e'], 'keys of page 2');
is($p2->{ContinuationToken}, $p1->{NextContinuationToken},
    'ContinuationToken echoed');
is($p2->{IsTruncated}, 'true', 'still truncated');



=== TEST 20: walking pages of 1 yields every key once, in order
--- check
my ($e, $pages) = walk_v2('', 1);
is_deeply($e, [ map { "K:$_" } @main::ALL ], 'every key once, in order')
    or diag(explain($e));
is(scalar @$pages, 13, '13 pages');
is($pages->[-1]{IsTruncated}, 'false', 'the last page is not truncated');
is($pages->[-1]{n_NextContinuationToken}, 0, 'the last page has no token');
ok(!grep({ $_->{KeyCount} != 1 } @$pages), 'KeyCount 1 on every page');



=== TEST 21: walking pages of 2, 5, 12, 13 and 1000 yields every key once
--- check
for my $max (2, 5, 12, 13, 1000) {
    my ($e, $pages) = walk_v2('', $max);
    is_deeply($e, [ map { "K:$_" } @main::ALL ], "max-keys=$max")
        or diag(explain($e));
    is(scalar @$pages, int((13 + $max - 1) / $max), "pages for $max");
}



=== TEST 22: walking a prefix in pages of 2
--- check
my ($e) = walk_v2('prefix=a', 2);
is_deeply($e, [ map { "K:$_" } 'a b', 'a+b', 'a/b/c', 'a/b/d', 'a/e' ],
    'keys under the prefix, once');



=== TEST 23: walking with a delimiter in pages of 1, 2, 3, 4: keys and prefixes once, in order
--- check
my $want = entries(['Z', 'a b', 'a+b', 'b', 'z', "\xC3\xA9", "\xEF\xBD\x9A",
    "\xF0\x9F\x98\x80"], ['a/', 'c/']);
for my $max (1, 2, 3, 4) {
    my ($e, $pages) = walk_v2('delimiter=/', $max);
    is_deeply($e, $want, "max-keys=$max") or diag(explain($e));
    is(scalar @$pages, int((10 + $max - 1) / $max), "pages for $max");
}



=== TEST 24: a page that ends on a common prefix continues past its keys
--- check
# entries: Z, "a b", "a+b", a/ | b, c/ | ...
my $p1 = list('list-type=2&delimiter=/&max-keys=4');
is_deeply($p1->{keys}, ['Z', 'a b', 'a+b'], 'page 1 keys');
is_deeply($p1->{prefixes}, ['a/'], 'page 1 ends on the prefix a/');
is($p1->{IsTruncated}, 'true', 'truncated');
my $p2 = list('list-type=2&delimiter=/&max-keys=2&continuation-token='
    . pct($p1->{NextContinuationToken}));
is_deeply($p2->{keys}, ['b'], 'page 2 keys: no a/... key');
is_deeply($p2->{prefixes}, ['c/'], 'page 2 prefixes: not a/ again');



=== TEST 25: walking prefix a/ with delimiter / in pages of 1
--- check
my ($e) = walk_v2('prefix=a/&delimiter=/', 1);
is_deeply($e, ['P:a/b/', 'K:a/e'], 'a/b/ then a/e');



=== TEST 26: start-after a key: the keys after it
--- request
GET /list?list-type=2&start-after=a/e
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is_deeply($p->{keys}, [ @main::ALL[6 .. 12] ], 'keys after a/e');
is($p->{StartAfter}, 'a/e', 'StartAfter echoed');



=== TEST 27: start-after a string that is not a key
--- request
GET /list?list-type=2&start-after=a
--- error_code: 200
--- check
is_deeply(parse_list($res->{body})->{keys}, [ @main::ALL[1 .. 12] ],
    'keys after "a"');



=== TEST 28: start-after the last key: nothing
--- request
GET /list?list-type=2&start-after=%F0%9F%98%80
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is_deeply($p->{keys}, [], 'no keys');
is($p->{KeyCount}, 0, 'KeyCount 0');
is($p->{IsTruncated}, 'false', 'not truncated');



=== TEST 29: start-after with a prefix
--- request
GET /list?list-type=2&prefix=a/&start-after=a/b/c
--- error_code: 200
--- check
is_deeply(parse_list($res->{body})->{keys}, ['a/b/d', 'a/e'], 'keys');



=== TEST 30: start-after before the prefix: the whole prefix, the key equal to it included
--- request
GET /list?list-type=2&prefix=c/&start-after=b
--- error_code: 200
--- check
is_deeply(parse_list($res->{body})->{keys}, ['c/', 'c/d'], 'keys');



=== TEST 31: start-after with max-keys pages on
--- check
my $p1 = list('list-type=2&start-after=b&max-keys=2');
is_deeply($p1->{keys}, ['c/', 'c/d'], 'page 1');
is($p1->{IsTruncated}, 'true', 'truncated');
my $p2 = list('list-type=2&start-after=b&max-keys=2&continuation-token='
    . pct($p1->{NextContinuationToken}));
is_deeply($p2->{keys}, ['z', "\xC3\xA9"], 'page 2');



=== TEST 32: the continuation token wins over start-after
--- check
my $p1 = list('list-type=2&max-keys=7');
my $p2 = list('list-type=2&max-keys=2&start-after=a&continuation-token='
    . pct($p1->{NextContinuationToken}));
is_deeply($p2->{keys}, ['c/', 'c/d'], 'after the token, not after "a"');



=== TEST 33: max-keys=0: no keys, not truncated, no token
--- request
GET /list?list-type=2&max-keys=0
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is_deeply($p->{keys}, [], 'no keys');
is($p->{MaxKeys}, 0, 'MaxKeys 0');
is($p->{KeyCount}, 0, 'KeyCount 0');
is($p->{IsTruncated}, 'false', 'IsTruncated false');
is($p->{n_NextContinuationToken}, 0, 'no NextContinuationToken');



=== TEST 34: max-keys over 1000 lists everything
--- request
GET /list?list-type=2&max-keys=5000
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is(scalar @{ $p->{keys} }, 13, 'every key');
is($p->{IsTruncated}, 'false', 'not truncated');



=== TEST 35: max-keys not a number: 400 InvalidArgument
--- request
GET /list?list-type=2&max-keys=ten
--- error_code: 400
--- response_body_like
^<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>InvalidArgument</Code><Message>[^<]+</Message>.*<Resource>/list</Resource><RequestId>[0-9A-F]{16}</RequestId></Error>$



=== TEST 36: max-keys negative: 400 InvalidArgument
--- request
GET /list?list-type=2&max-keys=-1
--- error_code: 400
--- response_body_like
<Code>InvalidArgument</Code>



=== TEST 37: a continuation token that is not one: 400 InvalidArgument
--- request
GET /list?list-type=2&continuation-token=not-a-token!!
--- error_code: 400
--- response_body_like
^<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>InvalidArgument</Code><Message>[^<]+</Message>.*<Resource>/list</Resource><RequestId>[0-9A-F]{16}</RequestId></Error>$



=== TEST 38: an empty continuation token: 400 InvalidArgument
--- request
GET /list?list-type=2&continuation-token=
--- error_code: 400
--- response_body_like
<Code>InvalidArgument</Code>



=== TEST 39: valid base64url that is not a token (wrong kind): 400 InvalidArgument
--- request
GET /list?list-type=2&continuation-token=WGE
--- error_code: 400
--- response_body_like
<Code>InvalidArgument</Code>



=== TEST 40: encoding-type=url encodes Key (space as %20, + as %2B) and echoes EncodingType
--- request
GET /list?list-type=2&prefix=a&encoding-type=url
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is_deeply($p->{keys}, ['a%20b', 'a%2Bb', 'a/b/c', 'a/b/d', 'a/e'], 'keys');
is($p->{EncodingType}, 'url', 'EncodingType');



=== TEST 41: encoding-type=url encodes UTF-8 keys byte by byte
--- request
GET /list?list-type=2&start-after=z&encoding-type=url
--- error_code: 200
--- check
is_deeply(parse_list($res->{body})->{keys},
    ['%C3%A9', '%EF%BD%9A', '%F0%9F%98%80'], 'keys');



=== TEST 42: encoding-type=url encodes Prefix, Delimiter and CommonPrefixes
--- request
GET /list?list-type=2&prefix=a%20&delimiter=%20&encoding-type=url
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is($p->{Prefix}, 'a%20', 'Prefix');
is($p->{Delimiter}, '%20', 'Delimiter');
is_deeply($p->{keys}, ['a%20b'], 'keys');



=== TEST 43: encoding-type=url with delimiter "+": CommonPrefixes encoded
--- request
GET /list?list-type=2&delimiter=%2B&encoding-type=url
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is($p->{Delimiter}, '%2B', 'Delimiter');
is_deeply($p->{prefixes}, ['a%2B'], 'CommonPrefixes');



=== TEST 44: encoding-type=url encodes StartAfter
--- request
GET /list?list-type=2&start-after=a%20b&max-keys=1&encoding-type=url
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is($p->{StartAfter}, 'a%20b', 'StartAfter');
is_deeply($p->{keys}, ['a%2Bb'], 'keys');



=== TEST 45: start-after with a "+" (sent as %2B)
--- request
GET /list?list-type=2&start-after=a%2Bb&max-keys=1
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is($p->{StartAfter}, 'a+b', 'StartAfter echoed');
is_deeply($p->{keys}, ['a/b/c'], 'the key after "a+b"');



=== TEST 46: without encoding-type, keys are plain XML text
--- request
GET /list?list-type=2&prefix=a
--- error_code: 200
--- response_body_like
<Key>a b</Key>.*<Key>a\+b</Key>



=== TEST 47: in the query, %2B is a plus and a literal + is a space
--- request eval
["GET /list?list-type=2&prefix=a%2Bb", "GET /list?list-type=2&prefix=a+b"]
--- error_code: 200
--- response_body_like eval
["<Prefix>a\\+b</Prefix>.*<Key>a\\+b</Key>(?!.*<Key>)", "<Prefix>a b</Prefix>.*<Key>a b</Key>(?!.*<Key>)"]



=== TEST 48: a bad encoding-type: 400 InvalidArgument
--- request
GET /list?list-type=2&encoding-type=xml
--- error_code: 400
--- response_body_like
^<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>InvalidArgument</Code><Message>[^<]+</Message>.*<Resource>/list</Resource><RequestId>[0-9A-F]{16}</RequestId></Error>$



=== TEST 49: ListObjectsV2 of a missing bucket: 404 NoSuchBucket
--- request
GET /nolist?list-type=2
--- error_code: 404
--- response_body_like
^<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>NoSuchBucket</Code><Message>[^<]+</Message><BucketName>nolist</BucketName><Resource>/nolist</Resource><RequestId>[0-9A-F]{16}</RequestId></Error>$



=== TEST 50: ListObjects (v1) of a missing bucket: 404 NoSuchBucket
--- request
GET /nolist
--- error_code: 404
--- response_body_like
<Code>NoSuchBucket</Code><Message>[^<]+</Message><BucketName>nolist</BucketName>



=== TEST 51: v1: every key in byte order, Owner in Contents, Marker, no KeyCount
--- request
GET /list
--- error_code: 200
--- response_headers
Content-Type: application/xml
--- check
my $p = parse_list($res->{body});
ok($p->{root}, 'a ListBucketResult document');
is_deeply($p->{keys}, \@main::ALL, 'keys');
is($p->{Marker}, '', 'Marker empty');
is($p->{n_KeyCount}, 0, 'no KeyCount');
is($p->{n_NextMarker}, 0, 'no NextMarker');
is($p->{IsTruncated}, 'false', 'not truncated');
is(scalar(grep { m{<Owner><ID>admin</ID>} } @{ $p->{contents} }), 13,
    'an Owner in every Contents');



=== TEST 52: v1 max-keys=3 without a delimiter: truncated, no NextMarker
--- request
GET /list?max-keys=3
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is_deeply($p->{keys}, ['Z', 'a b', 'a+b'], 'keys');
is($p->{IsTruncated}, 'true', 'truncated');
is($p->{n_NextMarker}, 0, 'no NextMarker without a delimiter');



=== TEST 53: v1 marker: the keys after it, Marker echoed
--- request
GET /list?marker=a%2Bb&max-keys=3
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is_deeply($p->{keys}, ['a/b/c', 'a/b/d', 'a/e'], 'keys');
is($p->{Marker}, 'a+b', 'Marker echoed');



=== TEST 54: v1 walking with marker = last key, pages of 1 and 4
--- check
for my $max (1, 4) {
    my ($e) = walk_v1('', $max);
    is_deeply($e, [ map { "K:$_" } @main::ALL ], "max-keys=$max")
        or diag(explain($e));
}



=== TEST 55: v1 with a delimiter: NextMarker when truncated
--- request
GET /list?delimiter=/&max-keys=2
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is_deeply($p->{keys}, ['Z', 'a b'], 'keys');
is($p->{IsTruncated}, 'true', 'truncated');
is($p->{NextMarker}, 'a b', 'NextMarker is the last entry');



=== TEST 56: v1 NextMarker that is a common prefix, and the page after it
--- check
my $p1 = list('delimiter=/&max-keys=4');
is_deeply($p1->{prefixes}, ['a/'], 'page 1 ends on a/');
is($p1->{NextMarker}, 'a/', 'NextMarker a/');
my $p2 = list('delimiter=/&max-keys=2&marker=' . pct($p1->{NextMarker}));
is_deeply($p2->{keys}, ['b'], 'page 2: no a/... key');
is_deeply($p2->{prefixes}, ['c/'], 'page 2: not a/ again');
is($p2->{Marker}, 'a/', 'Marker echoed');
is($p2->{NextMarker}, 'c/', 'NextMarker c/');



=== TEST 57: v1 walking with a delimiter (NextMarker), pages of 1, 2, 3
--- check
my $want = entries(['Z', 'a b', 'a+b', 'b', 'z', "\xC3\xA9", "\xEF\xBD\x9A",
    "\xF0\x9F\x98\x80"], ['a/', 'c/']);
for my $max (1, 2, 3) {
    my ($e) = walk_v1('delimiter=/', $max);
    is_deeply($e, $want, "max-keys=$max") or diag(explain($e));
}



=== TEST 58: v1 walking prefix a/ (no "+" in any key) with and without a delimiter
--- check
my ($e) = walk_v1('prefix=a/', 1);
is_deeply($e, ['K:a/b/c', 'K:a/b/d', 'K:a/e'], 'no delimiter, pages of 1');
($e) = walk_v1('prefix=a/&delimiter=/', 1);
is_deeply($e, ['P:a/b/', 'K:a/e'], 'delimiter, pages of 1');



=== TEST 59: v1 prefix and delimiter
--- request
GET /list?prefix=a/&delimiter=/
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is_deeply($p->{keys}, ['a/e'], 'keys');
is_deeply($p->{prefixes}, ['a/b/'], 'CommonPrefixes');
is($p->{Prefix}, 'a/', 'Prefix');



=== TEST 60: v1 encoding-type=url encodes Key and Marker
--- request
GET /list?prefix=a&marker=a%20b&encoding-type=url
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is_deeply($p->{keys}, ['a%2Bb', 'a/b/c', 'a/b/d', 'a/e'], 'keys');
is($p->{Marker}, 'a%20b', 'Marker');
is($p->{EncodingType}, 'url', 'EncodingType');



=== TEST 61: v1 bad encoding-type: 400 InvalidArgument
--- request
GET /list?encoding-type=bogus
--- error_code: 400
--- response_body_like
<Code>InvalidArgument</Code>



=== TEST 62: a deleted key is not listed (v2 and v1)
--- setup
for my $k (qw(d/1 d/2 d/3)) {
    my $r = s3_request(PUT => "/list/$k", body => $k);
    die "PUT $k: $r->{status}\n" unless $r->{status} == 200;
}
my $r = s3_request(DELETE => '/list/d/2');
die "DELETE: $r->{status}\n" unless $r->{status} == 204;
--- request eval
["GET /list?list-type=2&prefix=d/", "GET /list?prefix=d/"]
--- error_code: 200
--- check
for my $i (0, 1) {
    is_deeply(parse_list($responses->[$i]{body})->{keys}, ['d/1', 'd/3'],
        "request " . ($i + 1));
}



=== TEST 63: a deleted key does not take a place in a page
--- request
GET /list?list-type=2&prefix=d/&max-keys=2
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is_deeply($p->{keys}, ['d/1', 'd/3'], 'keys');
is($p->{IsTruncated}, 'false', 'not truncated');



=== TEST 64: a prefix whose keys are all deleted is no CommonPrefix
--- setup
my $r = s3_request(PUT => '/list/gone/x', body => 'x');
die "PUT: $r->{status}\n" unless $r->{status} == 200;
$r = s3_request(DELETE => '/list/gone/x');
die "DELETE: $r->{status}\n" unless $r->{status} == 204;
--- request
GET /list?list-type=2&delimiter=/
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is_deeply($p->{prefixes}, ['a/', 'c/', 'd/'], 'no gone/');



=== TEST 65: a key written again after DELETE is listed again
--- setup
my $r = s3_request(PUT => '/list/d/2', body => 'again');
die "PUT: $r->{status}\n" unless $r->{status} == 200;
--- request
GET /list?list-type=2&prefix=d/
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is_deeply($p->{keys}, ['d/1', 'd/2', 'd/3'], 'keys');
like($p->{contents}[1], qr{<Size>5</Size>}, 'the new size');



=== TEST 66: an overwritten key is listed once, with its new ETag and size
--- setup
my $r = s3_request(PUT => '/list/b', body => 'a new body for b');
die "PUT: $r->{status}\n" unless $r->{status} == 200;
--- request
GET /list?list-type=2&prefix=b
--- error_code: 200
--- check
my $p = parse_list($res->{body});
is_deeply($p->{keys}, ['b'], 'once');
like($p->{contents}[0], qr{<ETag>&quot;@{[ md5_hex('a new body for b') ]}&quot;</ETag><Size>16</Size>}, 'ETag and Size');



=== TEST 67: a list-type other than 2: 400 InvalidArgument
--- request
GET /list?list-type=3
--- error_code: 400
--- response_body_like
<Code>InvalidArgument</Code>



=== TEST 68: an empty bucket lists nothing
--- setup
my $r = s3_request(PUT => '/emptylist');
die "create: $r->{status}\n" unless $r->{status} == 200;
--- request eval
["GET /emptylist?list-type=2", "GET /emptylist"]
--- error_code: 200
--- check
for my $i (0, 1) {
    my $p = parse_list($responses->[$i]{body});
    is_deeply($p->{keys}, [], "request " . ($i + 1) . ": no keys");
    is($p->{IsTruncated}, 'false', "request " . ($i + 1) . ": not truncated");
}
is(parse_list($responses->[0]{body})->{KeyCount}, 0, 'KeyCount 0');



=== TEST 69: a prefix's range ends where the prefix does (sql/022: key < the prefix's successor), also for prefixes ending in U+D7FF, U+10FFFF and "~"
--- setup
my $r = s3_request(PUT => '/succ');
die "create: $r->{status}\n" unless $r->{status} == 200;
# U+D7FF (before the surrogates), U+E000 (after them), U+10FFFF
for my $k ("p\xED\x9F\xBF", "p\xED\x9F\xBFa", "p\xEE\x80\x80",
           "q\xF4\x8F\xBF\xBF", "q\xF4\x8F\xBF\xBFz", "r",
           "s~", "s~x", "s\x7F", "t") {
    my $p = s3_request(PUT => '/succ/' . pct_path($k), body => 'x');
    die "PUT $k: $p->{status} $p->{body}\n" unless $p->{status} == 200;
}
--- request eval
["GET /succ?list-type=2&prefix=p%ED%9F%BF",
 "GET /succ?list-type=2&prefix=q%F4%8F%BF%BF",
 "GET /succ?list-type=2&prefix=s~",
 "GET /succ?list-type=2&prefix=s~&max-keys=1",
 "GET /succ?list-type=2&prefix=q"]
--- error_code: 200
--- check
my @p = map { parse_list($_->{body}) } @$responses;
is_deeply($p[0]{keys}, ["p\xED\x9F\xBF", "p\xED\x9F\xBFa"], 'prefix ending in U+D7FF: not U+E000');
is_deeply($p[1]{keys}, ["q\xF4\x8F\xBF\xBF", "q\xF4\x8F\xBF\xBFz"], 'prefix ending in U+10FFFF: not "r"');
is_deeply($p[2]{keys}, ["s~", "s~x"], 'prefix ending in "~": not DEL');
is_deeply($p[3]{keys}, ["s~"], 'max-keys=1: the first');
is($p[3]{IsTruncated}, 'true', '... truncated');
is_deeply($p[4]{keys}, ["q\xF4\x8F\xBF\xBF", "q\xF4\x8F\xBF\xBFz"], 'prefix q');
