# The benchmark's tools keep working: build/plinth-loadgen runs each
# workload briefly against a throwaway cluster (SigV4 signed by libcurl)
# and prints sane JSON; bench/bulk-load puts keys' metadata in PostgreSQL
# that a LIST then returns; build/plinth-fsyncbench measures something.
# Short: every run is bounded to ~1 s or a few hundred operations.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP qw(decode_json);
use File::Temp qw(tempdir);
use Plinth::Cluster;

my $root = $Plinth::Cluster::ROOT;
my $loadgen = "$Plinth::Cluster::BUILD/plinth-loadgen";
my $fsyncbench = "$Plinth::Cluster::BUILD/plinth-fsyncbench";
for ($loadgen, $fsyncbench) {
    unless (-x $_) {
        my ($rc, $out) = Plinth::Cluster::run_command(
            ['make', '-C', $root, '-s', 'bench-tools'], timeout => 120, merge => 1);
        BAIL_OUT("cannot build the bench tools: $out") if $rc != 0;
    }
}

sub run_json {
    my ($argv, $timeout) = @_;
    my ($rc, $out, $err) = Plinth::Cluster::run_command($argv,
        timeout => $timeout // 60);
    my ($line) = grep { /^\{/ } split /\n/, $out;
    note "exit $rc: $err" if $rc != 0;
    return ($rc, $line ? eval { decode_json($line) } : undef, $err);
}

# --- arguments are checked; only loopback endpoints
{
    my ($rc, $j, $err) = run_json([$loadgen, '--endpoint', 'http://10.1.2.3:9000',
        '--bucket', 'b', '--no-sign']);
    is($rc, 2, 'a non-loopback endpoint is refused');
    like($err, qr/127\.0\.0\.0\/8/, 'and says why');
    ($rc) = run_json([$loadgen, '--endpoint', 'http://127.0.0.1:1', '--bucket', 'b',
        '--no-sign', '--workload', 'delete']);
    is($rc, 2, 'an unknown workload is refused');
}

# --- the fsync ceiling
{
    my $dir = tempdir('/tmp/plinth-fsb-XXXXXX', CLEANUP => 1);
    my ($rc, $j) = run_json([$fsyncbench, '--dir', $dir, '--threads', 2,
        '--duration', '0.5', '--ops', 200]);
    is($rc, 0, 'fsyncbench exits 0');
    ok($j && $j->{ops} > 0 && $j->{errors} == 0, 'fsyncbench: ops > 0, no errors')
        or diag explain $j;
    # its CPU (user + system): a durable file costs some, and the per-file
    # figure is the total over the operations
    ok($j && $j->{cpu_s} > 0 && $j->{cpu_ms_per_op} > 0
        && abs($j->{cpu_ms_per_op} - $j->{cpu_s} * 1000 / $j->{ops})
           <= 0.5 / $j->{ops} + 0.0001,
        'fsyncbench: CPU per file, and the total it comes from')
        or diag explain $j;
    opendir(my $dh, $dir) or die "$dir: $!";
    is(scalar(grep { !/^\./ } readdir $dh), 0, 'and leaves no file behind');

    # --keep 1 (bench/run): its files stay for the caller to remove
    ($rc, $j) = run_json([$fsyncbench, '--dir', $dir, '--threads', 2,
        '--duration', '0.5', '--ops', 50, '--keep', 1]);
    is($rc, 0, 'fsyncbench --keep 1 exits 0');
    my @kept = glob("$dir/fsyncbench.*/d*/f*");
    is(scalar(@kept), $j ? $j->{ops} : -1, 'and keeps one file per operation');
}

# --- the load generator against a cluster
my $c = Plinth::Cluster->new(log => sub { diag $_[0] });
$c->start;
my $k = $c->credentials or BAIL_OUT('no credentials');
my @base = ($loadgen, '--endpoint', $c->endpoint, '--access-key', $k->{access_key},
    '--secret-key', $k->{secret_key}, '--region', $k->{region},
    '--cpu-pid', 'gateway=' . $c->pid_of('nginx'),
    '--cpu-pid', 'postgres=' . $c->pid_of('pg'),
    '--rss-pid', 'gateway=' . $c->pid_of('nginx'));

sub sane {
    my ($name, $j, %want) = @_;
    ok($j, "$name: printed one JSON line") or return;
    ok($j->{ops} > 0, "$name: ops > 0 ($j->{ops})");
    is($j->{errors}, 0, "$name: no errors");
    ok($j->{ops_per_s} > 0 && $j->{seconds} > 0, "$name: ops/s > 0");
    ok($j->{lat_ms}{p50} > 0 && $j->{lat_ms}{p50} <= $j->{lat_ms}{p95}
        && $j->{lat_ms}{p95} <= $j->{lat_ms}{p99}
        && $j->{lat_ms}{p99} <= $j->{lat_ms}{max}, "$name: p50 <= p95 <= p99 <= max");
    ok(defined $j->{client_cpu_s}, "$name: client CPU seconds");
    ok(exists $j->{server_cpu_s}{gateway} && exists $j->{server_cpu_s}{postgres},
        "$name: server CPU seconds per process");
    ok($j->{rss_kb}{gateway}{start} > 0, "$name: gateway RSS sampled");
    ok($j->{mb_per_s} > 0, "$name: MB/s > 0") if $want{bytes};
}

my ($rc, $j) = run_json([@base, '--bucket', 'smoke', '--create-bucket',
    '--workload', 'put', '--size', '4K', '--keys', 50, '--concurrency', 4,
    '--ops', 200, '--duration', 5, '--label', 'smoke-put']);
is($rc, 0, 'put: exits 0');
sane('put', $j, bytes => 1);
is($j->{label}, 'smoke-put', 'put: the label is echoed') if $j;
is($j->{bytes}, 4096 * $j->{ops}, 'put: bytes = 4 KiB x ops') if $j;

($rc, $j) = run_json([@base, '--bucket', 'smoke', '--workload', 'get',
    '--size', '4K', '--keys', 50, '--concurrency', 4, '--ops', 300, '--duration', 5]);
is($rc, 0, 'get: exits 0');
sane('get', $j, bytes => 1);
ok($j->{ttfb_ms} && $j->{ttfb_ms}{p50} > 0 && $j->{ttfb_ms}{p50} <= $j->{ttfb_ms}{p99}
   && $j->{ttfb_ms}{p99} <= $j->{ttfb_ms}{max}
   && $j->{ttfb_ms}{max} <= $j->{lat_ms}{max} + 0.5,
   'get: time to first byte p50 <= p99 <= max, within the latencies');

# --lat-log: one line per measured operation (seconds since the start,
# latency ms, operation, ok), the same operations the JSON counts
my $ltmp = tempdir('/tmp/plinth-lat-XXXXXX', CLEANUP => 1);
sub lat_lines {
    my ($f) = @_;
    open my $fh, '<', $f or return;
    return map { [split ' '] } <$fh>;
}
($rc, $j) = run_json([@base, '--bucket', 'smoke', '--workload', 'mixed',
    '--mix', '60:30:10', '--list-max', 20, '--size', '4K', '--keys', 50,
    '--concurrency', 4, '--ops', 300, '--duration', 5,
    '--lat-log', "$ltmp/mixed.lat"]);
is($rc, 0, 'mixed: exits 0');
sane('mixed', $j);
my @ll = lat_lines("$ltmp/mixed.lat");
is(scalar(@ll), $j ? $j->{ops} : -1, 'lat-log: one line per operation');
is(scalar(grep { @$_ == 4 && $_->[0] =~ /^\d+\.\d+$/ && $_->[1] > 0
                 && $_->[2] =~ /^(get|put|list)$/ && $_->[3] eq '1' } @ll),
   scalar(@ll), 'lat-log: time, latency, operation, success on each line');
is(scalar(grep { $ll[$_][0] < $ll[$_ - 1][0] } 1 .. $#ll), 0,
   'lat-log: in the order the operations ended');
my @ops_seen = sort keys %{{ map { $_->[2] => 1 } @ll }};
is("@ops_seen", 'get list put', 'lat-log: all three operations of the mix');
my @lsorted = sort { $a <=> $b } map { $_->[1] } @ll;
ok($j && abs($lsorted[-1] - $j->{lat_ms}{max}) < 0.01,
   'lat-log: its largest latency is the JSON max');

# a GET of a size other than the object's is an error, not a success
($rc, $j) = run_json([@base, '--bucket', 'smoke', '--workload', 'get',
    '--size', '5K', '--keys', 50, '--concurrency', 1, '--ops', 3, '--duration', 5,
    '--lat-log', "$ltmp/bad.lat"]);
is($rc, 1, 'get of the wrong size: exit 1');
is($j && $j->{errors}, 3, 'and every operation counted as an error');
is(join(',', map { "$_->[2]:$_->[3]" } lat_lines("$ltmp/bad.lat")),
   'get:0,get:0,get:0', 'lat-log: failed operations are marked 0');

# an unwritable --lat-log is refused before any load
($rc, $j, my $lerr0) = run_json([@base, '--bucket', 'smoke', '--workload', 'get',
    '--size', '4K', '--keys', 5, '--ops', 1, '--duration', 5,
    '--lat-log', "$ltmp/no/such/dir/x.lat"]);
is($rc, 2, 'lat-log: an unwritable file: exit 2');
like($lerr0, qr{no/such/dir/x\.lat: No such file}, 'and says which file and why');

# bulk-load 3,000 keys, then LIST them a thousand at a time
($rc, $j) = run_json([@base, '--bucket', 'smoke-list', '--create-bucket',
    '--workload', 'list', '--ops', 1, '--duration', 5]);
is($rc, 0, 'list bucket created');
my ($lrc, $lout, $lerr) = Plinth::Cluster::run_command(["$root/bench/bulk-load",
    '--conninfo', $c->pg_conninfo, '--bucket', 'smoke-list', '--keys', 3000],
    timeout => 60);
is($lrc, 0, 'bulk-load exits 0') or diag $lerr;
is($c->psql("SELECT count(*) FROM objects o JOIN buckets b USING (bucket_id) "
    . "WHERE b.name = 'smoke-list' AND NOT o.deleted")->[0][0], 3000,
    'bulk-load: 3,000 keys in the bucket');
($rc, $j) = run_json([@base, '--bucket', 'smoke-list', '--workload', 'list',
    '--list-max', 1000, '--keys', 1000, '--concurrency', 2, '--ops', 20,
    '--duration', 5]);
is($rc, 0, 'list: exits 0');
sane('list', $j);
is($j->{list_keys_avg}, 1000, 'list: 1,000 keys per answer') if $j;

$c->stop;
done_testing;
