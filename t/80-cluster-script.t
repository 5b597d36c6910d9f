# The README's first command, as make run / make stop drive it:
# bin/plinth-cluster start prints the endpoint and how to use it with aws,
# stop ends every process by pid and keeps the data, and the next start
# serves every object stored before.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use File::Temp qw(tempdir);
use Plinth::Cluster;

my $dir = tempdir('/tmp/plinth-run-XXXXXX', CLEANUP => !$ENV{PLINTH_KEEP});
chmod 0755, $dir;
my $port = Plinth::Cluster::free_port();
use Cwd qw(abs_path);
my @cmd = ('perl', abs_path('bin/plinth-cluster'));
my @opt = ('--dir', "$dir/run", '--port', $port);

sub run {
    my ($code, $out, $err) = Plinth::Cluster::run_command([@cmd, @_, @opt],
                                                          timeout => 90);
    return ($code, $out . $err);
}

sub pids {
    my @p;
    for my $f (glob "$dir/run/pids/*.pid") {
        open my $fh, '<', $f or next;
        my $pid = <$fh>;
        chomp $pid if defined $pid;
        push @p, $pid if $pid;
    }
    return @p;
}

# alive and not a zombie (the launcher exits; its children may be left
# unreaped by an init that does not reap)
sub alive {
    my ($pid) = @_;
    return 0 unless kill 0, $pid;
    open my $st, '<', "/proc/$pid/stat" or return 0;
    my $line = <$st>;
    return $line !~ /^\d+ \(.*\) Z/;
}

my ($code, $out) = run('start');
is($code, 0, 'start exits 0') or diag $out;
like($out, qr{S3 endpoint http://127\.0\.0\.1:$port}, 'prints the endpoint');
like($out, qr{aws --endpoint-url http://127\.0\.0\.1:$port s3 }, 'prints how to use aws');
my @first = pids();
is(scalar(@first), 5, 'five processes: PostgreSQL, three data nodes, nginx');
is(scalar(grep { alive($_) } @first), 5, 'all of them alive');

($code, $out) = run('start');
is($code, 0, 'a second start is harmless');
like($out, qr/already running/, 'and says so');

# curl signs with the admin key the first start wrote to run/credentials
my %cred = map { /^(PLINTH_\w+)=(.*)$/ ? ($1, $2) : () }
    split /\n/, do { local (@ARGV, $/) = "$dir/run/credentials"; <> // '' };
ok($cred{PLINTH_ACCESS_KEY}, 'the first start wrote the access keys to run/credentials');
my @sig = ('--aws-sigv4', 'aws:amz:' . ($cred{PLINTH_REGION} // 'us-east-1') . ':s3',
    '--user', ($cred{PLINTH_ACCESS_KEY} // '') . ':' . ($cred{PLINTH_SECRET_KEY} // ''),
    '-H', 'x-amz-content-sha256: UNSIGNED-PAYLOAD');

my $body = join '', map { chr(($_ * 7) % 256) } 1 .. 300000;
my ($c, $o) = Plinth::Cluster::run_command(
    ['curl', '-s', '-f', '-m', '10', @sig, '-X', 'PUT', "http://127.0.0.1:$port/keep"]);
is($c, 0, 'bucket created') or diag $o;
open my $fh, '>:raw', "$dir/body" or die $!;
print $fh $body;
close $fh;
($c, $o) = Plinth::Cluster::run_command(
    ['curl', '-s', '-f', '-m', '10', @sig, '-X', 'PUT', '--data-binary', "\@$dir/body",
     "http://127.0.0.1:$port/keep/obj"]);
is($c, 0, 'object stored') or diag $o;

($code, $out) = run('stop');
is($code, 0, 'stop exits 0') or diag $out;
like($out, qr/Stopped: pg node1 node2 node3 nginx/, 'names what it stopped');
is(scalar(grep { alive($_) } @first), 0, 'no process left');
ok(-d "$dir/run/pg" && -d "$dir/run/node1", 'the data stays in place');

($code, $out) = run('start');
is($code, 0, 'start again') or diag $out;
($c, $o) = Plinth::Cluster::run_command(
    ['curl', '-s', '-f', '-m', '10', @sig, "http://127.0.0.1:$port/keep/obj"]);
is($c, 0, 'GET after restart');
ok($o eq $body, 'the object stored before is served, byte-identical');

($code, $out) = run('status');
like($out, qr/nginx\s+\d+\s+running/, 'status lists nginx running');

($code, $out) = run('stop');
is($code, 0, 'stop again');
is(scalar(grep { alive($_) } pids()), 0, 'nothing left running');

done_testing();
