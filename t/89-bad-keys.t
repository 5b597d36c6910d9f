# Bad input, inventoried: object keys.  S3 keys are any UTF-8 of 1 to 1024
# bytes; "../" is an ordinary part of a key (S3 stores "a/../b" as it is,
# nothing is resolved).  Each case gets its exact answer, and after each
# one what is stored is unchanged: the bucket's listing, an object's bytes
# and ETag.
#
# Who answers: the module, for everything it can see.  Keys are taken from
# the raw request URI (README, "Decisions"), so nginx's dot-segment and
# slash normalisation never change one.  Two kinds of URI never reach it:
# one whose dot segments climb above the root ("/keys/../../x", also with
# the dots and slashes percent-encoded: nginx decodes them first), and one
# holding a NUL (%00).  nginx refuses the request line itself with its own
# 400 page before any module runs.  That is acceptable: nothing is stored
# or read, the status is S3's (400), and S3 clients report a 400 whose body
# is not XML by its status (README, "Known limits": such keys cannot be
# stored through nginx).
use lib 't/lib';
use Plinth::Test;

cluster_options(auth => 'sigv4');

our $BEFORE;

# what is stored: the listing (keys, sizes, ETags) and one object's bytes
sub snapshot {
    my $l = s3_request(GET => '/keys?list-type=2');
    my @k = $l->{body} =~ m{<Contents><Key>([^<]*)</Key>.*?<ETag>([^<]*)</ETag><Size>(\d+)</Size>}g;
    my $g = s3_request(GET => '/keys/held');
    return join "\n", "list $l->{status}", join(',', @k),
        "held $g->{status} " . md5_hex($g->{body});
}

