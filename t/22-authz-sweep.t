# The authorization sweep: every S3 operation of the gateway's routing
# table (read from ngx_plinth_module/ngx_plinth_s3.c, so a new row is swept
# without editing this file) is sent at the admin's private bucket
#   (a) unsigned,
#   (b) signed by user2, who does not own the bucket,
#   (c) with a wrong signature,
#   (d) presigned, and expired,
# and must get AccessDenied (SignatureDoesNotMatch for c), with nothing
# stored changing. Routes with a path of their own (the admin API, in
# ngx_http_plinth_admin_paths) get the same four cases at their path.
# Then, on a public-read bucket, anonymous GET, HEAD and
# listing succeed, and every other operation is still refused.
use lib 't/lib';
use Plinth::Test;
use Time::HiRes ();

cluster_options(auth => 'sigv4');

# (op, name, method, bucket?, key?, subresource) of every route
sub routes {
    my $src = "$Plinth::Cluster::ROOT/ngx_plinth_module/ngx_plinth_s3.c";
    open my $fh, '<', $src or die "$src: $!";
    my $text = do { local $/; <$fh> };
    my ($table) = $text =~ /ngx_http_plinth_routes\[\] = \{(.*?)\n\};/s
        or die "no routing table in $src";
    my @r;
    while ($table =~ /\{\s*NGX_PLINTH_OP_(\w+),\s*"(\w+)",\s*NGX_HTTP_(\w+),\s*(\d),\s*(\d),\s*(NULL|"[^"]*")/g) {
        my ($op, $name, $method, $b, $k, $sub) = ($1, $2, $3, $4, $5, $6);
        next if $op eq 'NONE';
        $sub = $sub eq 'NULL' ? undef : substr($sub, 1, -1);
        push @r, { op => $op, name => $name, method => $method, bucket => $b,
                   key => $k, sub => $sub };
    }
    # the admin API's fixed paths, by operation
    my ($paths) = $text =~ /ngx_http_plinth_admin_paths\[\] = \{(.*?)\n\};/s
        or die "no admin path table in $src";
    my %path;
    $path{$1} = $2 while $paths =~ /\{\s*NGX_PLINTH_OP_(\w+),\s*"([^"]+)"\s*\}/g;
    $_->{path} = $path{ $_->{op} } for @r;
    return @r;
}

