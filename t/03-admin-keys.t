# Access keys: what Plinth::Cluster makes at a first start (the
# credentials files), bin/plinth-admin, and how the harness signs requests
# (checked on plain nginx that echoes what it received; the signatures are
# recomputed here with the cluster's secrets).  Needs PostgreSQL and stock
# nginx only.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Plinth::Cluster;
use Plinth::SigV4 ();
use Plinth::Test;

my $ROOT = $Plinth::Cluster::ROOT;
my $ADMIN = "$ROOT/bin/plinth-admin";

sub slurp {
    my ($path) = @_;
    open my $fh, '<', $path or return undef;
    local $/;
    return scalar <$fh>;
}

our $TEMPLATE = <<'EOF';
user @USER@;
worker_processes 1;
error_log @PREFIX@/logs/error.log info;
pid @PREFIX@/nginx.pid;
events { worker_connections 64; }
http {
    access_log @PREFIX@/logs/access.log;
    client_body_temp_path @PREFIX@/tmp/body;
    proxy_temp_path @PREFIX@/tmp/proxy;
    fastcgi_temp_path @PREFIX@/tmp/fastcgi;
    uwsgi_temp_path @PREFIX@/tmp/uwsgi;
    scgi_temp_path @PREFIX@/tmp/scgi;
    default_type text/plain;
    # auth: @AUTH@
    server {
        listen @LISTEN@;
        location / {
            return 200 "authorization=$http_authorization\ndate=$http_x_amz_date\nsha=$http_x_amz_content_sha256\nargs=$args\n";
        }
    }
}
EOF

# ------------------------------------------------------------ 1. first start

my $pg = Plinth::Cluster->new(nodes => 0, components => ['pg'],
    log => sub { note($_[0]) });
ok($pg->start, 'pg: a cluster with PostgreSQL alone starts');
my $dir = $pg->dir;
my $cred = $pg->credentials;
ok($cred, 'credentials made at the first start') or BAIL_OUT('no credentials');
like($cred->{access_key}, qr/^PL[A-Z0-9]{18}$/, 'admin access key id: PL + 18 of [A-Z0-9]');
like($cred->{secret_key}, qr/^[A-Za-z0-9]{40}$/, 'admin secret: 40 of [A-Za-z0-9]');
like($cred->{user2_access_key}, qr/^PL[A-Z0-9]{18}$/, 'user2 access key id');
like($cred->{user2_secret_key}, qr/^[A-Za-z0-9]{40}$/, 'user2 secret');
isnt($cred->{access_key}, $cred->{user2_access_key}, 'two different keys');
is_deeply([@$cred{qw(user user2 region)}], [qw(admin user2 us-east-1)], 'users and region');

for my $f ($pg->credentials_file, $pg->aws_credentials_file) {
    ok(-f $f, "$f exists");
    is((stat $f)[2] & 07777, 0600, "... mode 0600");
}
my $text = slurp($pg->credentials_file);
like($text, qr/^PLINTH_ACCESS_KEY=\Q$cred->{access_key}\E$/m, 'credentials: PLINTH_ACCESS_KEY');
like($text, qr/^PLINTH_SECRET_KEY=\Q$cred->{secret_key}\E$/m, 'credentials: PLINTH_SECRET_KEY');
like($text, qr/^PLINTH_USER2_ACCESS_KEY=\Q$cred->{user2_access_key}\E$/m, 'credentials: PLINTH_USER2_ACCESS_KEY');
like($text, qr/^PLINTH_USER2_SECRET_KEY=\Q$cred->{user2_secret_key}\E$/m, 'credentials: PLINTH_USER2_SECRET_KEY');
my ($rc, $out) = Plinth::Cluster::run_command(['/bin/sh', '-c',
    '. "$1" && echo "$PLINTH_ACCESS_KEY $PLINTH_USER2_SECRET_KEY"', 'sh', $pg->credentials_file]);