sub s3_code { ($_[0]{body} =~ m{<Code>([^<]+)</Code>})[0] // '' }

run_tests();

__DATA__

=== TEST 1: a bucket holding one object
--- check
is(s3_request(PUT => '/keys')->{status}, 200, 'bucket');
is(s3_request(PUT => '/keys/held', body => 'held bytes')->{status}, 200, 'an object');
$::BEFORE = snapshot();
like($::BEFORE, qr{held 200 \Q${\ md5_hex('held bytes')}\E}, 'it reads back');



=== TEST 2: "../" is part of a key, stored literally, never resolved
--- check
my %keys = (
    '/keys/a/../b' => 'a/../b',
    '/keys/../up' => '../up',                # nginx resolves r->uri to "/up"
    '/keys/a/./c' => 'a/./c',
    '/keys/d//e' => 'd//e',
    '/keys/%2E%2E%2Fenc' => '../enc',        # encoded dots and slash
    '/keys/x/..' => 'x/..',
);
for my $uri (sort keys %keys) {
    my $key = $keys{$uri};
    my $r = s3_request(PUT => $uri, body => "body of $key");
    is($r->{status}, 200, "PUT $uri: 200") or diag($r->{body});
    my $g = s3_request(GET => $uri);
    is($g->{status}, 200, "GET $uri: 200");
    is($g->{body}, "body of $key", "GET $uri: its own bytes");
}
my $l = s3_request(GET => '/keys?list-type=2');
my @listed = $l->{body} =~ m{<Key>([^<]*)</Key>}g;
for my $key (values %keys) {
    ok((grep { $_ eq $key } @listed), "listed literally as '$key'");
}
# the resolved forms were never written
for my $not ('b', 'up', 'c', 'enc', 'x') {
    is(s3_request(GET => "/keys/$not")->{status}, 404, "no key '$not' (nothing was resolved)");
}
# "a/../b" and "b" are two keys: writing "b" leaves "a/../b" alone
is(s3_request(PUT => '/keys/b', body => 'plain b')->{status}, 200, 'PUT b');
is(s3_request(GET => '/keys/a/../b')->{body}, 'body of a/../b', 'a/../b unchanged by a write of b');
for my $uri (sort(keys %keys), '/keys/b') {
    is(s3_request(DELETE => $uri)->{status}, 204, "DELETE $uri");
}
is(snapshot(), $::BEFORE, 'the bucket is as it was');



=== TEST 3: dot segments above the root: nginx's own 400, before the module
--- check
my $r = s3_request(PUT => '/keys/../../x', body => 'climbing');
is($r->{status}, 400, 'nginx answers 400');
unlike($r->{body}, qr{<Error>}, 'its own page, not S3 XML (the module never ran)');
is(snapshot(), $::BEFORE, 'nothing stored changed');



=== TEST 4: NUL (%00) in a key: nginx's own 400 (it refuses a decoded NUL in any URI path), before the module
--- check
for my $c (['PUT', '/keys/a%00b'], ['PUT', '/keys/held%00'], ['GET', '/keys/held%00x'],
           ['DELETE', '/keys/held%00'], ['POST', '/keys/a%00?uploads'], ['HEAD', '/keys/%00']) {
    my ($method, $uri) = @$c;
    my $r = s3_request($method => $uri, ($method eq 'PUT' ? (body => 'bad key') : ()));
    is($r->{status}, 400, "$method $uri: 400");
    unlike($r->{body}, qr{<Error>}, "$method $uri: nginx's page (the module never saw it)");
    is(snapshot(), $::BEFORE, "$method $uri: nothing stored changed");
}



=== TEST 5: invalid UTF-8, over 1024 bytes: exact code and status, nothing changes
--- check
my @cases = (
    # [what, method, uri, status, code]
    ['lone byte 0xFF',          PUT => '/keys/%FF', 400, 'InvalidArgument'],
    ['truncated sequence',      PUT => '/keys/a%C3', 400, 'InvalidArgument'],
    ['overlong "/" (C0 AF)',    PUT => '/keys/%C0%AF', 400, 'InvalidArgument'],
    ['UTF-16 surrogate',        PUT => '/keys/%ED%A0%80', 400, 'InvalidArgument'],
    ['above U+10FFFF',          PUT => '/keys/%F4%90%80%80', 400, 'InvalidArgument'],
    ['invalid UTF-8, DELETE',   DELETE => '/keys/%FF', 400, 'InvalidArgument'],
    ['invalid UTF-8, upload',   POST => '/keys/%FF?uploads', 400, 'InvalidArgument'],
    ['1025 bytes',              PUT => '/keys/' . ('k' x 1025), 400, 'KeyTooLongError'],
    ['1025 bytes, GET',         GET => '/keys/' . ('k' x 1025), 400, 'KeyTooLongError'],
    ['1025 bytes, upload',      POST => '/keys/' . ('k' x 1025) . '?uploads', 400, 'KeyTooLongError'],
    ['513 two-byte chars',      PUT => '/keys/' . ('%C3%A9' x 513), 400, 'KeyTooLongError'],
    ['4000 bytes',              PUT => '/keys/' . ('k' x 4000), 400, 'KeyTooLongError'],
);
for my $c (@cases) {
    my ($what, $method, $uri, $status, $code) = @$c;
    my $r = s3_request($method => $uri, ($method eq 'PUT' ? (body => 'bad key') : ()));
    is($r->{status}, $status, "$what: $status");
    is(s3_code($r), $code, "$what: <Code>$code</Code>") or diag($r->{body});
    is(snapshot(), $::BEFORE, "$what: nothing stored changed");
}



=== TEST 6: exactly 1024 bytes (also 512 two-byte characters) works end to end
--- check
for my $k ('k' x 1024, ('%C3%A9' x 512), ('a/' x 512)) {
    my $uri = "/keys/$k";
    (my $key = $k) =~ s/%([0-9A-F]{2})/chr hex $1/ge;
    is(length $key, 1024, 'the key is 1024 bytes');
    is(s3_request(PUT => $uri, body => 'at the limit')->{status}, 200, 'PUT: 200');
    my $g = s3_request(GET => $uri);
    is($g->{status}, 200, 'GET: 200');
    is($g->{body}, 'at the limit', 'GET: its bytes');
    is(s3_request(HEAD => $uri)->{status}, 200, 'HEAD: 200');
    my $l = s3_request(GET => '/keys?list-type=2');
    ok((grep { $_ eq $key } $l->{body} =~ m{<Key>([^<]*)</Key>}g), 'listed');
    is(s3_request(DELETE => $uri)->{status}, 204, 'DELETE: 204');
    is(s3_request(GET => $uri)->{status}, 404, 'gone');
}
is(snapshot(), $::BEFORE, 'the bucket is as it was');
