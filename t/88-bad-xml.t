# Bad input, inventoried: XML bombs, at every XML body the gateway reads:
# DeleteObjects (POST ?delete), CompleteMultipartUpload (POST ?uploadId=),
# PutBucketVersioning (PUT ?versioning), PutBucketLifecycleConfiguration
# (PUT ?lifecycle) and batch GET's XML form (POST ?batch);
# PutObjectAcl/PutBucketAcl take the canned x-amz-acl and never parse a
# body.
#
# Decisions (README, "Decisions recorded here"):
# - A document with a DTD (<!DOCTYPE ...>) is refused: 400 MalformedXML.
#   S3's documents never have one; without it no entity can be declared,
#   so nothing can expand (billion laughs) or be fetched (external
#   entities).  libxml2 is called without XML_PARSE_NOENT, XML_PARSE_DTDLOAD
#   and XML_PARSE_HUGE, with XML_PARSE_NONET.
# - Nesting deeper than libxml2's limit (256 without XML_PARSE_HUGE) is a
#   parse error: 400 MalformedXML.
# - A body over the operation's cap (versioning 64 KiB, DeleteObjects
#   2 MiB, CompleteMultipartUpload 4 MiB, lifecycle 64 KiB, batch 16 MiB)
#   is 400 MalformedXML "too large":
#   refused before a byte of it is read when Content-Length says so, and
#   counted and dropped as it arrives when it is chunked (never held in
#   memory or written to a temp file).
# After each case: the objects (bytes, ETags), the versioning state and
# the open upload's parts are as they were.
use lib 't/lib';
use Plinth::Test;
use Digest::MD5 ();
use MIME::Base64 qw(encode_base64);
use IO::Socket::INET;
use Time::HiRes qw(time);

cluster_options(auth => 'sigv4');

our ($UP, $BEFORE, $PARTETAG);

