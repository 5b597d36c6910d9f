# S3 over HTTPS: the gateway's TLS listener (as conf/nginx.conf shows it)
# with a certificate from a CA made here, used by the AWS CLI with that CA
# (--ca-bundle); without it the CLI refuses the certificate, so the
# connection really is TLS and really is checked.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Temp qw(tempdir);
use Plinth::Cluster;
use Test::More;

my $tmp = tempdir('plinth-t47-XXXXXX', DIR => '/tmp', CLEANUP => 1);
chmod 0755, $tmp;

sub run_ok {
    my ($what, @cmd) = @_;
    my ($rc, $out) = Plinth::Cluster::run_command([@cmd], timeout => 120, merge => 1,
        cwd => $tmp);
    is($rc, 0, $what) or diag("@cmd\n$out");
    return $out;
}

# a CA, and a server certificate for 127.0.0.1 signed by it
run_ok('CA key and certificate', 'openssl', 'req', '-x509', '-newkey', 'rsa:2048',
    '-nodes', '-days', '2', '-subj', '/CN=Plinth test CA', '-keyout', "$tmp/ca.key",
    '-out', "$tmp/ca.crt");
run_ok('server key and request', 'openssl', 'req', '-newkey', 'rsa:2048', '-nodes',
    '-subj', '/CN=127.0.0.1', '-keyout', "$tmp/server.key", '-out', "$tmp/server.csr");
open my $fh, '>', "$tmp/san.ext" or die;
print $fh "subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth\n";
close $fh;
run_ok('server certificate signed by the CA', 'openssl', 'x509', '-req', '-in',
    "$tmp/server.csr", '-CA', "$tmp/ca.crt", '-CAkey', "$tmp/ca.key",
    '-CAcreateserial', '-days', '2', '-extfile', "$tmp/san.ext", '-out', "$tmp/server.crt");

my $tls = Plinth::Cluster::free_port();
my $c = Plinth::Cluster->new(log => sub { note $_[0] },
    server_extra => "listen 127.0.0.1:$tls ssl;\n"
        . "        ssl_certificate $tmp/server.crt;\n"
        . "        ssl_certificate_key $tmp/server.key;\n"
        . "        ssl_protocols TLSv1.2 TLSv1.3;");
$c->start;
my $k = $c->credentials or BAIL_OUT('no credentials');

my $home = "$tmp/home";
mkdir $home;
sub aws {
    my (@args) = @_;
    return Plinth::Cluster::run_command(['/usr/bin/aws', '--endpoint-url',
        "https://127.0.0.1:$tls", @args], timeout => 120, merge => 1, cwd => $tmp,
        env => {
            AWS_ACCESS_KEY_ID => $k->{access_key}, AWS_SECRET_ACCESS_KEY => $k->{secret_key},
            AWS_DEFAULT_REGION => 'us-east-1', AWS_CONFIG_FILE => '/dev/null',
            AWS_SHARED_CREDENTIALS_FILE => '/dev/null', AWS_EC2_METADATA_DISABLED => 'true',
            AWS_PAGER => '', HOME => $home, PATH => "/usr/bin:/bin",
        });
}

my ($rc, $out) = aws('s3', 'ls');
isnt($rc, 0, 'without the CA the CLI refuses the certificate');
like($out, qr/SSL|certificate/i, '... a certificate error') or diag $out;

my @ca = ('--ca-bundle', "$tmp/ca.crt");
($rc, $out) = aws(@ca, 's3', 'mb', 's3://tlsbucket');
is($rc, 0, 'aws s3 mb over HTTPS') or diag $out;
my $body = join '', map { chr(int rand 256) } 1 .. 300_000;
open $fh, '>:raw', "$tmp/up.bin" or die;
print $fh $body;
close $fh;
($rc, $out) = aws(@ca, 's3', 'cp', '--no-progress', "$tmp/up.bin", 's3://tlsbucket/up.bin');
is($rc, 0, 'aws s3 cp up over HTTPS') or diag $out;
($rc, $out) = aws(@ca, 's3', 'cp', '--no-progress', 's3://tlsbucket/up.bin', "$tmp/down.bin");
is($rc, 0, 'aws s3 cp down over HTTPS') or diag $out;
open $fh, '<:raw', "$tmp/down.bin" or die;
my $down = do { local $/; <$fh> };
ok(defined $down && $down eq $body, 'byte-identical through TLS');
($rc, $out) = aws(@ca, 's3', 'ls', 's3://tlsbucket');
like($out, qr/\b300000 up\.bin$/m, 'aws s3 ls over HTTPS');
($rc, $out) = aws(@ca, 's3', 'rm', 's3://tlsbucket/up.bin');
is($rc, 0, 'aws s3 rm over HTTPS') or diag $out;
($rc, $out) = aws(@ca, 's3', 'rb', 's3://tlsbucket');
is($rc, 0, 'aws s3 rb over HTTPS') or diag $out;

$c->stop;
done_testing();
