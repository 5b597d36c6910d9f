# Multipart upload: CreateMultipartUpload, UploadPart, CompleteMultipartUpload,
# AbortMultipartUpload, ListParts, ListMultipartUploads; GET and HEAD of a
# multipart object (whole, ranges across part boundaries, ?partNumber),
# replica fallback inside a part, and the AWS CLI's multipart cp.
use lib 't/lib';
use Plinth::Test;
use Digest::MD5 ();
use Digest::SHA ();
use MIME::Base64 ();
use File::Temp qw(tempdir);

# One replica at a time, as an unstriped GET reads: the fallback tests
# below corrupt a block in the middle of a read and expect it resumed at
# that byte (t/94-striped-get.t covers the same with striped reads).
cluster_options(http_extra => 'plinth_stripe_size 0;');

# ---------------------------------------------------------------- helpers
# (package main: setup, check and eval sections call them)

our (%UP, %PART, %BODY);    # upload ids, part bodies, whole bodies by name

my $MiB = 1024 * 1024;

sub xml_val {
    my ($xml, $tag) = @_;
    return $xml =~ m{<$tag>(.*?)</$tag>}s ? $1 : undef;
}

sub create_upload {
    my ($uri, @headers) = @_;
    my $r = s3_request(POST => "$uri?uploads",
        @headers ? (headers => [@headers]) : ());
    die "CreateMultipartUpload $uri: $r->{status} $r->{body}\n"
        unless $r->{status} == 200;
    my $id = xml_val($r->{body}, 'UploadId') // die "no UploadId: $r->{body}";
    return $id;
}

