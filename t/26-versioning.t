# Bucket versioning: GetBucketVersioning and PutBucketVersioning (Enabled,
# Suspended, MalformedXML, owner only), version ids on PUT, GET and HEAD,
# ?versionId= (NoSuchVersion, InvalidArgument), delete markers, permanent
# deletes of a version (and "undelete"), Suspended's "null" version, and
# ListObjectVersions (prefix, delimiter, markers, paging through 2,500
# versions), also on an unversioned bucket.
use lib 't/lib';
use Plinth::Test;

cluster_options(auth => 'sigv4');

our $XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';
our $ENABLE = '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>';
our $SUSPEND = '<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>';

sub pct {
    my ($s) = @_;
    $s =~ s{([^A-Za-z0-9\-._~])}{sprintf '%%%02X', ord $1}ge;
    return $s;
}

# A ListVersionsResult taken apart: entries in document order ("V:key:id"
# or "D:key:id"), with IsLatest, prefixes, and the top-level elements.
sub parse_versions {
    my ($body) = @_;
    my %r;
    $r{root} = $body =~ m{<ListVersionsResult xmlns="\Q$XMLNS\E">.*</ListVersionsResult>\s*$}s;
    while ($body =~ m{<(Version|DeleteMarker)>(.*?)</\1>}gs) {
        my ($kind, $e) = ($1, $2);
        my ($k) = $e =~ m{<Key>(.*?)</Key>};
        my ($v) = $e =~ m{<VersionId>(.*?)</VersionId>};
        my ($l) = $e =~ m{<IsLatest>(.*?)</IsLatest>};
        push @{ $r{entries} }, ($kind eq 'Version' ? 'V' : 'D') . ":$k:$v";
        push @{ $r{latest} }, $l;
        push @{ $r{raw} }, $e;
    }
    $r{entries} //= [];
    $r{prefixes} = [ $body =~ m{<CommonPrefixes><Prefix>(.*?)</Prefix></CommonPrefixes>}gs ];
    (my $top = $body) =~ s{<(Version|DeleteMarker|CommonPrefixes)>.*?</\1>}{}gs;
    for my $e (qw(Name Prefix KeyMarker VersionIdMarker NextKeyMarker
                  NextVersionIdMarker MaxKeys Delimiter IsTruncated))
    {
        my @v = $top =~ m{<$e>(.*?)</$e>}gs;
        $r{$e} = $v[0];
        $r{$e} = '' if !defined $r{$e} && $top =~ m{<$e\s*/>};
    }
    return \%r;
}

sub versions {
    my ($bucket, $query) = @_;
    my $r = s3_request(GET => "/$bucket?versions" . ($query ? "&$query" : ''));
    die "GET /$bucket?versions&$query: $r->{status} $r->{body}\n"
        unless $r->{status} == 200;
    return parse_versions($r->{body});
}

