# Crash-consistency checker (README "Crash-consistency checker"): clients
# (build/plinth-chaos) PUT, GET and DELETE unique self-describing bodies
# on a small key set while a nemesis (Plinth::Chaos::Nemesis) kill -9s
# data nodes, SIGSTOPs them, kill -9s nginx workers and restarts
# PostgreSQL (fast and immediate). Afterwards the history is checked
# (Plinth::Chaos::check, whose header states the rules): no acknowledged
# write lost, no stale read, no torn or foreign body; then, repair done,
# every key's current version has RF verified replicas and reads back.
#
# CHAOS_SECONDS (default 30) is how long the faults go on; make chaos runs
# 120. CHAOS_SEED (default: from the clock, printed) replays a nemesis
# schedule and the clients' choices (not the machine's timing).
#
# Two gateways (CHAOS_GATEWAYS=1 for one), started by the harness
# (gateways => N) on their own ports, prefixes, logs and pid files; the
# clients send each request to either, so read-your-writes is checked
# across gateways; the nemesis kills workers of both.
use strict;
use warnings;

use lib 't/lib';
use Plinth::Test;
use Plinth::Cluster;
use Plinth::TestUtil;
use Plinth::Chaos;

use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(sleep time);

my $root = $Plinth::Cluster::ROOT;
my $client = "$Plinth::Cluster::BUILD/plinth-chaos";
plan skip_all => "no $client (make bench-tools)" unless -x $client;

my $seconds = $ENV{CHAOS_SECONDS} // 30;
my $seed = $ENV{CHAOS_SEED} // (time % 1000000);
my $keys = $ENV{CHAOS_KEYS} // 8;
my $clients = $ENV{CHAOS_CLIENTS} // 6;
my $gateways = $ENV{CHAOS_GATEWAYS} // 2;
my $RF = 3;

# ---------------------------------------------------------------- the checker on its own
# (it must see what it is there to see: these histories are made up)
{
    my @h = (
        # client op key s e status cc value detail
        [0, 'PUT', 'a', 1, 2, 200, 0, 'A1', ''],
        [1, 'GET', 'a', 3, 4, 200, 0, 'A1', ''],        # fine
        [0, 'PUT', 'a', 5, 6, 200, 0, 'A2', ''],
        [1, 'GET', 'a', 7, 8, 200, 0, 'A1', ''],        # stale: A2 acked at 6
        [1, 'GET', 'a', 5.5, 8, 200, 0, 'A1', ''],      # fine: overlaps A2
        [2, 'PUT', 'a', 9, 10, 503, 0, 'A3', ''],       # uncertain
        [1, 'GET', 'a', 30, 31, 200, 0, 'A3', ''],      # fine: A3 may have won
        [1, 'GET', 'a', 32, 33, 200, 0, 'A2', ''],      # fine: ... or not
        [1, 'GET', 'a', 34, 35, 404, 0, '-', ''],       # lost
        [1, 'GET', 'a', 36, 37, 200, 0, '!', 'hash'],   # torn
        [1, 'GET', 'a', 38, 39, 200, 0, 'Z9', ''],      # never written
        [1, 'GET', 'a', 40, 41, 503, 0, '?', ''],       # no observation
        [0, 'DEL', 'a', 42, 43, 0, 28, '-', ''],        # uncertain delete
        [1, 'GET', 'a', 44, 45, 404, 0, '-', ''],       # fine
        [1, 'GET', 'a', 46, 47, 200, 0, 'A2', ''],      # fine
        [0, 'PUT', 'a', 48, 49, 200, 0, 'A4', ''],
        [1, 'GET', 'a', 48.5, 60, 404, 0, '-', ''],     # fine: started before A4's ack
        [1, 'GET', 'a', 50, 51, 404, 0, '-', ''],       # fine: the DEL may land late
        [1, 'GET', 'a', 52, 53, 200, 0, 'A5', ''],      # torn: A5 begins at 54
        [0, 'PUT', 'a', 54, 55, 200, 0, 'A5', ''],
        [1, 'GET', 'b', 1, 2, 404, 0, '-', ''],         # fine: never written
        [0, 'PUT', 'c', 1, 2, 200, 0, 'C1', ''],
        [1, 'GET', 'c', 3, 4, 404, 0, '-', ''],         # lost
        [0, 'DEL', 'c', 5, 6, 204, 0, '-', ''],
        [1, 'GET', 'c', 7, 8, 200, 0, 'C1', ''],        # stale: deleted at 6
    );
    my @ops = map { my %o; @o{qw(client op key s e status cc value detail md5)} = (@$_, $_->[1] eq 'PUT' ? "md5$_->[7]" : '-'); \%o } @h;
    my $r = Plinth::Chaos::check(\@ops);
    is_deeply([@$r{qw(stale lost torn get_errors acked_puts)}], [2, 2, 3, 1, 5],
        'the checker on a made-up history: 2 stale, 2 lost, 3 torn, 1 failed GET, '
        . '5 acknowledged PUTs') or diag explain $r;
    # the database as a witness: A3 (503) never committed, the uncertain
    # DELETE of a left no marker
    $r = Plinth::Chaos::check(\@ops, witness => {
        put => { map { ("md5$_" => 1) } qw(A1 A2 A4 A5 C1) },
        markers => { c => 1 } });
    is_deeply([@$r{qw(stale lost torn phantom failed)}], [2, 5, 3, 1, 2],
        'with the witness: the read of A3 is a phantom; the DELETE failed, so the '
        . 'three 404s it explained are lost') or diag explain $r;
    $r = Plinth::Chaos::check(\@ops, witness => {
        put => { map { ("md5$_" => 1) } qw(A1 A2 A3 A4 A5 C1) }, markers => { a => 1 } });
    is_deeply([@$r{qw(stale lost torn phantom failed)}], [2, 3, 3, 0, 0],
        '... A3 committed, one marker of a beyond the acknowledged: both stay uncertain; '
        . 'c lacks the marker of its acknowledged DELETE') or diag explain $r;
}

