# Put/Get/DeleteBucketLifecycleConfiguration (?lifecycle): a round trip,
# the rules stored one row each for repaird, the owner only, and every
# malformed or unsupported document answered with S3's code and status,
# leaving what was stored unchanged.
use strict;
use warnings;

use lib 't/lib';
use Plinth::Test;
use Plinth::Cluster;
use Plinth::TestUtil;

use Digest::MD5 qw(md5_base64);

cluster_options(auth => 'sigv4');
my $c = cluster();

my $NS = 'http://s3.amazonaws.com/doc/2006-03-01/';
sub lc_doc { qq{<LifecycleConfiguration xmlns="$NS">} . join('', @_) . '</LifecycleConfiguration>' }

sub rules_stored {
    return join "\n", map { join '|', map { $_ // '' } @$_ } $c->psql(
        "SELECT r.position, r.rule_id, r.prefix, r.enabled, r.ia_days, "
      . "r.glacier_days, r.deep_days, r.expire_days, r.noncurrent_days, "
      . "md5(l.xml) FROM lifecycle_rules r JOIN buckets b USING (bucket_id) "
      . "JOIN bucket_lifecycle l USING (bucket_id) WHERE b.name = 'lcb' "
      . "ORDER BY r.position");
}

is(s3_request(PUT => '/lcb')->{status}, 200, 'bucket');

# -------------------------------------------------------- none yet
{
    my $r = s3_request(GET => '/lcb?lifecycle');
    is($r->{status}, 404, 'GET before any: 404');
    like($r->{body}, qr{<Code>NoSuchLifecycleConfiguration</Code>},
        '... NoSuchLifecycleConfiguration');
    is(s3_request(DELETE => '/lcb?lifecycle')->{status}, 204,
        'DELETE with none: 204 (as S3)');
}

# -------------------------------------------------------- round trip
my $doc = lc_doc(
    '<Rule><ID>logs</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status>'
  . '<Transition><Days>30</Days><StorageClass>STANDARD_IA</StorageClass></Transition>'
  . '<Transition><Days>90</Days><StorageClass>GLACIER</StorageClass></Transition>'
  . '<Expiration><Days>365</Days></Expiration></Rule>',
    '<Rule><ID>old</ID><Prefix>tmp/</Prefix><Status>Disabled</Status>'
  . '<Expiration><Days>1</Days></Expiration>'
  . '<NoncurrentVersionExpiration><NoncurrentDays>7</NoncurrentDays></NoncurrentVersionExpiration></Rule>',
    '<Rule><Filter></Filter><Status>Enabled</Status>'
  . '<Transition><Days>0</Days><StorageClass>DEEP_ARCHIVE</StorageClass></Transition></Rule>');
{
    my $r = s3_request(PUT => '/lcb?lifecycle', body => $doc,
        headers => { 'Content-MD5' => md5_base64($doc) . '==' });
    is($r->{status}, 200, 'PUT a configuration of three rules') or diag($r->{body});
    $r = s3_request(GET => '/lcb?lifecycle');
    is($r->{status}, 200, 'GET it');
    is($r->{body}, $doc, '... the document as put');
    like($r->{headers}{'content-type'} // '', qr{xml}, '... as XML');
}
my $stored = rules_stored();
my ($h) = $c->psql("SELECT md5('" . $doc =~ s/'/''/gr . "')");
is($stored, join("\n",
    "1|logs|logs/|t|30|90||365||$h->[0]",
    "2|old|tmp/|f||||1|7|$h->[0]",
    "3|||t|||0|||$h->[0]"), 'the rules, one row each, as repaird reads them');

# ------------------------------------------------- owner only
for my $m (qw(GET PUT DELETE)) {
    my $r = s3_request($m => '/lcb?lifecycle', ($m eq 'PUT' ? (body => $doc) : ()),
        sign_as => 'user2');
    is($r->{status}, 403, "$m ?lifecycle by another user: 403");
    like($r->{body}, qr{<Code>AccessDenied</Code>}, '... AccessDenied');
    # another user's malformed document: still AccessDenied, not its error
    $r = s3_request(PUT => '/lcb?lifecycle', body => '<bad', sign_as => 'user2');
    is($r->{status}, 403, 'a malformed document by another user: 403 first');
}
{
    my $r = s3_request(PUT => '/nolcb?lifecycle', body => $doc);
    is($r->{status}, 404, 'PUT ?lifecycle on no bucket: 404');
    like($r->{body}, qr{<Code>NoSuchBucket</Code>}, '... NoSuchBucket');
}
is(rules_stored(), $stored, 'nothing changed by refused requests');

# --------------------------------------------- malformed, with S3's codes
my $T = sub { my ($d, $cl) = @_; "<Transition><Days>$d</Days><StorageClass>$cl</StorageClass></Transition>" };
my $OKR = '<Filter><Prefix>a/</Prefix></Filter><Status>Enabled</Status>';
my @bad = (
    ['not XML', '<LifecycleConfiguration><Rule>', 400, 'MalformedXML'],
    ['empty body', '', 400, 'MalformedXML'],
    ['wrong root', '<VersioningConfiguration/>', 400, 'MalformedXML'],
    ['no rule', lc_doc(), 400, 'MalformedXML'],
    ['no Status', lc_doc("<Rule><Filter/><Expiration><Days>1</Days></Expiration></Rule>"), 400, 'MalformedXML'],
    ['bad Status', lc_doc("<Rule><Filter/><Status>On</Status><Expiration><Days>1</Days></Expiration></Rule>"), 400, 'MalformedXML'],
    ['no Filter nor Prefix', lc_doc("<Rule><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>"), 400, 'MalformedXML'],
    ['Filter and Prefix', lc_doc("<Rule><Prefix>a</Prefix><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>"), 400, 'MalformedXML'],
    ['unknown element', lc_doc("<Rule>$OKR<Expiration><Days>1</Days></Expiration><Colour>red</Colour></Rule>"), 400, 'MalformedXML'],
    ['no action', lc_doc("<Rule>$OKR</Rule>"), 400, 'InvalidRequest'],
    ['Days not a number', lc_doc("<Rule>$OKR" . $T->('ten', 'GLACIER') . "</Rule>"), 400, 'InvalidArgument'],
    ['negative Days', lc_doc("<Rule>$OKR" . $T->('-1', 'GLACIER') . "</Rule>"), 400, 'InvalidArgument'],
    ['Expiration Days 0', lc_doc("<Rule>$OKR<Expiration><Days>0</Days></Expiration></Rule>"), 400, 'InvalidArgument'],
    ['Expiration Days -3', lc_doc("<Rule>$OKR<Expiration><Days>-3</Days></Expiration></Rule>"), 400, 'InvalidArgument'],
    ['NoncurrentDays 0', lc_doc("<Rule>$OKR<NoncurrentVersionExpiration><NoncurrentDays>0</NoncurrentDays></NoncurrentVersionExpiration></Rule>"), 400, 'InvalidArgument'],
    ['Transition to STANDARD', lc_doc("<Rule>$OKR" . $T->(5, 'STANDARD') . "</Rule>"), 400, 'InvalidArgument'],
    ['Transition to a bad class', lc_doc("<Rule>$OKR" . $T->(5, 'COLDER') . "</Rule>"), 400, 'InvalidStorageClass'],
    ['Transition without StorageClass', lc_doc("<Rule>$OKR<Transition><Days>5</Days></Transition></Rule>"), 400, 'MalformedXML'],
    ['two Transitions to one class', lc_doc("<Rule>$OKR" . $T->(5, 'GLACIER') . $T->(9, 'GLACIER') . "</Rule>"), 400, 'InvalidArgument'],
    ['colder class sooner', lc_doc("<Rule>$OKR" . $T->(50, 'STANDARD_IA') . $T->(9, 'GLACIER') . "</Rule>"), 400, 'InvalidArgument'],
    ['Expiration before Transition', lc_doc("<Rule>$OKR" . $T->(50, 'GLACIER') . "<Expiration><Days>10</Days></Expiration></Rule>"), 400, 'InvalidArgument'],
    ['duplicate IDs', lc_doc("<Rule><ID>x</ID>$OKR<Expiration><Days>1</Days></Expiration></Rule>",
        "<Rule><ID>x</ID>$OKR<Expiration><Days>2</Days></Expiration></Rule>"), 400, 'InvalidArgument'],
    ['ID too long', lc_doc("<Rule><ID>" . ('i' x 256) . "</ID>$OKR<Expiration><Days>1</Days></Expiration></Rule>"), 400, 'InvalidArgument'],
    ['1001 rules', lc_doc(map { "<Rule><ID>r$_</ID>$OKR<Expiration><Days>1</Days></Expiration></Rule>" } 1 .. 1001), 400, 'MalformedXML'],
    ['Transition by Date', lc_doc("<Rule>$OKR<Transition><Date>2030-01-01T00:00:00Z</Date><StorageClass>GLACIER</StorageClass></Transition></Rule>"), 501, 'NotImplemented'],
    ['Expiration by Date', lc_doc("<Rule>$OKR<Expiration><Date>2030-01-01T00:00:00Z</Date></Expiration></Rule>"), 501, 'NotImplemented'],
    ['Tag filter', lc_doc("<Rule><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>"), 501, 'NotImplemented'],
    ['AbortIncompleteMultipartUpload', lc_doc("<Rule>$OKR<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>"), 501, 'NotImplemented'],
);
for my $b (@bad) {
    my ($what, $body, $status, $code) = @$b;
    my $r = s3_request(PUT => '/lcb?lifecycle', body => $body);
    is($r->{status}, $status, "$what: $status");
    like($r->{body}, qr{<Code>$code</Code>}, "$what: $code");
}
{
    my $r = s3_request(PUT => '/lcb?lifecycle', body => $doc,
        headers => { 'Content-MD5' => md5_base64('other') . '==' });
    is($r->{status}, 400, 'wrong Content-MD5: 400');
    like($r->{body}, qr{<Code>BadDigest</Code>}, '... BadDigest');
    $r = s3_request(PUT => '/lcb?lifecycle', body => $doc,
        headers => { 'Content-MD5' => 'not base64!' });
    is($r->{status}, 400, 'bad Content-MD5: 400');
    like($r->{body}, qr{<Code>InvalidDigest</Code>}, '... InvalidDigest');
}
is(rules_stored(), $stored, 'no malformed document changed what was stored');
is(s3_request(GET => '/lcb?lifecycle')->{body}, $doc, 'GET still answers the document');

# ------------------------------------------------- the AWS CLI, for real
{
    is(s3_request(PUT => '/lcaws')->{status}, 200, 'bucket lcaws');
    my $json = '{"Rules":[{"ID":"cli","Filter":{"Prefix":"logs/"},"Status":"Enabled",'
        . '"Transitions":[{"Days":10,"StorageClass":"GLACIER"}],'
        . '"Expiration":{"Days":40}}]}';
    my ($rc, $out) = aws(qw(s3api put-bucket-lifecycle-configuration --bucket lcaws
        --lifecycle-configuration), $json);
    is($rc, 0, 'aws s3api put-bucket-lifecycle-configuration') or diag($out);
    ($rc, $out) = aws(qw(s3api get-bucket-lifecycle-configuration --bucket lcaws));
    is($rc, 0, 'aws s3api get-bucket-lifecycle-configuration') or diag($out);
    like($out, qr/"ID":\s*"cli"/, '... the rule comes back');
    like($out, qr/"StorageClass":\s*"GLACIER"/, '... with its Transition');
    my @r = $c->psql("SELECT r.rule_id, r.prefix, r.glacier_days, r.expire_days "
        . "FROM lifecycle_rules r JOIN buckets b USING (bucket_id) WHERE b.name = 'lcaws'");
    is(join('|', @{ $r[0] // [] }), 'cli|logs/|10|40', '... stored as one rule');
    ($rc, $out) = aws(qw(s3api put-object --bucket lcaws --key cold --storage-class GLACIER));
    is($rc, 0, 'aws s3api put-object --storage-class GLACIER') or diag($out);
    ($rc, $out) = aws(qw(s3api head-object --bucket lcaws --key cold));
    like($out, qr/"StorageClass":\s*"GLACIER"/, 'aws s3api head-object shows it');
    ($rc, $out) = aws(qw(s3api delete-bucket-lifecycle --bucket lcaws));
    is($rc, 0, 'aws s3api delete-bucket-lifecycle') or diag($out);
    ($rc, $out) = aws(qw(s3api get-bucket-lifecycle-configuration --bucket lcaws));
    isnt($rc, 0, 'get after delete fails');
    like($out, qr/NoSuchLifecycleConfiguration/, '... NoSuchLifecycleConfiguration');
}

# --------------------------------------------------------- delete
is(s3_request(DELETE => '/lcb?lifecycle')->{status}, 204, 'DELETE: 204');
is(s3_request(GET => '/lcb?lifecycle')->{status}, 404, 'GET after DELETE: 404');
my ($n) = $c->psql("SELECT count(*) FROM lifecycle_rules");
is($n->[0], 0, 'no rule rows left');

# a bucket's deletion takes its configuration along
is(s3_request(PUT => '/lcb?lifecycle', body => $doc)->{status}, 200, 'PUT again');
is(s3_request(DELETE => '/lcb')->{status}, 204, 'DELETE the empty bucket');
($n) = $c->psql("SELECT (SELECT count(*) FROM lifecycle_rules) + (SELECT count(*) FROM bucket_lifecycle)");
is($n->[0], 0, '... and its lifecycle rows');

done_testing();