# returns the part's ETag, without quotes
sub upload_part {
    my ($uri, $id, $n, $body, @headers) = @_;
    my $r = s3_request(PUT => "$uri?partNumber=$n&uploadId=$id", body => $body,
        @headers ? (headers => [@headers]) : (), timeout => 60);
    die "UploadPart $uri #$n: $r->{status} $r->{body}\n"
        unless $r->{status} == 200;
    (my $etag = $r->{headers}{etag} // '') =~ s/"//g;
    return $etag;
}

# <CompleteMultipartUpload> of [part number, ETag] pairs, ETags quoted
sub complete_xml {
    my $x = '<CompleteMultipartUpload '
          . 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/">';
    $x .= "<Part><PartNumber>$_->[0]</PartNumber><ETag>\"$_->[1]\"</ETag></Part>"
        for @_;
    return $x . '</CompleteMultipartUpload>';
}

sub complete {
    my ($uri, $id, @parts) = @_;
    return s3_request(POST => "$uri?uploadId=$id", body => complete_xml(@parts),
        timeout => 60);
}

# S3's multipart ETag, computed by hand: md5 of the binary part md5s, -N
sub mp_etag {
    my @bodies = @_;
    my $cat = join '', map { Digest::MD5::md5($_) } @bodies;
    return Digest::MD5::md5_hex($cat) . '-' . scalar(@bodies);
}

sub put_ok {
    my ($uri, $body) = @_;
    my $r = s3_request(PUT => $uri, body => $body // '');
    die "PUT $uri: $r->{status} $r->{body}\n" unless $r->{status} == 200;
    return $r;
}

# a whole multipart object of the given part sizes, completed; its body
sub mp_object {
    my ($uri, @sizes) = @_;
    my $id = create_upload($uri);
    my (@bodies, @parts);
    for my $i (0 .. $#sizes) {
        push @bodies, random_bytes($sizes[$i]);
        push @parts, [$i + 1, upload_part($uri, $id, $i + 1, $bodies[-1])];
    }
    my $r = complete($uri, $id, @parts);
    die "Complete $uri: $r->{status} $r->{body}\n" unless $r->{status} == 200;
    return join '', @bodies;
}


sub garbage_count {
    my ($reason) = @_;
    my @r = cluster()->psql(
        "SELECT count(*) FROM garbage_blobs WHERE reason = '$reason'");
    return $r[0][0];
}

# the AWS CLI with a config file that makes 5 MiB files multipart, signed
# with the admin key (client_credentials)
sub aws_mp {
    my @args = @_;
    my $c = cluster();
    my $home = tempdir('plinth-awsmp-XXXXXX', DIR => '/tmp', CLEANUP => 1);
    open my $fh, '>', "$home/config" or die "config: $!";
    print $fh "[default]\nregion = us-east-1\ns3 =\n"
            . "    multipart_threshold = 5MB\n    multipart_chunksize = 5MB\n";
    close $fh;
    my ($ak, $sk) = client_credentials();
    return Plinth::Cluster::run_command(
        ['/usr/bin/aws', '--endpoint-url', $c->endpoint, @args],
        timeout => 300, merge => 1, cwd => $home,
        env => {
            AWS_ACCESS_KEY_ID           => $ak,
            AWS_SECRET_ACCESS_KEY       => $sk,
            AWS_DEFAULT_REGION          => 'us-east-1',
            AWS_CONFIG_FILE             => "$home/config",
            AWS_SHARED_CREDENTIALS_FILE => '/dev/null',
            AWS_EC2_METADATA_DISABLED   => 'true',
            AWS_PAGER                   => '',
            HOME                        => $home,
            PATH => "/usr/bin:/bin:" . ($ENV{PATH} // ''),
        });
}

run_tests();

__DATA__

=== TEST 1: create the bucket
--- request
PUT /mpb
--- error_code: 200



=== TEST 2: CreateMultipartUpload: 200, Bucket, Key and a random UploadId
--- request
POST /mpb/obj?uploads
--- more_headers
Content-Type: text/x-plinth
x-amz-meta-colour: blue
--- error_code: 200
--- response_headers
Content-Type: application/xml
--- response_body_like
^<\?xml version="1.0" encoding="UTF-8"\?>\n<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>mpb</Bucket><Key>obj</Key><UploadId>[0-9a-f]{64}</UploadId></InitiateMultipartUploadResult>$
--- check
$::UP{obj} = main::xml_val($res->{body}, 'UploadId');
my $other = main::create_upload('/mpb/obj');
isnt($other, $::UP{obj}, 'a second upload of the key has another id');
main::s3_request(DELETE => "/mpb/obj?uploadId=$other");



=== TEST 3: UploadPart 1 (5 MiB): 200, ETag is the part's MD5
--- request eval
"PUT /mpb/obj?partNumber=1&uploadId=$::UP{obj}\n"
. ($::PART{1} = random_bytes(5 * 1024 * 1024))
--- timeout: 30
--- error_code: 200
--- check
is($res->{headers}{etag}, '"' . md5_hex($::PART{1}) . '"', 'ETag');



=== TEST 4: UploadPart 2 (5 MiB) and 3 (1 MiB + 123 bytes, the last)
--- request eval
[ "PUT /mpb/obj?partNumber=2&uploadId=$::UP{obj}\n"
  . ($::PART{2} = random_bytes(5 * 1024 * 1024)),
  "PUT /mpb/obj?partNumber=3&uploadId=$::UP{obj}\n"
  . ($::PART{3} = random_bytes(1024 * 1024 + 123)) ]
--- timeout: 30
--- error_code: 200
--- check
is($responses->[0]{headers}{etag}, '"' . md5_hex($::PART{2}) . '"', 'part 2 ETag');
is($responses->[1]{headers}{etag}, '"' . md5_hex($::PART{3}) . '"', 'part 3 ETag');



=== TEST 5: each part is its own blob on RF=3 nodes
--- request eval
"GET /mpb/obj?uploadId=$::UP{obj}"
--- error_code: 200
--- check
my @rows = $cluster->psql(
    "SELECT part_number, replace(blob_id::text, '-', ''), "
  . "array_to_string(nodes, ',') FROM upload_parts "
  . "WHERE upload_id = '$::UP{obj}' ORDER BY part_number");
is(scalar(@rows), 3, 'three parts recorded');
my %blobs = map { $_->[1] => 1 } @rows;
is(scalar(keys %blobs), 3, 'three distinct blobs');
for my $row (@rows) {
    my @nodes = split /,/, $row->[2];
    ok(@nodes >= 2, "part $row->[0] on at least W nodes");
    ok(-f $cluster->blob_path($nodes[0], $row->[1]), "part $row->[0] blob file exists");
}



=== TEST 6: re-uploading a part number replaces it; the old blob becomes garbage
--- setup
$::garbage_before = main::garbage_count('replaced');
--- request eval
"PUT /mpb/obj?partNumber=3&uploadId=$::UP{obj}\n" . $::PART{3}
--- error_code: 200
--- check
is(main::garbage_count('replaced'), $::garbage_before + 1,
   'the replaced part blob is recorded for garbage collection');



=== TEST 7: ListParts: every part with its ETag and size
--- request eval
"GET /mpb/obj?uploadId=$::UP{obj}"
--- error_code: 200
--- check
my @n = $res->{body} =~ m{<PartNumber>(\d+)</PartNumber>}g;
is("@n", "1 2 3", 'part numbers');
my @s = $res->{body} =~ m{<Size>(\d+)</Size>}g;
is("@s", join(' ', map { length $::PART{$_} } 1 .. 3), 'sizes');
my @e = $res->{body} =~ m{<ETag>&quot;([0-9a-f]{32})&quot;</ETag>}g;
is("@e", join(' ', map { md5_hex($::PART{$_}) } 1 .. 3), 'ETags');
like($res->{body}, qr{<UploadId>\Q$::UP{obj}\E</UploadId>}, 'UploadId');
like($res->{body}, qr{<IsTruncated>false</IsTruncated>}, 'not truncated');
like($res->{body}, qr{<LastModified>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z</LastModified>}, 'LastModified');



=== TEST 8: ListParts paging: max-parts=2, then part-number-marker
--- request eval
[ "GET /mpb/obj?uploadId=$::UP{obj}&max-parts=2",
  "GET /mpb/obj?uploadId=$::UP{obj}&max-parts=2&part-number-marker=2" ]
--- error_code: 200
--- check
my $p1 = $responses->[0]{body};
is(join(' ', $p1 =~ m{<PartNumber>(\d+)</PartNumber>}g), '1 2', 'page 1');
like($p1, qr{<IsTruncated>true</IsTruncated>}, 'page 1 truncated');
like($p1, qr{<NextPartNumberMarker>2</NextPartNumberMarker>}, 'NextPartNumberMarker');
like($p1, qr{<MaxParts>2</MaxParts>}, 'MaxParts');
my $p2 = $responses->[1]{body};
is(join(' ', $p2 =~ m{<PartNumber>(\d+)</PartNumber>}g), '3', 'page 2');
like($p2, qr{<IsTruncated>false</IsTruncated>}, 'page 2 not truncated');
like($p2, qr{<PartNumberMarker>2</PartNumberMarker>}, 'PartNumberMarker echoed');



=== TEST 9: UploadPart with partNumber 0, 10001 or none: 400 InvalidArgument
--- request eval
[ "PUT /mpb/obj?partNumber=0&uploadId=$::UP{obj}\nx",
  "PUT /mpb/obj?partNumber=10001&uploadId=$::UP{obj}\nx",
  "PUT /mpb/obj?partNumber=abc&uploadId=$::UP{obj}\nx",
  "PUT /mpb/obj?uploadId=$::UP{obj}\nx" ]
--- error_code: 400
--- response_body_like
<Code>InvalidArgument</Code>



=== TEST 10: UploadPart to an unknown upload: 404 NoSuchUpload
--- request
PUT /mpb/obj?partNumber=1&uploadId=0123456789abcdef
hello
--- error_code: 404
--- response_body_like
<Code>NoSuchUpload</Code>



=== TEST 11: UploadPart with Content-MD5 that does not match: 400 BadDigest
--- request eval
"PUT /mpb/obj?partNumber=4&uploadId=$::UP{obj}\nhello"
--- more_headers
Content-MD5: AAAAAAAAAAAAAAAAAAAAAA==
--- error_code: 400
--- response_body_like
<Code>BadDigest</Code>



=== TEST 12: UploadPartCopy of a missing source: 404 NoSuchKey, the upload's parts unchanged
--- request eval
"PUT /mpb/obj?partNumber=4&uploadId=$::UP{obj}"
--- more_headers
x-amz-copy-source: /mpb/other
--- error_code: 404
--- response_body_like
<Code>NoSuchKey</Code>
--- check
my $l = s3_request(GET => "/mpb/obj?uploadId=$::UP{obj}");
unlike($l->{body}, qr{<PartNumber>4</PartNumber>}, 'no part 4');



=== TEST 13: the previous version of the key, a single PUT, for the error blocks
--- request
PUT /mpb/obj
previous version
--- error_code: 200



=== TEST 14: Complete with parts out of order: 400 InvalidPartOrder, old object served
--- request eval
"POST /mpb/obj?uploadId=$::UP{obj}\n" . main::complete_xml(
    [2, md5_hex($::PART{2})], [1, md5_hex($::PART{1})], [3, md5_hex($::PART{3})])
--- error_code: 400
--- response_body_like
<Code>InvalidPartOrder</Code>
--- check
is(s3_request(GET => '/mpb/obj')->{body}, 'previous version', 'the previous version is served');



=== TEST 15: Complete with a wrong ETag: 400 InvalidPart, old object served
--- request eval
"POST /mpb/obj?uploadId=$::UP{obj}\n" . main::complete_xml(
    [1, md5_hex($::PART{1})], [2, md5_hex('nope')], [3, md5_hex($::PART{3})])
--- error_code: 400
--- response_body_like
<Code>InvalidPart</Code>
--- check
is(s3_request(GET => '/mpb/obj')->{body}, 'previous version', 'the previous version is served');



=== TEST 16: Complete naming a part never uploaded: 400 InvalidPart
--- request eval
"POST /mpb/obj?uploadId=$::UP{obj}\n" . main::complete_xml(
    [1, md5_hex($::PART{1})], [7, md5_hex($::PART{2})])
--- error_code: 400
--- response_body_like
<Code>InvalidPart</Code>



=== TEST 17: Complete with a part under 5 MiB before the last: 400 EntityTooSmall
--- request eval
"POST /mpb/obj?uploadId=$::UP{obj}\n" . main::complete_xml(
    [1, md5_hex($::PART{1})], [3, md5_hex($::PART{3})], [4, md5_hex('x')])
--- error_code: 400
--- response_body_like
<Code>(EntityTooSmall|InvalidPart)</Code>
--- check
# part 4 does not exist: upload a small part 4 and try again
main::upload_part('/mpb/obj', $::UP{obj}, 4, 'x');
my $r = main::complete('/mpb/obj', $::UP{obj},
    [1, md5_hex($::PART{1})], [3, md5_hex($::PART{3})], [4, md5_hex('x')]);
is($r->{status}, 400, 'status');
like($r->{body}, qr{<Code>EntityTooSmall</Code>}, 'EntityTooSmall');
is(s3_request(GET => '/mpb/obj')->{body}, 'previous version', 'the previous version is served');



=== TEST 18: Complete with malformed XML, an empty list, a wrong root: 400 MalformedXML
--- request eval
[ "POST /mpb/obj?uploadId=$::UP{obj}\n<CompleteMultipartUpload><Part>",
  "POST /mpb/obj?uploadId=$::UP{obj}\n<CompleteMultipartUpload></CompleteMultipartUpload>",
  "POST /mpb/obj?uploadId=$::UP{obj}\n<Other><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part></Other>",
  "POST /mpb/obj?uploadId=$::UP{obj}\n<CompleteMultipartUpload><Part><PartNumber>one</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>",
  "POST /mpb/obj?uploadId=$::UP{obj}\n" ]
--- error_code: 400
--- response_body_like
<Code>MalformedXML</Code>
--- check
is(s3_request(GET => '/mpb/obj')->{body}, 'previous version', 'the previous version is served');



=== TEST 19: Complete of an unknown upload: 404 NoSuchUpload
--- request eval
"POST /mpb/obj?uploadId=ffffffff\n" . main::complete_xml([1, md5_hex($::PART{1})])
--- error_code: 404
--- response_body_like
<Code>NoSuchUpload</Code>



=== TEST 20: Complete (ETags with and without quotes): 200, the multipart ETag
--- request eval
"POST /mpb/obj?uploadId=$::UP{obj}\n"
. '<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
. '<Part><ETag>"' . md5_hex($::PART{1}) . '"</ETag><PartNumber>1</PartNumber></Part>'
. '<Part><PartNumber>2</PartNumber><ETag>' . md5_hex($::PART{2}) . '</ETag></Part>'
. '<Part><PartNumber>3</PartNumber><ETag>&quot;' . md5_hex($::PART{3}) . '&quot;</ETag></Part>'
. '</CompleteMultipartUpload>'
--- error_code: 200
--- response_headers
Content-Type: application/xml
--- check
$::BODY{obj} = join '', map { $::PART{$_} } 1 .. 3;
my $want = main::mp_etag(map { $::PART{$_} } 1 .. 3);
like($want, qr/^[0-9a-f]{32}-3$/, 'hand-computed ETag has the md5-N form');
is(main::xml_val($res->{body}, 'ETag'), "&quot;$want&quot;", 'ETag is md5 of the part md5s, -3');
like($res->{body}, qr{<Location>http://127\.0\.0\.1:\d+/mpb/obj</Location>}, 'Location');
like($res->{body}, qr{<Bucket>mpb</Bucket><Key>obj</Key>}, 'Bucket and Key');
is(main::garbage_count('not completed'), 1, 'the unlisted part 4 is garbage');



=== TEST 21: GET: byte-identical, ETag md5-N, type and metadata of the upload
--- request
GET /mpb/obj
--- timeout: 30
--- error_code: 200
--- response_headers
Content-Type: text/x-plinth
x-amz-meta-colour: blue
!x-amz-mp-parts-count
--- check
is(length $res->{body}, length $::BODY{obj}, 'length');
ok($res->{body} eq $::BODY{obj}, 'byte-identical');
is($res->{headers}{etag}, '"' . main::mp_etag(map { $::PART{$_} } 1 .. 3) . '"', 'ETag');
is($res->{headers}{'content-length'}, length $::BODY{obj}, 'Content-Length');



=== TEST 22: HEAD: length and multipart ETag
--- request
HEAD /mpb/obj
--- error_code: 200
--- check
is($res->{headers}{'content-length'}, length $::BODY{obj}, 'Content-Length');
is($res->{headers}{etag}, '"' . main::mp_etag(map { $::PART{$_} } 1 .. 3) . '"', 'ETag');



=== TEST 23: Range across the boundary of parts 1 and 2
--- request
GET /mpb/obj
--- more_headers
Range: bytes=5242000-5243999
--- error_code: 206
--- response_headers
Content-Range: bytes 5242000-5243999/11534459
--- check
ok($res->{body} eq substr($::BODY{obj}, 5242000, 2000), 'byte-identical');



=== TEST 24: Range across all three parts, and a suffix range inside the last
--- request
GET /mpb/obj
--- more_headers
Range: bytes=100-11000000
--- timeout: 30
--- error_code: 206
--- check
ok($res->{body} eq substr($::BODY{obj}, 100, 11000000 - 100 + 1), 'three parts');
my $r = s3_request(GET => '/mpb/obj', headers => { Range => 'bytes=-500' });
is($r->{status}, 206, 'suffix: 206');
ok($r->{body} eq substr($::BODY{obj}, -500), 'suffix');



=== TEST 25: Range of exactly part 2 and of the first byte of part 3
--- request
GET /mpb/obj
--- more_headers
Range: bytes=5242880-10485759
--- error_code: 206
--- check
ok($res->{body} eq $::PART{2}, 'part 2');
my $r = s3_request(GET => '/mpb/obj', headers => { Range => 'bytes=10485760-10485760' });
is($r->{status}, 206, 'one byte: 206');
ok($r->{body} eq substr($::PART{3}, 0, 1), 'first byte of part 3');



=== TEST 26: GET ?partNumber=2: 206, that part, its Content-Range, parts count
--- request
GET /mpb/obj?partNumber=2
--- error_code: 206
--- response_headers
Content-Range: bytes 5242880-10485759/11534459
x-amz-mp-parts-count: 3
Content-Length: 5242880
--- check
ok($res->{body} eq $::PART{2}, 'part 2, byte-identical');
is($res->{headers}{etag}, '"' . main::mp_etag(map { $::PART{$_} } 1 .. 3) . '"', 'ETag of the object');



=== TEST 27: HEAD ?partNumber=3
--- request
HEAD /mpb/obj?partNumber=3
--- error_code: 206
--- response_headers
Content-Range: bytes 10485760-11534458/11534459
x-amz-mp-parts-count: 3
Content-Length: 1048699



=== TEST 28: partNumber past the last part: 416 InvalidPartNumber; 0: 400
--- request eval
[ "GET /mpb/obj?partNumber=4", "GET /mpb/obj?partNumber=0" ]
--- error_code eval
[ 416, 400 ]
--- response_body_like eval
[ qr/<Code>InvalidPartNumber<\/Code>/, qr/<Code>InvalidArgument<\/Code>/ ]



=== TEST 29: partNumber=1 of a single-PUT object: 206, the whole object, no parts count
--- setup
put_ok('/mpb/single', 'twelve bytes');
--- request
GET /mpb/single?partNumber=1
--- error_code: 206
--- response_headers
Content-Range: bytes 0-11/12
!x-amz-mp-parts-count
--- response_body chomp
twelve bytes



=== TEST 30: Complete again with the same list: idempotent, same ETag
--- request eval
"POST /mpb/obj?uploadId=$::UP{obj}\n" . main::complete_xml(
    map { [$_, md5_hex($::PART{$_})] } 1 .. 3)
--- error_code: 200
--- check
is(main::xml_val($res->{body}, 'ETag'),
   '&quot;' . main::mp_etag(map { $::PART{$_} } 1 .. 3) . '&quot;', 'same ETag');



=== TEST 31: after Complete, the upload is gone: UploadPart, ListParts, Abort are NoSuchUpload
--- request eval
[ "PUT /mpb/obj?partNumber=1&uploadId=$::UP{obj}\nx",
  "GET /mpb/obj?uploadId=$::UP{obj}",
  "DELETE /mpb/obj?uploadId=$::UP{obj}",
  "POST /mpb/obj?uploadId=$::UP{obj}\n" . main::complete_xml([1, md5_hex($::PART{1})]) ]
--- error_code: 404
--- response_body_like
<Code>NoSuchUpload</Code>



=== TEST 32: the multipart object is listed with its size and ETag
--- request
GET /mpb?list-type=2&prefix=obj
--- error_code: 200
--- check
like($res->{body}, qr{<Key>obj</Key>.*<ETag>&quot;[0-9a-f]{32}-3&quot;</ETag><Size>11534459</Size>}s, 'listed');



=== TEST 33: an upload of two parts, to abort
--- request
POST /mpb/aborted?uploads
--- error_code: 200
--- check
$::UP{ab} = main::xml_val($res->{body}, 'UploadId');
main::upload_part('/mpb/aborted', $::UP{ab}, 1, 'part one');
main::upload_part('/mpb/aborted', $::UP{ab}, 2, 'part two');
$::garbage_before = main::garbage_count('aborted');



=== TEST 34: Abort: 204; then UploadPart and Complete are NoSuchUpload; parts are garbage
--- request eval
[ "DELETE /mpb/aborted?uploadId=$::UP{ab}",
  "PUT /mpb/aborted?partNumber=3&uploadId=$::UP{ab}\nx",
  "POST /mpb/aborted?uploadId=$::UP{ab}\n" . main::complete_xml([1, md5_hex('part one')]),
  "DELETE /mpb/aborted?uploadId=$::UP{ab}",
  "GET /mpb/aborted" ]
--- error_code eval
[ 204, 404, 404, 404, 404 ]
--- response_body_like eval
[ qr/^$/, qr/NoSuchUpload/, qr/NoSuchUpload/, qr/NoSuchUpload/, qr/NoSuchKey/ ]
--- check
is(main::garbage_count('aborted'), $::garbage_before + 2, 'both parts are garbage');



=== TEST 35: ListMultipartUploads: the open uploads, in key order, with prefix
--- setup
$::UP{l} = [ map { main::create_upload("/mpb/$_") } qw(list/a list/b list/c/1 list/c/2 other) ];
--- request eval
[ "GET /mpb?uploads&prefix=list/",
  "GET /mpb?uploads&prefix=list/&delimiter=/" ]
--- error_code: 200
--- check
my $b0 = $responses->[0]{body};
like($b0, qr{^<\?xml[^>]*>\n<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">}, 'root');
is(join(' ', $b0 =~ m{<Key>(.*?)</Key>}g), 'list/a list/b list/c/1 list/c/2', 'keys under the prefix');
is(join(' ', $b0 =~ m{<UploadId>(.*?)</UploadId>}g), join(' ', @{ $::UP{l} }[0 .. 3]), 'upload ids');
like($b0, qr{<Initiated>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z</Initiated>}, 'Initiated');
like($b0, qr{<IsTruncated>false</IsTruncated>}, 'not truncated');
my $b1 = $responses->[1]{body};
is(join(' ', $b1 =~ m{<Key>(.*?)</Key>}g), 'list/a list/b', 'keys with a delimiter');
like($b1, qr{<CommonPrefixes><Prefix>list/c/</Prefix></CommonPrefixes>}, 'common prefix');



=== TEST 36: ListMultipartUploads paging with max-uploads, key-marker and upload-id-marker
--- setup
$::UP{l2} = main::create_upload('/mpb/list/b');    # a second upload of list/b
--- request
GET /mpb?uploads&prefix=list/&max-uploads=2
--- error_code: 200
--- check
my @all;
my $body = $res->{body};
my $pages = 1;
while (1) {
    push @all, $body =~ m{<UploadId>(.*?)</UploadId>}g;
    last unless $body =~ m{<IsTruncated>true</IsTruncated>};
    my $km = main::xml_val($body, 'NextKeyMarker');
    my $um = main::xml_val($body, 'NextUploadIdMarker');
    my $r = s3_request(GET => "/mpb?uploads&prefix=list/&max-uploads=2&key-marker=$km&upload-id-marker=$um");
    is($r->{status}, 200, "page " . ++$pages);
    $body = $r->{body};
    last if $pages > 5;
}
is($pages, 3, 'five uploads in pages of two');
is("@all", join(' ', @{ $::UP{l} }[0, 1], $::UP{l2}, @{ $::UP{l} }[2, 3]),
   'every upload once, in key then initiation order');



=== TEST 37: ListMultipartUploads of a missing bucket: 404 NoSuchBucket
--- request
GET /nobucket?uploads
--- error_code: 404
--- response_body_like
<Code>NoSuchBucket</Code>



=== TEST 38: DeleteBucket with uploads in progress: 204 (S3 does not block it), the uploads are aborted
--- setup
put_ok('/mpdel');
$::UP{del} = main::create_upload('/mpdel/k');
main::upload_part('/mpdel/k', $::UP{del}, 1, 'abc');
--- request
DELETE /mpdel
--- error_code: 204
--- check
my @r = $cluster->psql("SELECT state FROM uploads WHERE upload_id = '$::UP{del}'");
is($r[0][0], 'aborted', 'the upload is aborted');
my @p = $cluster->psql("SELECT count(*) FROM upload_parts WHERE upload_id = '$::UP{del}'");
is($p[0][0], 0, 'its parts are gone (to garbage_blobs)');



=== TEST 39: first part of a multipart object corrupt on its first replica: read byte-identical
--- setup
$::BODY{cor} = main::mp_object('/mpb/corrupt', 5 * 1024 * 1024, 5 * 1024 * 1024, 4000);
my @parts = main::part_placement('mpb', 'corrupt');
die "no parts" unless @parts == 3;
# part 1: a middle block on its first replica (the node cuts the body there)
main::flip_byte($cluster->blob_path($parts[0][1][0], $parts[0][0]), 3 * 1024 * 1024 + 5);
# part 2: its first block on its first replica (refused before any byte)
main::flip_byte($cluster->blob_path($parts[1][1][0], $parts[1][0]), 10);
--- request
GET /mpb/corrupt
--- timeout: 30
--- error_code: 200
--- error_log
resuming on another replica
--- check
is(length $res->{body}, length $::BODY{cor}, 'every byte arrived');
ok($res->{body} eq $::BODY{cor}, 'byte-identical');



=== TEST 40: a range over the corrupt blocks of both parts is served whole too
--- request
GET /mpb/corrupt
--- more_headers
Range: bytes=3145000-5243000
--- timeout: 30
--- error_code: 206
--- check
ok($res->{body} eq substr($::BODY{cor}, 3145000, 5243000 - 3145000 + 1), 'byte-identical');



=== TEST 41: a multipart object whose part's replicas are all gone: 503 before any byte
--- setup
main::mp_object('/mpb/gone', 5 * 1024 * 1024, 10);
my @parts = main::part_placement('mpb', 'gone');
for my $n (@{ $parts[0][1] }) {
    unlink $cluster->blob_path($n, $parts[0][0]) or die "unlink: $!";
}
--- request
GET /mpb/gone
--- timeout: 30
--- error_code: 503
--- response_body_like
<Code>ServiceUnavailable</Code>



=== TEST 42: a PUT over a multipart object replaces it
--- request eval
[ "PUT /mpb/corrupt\nsmall now", "GET /mpb/corrupt" ]
--- error_code: 200
--- check
is($responses->[1]{body}, 'small now', 'the single PUT is served');
is($responses->[1]{headers}{etag}, '"' . md5_hex('small now') . '"', 'its ETag');



=== TEST 43: aws s3 cp of 20 MiB with a 5 MB multipart threshold: up and down, byte for byte
--- request
GET /mpb?list-type=2&prefix=cli/
--- error_code: 200
--- timeout: 300
--- check
my $dir = File::Temp::tempdir('plinth-mpcli-XXXXXX', DIR => '/tmp', CLEANUP => 1);
my $body = random_bytes(20 * 1024 * 1024);
open my $fh, '>:raw', "$dir/up.bin" or die; print $fh $body; close $fh;
my ($rc, $out) = main::aws_mp('s3', 'cp', "$dir/up.bin", 's3://mpb/cli/big.bin');
is($rc, 0, 'upload') or diag($out);
my $h = s3_request(HEAD => '/mpb/cli/big.bin');
like($h->{headers}{etag} // '', qr/^"[0-9a-f]{32}-4"$/, 'a multipart ETag of 4 parts');
($rc, $out) = main::aws_mp('s3', 'cp', 's3://mpb/cli/big.bin', "$dir/down.bin");
is($rc, 0, 'download') or diag($out);
open $fh, '<:raw', "$dir/down.bin" or die; local $/; my $down = <$fh>; close $fh;
is(length $down, length $body, 'length');
ok($down eq $body, 'byte-identical');
my $g = s3_request(GET => '/mpb/cli/big.bin');
ok($g->{body} eq $body, 'GET is byte-identical');
my $mp = s3_request(GET => '/mpb?uploads&prefix=cli/');
unlike($mp->{body}, qr{<Upload>}, 'no upload left open');



=== TEST 44: conditional Complete: If-None-Match: * on an existing key is 412, the upload stays open, the object is untouched
--- check
put_ok('/mpb/cond', 'the old one');
my $id = create_upload('/mpb/cond');
my $e = upload_part('/mpb/cond', $id, 1, 'part one');
my $r = s3_request(POST => "/mpb/cond?uploadId=$id", body => complete_xml([1, $e]),
                   headers => ['If-None-Match' => '*']);
is($r->{status}, 412, 'If-None-Match: * over an object: 412');
like($r->{body}, qr{<Code>PreconditionFailed</Code>}, 'PreconditionFailed');
is(s3_request(GET => '/mpb/cond')->{body}, 'the old one', 'the object is untouched');
is(s3_request(GET => "/mpb/cond?uploadId=$id")->{status}, 200, 'the upload is still open (ListParts 200)');
$r = s3_request(POST => "/mpb/cond?uploadId=$id", body => complete_xml([1, $e]),
                headers => ['If-Match' => '"' . md5_hex('not it') . '"']);
is($r->{status}, 412, 'If-Match with another ETag: 412');
$r = s3_request(POST => "/mpb/cond?uploadId=$id", body => complete_xml([1, $e]),
                headers => ['If-Match' => '"' . md5_hex('the old one') . '"']);
is($r->{status}, 200, 'If-Match with the current ETag: 200') or diag $r->{body};
is(s3_request(GET => '/mpb/cond')->{body}, 'part one', 'the completed object is served');



=== TEST 45: conditional Complete: If-Match on a missing key is 404 NoSuchKey and the upload stays open; If-None-Match: * creates
--- check
my $id = create_upload('/mpb/cond-new');
my $e = upload_part('/mpb/cond-new', $id, 1, 'fresh');
my $r = s3_request(POST => "/mpb/cond-new?uploadId=$id", body => complete_xml([1, $e]),
                   headers => ['If-Match' => '"' . md5_hex('x') . '"']);
is($r->{status}, 404, 'If-Match on no object: 404');
like($r->{body}, qr{<Code>NoSuchKey</Code>}, 'NoSuchKey');
is(s3_request(GET => '/mpb/cond-new')->{status}, 404, 'nothing was created');
$r = s3_request(POST => "/mpb/cond-new?uploadId=$id", body => complete_xml([1, $e]),
                headers => ['If-None-Match' => '*']);
is($r->{status}, 200, 'If-None-Match: * on no object: 200') or diag $r->{body};
is(s3_request(GET => '/mpb/cond-new')->{body}, 'fresh', 'created');
$r = s3_request(POST => "/mpb/cond-new?uploadId=$id", body => complete_xml([1, $e]),
                headers => ['If-Match' => 'a"b']);
is($r->{status}, 400, 'a malformed If-Match: 400');



=== TEST 46: ten racing Completes with If-None-Match: * on one new key: exactly one wins, nine get 412
--- check
for my $round (1 .. 3) {
    my (@ids, @etags, @bodies);
    for my $i (0 .. 9) {
        push @ids, create_upload("/mpb/race$round");
        push @bodies, "upload $i of round $round";
        push @etags, upload_part("/mpb/race$round", $ids[-1], 1, $bodies[-1]);
    }
    my @codes = racing_requests(map {
        [POST => "/mpb/race$round?uploadId=$ids[$_]", body => complete_xml([1, $etags[$_]]),
         headers => ['If-None-Match' => '*']] } 0 .. 9);
    my @won = grep { $codes[$_] == 200 } 0 .. 9;
    is(scalar @won, 1, "round $round: exactly one 200 (@codes)");
    is(scalar(grep { $_ == 412 } @codes), 9, "round $round: nine 412");
    my $r = s3_request(GET => "/mpb/race$round");
    ok(@won == 1 && $r->{body} eq $bodies[$won[0]], "round $round: the winner's object is served");
}



=== TEST 47: in a versioned bucket Complete answers x-amz-version-id, and that version can be read by it
--- check
is(s3_request(PUT => '/mpv')->{status}, 200, 'bucket');
is(s3_request(PUT => '/mpv?versioning', body => '<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>')->{status}, 200, 'versioning on');
put_ok('/mpv/k', 'first');
my $id = create_upload('/mpv/k');
my $e = upload_part('/mpv/k', $id, 1, 'second, multipart');
my $r = complete('/mpv/k', $id, [1, $e]);
is($r->{status}, 200, 'Complete 200');
my $vid = $r->{headers}{'x-amz-version-id'} // '';
like($vid, qr/^[0-9a-f]{32}$/, 'x-amz-version-id answered');
is(s3_request(GET => "/mpv/k?versionId=$vid")->{body}, 'second, multipart', 'GET by that version id');
is(s3_request(HEAD => '/mpv/k')->{headers}{'x-amz-version-id'}, $vid, 'it is the current version');
$id = create_upload('/mpb/unv');
$e = upload_part('/mpb/unv', $id, 1, 'unversioned');
$r = complete('/mpb/unv', $id, [1, $e]);
is($r->{status}, 200, 'Complete in an unversioned bucket: 200');
ok(!exists $r->{headers}{'x-amz-version-id'}, 'an unversioned bucket answers no version id');



=== TEST 48: UploadPart checksums are verified and kept: GET/HEAD ?partNumber with x-amz-checksum-mode returns the part's
--- check
my $id = create_upload('/mpb/ckparts');
my @b = (random_bytes(5 * 1024 * 1024), random_bytes(1000));
my $r = s3_request(PUT => "/mpb/ckparts?partNumber=1&uploadId=$id", body => $b[0],
                   headers => ['x-amz-checksum-crc32c' => checksum_base64('crc32c', 'not the part')], timeout => 60);
is($r->{status}, 400, 'a part with a wrong checksum: 400');
like($r->{body}, qr{<Code>BadDigest</Code>}, 'BadDigest');
my @e;
for my $i (0, 1) {
    my $alg = $i ? 'crc64nvme' : 'sha256';
    my $want = $i ? checksum_base64('crc64nvme', $b[1]) : Digest::SHA::sha256_base64($b[0]) . '=';
    $r = s3_request(PUT => "/mpb/ckparts?partNumber=" . ($i + 1) . "&uploadId=$id", body => $b[$i],
                    headers => ["x-amz-checksum-$alg" => $want], timeout => 60);
    is($r->{status}, 200, "part " . ($i + 1) . " with $alg: 200") or diag $r->{body};
    is($r->{headers}{"x-amz-checksum-$alg"}, $want, "part " . ($i + 1) . ": the answer echoes it");
    (my $etag = $r->{headers}{etag}) =~ s/"//g;
    push @e, [$i + 1, $etag];
}
is(complete('/mpb/ckparts', $id, @e)->{status}, 200, 'Complete');
$r = s3_request(HEAD => '/mpb/ckparts?partNumber=1', headers => ['x-amz-checksum-mode' => 'ENABLED']);
is($r->{headers}{'x-amz-checksum-sha256'}, Digest::SHA::sha256_base64($b[0]) . '=', 'HEAD partNumber=1: the part\'s SHA-256');
$r = s3_request(GET => '/mpb/ckparts?partNumber=2', headers => ['x-amz-checksum-mode' => 'ENABLED']);
is($r->{headers}{'x-amz-checksum-crc64nvme'}, checksum_base64('crc64nvme', $b[1]), 'GET partNumber=2: the part\'s CRC64NVME');
ok($r->{body} eq $b[1], 'and its bytes');
$r = s3_request(HEAD => '/mpb/ckparts', headers => ['x-amz-checksum-mode' => 'ENABLED']);
ok(!grep(/^x-amz-checksum-(?!type)/, keys %{ $r->{headers} }), 'the whole multipart object claims no checksum it does not have');



=== TEST 49: UploadPartCopy: a whole single-PUT source, a range across two parts of a multipart source, an uploaded part; Complete; GET byte for byte
--- timeout: 120
--- check
my $MiB = 1024 * 1024;
$::SRC1 = random_bytes(6 * $MiB + 7);
put_ok('/mpb/copysrc-single', $::SRC1);
$::SRC2 = mp_object('/mpb/copysrc-multi', 5 * $MiB, 5 * $MiB, 1000);
my $id = create_upload('/mpb/copied');
my $r = s3_request(PUT => "/mpb/copied?partNumber=1&uploadId=$id", headers => ['x-amz-copy-source' => '/mpb/copysrc-single']);
is($r->{status}, 200, 'UploadPartCopy of a whole object: 200') or diag $r->{body};
like($r->{body}, qr{^<\?xml version="1.0" encoding="UTF-8"\?>\n<CopyPartResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LastModified>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z</LastModified><ETag>&quot;[0-9a-f]{32}&quot;</ETag></CopyPartResult>$}, 'CopyPartResult');
my ($e1) = $r->{body} =~ m{<ETag>&quot;([0-9a-f]{32})&quot;</ETag>};
is($e1, md5_hex($::SRC1), 'a whole single-PUT source: the ETag is the MD5 of the bytes');
my ($a, $b) = (3 * $MiB, 8 * $MiB + 99);     # crosses the boundary of parts 1 and 2
$r = s3_request(PUT => "/mpb/copied?partNumber=2&uploadId=$id",
                headers => ['x-amz-copy-source' => '/mpb/copysrc-multi', 'x-amz-copy-source-range' => "bytes=$a-$b"]);
is($r->{status}, 200, 'UploadPartCopy of a range across two source parts: 200') or diag $r->{body};
my ($e2) = $r->{body} =~ m{<ETag>&quot;([0-9a-f]{32})&quot;</ETag>};
ok($e2, 'its ETag');
my $e3 = upload_part('/mpb/copied', $id, 3, 'an uploaded tail');
my $l = s3_request(GET => "/mpb/copied?uploadId=$id");
like($l->{body}, qr{<PartNumber>2</PartNumber><LastModified>[^<]+</LastModified><ETag>&quot;$e2&quot;</ETag><Size>@{[ $b - $a + 1 ]}</Size>}, 'ListParts: part 2, one part of the range size');
$r = complete('/mpb/copied', $id, [1, $e1], [2, $e2], [3, $e3]);
is($r->{status}, 200, 'Complete') or diag $r->{body};
$::COPIED = $::SRC1 . substr($::SRC2, $a, $b - $a + 1) . 'an uploaded tail';
$r = s3_request(GET => '/mpb/copied', timeout => 60);
is(length $r->{body}, length $::COPIED, 'length');
ok($r->{body} eq $::COPIED, 'GET: byte-identical');
like($r->{headers}{etag}, qr/^"[0-9a-f]{32}-3"$/, 'a multipart ETag of 3 parts');
my $off = length($::SRC1) + 2 * $MiB - 10;   # inside part 2, across its two segments
$r = s3_request(GET => '/mpb/copied', headers => [Range => "bytes=$off-" . ($off + 20)]);
is($r->{body}, substr($::COPIED, $off, 21), 'a Range across the two segments of part 2');
$r = s3_request(GET => '/mpb/copied?partNumber=2', timeout => 60);
is($r->{status}, 206, 'partNumber=2: 206');
ok($r->{body} eq substr($::SRC2, $a, $b - $a + 1), 'partNumber=2: the copied range, whole');
is($r->{headers}{'x-amz-mp-parts-count'}, 3, 'parts count 3');
$r = s3_request(GET => '/mpb/copied?partNumber=3');
is($r->{body}, 'an uploaded tail', 'partNumber=3: the uploaded part');



=== TEST 50: a copied part survives its source being overwritten and deleted; blobs are shared, no byte was copied
--- check
my @blobs = map { $_->[0] } cluster()->psql("SELECT DISTINCT replace(blob_id::text, '-', '') FROM version_parts vp JOIN objects o USING (version_id) JOIN buckets b ON b.bucket_id = o.bucket_id WHERE b.name = 'mpb' AND o.key = 'copied'");
my @src = map { $_->[0] } cluster()->psql("SELECT replace(v.blob_id::text, '-', '') FROM versions v JOIN objects o USING (version_id) JOIN buckets b ON b.bucket_id = o.bucket_id WHERE b.name = 'mpb' AND o.key = 'copysrc-single'");
ok(scalar(grep { $_ eq $src[0] } @blobs), "the copy refers to the source's blob");
put_ok('/mpb/copysrc-single', 'overwritten');
is(s3_request(DELETE => '/mpb/copysrc-multi')->{status}, 204, 'source deleted');
my $r = s3_request(GET => '/mpb/copied', timeout => 60);
ok($r->{body} eq $::COPIED, 'the copy still reads byte-identical');



=== TEST 51: UploadPartCopy errors: bad range forms, a range past the source, an unknown upload, a failed source condition, a bad version id; nothing recorded
--- check
put_ok('/mpb/small-src', '0123456789');
my $id = create_upload('/mpb/copyerr');
my $kept = random_bytes(5 * 1024 * 1024);
my $e = upload_part('/mpb/copyerr', $id, 1, $kept);
my $h = sub { ['x-amz-copy-source' => '/mpb/small-src', @_] };
my @cases = (
    [400, 'InvalidArgument', $h->('x-amz-copy-source-range' => 'bytes=5-')],
    [400, 'InvalidArgument', $h->('x-amz-copy-source-range' => 'bytes=5-2')],
    [400, 'InvalidArgument', $h->('x-amz-copy-source-range' => 'items=0-1')],
    [400, 'InvalidArgument', $h->('x-amz-copy-source-range' => 'bytes=5-10')],
    [412, 'PreconditionFailed', $h->('x-amz-copy-source-if-match' => '"' . md5_hex('nope') . '"')],
    [404, 'NoSuchKey', ['x-amz-copy-source' => '/mpb/never']],
    [404, 'NoSuchBucket', ['x-amz-copy-source' => '/nobucket/k']],
    [400, 'InvalidArgument', ['x-amz-copy-source' => '/mpb/small-src?versionId=bad']],
);
for my $c (@cases) {
    my ($status, $code, $hdrs) = @$c;
    my $r = s3_request(PUT => "/mpb/copyerr?partNumber=1&uploadId=$id", headers => $hdrs);
    is($r->{status}, $status, "@$hdrs: $status");
    like($r->{body}, qr{<Code>$code</Code>}, "@$hdrs: $code");
}
my $r = s3_request(PUT => "/mpb/copyerr?partNumber=1&uploadId=" . ('0' x 64), headers => $h->());
is($r->{status}, 404, 'unknown upload: 404');
like($r->{body}, qr{<Code>NoSuchUpload</Code>}, 'NoSuchUpload');
my $l = s3_request(GET => "/mpb/copyerr?uploadId=$id");
like($l->{body}, qr{<ETag>&quot;$e&quot;</ETag><Size>5242880</Size>}, 'part 1 is still the uploaded one');
$r = s3_request(PUT => "/mpb/copyerr?partNumber=2&uploadId=$id", headers => $h->('x-amz-copy-source-range' => 'bytes=2-5'));
is($r->{status}, 200, 'a range inside the source: 200');
is(complete('/mpb/copyerr', $id, [1, $e], [2, ($r->{body} =~ m{&quot;([0-9a-f]{32})&quot;})[0]])->{status}, 200, 'Complete');
ok(s3_request(GET => '/mpb/copyerr')->{body} eq $kept . '2345', 'part 1 + bytes 2..5 of the source');



=== TEST 52: aws s3 cp from object to object over 5 MB: the CLI copies with UploadPartCopy; byte-identical
--- timeout: 300
--- check
my $body = random_bytes(12 * 1024 * 1024 + 5);
put_ok('/mpb/cli-src', $body);
my ($rc, $out) = main::aws_mp('s3', 'cp', 's3://mpb/cli-src', 's3://mpb/cli-dst');
is($rc, 0, 'aws s3 cp s3:// s3://') or diag($out);
my $h = s3_request(HEAD => '/mpb/cli-dst');
like($h->{headers}{etag} // '', qr/^"[0-9a-f]{32}-3"$/, 'made by a 3-part multipart copy');
ok(s3_request(GET => '/mpb/cli-dst', timeout => 60)->{body} eq $body, 'byte-identical');



=== TEST 53: an upload created with SHA256 gets a COMPOSITE checksum at Complete: the SHA-256 of the parts' SHA-256s, "-2"
--- check
my $r = s3_request(POST => '/mpb/cks-comp?uploads', headers => ['x-amz-checksum-algorithm' => 'SHA256']);
is($r->{status}, 200, 'Create with x-amz-checksum-algorithm: SHA256');
is($r->{headers}{'x-amz-checksum-algorithm'}, 'SHA256', 'answered: the algorithm');
is($r->{headers}{'x-amz-checksum-type'}, 'COMPOSITE', 'answered: COMPOSITE, the default');
my ($id) = $r->{body} =~ m{<UploadId>([^<]+)</UploadId>};
my @b = (random_bytes(5 * 1024 * 1024), random_bytes(777));
my (@e, @c);
for my $i (0, 1) {
    push @c, Digest::SHA::sha256_base64($b[$i]) . '=';
    push @e, upload_part('/mpb/cks-comp', $id, $i + 1, $b[$i], 'x-amz-checksum-sha256' => $c[$i]);
}
my $x = '<CompleteMultipartUpload>' . join('', map { "<Part><PartNumber>" . ($_ + 1) . "</PartNumber><ETag>\"$e[$_]\"</ETag><ChecksumSHA256>$c[$_]</ChecksumSHA256></Part>" } 0, 1) . '</CompleteMultipartUpload>';
$r = s3_request(POST => "/mpb/cks-comp?uploadId=$id", body => $x);
is($r->{status}, 200, 'Complete listing the part checksums: 200') or diag $r->{body};
my $want = Digest::SHA::sha256_base64(join '', map { MIME::Base64::decode_base64($_) } @c) . '=-2';
like($r->{body}, qr{<ChecksumSHA256>\Q$want\E</ChecksumSHA256><ChecksumType>COMPOSITE</ChecksumType></CompleteMultipartUploadResult>}, 'the result names the composite checksum');
$r = s3_request(HEAD => '/mpb/cks-comp', headers => ['x-amz-checksum-mode' => 'ENABLED']);
is($r->{headers}{'x-amz-checksum-sha256'}, $want, 'HEAD with checksum mode: the composite value');
is($r->{headers}{'x-amz-checksum-type'}, 'COMPOSITE', 'type COMPOSITE');



=== TEST 54: an upload created with CRC32 FULL_OBJECT: the part CRCs are combined into the CRC-32 of the whole object
--- check
my $r = s3_request(POST => '/mpb/cks-full?uploads', headers => ['x-amz-checksum-algorithm' => 'crc32', 'x-amz-checksum-type' => 'FULL_OBJECT']);
is($r->{status}, 200, 'Create CRC32 FULL_OBJECT');
is($r->{headers}{'x-amz-checksum-type'}, 'FULL_OBJECT', 'answered FULL_OBJECT');
my ($id) = $r->{body} =~ m{<UploadId>([^<]+)</UploadId>};
my @b = (random_bytes(5 * 1024 * 1024 + 3), random_bytes(5 * 1024 * 1024), random_bytes(12345));
my @e = map { [$_ + 1, upload_part('/mpb/cks-full', $id, $_ + 1, $b[$_], 'x-amz-checksum-crc32' => checksum_base64('crc32', $b[$_]))] } 0 .. 2;
my $whole = checksum_base64('crc32', join '', @b);
$r = s3_request(POST => "/mpb/cks-full?uploadId=$id", body => complete_xml(@e), headers => ['x-amz-checksum-crc32' => 'AAAAAA==']);
is($r->{status}, 400, 'Complete with a wrong whole-object x-amz-checksum-crc32: 400');
like($r->{body}, qr{<Code>BadDigest</Code>}, 'BadDigest');
$r = s3_request(POST => "/mpb/cks-full?uploadId=$id", body => complete_xml(@e), headers => ['x-amz-checksum-crc32' => $whole]);
is($r->{status}, 200, 'Complete with the right one: 200') or diag $r->{body};
like($r->{body}, qr{<ChecksumCRC32>\Q$whole\E</ChecksumCRC32><ChecksumType>FULL_OBJECT</ChecksumType>}, 'the CRC-32 of the whole object');
$r = s3_request(GET => '/mpb/cks-full', headers => ['x-amz-checksum-mode' => 'ENABLED'], timeout => 60);
is($r->{headers}{'x-amz-checksum-crc32'}, $whole, 'GET with checksum mode: it');
ok($r->{body} eq join('', @b), 'the bytes');



=== TEST 55: checksum errors of multipart uploads: bad algorithm or type, a part without the upload's checksum, a listed checksum that is not the part's
--- check
my @bad = (
    [['x-amz-checksum-algorithm' => 'MD5'], 400, 'InvalidArgument'],
    [['x-amz-checksum-algorithm' => 'SHA1', 'x-amz-checksum-type' => 'FULL_OBJECT'], 400, 'InvalidRequest'],
    [['x-amz-checksum-algorithm' => 'CRC64NVME', 'x-amz-checksum-type' => 'COMPOSITE'], 400, 'InvalidRequest'],
    [['x-amz-checksum-algorithm' => 'CRC32', 'x-amz-checksum-type' => 'BOTH'], 400, 'InvalidArgument'],
    [['x-amz-checksum-type' => 'COMPOSITE'], 400, 'InvalidRequest'],
);
for my $c (@bad) {
    my $r = s3_request(POST => '/mpb/cks-bad?uploads', headers => $c->[0]);
    is($r->{status}, $c->[1], "@{$c->[0]}: $c->[1]");
    like($r->{body}, qr{<Code>$c->[2]</Code>}, "@{$c->[0]}: $c->[2]");
}
my $r = s3_request(POST => '/mpb/cks-bad?uploads', headers => ['x-amz-checksum-algorithm' => 'CRC32']);
my ($id) = $r->{body} =~ m{<UploadId>([^<]+)</UploadId>};
my $e = upload_part('/mpb/cks-bad', $id, 1, 'no checksum sent');
$r = complete('/mpb/cks-bad', $id, [1, $e]);
is($r->{status}, 400, 'a part without the upload\'s checksum: 400');
like($r->{body}, qr{<Code>InvalidRequest</Code>}, 'InvalidRequest');
$e = upload_part('/mpb/cks-bad', $id, 1, 'with one', 'x-amz-checksum-crc32' => checksum_base64('crc32', 'with one'));
$r = s3_request(POST => "/mpb/cks-bad?uploadId=$id", body => "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>$e</ETag><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part></CompleteMultipartUpload>");
is($r->{status}, 400, 'a listed checksum that is not the part\'s: 400');
like($r->{body}, qr{<Code>InvalidPart</Code>}, 'InvalidPart');
is(s3_request(GET => '/mpb/cks-bad')->{status}, 404, 'nothing completed');
$r = complete('/mpb/cks-bad', $id, [1, $e]);
is($r->{status}, 200, 'then Complete: 200');
like($r->{body}, qr{<ChecksumCRC32>[^<]+-1</ChecksumCRC32><ChecksumType>COMPOSITE</ChecksumType>}, 'a composite of one part');
