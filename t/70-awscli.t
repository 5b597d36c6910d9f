# End to end with real clients: Debian's awscli (/usr/bin/aws, through the
# harness's aws() helper: endpoint, the cluster's admin key, us-east-1) and
# python3-boto3 (/usr/bin/python3, path-style addressing, the same key).
use strict;
use warnings;

use lib 't/lib';
use Plinth::Test;
use Plinth::Cluster;

use File::Temp qw(tempdir);
use JSON::PP ();

our $TMP = tempdir('plinth-t70-XXXXXX', DIR => '/tmp', CLEANUP => 1);
our $BIG;               # the 1 MiB of random bytes uploaded by s3 cp

sub write_file {
    my ($path, $bytes) = @_;
    open my $fh, '>:raw', $path or die "$path: $!";
    print $fh $bytes;
    close $fh or die "$path: $!";
}

sub read_file {
    my ($path) = @_;
    open my $fh, '<:raw', $path or return undef;
    local $/;
    return scalar <$fh>;
}

# aws_ok(@args) -> output; one test: exit code 0
sub aws_ok {
    my ($rc, $out) = aws(@_);
    is($rc, 0, "aws @_[0 .. ($#_ < 3 ? $#_ : 3)] exits 0") or diag($out);
    return $out;
}

sub aws_json {
    my $out = aws_ok(@_);
    my $j = eval { JSON::PP::decode_json($out) };
    ok($j, '... and prints JSON') or diag("output: $out\nerror: $@");
    return $j || {};
}

run_tests();

__DATA__