# ---------------------------------------------------------------- the cluster

cluster_options(
    nodes => 4,
    rf => $RF,
    w => 2,
    # PostgreSQL as in production (fsync, synchronous_commit on): with the
    # harness's fast settings an immediate stop may lose acknowledged
    # commits by design of synchronous_commit=off
    # (CHAOS_PG_FAST=1 runs it with them, to see the checker find that)
    pg_fast => $ENV{CHAOS_PG_FAST} ? 1 : 0,
    gateways => $gateways,
    components => [qw(pg nodes nginx repaird)],
    repaird_opts => {
        health_interval => '300ms',
        probe_timeout   => '500ms',
        offline_after   => '3s',
        lock_retry      => '500ms',
        repair_interval => '2s',
        repair_rate     => 0,
        scrub_interval  => 0,
        # no version row may go before the check reads them (the witness)
        gc_interval     => 0,
        http_timeout    => '20s',
    },
);
@Plinth::Test::DEFAULT_NO_ERROR_LOG = ();
my $c = cluster();
my $k = $c->credentials or BAIL_OUT('no credentials');
my $tmp = tempdir('plinth-t96-XXXXXX', DIR => '/tmp', CLEANUP => 1);
my $history = "$tmp/history.tsv";

# the gateways (the harness starts gateways 2.. in gwK/ beside the first,
# and a load balancer the checker does not use: clients talk to each
# gateway directly, so a read may go to another gateway than its write)
my @endpoints = map { $c->gateway_endpoint($_) } 1 .. $gateways;
my @gateway_names = map { $c->gateway_name($_) } 1 .. $gateways;

my @base = ($client, (map { ('--endpoint', $_) } @endpoints),
    '--access-key', $k->{access_key},
    '--secret-key', $k->{secret_key}, '--region', $k->{region}, '--bucket', 'chaos',
    '--keys', $keys, '--history', $history);

is(s3_request(PUT => '/chaos')->{status}, 200, 'bucket chaos');
note("seed $seed, $seconds s of faults, $keys keys, $clients clients, "
    . scalar(@endpoints) . " gateways (@endpoints)");

# ---------------------------------------------------------------- load and faults

my $pid = fork // die "fork: $!";
if ($pid == 0) {
    open STDOUT, '>', "$tmp/client.json" or POSIX::_exit(2);
    open STDERR, '>', "$tmp/client.err" or POSIX::_exit(2);
    { no warnings 'exec';
      exec @base, '--clients', $clients, '--duration', $seconds + 60,
          '--ops', 1000000,
          '--op-timeout', 15, '--seed', $seed; }
    POSIX::_exit(127);
}

# the clients stop with this test, whatever happens to it
END { if ($pid) { kill 'KILL', $pid; waitpid($pid, 0) } }

