# Bad input, inventoried: oversized request lines, headers and query
# strings.  Two layers answer:
# - nginx, for what does not fit its buffers (conf/nginx.conf:
#   large_client_header_buffers 4 8k, the default, written out): a request
#   line over 8 KiB -> 414 "Request-URI Too Large"; one header line over
#   8 KiB, or all headers over 4 x 8 KiB -> 400 "Request Header Or Cookie
#   Too Large" (nginx's 494, sent as 400).  Its own HTML page: the request
#   was never whole, the module never ran, and the statuses are the ones S3
#   gives for the same (414, 400); S3 clients report them by status.  Every
#   valid S3 request fits: a 1024-byte key fully percent-encoded is 3 KiB.
# - the module, for what fits but S3 refuses: a key over 1024 bytes ->
#   400 KeyTooLongError, user metadata over 2 KiB -> 400 MetadataTooLarge,
#   over 256 query parameters -> 400 InvalidURI (SigV4's canonical query
#   is built in a fixed array; S3 lists no such limit, no client sends
#   that many),
#   a list prefix over 1024 bytes (it can match no key) -> answered as S3
#   does, with the listing's own rules.
# After each: what is stored is unchanged, and the connection's next
# request (or a new one) is served.
use lib 't/lib';
use Plinth::Test;

cluster_options(auth => 'sigv4');

our $BEFORE;

