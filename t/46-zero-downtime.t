# Changes under load fail no request: a continuous, bounded PUT/GET load
# (build/plinth-loadgen, 4 clients) runs while nginx is reloaded three
# times, a data node is stopped (SIGTERM) and started again, and a fourth
# data node is added to the cluster file and nginx reloaded. Every
# operation must succeed: a reload lets old workers finish their
# requests; a stopped node's writes are covered by the write quorum and
# its reads by the other replicas (resumed at the exact byte if cut); the
# new node takes new writes from the reload on.
#
# A worker a reload retires closes its idle kept-alive connections; a
# request the client sent on one at that very moment is never read (curl
# then reports "Send failure: Broken pipe" for a PUT). HTTP leaves such a
# request to the client to send again, and the AWS SDKs do; so does the
# load generator, once, on a new connection, and it counts these
# ("retries"). They are bounded: each of the four reloads can catch at
# most one connection per client.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Temp qw(tempdir);
use JSON::PP ();
use POSIX ();
use Plinth::Cluster;
use Test::More;
use Time::HiRes qw(sleep time);

my $root = $Plinth::Cluster::ROOT;
my $loadgen = "$Plinth::Cluster::BUILD/plinth-loadgen";
plan skip_all => "no $loadgen (make bench-tools)" unless -x $loadgen;

my $c = Plinth::Cluster->new(log => sub { note $_[0] });
$c->start;
my $k = $c->credentials or BAIL_OUT('no credentials');
my $tmp = tempdir('plinth-t46-XXXXXX', DIR => '/tmp', CLEANUP => 1);
my @base = ($loadgen, '--endpoint', $c->endpoint, '--access-key', $k->{access_key},
    '--secret-key', $k->{secret_key}, '--region', $k->{region}, '--bucket', 'zdt',
    '--size', '64K', '--keys', 200, '--concurrency', 4);

# the keys, so GETs find objects
my ($rc, $out) = Plinth::Cluster::run_command([@base, '--create-bucket',
    '--populate', '--workload', 'get', '--ops', 1, '--duration', 30],
    timeout => 120, merge => 1);
is($rc, 0, 'bucket and 200 objects of 64 KiB') or diag $out;

# the load: mixed PUT and GET, bounded in time and count, in the background
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    open STDOUT, '>', "$tmp/load.json" or POSIX::_exit(2);
    open STDERR, '>', "$tmp/load.err" or POSIX::_exit(2);
    { no warnings 'exec';
      exec @base, '--workload', 'mixed', '--mix', '40:60:0', '--duration', 18,
          '--ops', 200000, '--op-timeout', 30, '--label', 'zero-downtime'; }
    POSIX::_exit(127);
}

sleep 1.5;
for my $i (1 .. 3) {
    $c->reload_nginx;
    pass("nginx -s reload $i under load");
    sleep 1;
}
$c->stop_node(3);
pass('data node 3 stopped (SIGTERM) under load');
sleep 2;
$c->start_node(3);
pass('data node 3 started again');
my ($t_add) = map { $_->[0] } $c->psql("SELECT now()");
is($c->add_node, 4, 'data node 4 started and added to the cluster file under load');
$c->reload_nginx;
pass('nginx -s reload: the gateway knows node 4');

my $deadline = time + 60;
my $done;
while (time < $deadline) {
    $done = waitpid($pid, POSIX::WNOHANG());
    last if $done == $pid;
    sleep 0.2;
}
if (!$done || $done != $pid) {
    kill 'KILL', $pid;
    waitpid($pid, 0);
    fail('the load ended in time');
}

open my $fh, '<', "$tmp/load.json" or die;
my $line = <$fh> // '';
my $j = eval { JSON::PP::decode_json($line) };
ok($j, 'the load generator printed its figures') or diag($line, `cat $tmp/load.err`);
if ($j) {
    note("ops $j->{ops}, ops/s $j->{ops_per_s}, errors $j->{errors}, p99 $j->{lat_ms}{p99} ms");
    cmp_ok($j->{ops}, '>', 100, "operations ran throughout ($j->{ops})");
    is($j->{errors}, 0, 'not one failed request across three reloads, a data-node restart and a node added')
        or diag(`cat $tmp/load.err`);
    cmp_ok($j->{retries}, '<=', 4 * 4,
        "requests sent again after a retired worker closed their idle connection: "
        . "$j->{retries}, at most one per client per reload");
}

my ($on4) = map { $_->[0] } $c->psql("SELECT count(*) FROM versions "
    . "WHERE state = 'committed' AND committed_at > '$t_add' AND 4 = ANY (nodes)");
my ($after) = map { $_->[0] } $c->psql("SELECT count(*) FROM versions "
    . "WHERE state = 'committed' AND committed_at > '$t_add'");
cmp_ok($on4, '>', 0, "new writes use node 4 after the reload ($on4 of the $after writes "
    . "committed since it was added have a copy there)");

# every object still reads whole after it all
($rc, $out) = Plinth::Cluster::run_command([@base, '--workload', 'get',
    '--ops', 200, '--duration', 30], timeout => 60, merge => 1);
$j = eval { JSON::PP::decode_json((split /\n/, $out)[-1]) };
is($j && $j->{errors}, 0, 'afterwards: 200 GETs, no error') or diag $out;

$c->stop;
# A reload that loads a new build of the module from a new path must run
# that build's code: nginx loads modules RTLD_GLOBAL, so the module binds
# its own functions and data inside itself (config: -Wl,-Bsymbolic).
my ($drc, $dyn) = Plinth::Cluster::run_command(['readelf', '-d', $c->{module}], timeout => 20);
is($drc, 0, 'readelf -d of the module');
like($dyn, qr/\(FLAGS\)\s+.*\bSYMBOLIC\b/,
     'the module binds its own symbols (-Bsymbolic): a reloaded build runs its own code');

done_testing();