srand($seed);
my $nem = Plinth::Chaos::Nemesis->new(cluster => $c, seed => $seed,
    gateways => \@gateway_names,
    log => sub { note(sprintf '%6.1fs %s', time - $^T, $_[0]) });
my $t_end = time + $seconds;
my $nem_err;
sleep 1;
# (past the end, at most 30 s more, until every kind of fault happened once)
while (time < $t_end || (keys(%{ $nem->counts }) < 4 && time < $t_end + 30)) {
    unless (eval { $nem->step; 1 }) { $nem_err = $@; last }
    sleep 0.5 + rand(1.5) if time < $t_end;
}
eval { $nem->heal; 1 } or $nem_err .= "heal: $@";
ok(!$nem_err, 'the nemesis ran and everything was started again') or diag $nem_err;
# the clients go on through the recovery, then stop (SIGUSR1)
sleep 5;
kill 'USR1', $pid;
my $counts = $nem->counts;
note('faults: ' . join(', ', map { "$_ $counts->{$_}" } sort keys %$counts));
if ($seconds >= 20) {
    is(scalar(grep { $counts->{$_} } qw(kill_node stop_node kill_worker restart_pg)), 4,
        'every kind of fault happened');
}

my $deadline = time + 60;
my $done = 0;
while (time < $deadline) {
    $done = waitpid($pid, POSIX::WNOHANG());
    last if $done == $pid;
    sleep 0.2;
}
if ($done != $pid) {
    kill 'KILL', $pid;
    waitpid($pid, 0);
    fail('the clients ended in time');
}
$pid = 0;
if ($gateways >= 2) {
    open my $al, '<', $c->gateway_dir(2) . '/logs/access.log';
    my $n = 0;
    $n++ while $al && <$al>;
    cmp_ok($n, '>', 100, "the second gateway served its share ($n requests logged)");
}
my $cj = eval { JSON::PP::decode_json(`cat $tmp/client.json`) };
ok($cj, 'the clients printed their figures') or diag `cat $tmp/client.err`;

# ---------------------------------------------------------------- repair