is($out, "$cred->{access_key} $cred->{user2_secret_key}\n", 'credentials: a shell can source it');
like(slurp($pg->aws_credentials_file),
    qr/^\[default\]\naws_access_key_id = \Q$cred->{access_key}\E\naws_secret_access_key = \Q$cred->{secret_key}\E\n\n\[user2\]\naws_access_key_id = \Q$cred->{user2_access_key}\E\naws_secret_access_key = \Q$cred->{user2_secret_key}\E\n/m,
    'aws-credentials: [default] and [user2] profiles');

is_deeply([$pg->psql("select k.access_key_id, u.user_id, u.is_admin, k.status, k.secret_key "
        . "from access_keys k join users u using (user_id) order by u.user_id")],
    [[$cred->{access_key}, 'admin', 't', 'active', $cred->{secret_key}],
     [$cred->{user2_access_key}, 'user2', 'f', 'active', $cred->{user2_secret_key}]],
    'database: admin (is_admin) and user2 (not), active, with these secrets');

# a second start (another object, as bin/plinth-cluster does) reuses them
$pg->stop;
my $again = Plinth::Cluster->new(dir => $dir, nodes => 0, components => ['pg'],
    keep => 1, log => sub { note($_[0]) });
ok($again->start, 'pg: starts again on the same directory');
is_deeply($again->credentials, $cred, 'the same credentials');
is(($again->psql('select count(*) from access_keys'))[0][0], 2, 'no key added');

# ------------------------------------------------------------ 2. plinth-admin

sub admin {
    my ($rc, $out, $err) = Plinth::Cluster::run_command([$^X, $ADMIN, @_], timeout => 60);
    return ($rc, $out, $err);
}

($rc, $out, my $err) = admin('--dir', $dir, 'key', 'create', '--user', 'alice',
    '--display-name', "Alice O'Neil", '--description', "laptop'); drop table users; --");
is($rc, 0, 'key create exits 0') or diag($err);
like($out, qr/^User: alice \(new\)\nAccessKeyId: PL[A-Z0-9]{18}\nSecretAccessKey: [A-Za-z0-9]{40}\n\z/,
    'key create prints User, AccessKeyId and SecretAccessKey');
my ($alice_id) = $out =~ /^AccessKeyId: (\S+)$/m;
my ($alice_secret) = $out =~ /^SecretAccessKey: (\S+)$/m;
is_deeply([$pg->psql("select u.display_name, u.is_admin, k.description, k.secret_key "
        . "from access_keys k join users u using (user_id) where access_key_id = '$alice_id'")],
    [["Alice O'Neil", 'f', "laptop'); drop table users; --", $alice_secret]],
    'the user and key are stored, quotes and all, as given');

($rc, $out) = admin('key', 'create', '--user', 'alice', '--admin', '--dir', $dir);
is($rc, 0, 'a second key for alice, --admin, options after the command');
like($out, qr/^User: alice \(admin\)$/m, '... the existing user, now an admin');
is(($pg->psql("select is_admin from users where user_id = 'alice'"))[0][0], 't', '... in the database');

($rc, $out) = admin('--dir', $dir, 'key', 'list');
is($rc, 0, 'key list exits 0');
my @rows = grep { /\S/ } split /\n/, $out;
like($rows[0], qr/^ACCESS_KEY_ID\s+USER\s+STATUS\s+CREATED/, 'key list: header');
is(scalar @rows, 5, 'key list: four keys');
like($out, qr/^\Q$alice_id\E\s+alice\s+active\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/m, 'key list: alice\'s key');
unlike($out, qr/\Q$alice_secret\E|\Q$cred->{secret_key}\E/, 'key list: no secret');
($rc, $out) = admin('--dir', $dir, 'key', 'list', '--user', 'user2');
@rows = grep { /\S/ } split /\n/, $out;
is(scalar @rows, 2, 'key list --user user2: one key');
like($rows[1], qr/^\Q$cred->{user2_access_key}\E\s+user2\s+active/, '... user2\'s');

($rc, $out) = admin('--dir', $dir, 'key', 'disable', $alice_id);
is($rc, 0, 'key disable exits 0');
is(($pg->psql("select status from access_keys where access_key_id = '$alice_id'"))[0][0],
    'inactive', '... the key is inactive');
