# One S3 endpoint, two gateways: Plinth::Cluster with gateways => 2 starts
# two gateways (the same PostgreSQL and data nodes) and a plain nginx in
# front of them (conf/lb.conf), as `make run GATEWAYS=2` does.
#   - read-your-writes across gateways: an object written through one is
#     read through the other at once (overwrites and deletes too), because
#     it comes from PostgreSQL, not from a gateway's memory;
#   - the load balancer passes Host and the URI unchanged, so SigV4 holds,
#     and spreads requests over both gateways;
#   - one gateway quits (nginx -s quit: SIGQUIT) while build/plinth-loadgen
#     runs a bounded load (PUT and GET) against the endpoint: not one
#     request fails, and the quit gateway finished what it had.
use strict;
use warnings;

use lib 't/lib';
use Plinth::Test;
use Plinth::Cluster;
use Plinth::TestUtil;

use File::Temp qw(tempdir);
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(sleep time);

my $loadgen = "$Plinth::Cluster::BUILD/plinth-loadgen";

cluster_options(gateways => 2);
my $c = cluster();
my ($p1, $p2) = ($c->gateway_port(1), $c->gateway_port(2));
isnt($p1, $c->port, "gateway 1 on a port of its own ($p1), the endpoint ("
    . $c->port . ") is the load balancer's");
ok($c->alive('gw2') && $c->alive('lb') && $c->alive('nginx'),
    'two gateways and the load balancer run');

# --------------------------------------------------------------- read-your-writes across gateways

is(s3_request(PUT => '/lbrw', port => $p1)->{status}, 200, 'bucket made through gateway 1');
is(s3_request(HEAD => '/lbrw', port => $p2)->{status}, 200, '... and seen at once by gateway 2');
my ($ok_new, $ok_over, $ok_del, $n) = (0, 0, 0, 20);
for my $i (1 .. $n) {
    my ($w, $r) = $i % 2 ? ($p1, $p2) : ($p2, $p1);
    my $b1 = random_bytes(1000 + $i * 97);
    my $pr = s3_request(PUT => "/lbrw/k$i", body => $b1, port => $w);
    my $g = s3_request(GET => "/lbrw/k$i", port => $r);
    $ok_new++ if $pr->{status} == 200 && $g->{status} == 200 && $g->{body} eq $b1;
    my $b2 = random_bytes(500 + $i);
    s3_request(PUT => "/lbrw/k$i", body => $b2, port => $r);
    $g = s3_request(GET => "/lbrw/k$i", port => $w);
    $ok_over++ if $g->{status} == 200 && $g->{body} eq $b2;
    s3_request(DELETE => "/lbrw/k$i", port => $w);
    $ok_del++ if s3_request(GET => "/lbrw/k$i", port => $r)->{status} == 404;
}
is($ok_new, $n, "$n objects, each written through one gateway and read at once through the other");
is($ok_over, $n, "$n overwrites through the second, read at once through the first: the new bytes");
is($ok_del, $n, "$n deletes through one gateway: 404 at once through the other");

# --------------------------------------------------------------- through the load balancer

my $body = random_bytes(3 * 1024 * 1024 + 17);
is(s3_request(PUT => '/lbrw/big', body => $body, timeout => 60)->{status}, 200,
    'a 3 MiB PUT through the load balancer (body buffered there, then passed on)');
my $g = s3_request(GET => '/lbrw/big', timeout => 60);
ok($g->{status} == 200 && $g->{body} eq $body, '... GET through it: byte-identical');
is(s3_request(GET => '/lbrw/big', headers => { Range => 'bytes=100-199' })->{body},
    substr($body, 100, 100), '... a Range GET through it');
is(s3_request(GET => '/lbrw/big', sign_date => -1200)->{status}, 403,
    '... a request signed 20 minutes ago is still refused (the signature is checked behind it)');
my @keys = map { "s/$_" } 1 .. 12;
is(scalar(grep { s3_request(PUT => "/lbrw/$_", body => "x$_")->{status} == 200 } @keys), 12,
    '12 PUTs through the load balancer');
my $log = do { local (@ARGV, $/) = $c->lb_dir . '/logs/access.log'; <> } // '';
my %used;
$used{$1}++ while $log =~ /"upstream":"127\.0\.0\.1:(\d+)"/g;
ok($used{$p1} && $used{$p2}, 'the load balancer used both gateways '
    . "(gateway 1: " . ($used{$p1} // 0) . ", gateway 2: " . ($used{$p2} // 0) . " requests)");

# --------------------------------------------------------------- a gateway quits under load

SKIP: {
    skip "no $loadgen (make bench-tools)", 7 unless -x $loadgen;
    my $k = $c->credentials;
    my $tmp = tempdir('plinth-t49-XXXXXX', DIR => '/tmp', CLEANUP => 1);
    my @base = ($loadgen, '--endpoint', $c->endpoint, '--access-key', $k->{access_key},
        '--secret-key', $k->{secret_key}, '--region', $k->{region}, '--bucket', 'lbload',
        '--size', '256K', '--keys', 100, '--concurrency', 4);
    my ($rc, $out) = Plinth::Cluster::run_command([@base, '--create-bucket', '--populate',
        '--workload', 'get', '--ops', 1, '--duration', 30], timeout => 120, merge => 1);
    is($rc, 0, 'bucket and 100 objects of 256 KiB, through the load balancer') or diag $out;

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', "$tmp/load.json" or POSIX::_exit(2);
        open STDERR, '>', "$tmp/load.err" or POSIX::_exit(2);
        { no warnings 'exec';
          exec @base, '--workload', 'mixed', '--mix', '50:50:0', '--duration', 8,
              '--ops', 100000, '--op-timeout', 30, '--label', 'gateway-quit'; }
        POSIX::_exit(127);
    }
    sleep 2.5;
    my $quit_at = time;
    my $took = $c->quit_gateway(2);
    pass(sprintf 'gateway 2 quit (SIGQUIT) under load; it exited %.2fs later, its requests done', $took);
    ok(!$c->alive('gw2'), '... and is gone');

    my $deadline = time + 90;
    my $done = 0;
    while (time < $deadline) {
        $done = waitpid($pid, POSIX::WNOHANG());
        last if $done == $pid;
        sleep 0.2;
    }
    if ($done != $pid) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
    my $exit = $? >> 8;
    open my $fh, '<', "$tmp/load.json" or die;
    my $line = <$fh> // '';
    my $j = eval { JSON::PP::decode_json($line) };
    ok($j, 'the load generator ended in time and printed its figures')
        or diag($line, `cat $tmp/load.err`);
    $j ||= { ops => 0, errors => -1 };
    note("ops $j->{ops}, ops/s $j->{ops_per_s}, errors $j->{errors}, p99 $j->{lat_ms}{p99} ms");
    cmp_ok($j->{ops}, '>', 100, "requests ran throughout ($j->{ops})");
    is($j->{errors}, 0, 'not one failed request while a gateway quit') or diag(`cat $tmp/load.err`);

    my @lines = split /\n/,
        (do { local (@ARGV, $/) = $c->lb_dir . '/logs/access.log'; <> } // '');
    my $bad = grep { /"status":5\d\d/ } @lines;
    is($bad, 0, "the load balancer's log has no 5xx answer (" . scalar(@lines) . " requests)");
    my $retried = grep { /"upstream":"[^"]*, / } @lines;
    note("requests the load balancer passed to the next gateway: $retried");
}

done_testing();