=== TEST 1: aws s3 mb
--- check
my $out = aws_ok(qw(s3 mb s3://awsbucket));
like($out, qr{^make_bucket: awsbucket$}m, 'make_bucket: awsbucket');
is(s3_request(HEAD => '/awsbucket')->{status}, 200, 'the bucket exists');
my ($rc, $o2) = aws(qw(s3 mb s3://awsbucket));
isnt($rc, 0, 'aws s3 mb again fails');
like($o2, qr/BucketAlreadyOwnedByYou/, '... with BucketAlreadyOwnedByYou');



=== TEST 2: aws s3 cp up a 1 MiB random file
--- check
$main::BIG = random_bytes(1024 * 1024);
write_file("$main::TMP/big.bin", $main::BIG);
my $out = aws_ok('s3', 'cp', "$main::TMP/big.bin", 's3://awsbucket/dir/big.bin');
like($out, qr{upload: \S*big\.bin to s3://awsbucket/dir/big\.bin}, 'upload: ... reported');
my $r = s3_request(GET => '/awsbucket/dir/big.bin', timeout => 30);
is($r->{status}, 200, 'GET it');
ok($r->{body} eq $main::BIG, 'the bytes stored are the bytes sent')
    or diag('got ' . length($r->{body}) . ' bytes, md5 ' . md5_hex($r->{body}));
is($r->{headers}{etag}, '"' . md5_hex($main::BIG) . '"', 'ETag is the MD5');



=== TEST 3: aws s3 cp down, byte for byte
--- check
my $out = aws_ok('s3', 'cp', 's3://awsbucket/dir/big.bin', "$main::TMP/down.bin");
like($out, qr{download: s3://awsbucket/dir/big\.bin to \S*down\.bin}, 'download: ... reported');
my $got = read_file("$main::TMP/down.bin");
ok(defined $got && $got eq $main::BIG, 'the downloaded file equals the uploaded one')
    or diag('got ' . length($got // '') . ' bytes');



=== TEST 4: aws s3 ls: buckets, then objects
--- check
my $out = aws_ok(qw(s3 ls));
like($out, qr{^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d awsbucket$}m, 'bucket list has awsbucket');
$out = aws_ok(qw(s3 ls s3://awsbucket));
like($out, qr{^\s+PRE dir/$}m, 'top level: PRE dir/');
$out = aws_ok(qw(s3 ls s3://awsbucket/dir/));
like($out, qr{^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+1048576 big\.bin$}m,
    'dir/: big.bin with its size');



=== TEST 5: aws s3 ls --recursive with nested keys
--- check
write_file("$main::TMP/small.txt", "small\n");
for my $k (qw(a/b/c.txt a/b/d/e.txt a/f.txt g.txt)) {
    aws_ok('s3', 'cp', "$main::TMP/small.txt", "s3://awsbucket/$k");
}
my $out = aws_ok(qw(s3 ls s3://awsbucket --recursive));
my @keys = map { (split ' ', $_)[3] } grep { /\S/ } split /\n/, $out;
is_deeply(\@keys, [qw(a/b/c.txt a/b/d/e.txt a/f.txt dir/big.bin g.txt)],
    'every key, in order') or diag($out);
like($out, qr{^\S+ \S+\s+6 a/b/d/e\.txt$}m, 'with sizes');
$out = aws_ok(qw(s3 ls s3://awsbucket/a/ --recursive));
@keys = map { (split ' ', $_)[3] } grep { /\S/ } split /\n/, $out;
is_deeply(\@keys, [qw(a/b/c.txt a/b/d/e.txt a/f.txt)], 'under a/ only');
$out = aws_ok(qw(s3 ls s3://awsbucket/a/));
like($out, qr{^\s+PRE b/$}m, 'not recursive: PRE b/');
like($out, qr{\s6 f\.txt$}m, '... and f.txt');



=== TEST 6: aws s3api put-object with metadata and content type, head-object, get-object
--- check
write_file("$main::TMP/meta.json", '{"v":1}');
my $j = aws_json('s3api', 'put-object', '--bucket', 'awsbucket', '--key', 'meta/doc.json',
    '--body', "$main::TMP/meta.json", '--content-type', 'application/json',
    '--metadata', 'colour=blue,owner=plinth-test');
is($j->{ETag}, '"' . md5_hex('{"v":1}') . '"', 'put-object: ETag');

$j = aws_json(qw(s3api head-object --bucket awsbucket --key meta/doc.json));
is($j->{ContentType}, 'application/json', 'head-object: ContentType');
is($j->{ContentLength}, 7, 'head-object: ContentLength');
is_deeply($j->{Metadata}, { colour => 'blue', owner => 'plinth-test' },
    'head-object: Metadata');
is($j->{ETag}, '"' . md5_hex('{"v":1}') . '"', 'head-object: ETag');
ok($j->{LastModified}, 'head-object: LastModified');

$j = aws_json('s3api', 'get-object', '--bucket', 'awsbucket', '--key', 'meta/doc.json',
    "$main::TMP/got.json");
is($j->{ContentType}, 'application/json', 'get-object: ContentType');
is_deeply($j->{Metadata}, { colour => 'blue', owner => 'plinth-test' },
    'get-object: Metadata');
is(read_file("$main::TMP/got.json"), '{"v":1}', 'get-object: the body');

$j = aws_json('s3api', 'get-object', '--bucket', 'awsbucket', '--key', 'meta/doc.json',
    '--range', 'bytes=1-3', "$main::TMP/range.json");
is(read_file("$main::TMP/range.json"), '"v"', 'get-object --range: the bytes asked');
is($j->{ContentRange}, 'bytes 1-3/7', '... ContentRange');

my ($rc, $out) = aws(qw(s3api head-object --bucket awsbucket --key meta/none));
isnt($rc, 0, 'head-object of a missing key fails');
like($out, qr/404|Not Found/, '... 404');



=== TEST 7: aws s3api list-objects-v2 with prefix and delimiter
--- check
my $j = aws_json(qw(s3api list-objects-v2 --no-paginate --bucket awsbucket --prefix a/ --delimiter /));
is_deeply([map { $_->{Key} } @{ $j->{Contents} || [] }], ['a/f.txt'], 'Contents');
is_deeply([map { $_->{Prefix} } @{ $j->{CommonPrefixes} || [] }], ['a/b/'],
    'CommonPrefixes');
is($j->{KeyCount}, 2, 'KeyCount');
is($j->{Contents}[0]{Size}, 6, 'Size');

$j = aws_json(qw(s3api list-objects-v2 --bucket awsbucket --delimiter /));
is_deeply([map { $_->{Key} } @{ $j->{Contents} || [] }], ['g.txt'], 'top level: Contents');
is_deeply([map { $_->{Prefix} } @{ $j->{CommonPrefixes} || [] }],
    ['a/', 'dir/', 'meta/'], 'top level: CommonPrefixes');

# pagination through the CLI: 2 keys a page
$j = aws_json(qw(s3api list-objects-v2 --bucket awsbucket --page-size 2));
is_deeply([map { $_->{Key} } @{ $j->{Contents} || [] }],
    [qw(a/b/c.txt a/b/d/e.txt a/f.txt dir/big.bin g.txt meta/doc.json)],
    'every key, fetched 2 a page');



=== TEST 8: aws s3 rm, rb
--- check
my ($rc, $out) = aws(qw(s3 rb s3://awsbucket));
isnt($rc, 0, 'rb of a bucket with objects fails');
like($out, qr/BucketNotEmpty/, '... BucketNotEmpty');
$out = aws_ok(qw(s3 rm s3://awsbucket/g.txt));
like($out, qr{^delete: s3://awsbucket/g\.txt$}m, 'delete: g.txt');
is(s3_request(GET => '/awsbucket/g.txt')->{status}, 404, 'g.txt is gone');
$out = aws_ok(qw(s3 rm s3://awsbucket --recursive));
my @gone = sort map { m{^delete: s3://awsbucket/(\S+)$} ? $1 : () } split /\n/, $out;
is_deeply(\@gone, [sort qw(a/b/c.txt a/b/d/e.txt a/f.txt dir/big.bin meta/doc.json)],
    'rm --recursive deletes every key');
$out = aws_ok(qw(s3 ls s3://awsbucket --recursive));
is($out, '', 'nothing left');
$out = aws_ok(qw(s3 rb s3://awsbucket));
like($out, qr{^remove_bucket: awsbucket$}m, 'remove_bucket: awsbucket');
is(s3_request(HEAD => '/awsbucket')->{status}, 404, 'the bucket is gone');



=== TEST 9: boto3: put, get, list, head, delete with byte comparison
--- check
my $py = <<'PY';
import hashlib, io, os, sys
import boto3, botocore
from botocore.config import Config

endpoint = sys.argv[1]
kw = dict(s3={'addressing_style': 'path'}, retries={'max_attempts': 1})
if 'request_checksum_calculation' in getattr(Config, 'OPTION_DEFAULTS', {}):
    kw['request_checksum_calculation'] = 'when_required'
    kw['response_checksum_validation'] = 'when_required'
    print('checksum options: set (botocore %s)' % botocore.__version__)
else:
    print('checksum options: not supported by botocore %s' % botocore.__version__)
s3 = boto3.client('s3', endpoint_url=endpoint, region_name='us-east-1',
                  aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3],
                  config=Config(**kw))

def check(cond, what):
    print(('ok: ' if cond else 'FAIL: ') + what)

s3.create_bucket(Bucket='botobucket')
check('botobucket' in [b['Name'] for b in s3.list_buckets()['Buckets']], 'list_buckets')

data = os.urandom(1024 * 1024 + 17)
r = s3.put_object(Bucket='botobucket', Key='x/y/blob.bin', Body=data,
                  ContentType='application/x-test', Metadata={'k1': 'v1'})
check(r['ETag'] == '"%s"' % hashlib.md5(data).hexdigest(), 'put_object ETag')

g = s3.get_object(Bucket='botobucket', Key='x/y/blob.bin')
body = g['Body'].read()
check(body == data, 'get_object bytes (%d)' % len(body))
check(g['ContentType'] == 'application/x-test', 'get_object ContentType')
check(g['Metadata'] == {'k1': 'v1'}, 'get_object Metadata %r' % g['Metadata'])

h = s3.head_object(Bucket='botobucket', Key='x/y/blob.bin')
check(h['ContentLength'] == len(data), 'head_object ContentLength')

# the managed transfer (upload_fileobj / download_fileobj)
small = os.urandom(300 * 1024)
s3.upload_fileobj(io.BytesIO(small), 'botobucket', 'x/small.bin')
out = io.BytesIO()
s3.download_fileobj('botobucket', 'x/small.bin', out)
check(out.getvalue() == small, 'upload_fileobj/download_fileobj bytes')

s3.put_object(Bucket='botobucket', Key='top.txt', Body=b'top')
l = s3.list_objects_v2(Bucket='botobucket', Prefix='x/', Delimiter='/')
check([c['Key'] for c in l.get('Contents', [])] == ['x/small.bin'], 'list Contents %r' % l.get('Contents'))
check([p['Prefix'] for p in l.get('CommonPrefixes', [])] == ['x/y/'], 'list CommonPrefixes')
keys = []
for page in s3.get_paginator('list_objects_v2').paginate(Bucket='botobucket', PaginationConfig={'PageSize': 1}):
    keys += [c['Key'] for c in page.get('Contents', [])]
check(keys == ['top.txt', 'x/small.bin', 'x/y/blob.bin'], 'paginated listing %r' % keys)

try:
    s3.get_object(Bucket='botobucket', Key='nope')
    check(False, 'get of a missing key raises')
except s3.exceptions.NoSuchKey:
    check(True, 'get of a missing key raises NoSuchKey')

for k in keys:
    s3.delete_object(Bucket='botobucket', Key=k)
check(s3.list_objects_v2(Bucket='botobucket')['KeyCount'] == 0, 'every key deleted')
s3.delete_bucket(Bucket='botobucket')
check('botobucket' not in [b['Name'] for b in s3.list_buckets()['Buckets']], 'delete_bucket')
print('DONE')
PY
my ($rc, $out) = Plinth::Cluster::run_command(
    ['/usr/bin/python3', '-c', $py, $cluster->endpoint, client_credentials()],
    timeout => 120, merge => 1, cwd => $main::TMP,
    env => {
        AWS_CONFIG_FILE             => '/dev/null',
        AWS_SHARED_CREDENTIALS_FILE => '/dev/null',
        AWS_EC2_METADATA_DISABLED   => 'true',
        HOME                        => $main::TMP,
    });
is($rc, 0, 'the boto3 script exits 0') or diag($out);
note($_) for grep { /^checksum options/ } split /\n/, $out;
my @lines = grep { /^(ok|FAIL): / } split /\n/, $out;
ok(scalar @lines >= 13, 'the script ran its checks (' . scalar(@lines) . ')') or diag($out);
for (@lines) {
    ok(/^ok: /, "boto3: $_");
}
like($out, qr/^DONE$/m, 'the script finished');



=== TEST 10: aws s3 cp of 64 MiB + 1 (the CLI splits it: 8 MiB parts), down byte for byte; s3 cp between objects (UploadPartCopy)
--- timeout: 600
--- check
aws_ok(qw(s3 mb s3://awsbig));
my $body = random_bytes(64 * 1024 * 1024 + 1);
main::write_file("$main::TMP/big.bin", $body);
aws_ok('s3', 'cp', "$main::TMP/big.bin", 's3://awsbig/big.bin');
my $h = s3_request(HEAD => '/awsbig/big.bin');
like($h->{headers}{etag} // '', qr/^"[0-9a-f]{32}-9"$/, 'a multipart upload of 9 parts');
aws_ok('s3', 'cp', 's3://awsbig/big.bin', "$main::TMP/big.down");
ok((main::read_file("$main::TMP/big.down") // '') eq $body, 'downloaded: the same 64 MiB + 1 bytes');
aws_ok('s3', 'cp', 's3://awsbig/big.bin', 's3://awsbig/big-copy.bin');
like(s3_request(HEAD => '/awsbig/big-copy.bin')->{headers}{etag} // '', qr/^"[0-9a-f]{32}-9"$/, 'copied by a multipart copy');
ok(s3_request(GET => '/awsbig/big-copy.bin', timeout => 120)->{body} eq $body, 'the copy: the same bytes');
unlink "$main::TMP/big.bin", "$main::TMP/big.down";



=== TEST 11: aws s3 sync up, again (nothing to do), down; s3 rm --recursive
--- timeout: 300
--- check
my $src = "$main::TMP/tree";
my %files = ('a.txt' => 'alpha', 'sub/b.bin' => random_bytes(100_000), 'sub/deeper/c.txt' => 'gamma');
for my $f (keys %files) {
    (my $d = "$src/$f") =~ s{/[^/]+$}{};
    system('mkdir', '-p', $d) == 0 or die;
    main::write_file("$src/$f", $files{$f});
}
my $out = aws_ok('s3', 'sync', '--no-progress', $src, 's3://awsbig/tree');
is(scalar(() = $out =~ /upload: /g), 3, 'sync uploads the three files');
$out = aws_ok('s3', 'sync', '--no-progress', $src, 's3://awsbig/tree');
is($out, '', 'a second sync has nothing to do');
main::write_file("$src/a.txt", 'alpha, changed');
$out = aws_ok('s3', 'sync', '--no-progress', $src, 's3://awsbig/tree');
like($out, qr{upload: \S*a\.txt to s3://awsbig/tree/a\.txt}, 'a changed file is uploaded again');
is(scalar(() = $out =~ /upload: /g), 1, '... and only it');
my $dst = "$main::TMP/tree-down";
aws_ok('s3', 'sync', '--no-progress', 's3://awsbig/tree', $dst);
$files{'a.txt'} = 'alpha, changed';
for my $f (sort keys %files) {
    ok((main::read_file("$dst/$f") // '') eq $files{$f}, "synced down: $f");
}
$out = aws_ok(qw(s3 rm --recursive --only-show-errors s3://awsbig));
is($out, '', 'rm --recursive: no error');
is(s3_request(GET => '/awsbig?list-type=2')->{body} =~ /<KeyCount>0</ ? 1 : 0, 1, 'rm --recursive left nothing');
aws_ok(qw(s3 rb s3://awsbig));
is(s3_request(HEAD => '/awsbig')->{status}, 404, 'the bucket is gone');



=== TEST 12: boto3: upload_file of 64 MiB + 1 (multipart), download_file, managed copy (UploadPartCopy), delete
--- timeout: 600
--- check
my $py = <<'PY';
import hashlib, os, sys
import boto3, botocore
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

endpoint, ak, sk, tmp = sys.argv[1:5]
s3 = boto3.client('s3', endpoint_url=endpoint, region_name='us-east-1',
                  aws_access_key_id=ak, aws_secret_access_key=sk,
                  config=Config(s3={'addressing_style': 'path'}, retries={'max_attempts': 1}))
cfg = TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=16 * 1024 * 1024)

def check(cond, what):
    print(('ok: ' if cond else 'FAIL: ') + what)

s3.create_bucket(Bucket='botobig')
data = os.urandom(64 * 1024 * 1024 + 1)
with open(os.path.join(tmp, 'boto-up.bin'), 'wb') as f:
    f.write(data)
s3.upload_file(os.path.join(tmp, 'boto-up.bin'), 'botobig', 'big.bin', Config=cfg)
h = s3.head_object(Bucket='botobig', Key='big.bin')
check(h['ETag'].endswith('-5"'), 'upload_file made a 5-part multipart object (%s)' % h['ETag'])
check(h['ContentLength'] == len(data), 'head_object ContentLength')
s3.download_file('botobig', 'big.bin', os.path.join(tmp, 'boto-down.bin'), Config=cfg)
with open(os.path.join(tmp, 'boto-down.bin'), 'rb') as f:
    check(f.read() == data, 'download_file: the same bytes')
s3.copy({'Bucket': 'botobig', 'Key': 'big.bin'}, 'botobig', 'copy.bin', Config=cfg)
g = s3.get_object(Bucket='botobig', Key='copy.bin')
check(g['Body'].read() == data, 'managed copy: the same bytes')
check(g['ETag'].endswith('-5"'), 'managed copy: a 5-part multipart copy (%s)' % g['ETag'])
ps = s3.list_objects_v2(Bucket='botobig')
check([o['Key'] for o in ps['Contents']] == ['big.bin', 'copy.bin'], 'list_objects_v2')
r = s3.delete_objects(Bucket='botobig', Delete={'Objects': [{'Key': 'big.bin'}, {'Key': 'copy.bin'}]})
check(len(r.get('Deleted', [])) == 2, 'delete_objects')
s3.delete_bucket(Bucket='botobig')
os.unlink(os.path.join(tmp, 'boto-up.bin'))
os.unlink(os.path.join(tmp, 'boto-down.bin'))
print('DONE')
PY
my ($rc, $out) = Plinth::Cluster::run_command(
    ['/usr/bin/python3', '-c', $py, $cluster->endpoint, client_credentials(), $main::TMP],
    timeout => 600, merge => 1, cwd => $main::TMP,
    env => {
        AWS_CONFIG_FILE             => '/dev/null',
        AWS_SHARED_CREDENTIALS_FILE => '/dev/null',
        AWS_EC2_METADATA_DISABLED   => 'true',
        HOME                        => $main::TMP,
    });
is($rc, 0, 'the boto3 script exits 0') or diag($out);
my @lines = grep { /^(ok|FAIL): / } split /\n/, $out;
is(scalar @lines, 7, 'the script ran its seven checks') or diag($out);
ok(/^ok: /, "boto3: $_") for @lines;
like($out, qr/^DONE$/m, 'the script finished');