# Every page of a listing; entries and prefixes in page order, one
# "P:prefix" each, merged by key order within a page.
sub walk {
    my ($bucket, $query, $max) = @_;
    my (@all, $km, $vm, $pages);
    for my $n (1 .. 1000) {
        my $q = "max-keys=$max" . ($query ? "&$query" : '')
            . (defined $km ? '&key-marker=' . pct($km) : '')
            . (defined $vm ? '&version-id-marker=' . pct($vm) : '');
        my $p = versions($bucket, $q);
        $pages++;
        my @page = (@{ $p->{entries} }, map { "P:$_" } @{ $p->{prefixes} });
        # merge prefixes back by key (stable within a key: newest first)
        my $i = 0;
        my %ord = map { ($_ => $i++) } @page;
        @page = sort {
            (split /:/, $a, 3)[1] cmp (split /:/, $b, 3)[1]
                || $ord{$a} <=> $ord{$b}
        } @page;
        die "page $n has " . scalar(@page) . " entries, max $max\n"
            if @page > $max;
        push @all, @page;
        last if ($p->{IsTruncated} // '') ne 'true';
        die "page $n: truncated without NextKeyMarker\n"
            unless defined $p->{NextKeyMarker};
        ($km, $vm) = ($p->{NextKeyMarker}, $p->{NextVersionIdMarker});
    }
    return (\@all, $pages);
}

run_tests();

__DATA__

=== TEST 1: a new bucket was never versioned: an empty configuration
--- request eval
["PUT /vbk", "PUT /vbk/old\nold body", "GET /vbk?versioning"]
--- error_code eval
[200, 200, 200]
--- response_body_like eval
["", "", qr{^<\?xml version="1.0" encoding="UTF-8"\?>\n<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>$}]
--- response_headers eval
["", "!x-amz-version-id", "Content-Type: application/xml"]



=== TEST 2: an unversioned bucket's objects carry no version id
--- request eval
["GET /vbk/old", "HEAD /vbk/old"]
--- error_code eval
[200, 200]
--- response_headers eval
["!x-amz-version-id", "!x-amz-version-id"]



=== TEST 3: PutBucketVersioning with a bad document is MalformedXML
--- request eval
["PUT /vbk?versioning\n<VersioningConfiguration><Status>On",
 "PUT /vbk?versioning\n<VersioningConfiguration><Status>On</Status></VersioningConfiguration>",
 "PUT /vbk?versioning\n<Versioning><Status>Enabled</Status></Versioning>",
 "PUT /vbk?versioning\n<VersioningConfiguration></VersioningConfiguration>",
 "PUT /vbk?versioning\n<VersioningConfiguration><Status>Enabled</Status><Other/></VersioningConfiguration>",
 "PUT /vbk?versioning\n",
 "GET /vbk?versioning"]
--- error_code eval
[400, 400, 400, 400, 400, 400, 200]
--- response_body_like eval
["<Code>MalformedXML</Code>", "<Code>MalformedXML</Code>", "<Code>MalformedXML</Code>", "<Code>MalformedXML</Code>", "<Code>MalformedXML</Code>", "<Code>MalformedXML</Code>", "<VersioningConfiguration xmlns=\"[^\"]+\"/>\$"]



=== TEST 4: versioning is the owner's alone, and needs a bucket
--- request eval
["PUT /vbk?versioning\n$::ENABLE", "GET /vbk?versioning", "GET /vbk?versions", "GET /nobucket?versioning", "PUT /nobucket?versioning\n$::ENABLE"]
--- sign_as eval
["user2", "user2", "user2", "admin", "admin"]
--- error_code eval
[403, 403, 403, 404, 404]
--- response_body_like eval
["<Code>AccessDenied</Code>", "<Code>AccessDenied</Code>", "<Code>AccessDenied</Code>", "<Code>NoSuchBucket</Code>", "<Code>NoSuchBucket</Code>"]



=== TEST 5: an anonymous caller cannot read or change it
--- request eval
["GET /vbk?versioning", "PUT /vbk?versioning\n$::ENABLE"]
--- unsigned eval
[1, 1]
--- error_code eval
[403, 403]



=== TEST 6: enable versioning
--- request eval
["PUT /vbk?versioning\n$::ENABLE", "GET /vbk?versioning"]
--- error_code eval
[200, 200]
--- response_body_like eval
["^\\z", "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>Enabled</Status></VersioningConfiguration>\$"]



=== TEST 7: every PUT in an Enabled bucket makes a new version with its own id
--- request eval
["PUT /vbk/k\nversion one", "PUT /vbk/k\nversion two", "PUT /vbk/m\nm one"]
--- error_code eval
[200, 200, 200]
--- response_headers_like eval
["x-amz-version-id: ^[0-9a-f]{32}\$", "x-amz-version-id: ^[0-9a-f]{32}\$", "x-amz-version-id: ^[0-9a-f]{32}\$"]
--- check
($::id1, $::id2, $::m1) = map { $_->{headers}{'x-amz-version-id'} } @$responses;
isnt($::id1, $::id2, 'two ids');
my @s = $cluster->psql("SELECT v.state FROM versions v JOIN buckets b USING (bucket_id) WHERE b.name = 'vbk' AND v.key = 'k' ORDER BY v.version_id");
is_deeply([map { $_->[0] } @s], ['committed', 'committed'], 'the overwritten version is kept (committed)');



=== TEST 8: GET and HEAD serve the current version, or the one asked for, with its id
--- request eval
["GET /vbk/k", "HEAD /vbk/k", "GET /vbk/k?versionId=$::id1", "HEAD /vbk/k?versionId=$::id1", "GET /vbk/k?versionId=$::id2", "GET /vbk/old?versionId=null", "GET /vbk/old"]
--- error_code eval
[200, 200, 200, 200, 200, 200, 200]
--- response_body eval
["version two", "", "version one", "", "version two", "old body", "old body"]
--- response_headers eval
["x-amz-version-id: $::id2", "x-amz-version-id: $::id2", "x-amz-version-id: $::id1", "x-amz-version-id: $::id1", "x-amz-version-id: $::id2", "x-amz-version-id: null", "x-amz-version-id: null"]



=== TEST 9: an unknown version is NoSuchVersion; a malformed id InvalidArgument
--- request eval
["GET /vbk/k?versionId=0123456789abcdef0123456789abcdef", "HEAD /vbk/k?versionId=0123456789abcdef0123456789abcdef", "GET /vbk/k?versionId=null", "GET /vbk/k?versionId=nope", "DELETE /vbk/k?versionId=0123456789abcdef0123456789abcdef", "DELETE /vbk/k?versionId=x", "GET /vbk/nokey?versionId=$::id1"]
--- error_code eval
[404, 404, 404, 400, 404, 400, 404]
--- response_body_like eval
["<Code>NoSuchVersion</Code>", "^\\z", "<Code>NoSuchVersion</Code>", "<Code>InvalidArgument</Code>", "<Code>NoSuchVersion</Code>", "<Code>InvalidArgument</Code>", "<Code>NoSuchVersion</Code>"]



=== TEST 10: DELETE without a version id writes a delete marker
--- request eval
["DELETE /vbk/k", "GET /vbk/k", "HEAD /vbk/k"]
--- error_code eval
[204, 404, 404]
--- response_headers_like eval
["x-amz-version-id: ^[0-9a-f]{32}\$", "x-amz-version-id: ^[0-9a-f]{32}\$", "x-amz-version-id: ^[0-9a-f]{32}\$"]
--- response_headers eval
["x-amz-delete-marker: true", "x-amz-delete-marker: true", "x-amz-delete-marker: true"]
--- response_body_like eval
["^\\z", "<Code>NoSuchKey</Code>", "^\\z"]
--- check
$::dm = $responses->[0]{headers}{'x-amz-version-id'};
is($responses->[1]{headers}{'x-amz-version-id'}, $::dm, 'GET names the marker');
is($responses->[2]{headers}{'x-amz-version-id'}, $::dm, 'HEAD names the marker');



=== TEST 11: older versions stay readable; the marker itself is 405 by id
--- request eval
["GET /vbk/k?versionId=$::id1", "GET /vbk/k?versionId=$::id2", "GET /vbk/k?versionId=$::dm", "HEAD /vbk/k?versionId=$::dm"]
--- error_code eval
[200, 200, 405, 405]
--- response_body_like eval
["^version one\\z", "^version two\\z", "<Code>MethodNotAllowed</Code>", "^\\z"]
--- response_headers eval
["!x-amz-delete-marker", "!x-amz-delete-marker", "x-amz-delete-marker: true", "x-amz-delete-marker: true"]



=== TEST 12: listing the versions of k: marker first, newest first
--- request
GET /vbk?versions&prefix=k
--- error_code: 200
--- check
my $p = parse_versions($res->{body});
ok($p->{root}, 'a ListVersionsResult');
is_deeply($p->{entries}, ["D:k:$::dm", "V:k:$::id2", "V:k:$::id1"], 'entries');
is_deeply($p->{latest}, ['true', 'false', 'false'], 'IsLatest');
is($p->{IsTruncated}, 'false', 'not truncated');
is($p->{Name}, 'vbk', 'Name');
is($p->{Prefix}, 'k', 'Prefix');
is($p->{MaxKeys}, '1000', 'MaxKeys');
like($p->{raw}[1], qr{^<Key>k</Key><VersionId>$::id2</VersionId><IsLatest>false</IsLatest><LastModified>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z</LastModified><ETag>&quot;[0-9a-f]{32}&quot;</ETag><Size>11</Size><Owner><ID>[^<]+</ID><DisplayName>[^<]*</DisplayName></Owner><StorageClass>STANDARD</StorageClass>$}, 'a Version entry');
like($p->{raw}[0], qr{^<Key>k</Key><VersionId>$::dm</VersionId><IsLatest>true</IsLatest><LastModified>[^<]+</LastModified><Owner>.*</Owner>$}, 'a DeleteMarker entry');



=== TEST 13: a key whose current version is a marker is not listed by ListObjects
--- request
GET /vbk?list-type=2
--- error_code: 200
--- response_body_unlike
<Key>k</Key>



=== TEST 14: deleting the marker by id undeletes the key
--- request eval
["DELETE /vbk/k?versionId=$::dm", "GET /vbk/k"]
--- error_code eval
[204, 200]
--- response_headers eval
["x-amz-delete-marker: true\nx-amz-version-id: $::dm", "x-amz-version-id: $::id2"]
--- response_body eval
["", "version two"]



=== TEST 15: deleting the current version for good: the previous one becomes current
--- request eval
["DELETE /vbk/k?versionId=$::id2", "GET /vbk/k", "GET /vbk/k?versionId=$::id2"]
--- error_code eval
[204, 200, 404]
--- response_headers eval
["x-amz-version-id: $::id2\n!x-amz-delete-marker", "x-amz-version-id: $::id1", ""]
--- response_body_like eval
["^\\z", "^version one\\z", "<Code>NoSuchVersion</Code>"]
--- check
my @s = $cluster->psql("SELECT v.vid, v.state FROM versions v JOIN buckets b USING (bucket_id) WHERE b.name = 'vbk' AND v.key = 'k' AND v.vid = '$::id2'");
is($s[0][1], 'garbage', 'its blob is garbage');



=== TEST 16: deleting the last version: the key disappears (no marker)
--- request eval
["DELETE /vbk/k?versionId=$::id1", "GET /vbk/k", "GET /vbk?versions&prefix=k"]
--- error_code eval
[204, 404, 200]
--- response_headers eval
["x-amz-version-id: $::id1", "!x-amz-delete-marker", ""]
--- response_body_like eval
["^\\z", "<Code>NoSuchKey</Code>", "<IsTruncated>false</IsTruncated></ListVersionsResult>"]
--- response_body_unlike eval
["x", "x-never", "<Version>|<DeleteMarker>"]



=== TEST 17: suspend: PUTs write the "null" version, replacing only it
--- request eval
["PUT /vbk?versioning\n$::SUSPEND", "GET /vbk?versioning", "PUT /vbk/m\nm two", "PUT /vbk/m\nm three", "GET /vbk/m", "GET /vbk/m?versionId=null", "GET /vbk/m?versionId=$::m1"]
--- error_code eval
[200, 200, 200, 200, 200, 200, 200]
--- response_body_like eval
["^\\z", "<Status>Suspended</Status>", "^\\z", "^\\z", "^m three\\z", "^m three\\z", "^m one\\z"]
--- response_headers eval
["", "", "x-amz-version-id: null", "x-amz-version-id: null", "x-amz-version-id: null", "x-amz-version-id: null", "x-amz-version-id: $::m1"]
--- check
my @s = $cluster->psql("SELECT coalesce(v.vid, 'null'), v.state FROM versions v JOIN buckets b USING (bucket_id) WHERE b.name = 'vbk' AND v.key = 'm' ORDER BY v.version_id");
is_deeply(\@s, [[$::m1, 'committed'], ['null', 'garbage'], ['null', 'committed']], 'm two was replaced, m one kept');



=== TEST 18: a DELETE in a Suspended bucket: a "null" marker replaces the "null" version
--- request eval
["DELETE /vbk/k", "DELETE /vbk/m", "GET /vbk/m", "GET /vbk/m?versionId=null", "GET /vbk/m?versionId=$::m1", "GET /vbk?versions&prefix=m"]
--- error_code eval
[204, 204, 404, 405, 200, 200]
--- response_headers eval
["x-amz-delete-marker: true\nx-amz-version-id: null", "x-amz-delete-marker: true\nx-amz-version-id: null", "x-amz-delete-marker: true\nx-amz-version-id: null", "x-amz-delete-marker: true", "", ""]
--- check
my $p = parse_versions($res->{body});
is_deeply($p->{entries}, ["D:m:null", "V:m:$::m1"], 'the marker, then m one');
is_deeply($p->{latest}, ['true', 'false'], 'IsLatest');



=== TEST 19: the versions written before versioning are "null" versions; markers of an unversioned past are gone
--- request
GET /vbk?versions
--- error_code: 200
--- check
my $p = parse_versions($res->{body});
is_deeply($p->{entries}, ["D:k:null", "D:m:null", "V:m:$::m1", "V:old:null"], 'every version in key order');



=== TEST 20: DeleteBucket of a versioned bucket with versions left: BucketNotEmpty
--- request
DELETE /vbk
--- error_code: 409
--- response_body_like
<Code>BucketNotEmpty</Code>



=== TEST 21: ListObjectVersions on an unversioned bucket: current versions only, all "null"
--- setup
for my $r (['PUT', '/ubk'], ['PUT', '/ubk/a', 'a1'], ['PUT', '/ubk/a', 'a2'], ['PUT', '/ubk/b', 'b'], ['DELETE', '/ubk/b'], ['PUT', '/ubk/c/d', 'cd']) {
    my $x = s3_request($r->[0], $r->[1], body => $r->[2] // '');
    die "$r->[0] $r->[1]: $x->{status}\n" unless $x->{status} =~ /^20/;
}
--- request eval
["GET /ubk?versions", "GET /ubk?versions&delimiter=/", "PUT /ubk/e\ne", "DELETE /ubk/e", "GET /ubk?versioning"]
--- error_code eval
[200, 200, 200, 204, 200]
--- response_headers eval
["", "", "!x-amz-version-id", "!x-amz-version-id\n!x-amz-delete-marker", ""]
--- check
my $p = parse_versions($responses->[0]{body});
is_deeply($p->{entries}, ["V:a:null", "V:c/d:null"], 'versions');
is_deeply($p->{latest}, ['true', 'true'], 'IsLatest');
$p = parse_versions($responses->[1]{body});
is_deeply($p->{entries}, ["V:a:null"], 'with a delimiter');
is_deeply($p->{prefixes}, ["c/"], 'CommonPrefixes');
my @s = $cluster->psql("SELECT count(*) FROM versions v JOIN buckets b USING (bucket_id) WHERE b.name = 'ubk' AND v.state = 'committed' AND NOT v.delete_marker");
is($s[0][0], 2, 'an unversioned bucket keeps one version per key');



=== TEST 22: an unversioned bucket by versionId=null; a DELETE there writes no marker one can see
--- request eval
["GET /ubk/a?versionId=null", "GET /ubk/b?versionId=null", "GET /ubk/b", "DELETE /ubk/a?versionId=null", "GET /ubk/a"]
--- error_code eval
[200, 404, 404, 204, 404]
--- response_body_like eval
["^a2\\z", "<Code>NoSuchVersion</Code>", "<Code>NoSuchKey</Code>", "^\\z", "<Code>NoSuchKey</Code>"]
--- response_headers eval
["", "", "!x-amz-delete-marker", "!x-amz-version-id", "!x-amz-delete-marker"]



=== TEST 23: ListObjectVersions arguments
--- request eval
["GET /ubk?versions&version-id-marker=null", "GET /ubk?versions&key-marker=a&version-id-marker=bad", "GET /ubk?versions&max-keys=-1", "GET /ubk?versions&encoding-type=xml", "GET /ubk?versions&max-keys=0", "GET /ubk?versions&key-marker=a&version-id-marker=0123456789abcdef0123456789abcdef"]
--- error_code eval
[400, 400, 400, 400, 200, 400]
--- response_body_like eval
["<Code>InvalidArgument</Code>", "<Code>InvalidArgument</Code>", "<Code>InvalidArgument</Code>", "<Code>InvalidArgument</Code>", "<MaxKeys>0</MaxKeys><IsTruncated>false</IsTruncated></ListVersionsResult>", "<Code>InvalidArgument</Code>"]



=== TEST 24: fixture: 2,500 versions (500 keys, 5 each, some delete markers) in an Enabled bucket
--- setup
my $r = s3_request(PUT => '/pgv');
die "create: $r->{status}\n" unless $r->{status} == 200;
$r = s3_request(PUT => '/pgv?versioning', body => $::ENABLE);
die "enable: $r->{status}\n" unless $r->{status} == 200;
$cluster->psql(<<'SQL');
INSERT INTO versions (bucket_id, key, state, ts, delete_marker, blob_id,
                      size, etag, owner_id, committed_at)
SELECT b.bucket_id, k.key, 'committed',
       timestamptz '2025-01-01 00:00:00+00' + make_interval(secs => j),
       (j = 5 AND k.n % 7 = 0), gen_random_uuid(), j, md5(k.key || j),
       b.owner_id, now()
FROM buckets b,
     (SELECT format('b%s', lpad(i::text, 4, '0')) AS key, i AS n FROM generate_series(0, 149) i
      UNION ALL
      SELECT format('f%s', lpad(i::text, 4, '0')), i FROM generate_series(0, 149) i
      UNION ALL
      SELECT format('d%s/x%s', lpad((i / 20)::text, 2, '0'), lpad((i % 20)::text, 3, '0')), i
      FROM generate_series(0, 199) i) k,
     generate_series(1, 5) j
WHERE b.name = 'pgv';
INSERT INTO objects (bucket_id, key, version_id, ts, deleted, size, etag)
SELECT DISTINCT ON (v.key) v.bucket_id, v.key, v.version_id, v.ts,
       v.delete_marker, v.size, v.etag
FROM versions v JOIN buckets b USING (bucket_id)
WHERE b.name = 'pgv' ORDER BY v.key, v.ts DESC;
SQL
# the expected listing, built here: keys in byte order, j = 5 .. 1
my %vid;
for my $row ($cluster->psql("SELECT v.key, v.vid, v.size, v.delete_marker FROM versions v JOIN buckets b USING (bucket_id) WHERE b.name = 'pgv'")) {
    $vid{$row->[0]}{$row->[2]} = [$row->[1], $row->[3]];
}
@::EXPECT = ();
@::EXPECT_DELIM = ();
my %seen;
for my $k (sort keys %vid) {
    my @e = map { ($vid{$k}{$_}[1] eq 't' ? 'D' : 'V') . ":$k:$vid{$k}{$_}[0]" } reverse 1 .. 5;
    push @::EXPECT, @e;
    if ($k =~ m{^([^/]*/)}) {
        push @::EXPECT_DELIM, "P:$1" unless $seen{$1}++;
    } else {
        push @::EXPECT_DELIM, @e;
    }
}
die "fixture: " . scalar(@::EXPECT) . " versions\n" unless @::EXPECT == 2500;
--- request
GET /pgv?versions
--- error_code: 200
--- check
my $p = parse_versions($res->{body});
is(scalar @{ $p->{entries} }, 1000, 'a page holds 1,000 entries at most');
is($p->{IsTruncated}, 'true', 'IsTruncated');
is($p->{NextKeyMarker}, (split /:/, $p->{entries}[-1])[1], 'NextKeyMarker is the last key');
is($p->{NextVersionIdMarker}, (split /:/, $p->{entries}[-1])[2], 'NextVersionIdMarker is the last version');
is_deeply($p->{entries}, [@::EXPECT[0 .. 999]], 'the first 1,000, in order');



=== TEST 25: paging through 2,500 versions without a delimiter: every one exactly once, in order
--- request
GET /pgv?versions&max-keys=1
--- error_code: 200
--- check
for my $max (1000, 333, 7) {
    my ($all, $pages) = walk('pgv', '', $max);
    is(scalar @$all, 2500, "max-keys=$max: 2,500 entries");
    is_deeply($all, \@::EXPECT, "max-keys=$max: exactly the expected list ($pages pages)");
}



=== TEST 26: paging with a delimiter: versions and CommonPrefixes, no duplicate, none skipped
--- request
GET /pgv?versions&delimiter=/
--- error_code: 200
--- check
my $p = parse_versions($res->{body});
is(scalar(@{ $p->{entries} }) + scalar(@{ $p->{prefixes} }), 1000, 'the first page: 1,000 entries');
is_deeply($p->{prefixes}, [map { sprintf 'd%02d/', $_ } 0 .. 9], 'the ten prefixes');
is($p->{Delimiter}, '/', 'Delimiter');
for my $max (1000, 751, 750, 5, 3) {
    my ($all, $pages) = walk('pgv', 'delimiter=/', $max);
    is_deeply($all, \@::EXPECT_DELIM, "max-keys=$max: exactly the expected list ($pages pages)");
}



=== TEST 27: prefix, and a key-marker that is a common prefix skips it
--- request eval
["GET /pgv?versions&prefix=d03/", "GET /pgv?versions&delimiter=/&key-marker=d04/&max-keys=2", "GET /pgv?versions&key-marker=f0148"]
--- error_code eval
[200, 200, 200]
--- check
my $p = parse_versions($responses->[0]{body});
is_deeply($p->{entries}, [grep { m{^.:d03/} } @::EXPECT], 'prefix d03/');
$p = parse_versions($responses->[1]{body});
is_deeply($p->{prefixes}, ['d05/', 'd06/'], 'after d04/');
is($p->{NextKeyMarker}, 'd06/', 'NextKeyMarker is the prefix');
ok(!defined $p->{NextVersionIdMarker}, 'no NextVersionIdMarker after a prefix');
$p = parse_versions($responses->[2]{body});
is_deeply($p->{entries}, [grep { m{^.:f0149:} } @::EXPECT], 'after every version of f0148');



=== TEST 28: DeleteObjects naming a version the key does not have: NoSuchVersion for it, never a marker instead
--- setup
$::B1 = s3_request(GET => '/pgv?versions&prefix=b0001')->{body};
--- request
POST /pgv?delete
<Delete><Object><Key>b0001</Key><VersionId>null</VersionId></Object></Delete>
--- error_code: 200
--- response_body_like
<Error><Key>b0001</Key><VersionId>null</VersionId><Code>NoSuchVersion</Code>
--- check
my $after = s3_request(GET => '/pgv?versions&prefix=b0001')->{body};
s/<RequestId>.*?<\/RequestId>//g for $after, $::B1;
is($after, $::B1, 'the versions of b0001 are as they were');