# every key's current version: [key, deleted, blob, [nodes]]
sub current {
    return map { [$_->[0], $_->[1], $_->[2], [grep { length } split /,/, $_->[3] // '']] }
        $c->psql("SELECT o.key, o.deleted, replace(v.blob_id::text, '-', ''), "
        . "array_to_string(v.nodes, ',') FROM objects o JOIN versions v USING (version_id) "
        . "JOIN buckets b ON b.bucket_id = o.bucket_id WHERE b.name = 'chaos' ORDER BY o.key");
}
sub verified_on {
    my ($node, $blob) = @_;
    my $r = $c->node_request($node, GET => "/blobs/$blob/verify", { timeout => 10 });
    return $r->{status} == 200;
}
# keys whose current version lacks RF distinct verified replicas
sub under_replicated {
    my @bad;
    for my $cur (current()) {
        next if $cur->[1] eq 't';
        my %n = map { $_ => 1 } @{ $cur->[3] };
        my $good = grep { verified_on($_, $cur->[2]) } keys %n;
        push @bad, "$cur->[0]: blob $cur->[2] on [@{ $cur->[3] }], $good verified"
            if $good < $RF;
    }
    return @bad;
}

my $t_heal = time;
my @under = eval { under_replicated() };
my $under_at_heal = $@ ? 'unknown' : scalar @under;
note("under-replicated when the faults stopped: $under_at_heal");
my $repair_deadline = time + 120;
while (1) {
    @under = eval { under_replicated() };
    @under = ("psql: $@") if $@;
    last if !@under || time > $repair_deadline;
    sleep 1;
}
my $n_current = grep { $_->[1] ne 't' } current();
is(scalar @under, 0, sprintf('after repair (%.1fs): every current version (%d) has '
    . '%d verified replicas on distinct nodes', time - $t_heal, $n_current, $RF))
    or diag join "\n", @under;

# ---------------------------------------------------------------- final reads and the check

# the gateway answers again (its PostgreSQL pool reconnects with a backoff)
my $probe = eval { wait_for(sub { my $st = s3_request(GET => '/chaos/k000', timeout => 5)->{status};
    $st == 200 || $st == 404 }, 60, 'the gateway to answer') };
ok($probe, 'the gateway answers after the faults') or diag $@;
for my $ep (@endpoints[1 .. $#endpoints]) {
    my $ok = eval { wait_for(sub { my $r = HTTP::Tiny->new(timeout => 5)->get("$ep/health");
        $r->{status} == 200 }, 60, "$ep/health") };
    ok($ok, "$ep answers /health after the faults") or diag $@;
}
my ($rc, $out) = Plinth::Cluster::run_command([@base, '--final', '--op-timeout', 15,
    '--duration', 60], timeout => 120, merge => 1);
is($rc, 0, 'final reads of every key') or diag $out;
my $fj = eval { JSON::PP::decode_json((split /\n/, $out)[-1]) };
is($fj && $fj->{get_err} + $fj->{get_bad}, 0, "every final read answered ($out)");

# the database as a witness of the writes without an answer (garbage
# collection was off: every version row is still there)
my %wit = (put => {}, markers => {});
for my $v ($c->psql("SELECT v.key, v.etag, v.committed_at IS NOT NULL, v.delete_marker "
        . "FROM versions v JOIN buckets b ON b.bucket_id = v.bucket_id WHERE b.name = 'chaos'")) {
    my ($key, $etag, $committed, $marker) = @$v;
    next unless $committed eq 't';
    if ($marker eq 't') {
        $wit{markers}{$key}++;
    } elsif (defined $etag) {
        (my $md5 = lc $etag) =~ tr/"//d;
        $wit{put}{$md5} = 1;
    }
}

my $rm = $c->repaird_metrics(1) || {};
my $replicated = $rm->{'plinth_repair_operations_total{kind="replicate"}'} // 'unknown';

my $ops = Plinth::Chaos::parse_history($history);
my $r = Plinth::Chaos::check($ops, witness => \%wit);
my $summary = sprintf 'chaos: %d s, seed %s: %d operations, %d acknowledged writes '
    . '(%d of %d PUTs, %d of %d deletes; %d uncertain, %d of them failed by the '
    . 'database), %d GETs (%d bodies, %d absent, %d failed); '
    . 'lost %d, stale %d, torn %d, phantom %d; under-replicated %s when the faults '
    . 'stopped, %d after repair (repaird copied %s replicas during the run); '
    . '%d of %d GETs could have seen a lost write; faults: %s',
    $seconds, $seed, $r->{ops}, $r->{acked_writes}, $r->{acked_puts}, $r->{puts},
    $r->{acked_writes} - $r->{acked_puts}, $r->{deletes},
    $r->{uncertain}, $r->{failed}, $r->{gets}, $r->{get_values}, $r->{get_404}, $r->{get_errors},
    $r->{lost}, $r->{stale}, $r->{torn}, $r->{phantom}, $under_at_heal, scalar @under, $replicated,
    $r->{lost_checkable}, $r->{gets},
    join(', ', map { "$_ $counts->{$_}" } sort keys %$counts);
diag($summary);
diag('answers: ' . join('; ', map { my $op = $_; "$op " . join(', ', map {
    "$_ x$r->{status}{$op}{$_}" } sort keys %{ $r->{status}{$op} }) } sort keys %{ $r->{status} }));
diag('failures: ' . join('; ', map { "$_ x$r->{failures}{$_}" }
    sort { $r->{failures}{$b} <=> $r->{failures}{$a} } keys %{ $r->{failures} || {} }));
if (my @u = @{ $r->{unresolved} }) {
    diag(scalar(@u) . ' writes without an acknowledgement that may have taken effect:');
    diag("  $_") for @u[0 .. ($#u < 9 ? $#u : 9)];
}
if (@{ $r->{bad} }) {
    my @b = @{ $r->{bad} };
    diag(scalar(@b) . " offending operations:\n" . join("\n", @b[0 .. ($#b < 49 ? $#b : 49)]));
}
if ($ENV{CHAOS_KEEP_HISTORY}) {
    system('cp', $history, $ENV{CHAOS_KEEP_HISTORY});
    diag("history kept in $ENV{CHAOS_KEEP_HISTORY}");
}
cmp_ok($r->{ops}, '>=', 50, "operations ran ($r->{ops})");
cmp_ok($r->{acked_puts}, '>', 0, "PUTs were acknowledged ($r->{acked_puts})");
cmp_ok($r->{get_values}, '>', 0, "GETs returned bodies ($r->{get_values})");
is($r->{lost}, 0, 'no acknowledged write lost');
is($r->{stale}, 0, 'no stale read');
is($r->{torn}, 0, 'no torn or never-written body read');
is($r->{phantom}, 0, 'no body of a PUT that never committed read');

done_testing();