sub snapshot {
    my @s;
    for my $k (qw(a b)) {
        my $r = s3_request(GET => "/xmlb/$k");
        push @s, "$k $r->{status} " . ($r->{headers}{etag} // '') . ' ' . md5_hex($r->{body});
    }
    my $l = s3_request(GET => '/xmlb?list-type=2');
    push @s, join ',', $l->{body} =~ m{<Key>([^<]+)</Key>}g;
    my $lc = s3_request(GET => '/xmlb?lifecycle');
    # the document when there is one (an error's body carries its request id)
    push @s, "lifecycle $lc->{status} " . ($lc->{status} == 200 ? md5_hex($lc->{body}) : s3_code($lc));
    my $v = s3_request(GET => '/xmlb?versioning');
    push @s, "versioning " . (($v->{body} =~ m{<Status>([^<]*)</Status>})[0] // 'never');
    my $p = s3_request(GET => "/xmlb/mp?uploadId=$::UP");
    push @s, "parts $p->{status} " . join ',', $p->{body} =~ m{<ETag>([^<]+)</ETag>}g;
    return join "\n", @s;
}

sub s3_code { ($_[0]{body} =~ m{<Code>([^<]+)</Code>})[0] // '' }

sub md5_header { ('Content-MD5' => encode_base64(Digest::MD5::md5($_[0]), '')) }

# the XML requests, each with a body
sub xml_requests {
    my ($body) = @_;
    return (
        ['DeleteObjects', POST => '/xmlb?delete', body => $body, headers => [md5_header($body)]],
        ['CompleteMultipartUpload', POST => "/xmlb/mp?uploadId=$::UP", body => $body],
        ['PutBucketVersioning', PUT => '/xmlb?versioning', body => $body],
        ['PutBucketLifecycleConfiguration', PUT => '/xmlb?lifecycle', body => $body],
        ['GetBatch', POST => '/xmlb?batch', body => $body],
    );
}

# a billion laughs: 10 levels of 10 references, 10^9 copies of "lol"
sub laughs {
    my ($root, $inner) = @_;
    my $dtd = qq{<!ENTITY l0 "lol">\n};
    $dtd .= "<!ENTITY l$_ \"" . ("&l" . ($_ - 1) . ";") x 10 . "\">\n" for 1 .. 9;
    return qq{<?xml version="1.0"?>\n<!DOCTYPE $root [\n$dtd]>\n$inner};
}

sub body_for {
    my ($op, $text) = @_;
    return {
        DeleteObjects => "<Delete><Object><Key>$text</Key></Object></Delete>",
        CompleteMultipartUpload => "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>$text</ETag></Part></CompleteMultipartUpload>",
        PutBucketVersioning => "<VersioningConfiguration><Status>$text</Status></VersioningConfiguration>",
        PutBucketLifecycleConfiguration => "<LifecycleConfiguration><Rule><ID>$text</ID><Filter><Prefix></Prefix></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>",
        GetBatch => "<Batch><Entry><Key>$text</Key></Entry></Batch>",
    }->{$op};
}
sub root_of {
    return { DeleteObjects => 'Delete', CompleteMultipartUpload => 'CompleteMultipartUpload',
             PutBucketVersioning => 'VersioningConfiguration',
             PutBucketLifecycleConfiguration => 'LifecycleConfiguration',
             GetBatch => 'Batch' }->{$_[0]};
}

# each of the XML operations with a body built for it
sub each_op {
    my ($make) = @_;
    my @out;
    for my $op (qw(DeleteObjects CompleteMultipartUpload PutBucketVersioning
                   PutBucketLifecycleConfiguration GetBatch)) {
        my $body = $make->($op);
        my ($req) = grep { $_->[0] eq $op } xml_requests($body);
        push @out, $req;
    }
    return @out;
}

sub check_cases {
    my ($what, @reqs) = @_;
    for my $q (@reqs) {
        my ($op, $method, $uri, %o) = @$q;
        my $t0 = time;
        my $r = s3_request($method => $uri, %o, timeout => 30);
        my $dt = time - $t0;
        is($r->{status}, 400, "$what, $op: 400");
        is(s3_code($r), 'MalformedXML', "$what, $op: MalformedXML") or diag(substr $r->{body}, 0, 300);
        unlike($r->{body}, qr{root:|lollol}, "$what, $op: nothing expanded or read into the answer");
        ok($dt < 5, "$what, $op: answered at once (" . sprintf('%.2f', $dt) . ' s)');
        is(snapshot(), $::BEFORE, "$what, $op: nothing stored changed");
    }
}

run_tests();

__DATA__

=== TEST 1: what is stored: two objects, an open upload with a part, versioning never set
--- check
is(s3_request(PUT => '/xmlb')->{status}, 200, 'bucket');
is(s3_request(PUT => '/xmlb/a', body => 'object a')->{status}, 200, 'a');
is(s3_request(PUT => '/xmlb/b', body => 'object b')->{status}, 200, 'b');
my $r = s3_request(POST => '/xmlb/mp?uploads');
($::UP) = $r->{body} =~ m{<UploadId>([^<]+)</UploadId>};
ok($::UP, 'an open upload');
$r = s3_request(PUT => "/xmlb/mp?partNumber=1&uploadId=$::UP", body => 'the only part');
is($r->{status}, 200, 'its part');
$::PARTETAG = $r->{headers}{etag};
$::BEFORE = snapshot();
note($::BEFORE);



=== TEST 2: billion laughs: refused, nothing expanded
--- timeout: 120
--- check
check_cases('billion laughs', each_op(sub { laughs(root_of($_[0]), body_for($_[0], '&l9;')) }));



=== TEST 3: external entities (file, http) and an external DTD: refused, nothing read
--- timeout: 120
--- check
my $port = $cluster->port;
check_cases('SYSTEM file entity', each_op(sub {
    qq{<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>} . body_for($_[0], '&x;') }));
check_cases('SYSTEM http entity', each_op(sub {
    qq{<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "http://127.0.0.1:$port/xmlb/a">]>} . body_for($_[0], '&x;') }));
check_cases('external DTD', each_op(sub {
    qq{<?xml version="1.0"?><!DOCTYPE d SYSTEM "file:///etc/passwd">} . body_for($_[0], 'a') }));
check_cases('parameter entity', each_op(sub {
    qq{<?xml version="1.0"?><!DOCTYPE d [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>} . body_for($_[0], 'a') }));
check_cases('a harmless internal entity', each_op(sub {
    qq{<?xml version="1.0"?><!DOCTYPE d [<!ENTITY k "a">]>} . body_for($_[0], '&k;') }));



=== TEST 4: deep nesting (100,000 levels, under 2 MiB): refused, libxml2's depth limit holds
--- timeout: 120
--- check
my $deep = ('<x>' x 100_000) . ('</x>' x 100_000);
check_cases('deep nesting', each_op(sub {
    my $b = body_for($_[0], 'a');
    $b =~ s{(</[^>]+>)$}{$deep$1};
    $b }));



=== TEST 5: the documents S3 sends still work (the checks above refuse bombs, not XML)
--- check
my $r = s3_request(PUT => '/xmlb?versioning',
    body => '<?xml version="1.0" encoding="UTF-8"?><VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Suspended</Status></VersioningConfiguration>');
is($r->{status}, 200, 'versioning Suspended: 200');
like(s3_request(GET => '/xmlb?versioning')->{body}, qr{<Status>Suspended</Status>}, 'it is Suspended');
my $del = '<?xml version="1.0" encoding="UTF-8"?><Delete><Object><Key>nothing-here</Key></Object><Quiet>true</Quiet></Delete>';
$r = s3_request(POST => '/xmlb?delete', body => $del, headers => [md5_header($del)]);
is($r->{status}, 200, 'DeleteObjects of an absent key: 200');
$::BEFORE = snapshot();
note($::BEFORE);



=== TEST 6: a 100 MiB body announced by Content-Length: refused before it is read
--- timeout: 120
--- check
my $big = 100 * 1024 * 1024;
for my $q (xml_requests('')) {
    my ($op, $method, $uri) = @$q;
    my $t0 = time;
    # only 64 KiB of the 100 MiB follow the head: the answer must not wait for the rest
    my $r = raw_request("$method $uri HTTP/1.1\r\n"
        . sign_request($method => $uri, format => 'raw', payload_hash => 'UNSIGNED-PAYLOAD',
                       headers => [Host => 'localhost', 'Content-Length' => $big])
        . "\r\n" . ('<' x 65536), timeout => 30);
    is($r->{status}, 400, "$op, 100 MiB declared: 400");
    is(s3_code($r), 'MalformedXML', "$op, 100 MiB declared: MalformedXML");
    like($r->{body}, qr{too large}, "$op: the message says why");
    ok(time - $t0 < 5, "$op: answered without waiting for the body");
    is(snapshot(), $::BEFORE, "$op, 100 MiB declared: nothing stored changed");
}



=== TEST 7: 100 MiB sent in full, with Content-Length and chunked: 400 MalformedXML, neither held in memory nor spooled
--- timeout: 300
--- check
my $mib = 'x' x (1024 * 1024);
my $tmp = $cluster->dir . '/tmp/body';
# the largest resident size any worker has had
my $hwm = sub {
    my $max = 0;
    for my $pid (Plinth::Cluster::children_of($cluster->pid_of('nginx'))) {
        open my $fh, '<', "/proc/$pid/status" or next;
        while (<$fh>) { $max = $1 if /^VmHWM:\s+(\d+) kB/ && $1 > $max }
    }
    return $max * 1024;
};
my $spooled = sub {
    my $n = 0;
    if (opendir my $d, $tmp) {
        $n += -s "$tmp/$_" // 0 for grep { !/^\./ } readdir $d;
    }
    return $n;
};
my $before = $hwm->();
ok($before > 0, 'the workers\' peak memory is readable');
for my $q (xml_requests('')) {
    my ($op, $method, $uri) = @$q;
    for my $mode ('Content-Length', 'chunked') {
        my $body = $mode eq 'chunked'
            ? join('', map { sprintf("%x\r\n", length $mib) . "$mib\r\n" } 1 .. 100) . "0\r\n\r\n"
            : $mib x 100;
        my $r = raw_request("$method $uri HTTP/1.1\r\n"
            . sign_request($method => $uri, format => 'raw', payload_hash => 'UNSIGNED-PAYLOAD',
                           headers => [Host => 'localhost', Connection => 'close',
                                       ($mode eq 'chunked' ? ('Transfer-Encoding' => 'chunked')
                                                           : ('Content-Length' => 100 * length $mib))])
            . "\r\n" . $body, timeout => 120);
        is($r->{status}, 400, "$op, 100 MiB $mode: 400");
        is(s3_code($r), 'MalformedXML', "$op, 100 MiB $mode: MalformedXML") or diag(substr $r->{body}, 0, 300);
        ok($spooled->() < 8 * 1024 * 1024, "$op, 100 MiB $mode: no temp file holds it ("
            . $spooled->() . ' bytes in tmp/body)');
        is(snapshot(), $::BEFORE, "$op, 100 MiB $mode: nothing stored changed");
    }
}
my $after = $hwm->();
ok($after - $before < 32 * 1024 * 1024, 'no worker grew by 32 MiB ('
    . int(($after - $before) / 1024) . ' KiB)');



=== TEST 8: PutBucketAcl / PutObjectAcl never parse their body: a bomb there is not read as XML
--- timeout: 60
--- check
my $bomb = laughs('AccessControlPolicy', '<AccessControlPolicy><Owner><ID>&l9;</ID></Owner></AccessControlPolicy>');
my $acl = sub { my ($uri) = @_; my $r = s3_request(GET => $uri); ($r->{body} =~ m{AllUsers}) ? 'public-read' : 'private' };
for my $uri ('/xmlb?acl', '/xmlb/a?acl') {
    is($acl->($uri), 'private', "$uri: private before");
    # a document instead of x-amz-acl: 501, as any ACL document
    my $r = s3_request(PUT => $uri, body => $bomb);
    is($r->{status}, 501, "$uri, a bomb as the ACL document: 501");
    is(s3_code($r), 'NotImplemented', "$uri: NotImplemented");
    is($acl->($uri), 'private', "$uri: still private");
    # x-amz-acl with a bomb beside it: the canned ACL is set, the body discarded unread
    $r = s3_request(PUT => $uri, body => $bomb, headers => ['x-amz-acl' => 'private']);
    is($r->{status}, 200, "$uri, x-amz-acl and a bomb body: 200 (the body is discarded)");
    is($acl->($uri), 'private', "$uri: private, as x-amz-acl says");
    is(snapshot(), $::BEFORE, "$uri: nothing else changed");
}