($rc, $out) = admin('--dir', $dir, 'key', 'list', '--user', 'alice');
like($out, qr/^\Q$alice_id\E\s+alice\s+inactive/m, '... key list says so');
($rc, $out) = admin('--dir', $dir, 'key', 'enable', $alice_id);
is($rc, 0, 'key enable exits 0');
is(($pg->psql("select status from access_keys where access_key_id = '$alice_id'"))[0][0],
    'active', '... the key is active again');

($rc, $out) = admin('--pg', $pg->pg_conninfo, 'user', 'list');
is($rc, 0, 'user list with --pg CONNINFO exits 0');
like($out, qr/^USER\s+DISPLAY_NAME\s+ADMIN\s+KEYS/, 'user list: header');
like($out, qr/^admin\s+admin\s+yes\s+1\s/m, 'user list: admin');
like($out, qr/^alice\s+Alice O'Neil\s+yes\s+2\s/m, 'user list: alice');
like($out, qr/^user2\s+user2\s+no\s+1\s/m, 'user list: user2');

($rc, $out) = admin('--dir', $dir, 'key', 'delete', $alice_id);
is($rc, 0, 'key delete exits 0');
like($out, qr/\Q$alice_id\E/, '... naming the key');
is(($pg->psql("select count(*) from access_keys where access_key_id = '$alice_id'"))[0][0],
    0, '... gone from the database');

($rc, $out, $err) = admin('--dir', $dir, 'key', 'delete', $alice_id);
is($rc, 1, 'deleting it again: exit 1');
like($err, qr/no such access key/, '... "no such access key"');
for my $verb (qw(disable enable)) {
    ($rc, $out, $err) = admin('--dir', $dir, 'key', $verb, 'PLNOSUCHKEY000000000');
    is($rc, 1, "key $verb of an unknown key: exit 1");
    like($err, qr/no such access key/, '... "no such access key"');
}
($rc, $out, $err) = admin('--dir', $dir, 'key', 'delete', "x'; delete from access_keys; --");
is($rc, 1, 'a key id that is no key id: exit 1');
is(($pg->psql('select count(*) from access_keys'))[0][0], 3, 'nothing deleted');
($rc, $out, $err) = admin('--dir', $dir, 'key', 'create', '--user', 'anonymous');
is($rc, 1, 'no key for the user anonymous: exit 1');
like($err, qr/anonymous/, '... saying why');
($rc, $out, $err) = admin('--dir', $dir, 'key', 'create', '--user', 'a b');
is($rc, 1, 'a user name with a space: exit 1');
($rc, $out, $err) = admin('--dir', $dir, 'key', 'create');
is($rc, 2, 'key create without --user: usage, exit 2');
like($err, qr/--user/, '... naming --user');
($rc, $out, $err) = admin('--dir', $dir, 'key', 'frobnicate');
is($rc, 2, 'an unknown command: exit 2');
($rc, $out, $err) = admin('--dir', "$dir/none", 'key', 'list');
is($rc, 1, 'a directory that is not there: exit 1');
like($err, qr/no cluster directory/, '... saying so');

$again->stop;
($rc, $out, $err) = admin('--dir', $dir, 'key', 'list');
is($rc, 1, 'the database stopped: exit 1');
like($err, qr/^plinth-admin: /, '... with a message') or diag($err);

# ------------------------------------------------------------ 3. @AUTH@

{
    my $c = Plinth::Cluster->new(nodes => 0, components => ['nginx'],
        template_text => "plinth_auth \@AUTH\@;\n# plinth_auth \@AUTH\@;\n");
    is($c->render, "plinth_auth sigv4;\n# plinth_auth \@AUTH\@;\n", '@AUTH@: sigv4 by default');
    is($c->render(auth => 'off'), "plinth_auth off;\n# plinth_auth \@AUTH\@;\n",
        '@AUTH@: a render override');
    my $s = Plinth::Cluster->new(nodes => 0, components => ['nginx'], auth => 'off',
        template_text => "plinth_auth \@AUTH\@;\n");
    is($s->render, "plinth_auth off;\n", '@AUTH@: the auth option');
    ok(!eval { Plinth::Cluster->new(nodes => 0, auth => 'maybe'); 1 }, 'auth => maybe dies');
    like($@, qr/sigv4 or off/, '... saying what it may be');
}

# ------------------------------------------------------------ 4. signing

# The signature of a request the harness sent, recomputed from its bytes.
sub resign {
    my ($bytes, $secret, %o) = @_;
    my ($head, $body) = split /\r\n\r\n/, $bytes, 2;
    my ($line, @lines) = split /\r\n/, $head;
    my ($method, $uri) = split / /, $line;
    my @h = map { [split /:\s*/, $_, 2] } @lines;
    my ($authz) = map { $_->[1] } grep { lc $_->[0] eq 'authorization' } @h;
    return undef unless $authz;
    my ($ak, $date8, $region, $sh) = $authz
        =~ m{Credential=([^/]+)/(\d{8})/([^/]+)/s3/aws4_request, SignedHeaders=([^,]+), Signature=};
    my $s = Plinth::SigV4::sign_request(method => $method, uri => $uri,
        headers => [grep { lc $_->[0] ne 'authorization' } @h],
        access_key => $ak, secret_key => $secret, region => $region,
        signed_headers => [split /;/, $sh], body => $body);
    return { ok => $s->{authorization} eq $authz, access_key => $ak,
        signed_headers => $sh, region => $region };
}

sub echo_of {
    my ($res) = @_;
    return { map { /^(\w+)=(.*)$/ ? ($1, $2) : () } split /\n/, $res->{body} };
}

cluster_options(nodes => 0, components => ['pg', 'nginx'],
    template_text => $TEMPLATE);

run_tests();

__DATA__

=== TEST 1: a request is signed with the admin key, payload hash of the body
--- request
PUT /b/some%20key?x=1&a=b
the body
--- error_code: 200
--- check
my $k = $cluster->credentials;
my $e = main::echo_of($res);
like($e->{authorization}, qr{^AWS4-HMAC-SHA256 Credential=\Q$k->{access_key}\E/\d{8}/us-east-1/s3/aws4_request, }, 'Authorization with the admin key');
is($e->{sha}, Plinth::SigV4::sha256_hex('the body'), 'x-amz-content-sha256: the body\'s');
like($e->{date}, qr/^\d{8}T\d{6}Z$/, 'x-amz-date');
ok(abs(Plinth::SigV4::parse_amz_date($e->{date}) - time) < 60, '... now');
my $v = main::resign($res->{request}, $k->{secret_key});
ok($v && $v->{ok}, 'the signature verifies with the admin secret');
is($v->{signed_headers}, 'host;x-amz-content-sha256;x-amz-date', 'signed headers');



=== TEST 2: unsigned
--- unsigned
--- request
GET /b/k
--- check
is(main::echo_of($res)->{authorization}, '', 'no Authorization');
is(main::echo_of($res)->{sha}, '', 'no x-amz-content-sha256');



=== TEST 3: sign_as: user2, and extra headers signed
--- sign_as: user2
--- more_headers
Content-Type: text/plain
x-amz-meta-color:   light   blue
Range: bytes=0-1
--- request
PUT /b/k
data
--- check
my $k = $cluster->credentials;
my $v = main::resign($res->{request}, $k->{user2_secret_key});
is($v->{access_key}, $k->{user2_access_key}, 'user2\'s key');
ok($v->{ok}, 'the signature verifies with user2\'s secret');
is($v->{signed_headers}, 'content-type;host;x-amz-content-sha256;x-amz-date;x-amz-meta-color',
    'Content-Type and x-amz-* signed, not Range');



=== TEST 4: sign_as a literal key
--- sign_as: PLNOSUCHKEY000000000:notasecretnotasecret
--- request
GET /b/k
--- check
my $v = main::resign($res->{request}, 'notasecretnotasecret');
is($v->{access_key}, 'PLNOSUCHKEY000000000', 'that key id');
ok($v->{ok}, 'signed with that secret');



=== TEST 5: payload_hash UNSIGNED-PAYLOAD, and a wrong one
--- payload_hash eval
["UNSIGNED-PAYLOAD", "0" x 64]
--- request eval
["PUT /b/k\nabc", "PUT /b/k\nabc"]
--- check
my $k = $cluster->credentials;
is(main::echo_of($responses->[0])->{sha}, 'UNSIGNED-PAYLOAD', 'UNSIGNED-PAYLOAD sent');
is(main::echo_of($responses->[1])->{sha}, '0' x 64, 'the wrong hash sent');
my $v = main::resign($responses->[1]{request}, $k->{secret_key});
ok($v->{ok}, '... and signed');



=== TEST 6: payload_hash empty: no x-amz-content-sha256 header
--- payload_hash:
--- request
GET /b/k
--- check
my $e = main::echo_of($res);
is($e->{sha}, '', 'no x-amz-content-sha256');
like($e->{authorization}, qr/SignedHeaders=host;x-amz-date,/, 'signed without it');



=== TEST 7: sign_date: 20 minutes ago, and a fixed date
--- sign_date eval
[-1200, "20130524T000000Z"]
--- request eval
["GET /b/k", "GET /b/k"]
--- check
my $d = Plinth::SigV4::parse_amz_date(main::echo_of($responses->[0])->{date});
ok(abs($d - (time - 1200)) < 60, 'x-amz-date 20 minutes ago');
is(main::echo_of($responses->[1])->{date}, '20130524T000000Z', 'the fixed date');
like(main::echo_of($responses->[1])->{authorization}, qr{/20130524/us-east-1/}, '... in the scope');



=== TEST 8: presign
--- presign: 300
--- request
GET /b/k?versionId=7
--- check
my $e = main::echo_of($res);
is($e->{authorization}, '', 'no Authorization header');
my $k = $cluster->credentials;
like($e->{args}, qr{^versionId=7&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=\Q$k->{access_key}\E%2F\d{8}%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=\d{8}T\d{6}Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=[0-9a-f]{64}$},
    'the query of a presigned URL');
my ($date) = $e->{args} =~ /X-Amz-Date=(\w+)/;
my $p = Plinth::SigV4::presign(method => 'GET', uri => '/b/k?versionId=7',
    host => '127.0.0.1:' . $cluster->port, expires => 300, amz_date => $date,
    access_key => $k->{access_key}, secret_key => $k->{secret_key});
is("/b/k?$e->{args}", $p->{uri}, 'the signature verifies');



=== TEST 9: a request with its own Authorization is sent as it is
--- more_headers
Authorization: AWS4-HMAC-SHA256 Credential=garbage
--- request
GET /b/k
--- check
my $e = main::echo_of($res);
is($e->{authorization}, 'AWS4-HMAC-SHA256 Credential=garbage', 'the Authorization given');
is($e->{date}, '', 'no x-amz-date added');



=== TEST 10: per-request more_headers, and an x-amz-content-sha256 given is signed as given
--- more_headers eval
["X-Amz-Content-Sha256: UNSIGNED-PAYLOAD", "x-amz-meta-a: 1"]
--- request eval
["PUT /b/k\nabc", "PUT /b/k\nabc"]
--- check
my $k = $cluster->credentials;
is(main::echo_of($responses->[0])->{sha}, 'UNSIGNED-PAYLOAD', 'request 1: as given');
ok(main::resign($responses->[0]{request}, $k->{secret_key})->{ok}, 'request 1: signed');
like(main::resign($responses->[1]{request}, $k->{secret_key})->{signed_headers},
    qr/x-amz-meta-a$/, 'request 2: its own header signed');



=== TEST 11: s3_request, sign_request, presign_url, sign_chunked, client_credentials
--- check
my $k = $cluster->credentials;
my $r = s3_request(PUT => '/b/x', body => 'xyz', headers => { 'Content-Type' => 'a/b' });
ok(main::resign($r->{request}, $k->{secret_key})->{ok}, 's3_request: signed');
$r = s3_request(GET => '/b/x', unsigned => 1);
is(main::echo_of($r)->{authorization}, '', 's3_request unsigned => 1');
$r = s3_request(GET => '/b/x', sign => 0);
is(main::echo_of($r)->{authorization}, '', 's3_request sign => 0');
$r = s3_request(GET => '/b/x', sign_as => 'user2');
like(main::echo_of($r)->{authorization}, qr/\Q$k->{user2_access_key}\E/, 's3_request sign_as => user2');
$r = s3_request(GET => '/b/x', sign => { access_key => 'PLZZZZZZZZZZZZZZZZZZ', secret_key => 's' x 40 });
ok(main::resign($r->{request}, 's' x 40)->{ok}, 's3_request sign => {keys}');
$r = s3_request(GET => '/b/x', time => time - 3600);
ok(abs(Plinth::SigV4::parse_amz_date(main::echo_of($r)->{date}) - (time - 3600)) < 60,
    's3_request time => epoch');
$r = s3_request(GET => '/b/x', presign => 60, sign_as => 'user2');
like(main::echo_of($r)->{args}, qr/X-Amz-Credential=\Q$k->{user2_access_key}\E%2F.*X-Amz-Expires=60&/,
    's3_request presign => 60, sign_as => user2');

my @h = sign_request(PUT => '/b/y', body => 'body!', headers => ['x-amz-acl' => 'private']);
my %h = @h;
like($h{Authorization}, qr/SignedHeaders=host;x-amz-acl;x-amz-content-sha256;x-amz-date,/,
    'sign_request: the headers, x-amz-acl signed');
is($h{Host}, '127.0.0.1:' . $cluster->port, 'sign_request: Host');
$r = s3_request(PUT => '/b/y', body => 'body!', headers => \@h);
is(main::echo_of($r)->{authorization}, $h{Authorization}, 'sent as it is by s3_request');
ok(main::resign($r->{request}, $k->{secret_key})->{ok}, '... and it verifies');
my $raw = sign_request(GET => '/b/z', format => 'raw', sign_as => 'user2');
like($raw, qr/^Host: 127\.0\.0\.1:\d+\r\nX-Amz-Date: \d{8}T\d{6}Z\r\nX-Amz-Content-Sha256: [0-9a-f]{64}\r\nAuthorization: AWS4-HMAC-SHA256 Credential=\Q$k->{user2_access_key}\E\/[^\r\n]+\r\n\z/,
    'sign_request format => raw');
$r = raw_request("GET /b/z HTTP/1.1\r\n${raw}Connection: close\r\n\r\n");
ok(main::resign($r->{request}, $k->{user2_secret_key})->{ok}, '... for raw_request');

my $u = presign_url(GET => '/b/p', expires => 10, time => 1369353600);
like($u, qr{^/b/p\?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=\Q$k->{access_key}\E%2F20130524%2F.*&X-Amz-Expires=10&X-Amz-SignedHeaders=host&X-Amz-Signature=[0-9a-f]{64}$},
    'presign_url: the request target');
like(presign_url(GET => '/b/p', full => 1), qr{^http://127\.0\.0\.1:\d+/b/p\?X-Amz-}, 'presign_url full => 1');
$r = s3_request(GET => $u);
is(main::echo_of($r)->{authorization}, '', 's3_request sends a presigned URL as it is');

my ($ch, $cb) = sign_chunked(PUT => '/b/c', data => 'x' x 100, chunk_size => 64,
    mode => 'signed-trailer', checksum => 'crc32');
my %c = @$ch;
is($c{'X-Amz-Content-Sha256'}, 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER', 'sign_chunked: the payload hash');
is($c{'Content-Length'}, length $cb, 'sign_chunked: Content-Length of the framing');
like($cb, qr/^40;chunk-signature=[0-9a-f]{64}\r\n/, 'sign_chunked: the body');
$r = s3_request(PUT => '/b/c', headers => $ch, body => $cb);
is(main::echo_of($r)->{sha}, 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER', '... sent as it is');

is_deeply([client_credentials()], [@$k{qw(access_key secret_key)}], 'client_credentials: admin');
is_deeply([client_credentials('user2')], [@$k{qw(user2_access_key user2_secret_key)}],
    'client_credentials(user2)');