# a request for a route, at bucket $b: (method, uri, body, headers), as a
# client that means it would send it
sub request_for {
    my ($rt, $b) = @_;
    # an admin route, asked about the private bucket
    return ($rt->{method}, "$rt->{path}?bucket=$b", '', [])
        if $rt->{path};
    my $uri = $rt->{bucket} ? "/$b" : '/';
    $uri .= '/obj' if $rt->{key};
    my %q = (
        uploadId => "uploadId=" . ($::UPLOAD{$b} // ''),
        'list-type' => 'list-type=2',
    );
    my $body = '';
    if ($rt->{sub}) {
        my $q = $q{$rt->{sub}} // $rt->{sub};
        $q = "partNumber=1&$q" if $rt->{name} eq 'UploadPart';
        $uri .= "?$q";
    }
    $body = 'new bytes' if $rt->{name} =~ /^(PutObject|UploadPart)$/;
    $body = '<Delete><Object><Key>obj</Key></Object></Delete>' if $rt->{name} eq 'DeleteObjects';
    $body = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>$::PART_ETAG{$b}</ETag></Part></CompleteMultipartUpload>"
        if $rt->{name} eq 'CompleteMultipartUpload';
    $body = '<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>'
        if $rt->{name} eq 'PutBucketVersioning';
    $body = '{"entries":[{"key":"obj"}]}' if $rt->{name} eq 'GetBatch';
    my @h = $rt->{name} =~ /^Put(Bucket|Object)Acl$/ ? ('x-amz-acl' => 'public-read') : ();
    return ($rt->{method}, $uri, $body, \@h);
}

sub snapshot {
    my @rows = cluster()->psql(
        "SELECT b.name, b.acl, b.versioning, "
      . "(SELECT string_agg(v.key || ':' || v.state || ':' || coalesce(v.etag, '') || ':' || v.acl, ',' ORDER BY v.version_id) FROM versions v WHERE v.bucket_id = b.bucket_id), "
      . "(SELECT string_agg(u.upload_id || ':' || u.state, ',' ORDER BY u.upload_id) FROM uploads u WHERE u.bucket_id = b.bucket_id), "
      . "(SELECT string_agg(p.upload_id || ':' || p.part_number || ':' || p.etag, ',') FROM upload_parts p JOIN uploads u USING (upload_id) WHERE u.bucket_id = b.bucket_id) "
      . "FROM buckets b ORDER BY b.name");
    return join "\n", map { join '|', map { $_ // '' } @$_ } @rows;
}

sub setup_bucket {
    my ($b, $acl) = @_;
    my $r = s3_request(PUT => "/$b", $acl ? (headers => ['x-amz-acl' => $acl]) : ());
    die "bucket $b: $r->{status}" unless $r->{status} == 200;
    s3_request(PUT => "/$b/obj", body => 'the object',
               $acl ? (headers => ['x-amz-acl' => $acl]) : ());
    $r = s3_request(POST => "/$b/mp?uploads");
    ($::UPLOAD{$b}) = $r->{body} =~ m{<UploadId>([^<]+)</UploadId>};
    # the object's own upload, for the operations on /obj
    $r = s3_request(POST => "/$b/obj?uploads");
    ($::UPLOAD{$b}) = $r->{body} =~ m{<UploadId>([^<]+)</UploadId>};
    $r = s3_request(PUT => "/$b/obj?partNumber=1&uploadId=$::UPLOAD{$b}", body => 'part');
    ($::PART_ETAG{$b} = $r->{headers}{etag} // '') =~ s/"//g;
}

run_tests();

__DATA__

=== TEST 1: the routing table is read, and the buckets are made
--- check
my @r = routes();
cmp_ok(scalar @r, '>=', 25, scalar(@r) . ' operations in the routing table');
ok((grep { $_->{name} eq 'UploadPart' } @r), 'UploadPart is among them');
is(scalar(grep { $_->{path} } @r), 2, 'two admin API routes, with their paths');
setup_bucket('authz-private');
setup_bucket('authz-public', 'public-read');
ok($::UPLOAD{'authz-private'} && $::PART_ETAG{'authz-private'}, 'an open upload with a part');



=== TEST 2: every operation on another user's bucket: unsigned, user2, bad signature, expired presigned URL
--- timeout: 120
--- check
my $before = main::snapshot();
my ($ak) = client_credentials();
for my $rt (grep { $_->{bucket} || $_->{path} } main::routes()) {
    my ($m, $uri, $body, $h) = main::request_for($rt, 'authz-private');
    my $name = "$rt->{name} ($m $uri)";
    my %want_user2 = (CreateBucket => [409, 'BucketAlreadyExists']);
    my @cases = (
        ['unsigned', [unsigned => 1], 403, 'AccessDenied'],
        ['user2', [sign_as => 'user2'], @{ $want_user2{$rt->{name}} // [403, 'AccessDenied'] }],
        ['bad signature', [sign_as => "$ak:not-the-secret-not-the-secret00"], 403, 'SignatureDoesNotMatch'],
    );
    for my $c (@cases) {
        my ($what, $opt, $status, $code) = @$c;
        my $r = s3_request($m => $uri, body => $body, headers => $h, @$opt);
        is($r->{status}, $status, "$name, $what: $status");
        like($r->{body}, qr{<Code>$code</Code>}, "$name, $what: $code") if $m ne 'HEAD';
    }
    my $url = presign_url($m, $uri, expires => 1, time => time - 120);
    my $r = s3_request($m => $url, body => $body, headers => $h, unsigned => 1);
    is($r->{status}, 403, "$name, expired presigned: 403");
    like($r->{body}, qr{<Code>AccessDenied</Code>}, "$name, expired presigned: AccessDenied") if $m ne 'HEAD';
}
for my $rt (grep { !$_->{bucket} && !$_->{path} } main::routes()) {
    my ($m, $uri) = main::request_for($rt, '');
    my $r = s3_request($m => $uri, unsigned => 1);
    is($r->{status}, 403, "$rt->{name} ($m $uri), unsigned: 403");
    like($r->{body}, qr{<Code>AccessDenied</Code>}, "$rt->{name}, unsigned: AccessDenied");
}
is(main::snapshot(), $before, 'nothing stored changed');



=== TEST 3: a public-read bucket: anonymous GET, HEAD and listing succeed; every other operation is refused
--- timeout: 120
--- check
my $before = main::snapshot();
my %open = map { $_ => 1 } qw(GetObject HeadObject HeadBucket ListObjects ListObjectsV2 ListObjectVersions);
for my $rt (grep { $_->{bucket} } main::routes()) {
    my ($m, $uri, $body, $h) = main::request_for($rt, 'authz-public');
    my $r = s3_request($m => $uri, body => $body, headers => $h, unsigned => 1);
    if ($open{$rt->{name}}) {
        is($r->{status}, 200, "$rt->{name} ($m $uri), anonymous on public-read: 200");
    } else {
        is($r->{status}, 403, "$rt->{name} ($m $uri), anonymous on public-read: 403");
        like($r->{body}, qr{<Code>AccessDenied</Code>}, "$rt->{name}: AccessDenied") if $m ne 'HEAD';
    }
}
is(main::snapshot(), $before, 'nothing stored changed');