sub snapshot {
    my $r = s3_request(GET => '/hdrb/k');
    my $l = s3_request(GET => '/hdrb?list-type=2');
    return join "\n", "k $r->{status} " . ($r->{headers}{etag} // '') . ' ' . md5_hex($r->{body}),
        join ',', $l->{body} =~ m{<Key>([^<]+)</Key>}g;
}

sub s3_code { ($_[0]{body} =~ m{<Code>([^<]+)</Code>})[0] // '' }

run_tests();

__DATA__

=== TEST 1: what is stored
--- check
is(s3_request(PUT => '/hdrb')->{status}, 200, 'bucket');
is(s3_request(PUT => '/hdrb/k', body => 'kept')->{status}, 200, 'an object');
$::BEFORE = snapshot();



=== TEST 2: over nginx's buffers: its own 414 and 400, before the module
--- timeout: 30
--- check
my @cases = (
    ['request line of 9 KiB (a long key)', 414, 'Request-URI Too Large',
        sub { s3_request(PUT => '/hdrb/' . ('k' x 9000), body => 'x') }],
    ['request line of 9 KiB (a long query)', 414, 'Request-URI Too Large',
        sub { s3_request(GET => '/hdrb?list-type=2&prefix=' . ('p' x 9000)) }],
    ['request line of 64 KiB', 414, 'Request-URI Too Large',
        sub { s3_request(GET => '/hdrb/k?' . ('a=b&' x 16384)) }],
    ['one header of 9 KiB', 400, 'Request Header Or Cookie Too Large',
        sub { s3_request(PUT => '/hdrb/k', body => 'new', headers => ['x-amz-meta-big' => 'v' x 9000]) }],
    ['one header of 1 MiB', 400, 'Request Header Or Cookie Too Large',
        sub { s3_request(GET => '/hdrb/k', headers => ['X-Filler' => 'v' x (1 << 20)]) }],
    ['headers of 5 x 7 KiB', 400, 'Request Header Or Cookie Too Large',
        sub { s3_request(PUT => '/hdrb/k', body => 'new', headers => [map { ("X-Filler-$_" => 'v' x 7000) } 1 .. 5]) }],
);
for my $c (@cases) {
    my ($what, $status, $title, $do) = @$c;
    my $r = $do->();
    is($r->{status}, $status, "$what: $status");
    like($r->{body}, qr{<title>\d+ \Q$title\E</title>}, "$what: nginx's page \"$title\"");
    unlike($r->{body}, qr{<Error>}, "$what: not from the module");
    is(snapshot(), $::BEFORE, "$what: nothing stored changed");
}



=== TEST 3: fits nginx, refused by the module: S3's error and status
--- timeout: 30
--- check
my @cases = (
    ['a key of 7000 bytes', 400, 'KeyTooLongError',
        sub { s3_request(PUT => '/hdrb/' . ('k' x 7000), body => 'x') }],
    ['a key of 1025 bytes, fully encoded (3 KiB URI)', 400, 'KeyTooLongError',
        sub { s3_request(PUT => '/hdrb/' . ('%C3%A9' x 512) . 'k', body => 'x') }],
    ['user metadata of 3 KiB in one header', 400, 'MetadataTooLarge',
        sub { s3_request(PUT => '/hdrb/k', body => 'new', headers => ['x-amz-meta-big' => 'v' x 3000]) }],
    ['user metadata of 3 KiB in 30 headers', 400, 'MetadataTooLarge',
        sub { s3_request(PUT => '/hdrb/k', body => 'new', headers => [map { ("x-amz-meta-m$_" => 'v' x 100) } 1 .. 30]) }],
    ['user metadata of 3 KiB on a copy', 400, 'MetadataTooLarge',
        sub { s3_request(PUT => '/hdrb/k2', headers => ['x-amz-copy-source' => '/hdrb/k',
              'x-amz-metadata-directive' => 'REPLACE', 'x-amz-meta-big' => 'v' x 3000]) }],
    ['1001 query parameters in 7 KiB (SigV4 takes 256)', 400, 'InvalidURI',
        sub { s3_request(GET => '/hdrb?list-type=2&' . join('&', map { "x$_=1" } 1 .. 1000)) }],
    ['user metadata of 3 KiB on an upload', 400, 'MetadataTooLarge',
        sub { s3_request(POST => '/hdrb/mp?uploads', headers => ['x-amz-meta-big' => 'v' x 3000]) }],
);
for my $c (@cases) {
    my ($what, $status, $code, $do) = @$c;
    my $r = $do->();
    is($r->{status}, $status, "$what: $status");
    is(s3_code($r), $code, "$what: <Code>$code</Code>") or diag(substr $r->{body}, 0, 300);
    is(snapshot(), $::BEFORE, "$what: nothing stored changed");
}



=== TEST 4: large but valid: served
--- timeout: 30
--- check
# 2 KiB of metadata exactly (names without the prefix, plus values)
my $meta = 'v' x (2048 - length 'big');
my $r = s3_request(PUT => '/hdrb/meta', body => 'with metadata', headers => ['x-amz-meta-big' => $meta]);
is($r->{status}, 200, '2 KiB of metadata: 200');
is(s3_request(HEAD => '/hdrb/meta')->{headers}{'x-amz-meta-big'}, $meta, 'it reads back');
is(s3_request(DELETE => '/hdrb/meta')->{status}, 204, 'deleted');
# a list prefix of 7000 bytes matches nothing
$r = s3_request(GET => '/hdrb?list-type=2&prefix=' . ('p' x 7000));
is($r->{status}, 200, 'a 7000-byte prefix: 200');
is(scalar(() = $r->{body} =~ /<Key>/g), 0, 'no key listed');
# 255 query parameters (SigV4's limit is 256)
$r = s3_request(GET => '/hdrb?list-type=2&' . join('&', map { "x$_=1" } 1 .. 254));
is($r->{status}, 200, '255 query parameters: 200');
like($r->{body}, qr{<Key>k</Key>}, 'the listing');
# 500 small headers (about 10 KiB, in several of nginx's buffers)
$r = s3_request(GET => '/hdrb/k', headers => [map { ("X-Filler-$_" => 'v' x 10) } 1 .. 500]);
is($r->{status}, 200, '500 small headers: 200');
is($r->{body}, 'kept', 'the object');
is(snapshot(), $::BEFORE, 'nothing stored changed');
