package Plinth::Chaos;

# The crash-consistency checker: a nemesis for a Plinth::Cluster, and the
# check of an operation history written by build/plinth-chaos (bench/chaos.c,
# which describes the history format and the self-describing bodies).
# t/96-chaos.t runs both (make test: a short run; make chaos: CHAOS_SECONDS).
#
# ---------------------------------------------------------------- the rules
#
# Each operation has an interval [s, e]: s taken before the request was
# handed to libcurl, e after libcurl reported it done, so the real interval
# lies inside it. Per key, the writes are the PUTs (value: their body's id)
# and the DELETEs (value: absent, "-"); before the first one the key is
# absent (an initial write with s = e = -inf, acknowledged).
#
# - A write is *acknowledged* when its answer was 200 (PUT) or 204
#   (DELETE). Any other outcome (5xx, timeout, connection cut, no answer
#   before the client gave up) is *uncertain*: it may or may not have
#   taken effect, and may take effect at any later time (the gateway can
#   commit after the client hung up), so its effective end is +inf.
# - The database as a witness (check(..., witness => ...), read after the
#   run with garbage collection off, so no version row has been removed):
#   an uncertain PUT whose body (by its MD5, the ETag) is in no version row
#   that was ever committed (committed_at set) never took effect: it is
#   *failed*, in no admissible set, and a GET returning it is a *phantom*
#   read. Uncertain DELETEs of a key are failed when the key has exactly as
#   many committed delete markers as acknowledged DELETEs (every marker is
#   accounted for); with more, which uncertain DELETE took effect is
#   unknown and they all stay uncertain; with fewer, an acknowledged DELETE
#   left no marker (reported as lost).
# - Write x *supersedes* write w when x is acknowledged and started after
#   w's effective end (s_x > e_w): x is certainly ordered after w, and w can
#   never again be the key's value once x is visible. Concurrent writes
#   (overlapping intervals) do not supersede each other: either may win
#   (last-writer-wins by the gateway's timestamp).
# - A GET g may return the value of write w (its *admissible set*) iff
#     (a) w started before g ended (s_w < e_g), and
#     (b) no write x supersedes w with x acknowledged before g started
#         (e_x < s_g).
#   "Absent" (404) is admissible iff the initial write or some DELETE is.
#   So an acknowledged PUT P must be returned by every GET that starts
#   after P's acknowledgement, unless a write concurrent with P or started
#   after P's acknowledgement (acknowledged or not) may have replaced it.
# - Verdicts on a GET that returned something outside its admissible set:
#     torn  - a body that is not a whole body of this key (the client's
#             byte check: header, length, FNV-1a hash, the payload
#             generated from the id), or the id of no PUT of this key in
#             the history, or of a PUT that started only after the GET
#             ended (never written when it was read);
#     stale - the body of a PUT superseded before the GET started;
#     lost  - 404 where only PUTs were admissible (an acknowledged PUT
#             with no DELETE that could explain its absence).
#     phantom - the body of a PUT the database says never committed.
#   A GET that failed (5xx, timeout) observed nothing and is only counted.
# - The final state: after the nemesis stops and repair has run, one GET
#   of every key (the same rules; they start after every other operation
#   ended, so only the writes not superseded remain admissible) must
#   succeed, and every key's current version must have RF replicas, each
#   on a distinct live node that verifies it (GET /blobs/<id>/verify: the
#   data node reads and checks every block checksum).

use strict;
use warnings;

use Carp qw(croak);
use POSIX ();
use Time::HiRes qw(sleep time);
use Plinth::Cluster;

my $INF = 9**9**9;

# ---------------------------------------------------------------- history

# parse_history($file) -> [ {client, op, key, s, e, status, cc, value, detail} ]
sub parse_history {
    my ($file) = @_;
    open my $fh, '<', $file or croak "$file: $!";
    my @ops;
    while (my $l = <$fh>) {
        chomp $l;
        my @f = split /\t/, $l, -1;
        croak "$file line $.: not a history line: $l" unless @f == 10;
        my %o;
        @o{qw(client op key s e status cc value detail md5)} = @f;
        next if $o{op} eq 'BUCKET';
        push @ops, \%o;
    }
    return \@ops;
}

sub _acked {
    my ($o) = @_;
    return $o->{op} eq 'PUT' ? $o->{status} == 200
         : $o->{op} eq 'DEL' ? $o->{status} == 204 : 0;
}

# index of the last element of sorted @$a with $f->(elem) < $x, or -1
sub _last_below {
    my ($a, $f, $x) = @_;
    my ($lo, $hi) = (0, scalar @$a);
    while ($lo < $hi) {
        my $mid = ($lo + $hi) >> 1;
        if ($f->($a->[$mid]) < $x) { $lo = $mid + 1 } else { $hi = $mid }
    }
    return $lo - 1;
}

sub _fmt {
    my ($o) = @_;
    return sprintf '%s %s [%.6f, %.6f] client %s status %s value %s%s',
        $o->{op}, $o->{key}, $o->{s}, $o->{e}, $o->{client}, $o->{status},
        $o->{value}, length $o->{detail} ? " ($o->{detail})" : '';
}

# check(\@ops) -> { ops, puts, acked_puts, acked_writes, deletes, gets,
#                   get_values, get_404, get_errors, lost, stale, torn,
#                   phantom, uncertain (writes), failed (of them, by the
#                   witness), lost_checkable (GETs where absence was not
#                   admissible), unresolved => [ uncertain writes the
#                   witness could not call failed ],
#                   bad => [ "verdict: operation; why" ],
#                   status => { op => { status or curl<code> => count } } }
#
# witness (optional) => { put => { md5 => 1 if committed }, markers => { key
# => committed delete markers } }: resolves uncertain writes (see the rules).
sub check {
    my ($ops, %opt) = @_;
    my $wit = $opt{witness};
    my %r = (ops => scalar @$ops, puts => 0, acked_puts => 0, deletes => 0,
        acked_writes => 0, gets => 0, get_values => 0, get_404 => 0,
        get_errors => 0, lost_checkable => 0, lost => 0, phantom => 0,
        uncertain => 0, failed => 0, stale => 0, torn => 0, bad => [], unresolved => []);
    my %by_key;
    push @{ $by_key{ $_->{key} } }, $_ for @$ops;
    # answers by operation: HTTP status, or curl error code when none
    $r{status}{ $_->{op} }{ $_->{status} ? $_->{status} : "curl$_->{cc}" }++ for @$ops;
    # failures by operation, status and S3 error (or curl's message)
    for (grep { $_->{status} != 200 && $_->{status} != 204 && $_->{status} != 404 } @$ops) {
        (my $why = $_->{detail}) =~ s/\s+\(.*//;
        $r{failures}{"$_->{op} $_->{status} $why"}++;
    }
    for my $key (sort keys %by_key) {
        my $list = $by_key{$key};
        my (@acked, @dels, %put);
        # the initial state: absent, acknowledged, at -inf
        push @dels, { s => -$INF, e_eff => -$INF, initial => 1 };
        my ($n_del_acked, $n_del_unc) = (0, 0);
        for my $o (grep { $_->{op} eq 'DEL' } @$list) {
            _acked($o) ? $n_del_acked++ : $n_del_unc++;
        }
        my $dels_failed = 0;
        if ($wit && $n_del_unc) {
            my $m = $wit->{markers}{$key} // 0;
            $dels_failed = 1 if $m == $n_del_acked;
        }
        if ($wit && ($wit->{markers}{$key} // 0) < $n_del_acked) {
            $r{lost}++;
            push @{ $r{bad} }, "lost: key $key: $n_del_acked acknowledged DELETEs, "
                . ($wit->{markers}{$key} // 0) . ' committed delete markers';
        }
        for my $o (@$list) {
            next unless $o->{op} eq 'PUT' || $o->{op} eq 'DEL';
            my $ack = _acked($o);
            $o->{failed} = 0;
            if (!$ack) {
                $r{uncertain}++;
                $o->{failed} = $o->{op} eq 'DEL' ? $dels_failed
                    : ($wit && !$wit->{put}{ $o->{md5} }) ? 1 : 0;
                $r{failed}++ if $o->{failed};
                push @{ $r{unresolved} }, _fmt($o) . ($o->{op} eq 'PUT' ? " md5 $o->{md5}" : '')
                    if !$o->{failed};
            }
            $o->{e_eff} = $ack ? $o->{e} : $INF;
            push @acked, $o if $ack;
            $r{acked_writes}++ if $ack;
            if ($o->{op} eq 'PUT') {
                $r{puts}++;
                $r{acked_puts}++ if $ack;
                croak "two PUTs with body id $o->{value}" if $put{ $o->{value} };
                $put{ $o->{value} } = $o;
            } else {
                $r{deletes}++;
                push @dels, $o unless $o->{failed};
            }
        }
        # acknowledged writes by end; prefix maximum of their starts
        @acked = sort { $a->{e} <=> $b->{e} } @acked;
        my @pmax;
        my $m = -$INF;
        for (@acked) { $m = $_->{s} if $_->{s} > $m; push @pmax, $m }
        # deletes (and the initial state) by start; prefix max of e_eff
        @dels = sort { $a->{s} <=> $b->{s} } @dels;
        my @dmax;
        $m = -$INF;
        for (@dels) { $m = $_->{e_eff} if $_->{e_eff} > $m; push @dmax, $m }

        for my $g (grep { $_->{op} eq 'GET' } @$list) {
            $r{gets}++;
            # M: the latest start of a write acknowledged before g started;
            # every write whose effective end is before M is superseded
            my $i = _last_below(\@acked, sub { $_[0]{e} }, $g->{s});
            my $M = $i >= 0 ? $pmax[$i] : -$INF;
            my $v = $g->{value};
            # could this GET have shown a lost write? (absence not admissible)
            my $jj = _last_below(\@dels, sub { $_[0]{s} }, $g->{e});
            $r{lost_checkable}++ unless $jj >= 0 && $dmax[$jj] >= $M;
            if ($v eq '?') {
                $r{get_errors}++;
                next;
            }
            if ($v eq '!') {
                $r{torn}++;
                push @{ $r{bad} }, "torn: " . _fmt($g);
                next;
            }
            if ($v eq '-') {
                $r{get_404}++;
                my $j = _last_below(\@dels, sub { $_[0]{s} }, $g->{e});
                next if $j >= 0 && $dmax[$j] >= $M;
                $r{lost}++;
                my ($last) = grep { $_->{s} == $M } @acked;
                push @{ $r{bad} }, "lost: " . _fmt($g) . "; absent, but "
                    . ($last ? _fmt($last) : 'a write') . ' was acknowledged '
                    . 'before it began and no DELETE may have followed';
                next;
            }
            $r{get_values}++;
            my $w = $put{$v};
            if (!$w) {
                $r{torn}++;
                push @{ $r{bad} }, "torn: " . _fmt($g) . '; no PUT of this key wrote that body';
                next;
            }
            if ($w->{failed}) {
                $r{phantom}++;
                push @{ $r{bad} }, "phantom: " . _fmt($g) . '; its PUT never committed: '
                    . _fmt($w);
                next;
            }
            if (!($w->{s} < $g->{e})) {
                $r{torn}++;
                push @{ $r{bad} }, "torn: " . _fmt($g) . '; read before its PUT began: '
                    . _fmt($w);
                next;
            }
            next unless $M > $w->{e_eff};
            $r{stale}++;
            my ($by) = grep { $_->{s} == $M } @acked;
            push @{ $r{bad} }, "stale: " . _fmt($g) . '; its PUT ' . _fmt($w)
                . ' was superseded before the GET began by ' . _fmt($by);
        }
    }
    return \%r;
}

# ---------------------------------------------------------------- nemesis
#
# Nemesis->new(cluster => $c, seed => N, log => sub {..},
#              gateways => [pid-file names of nginx masters, default 'nginx'])
# step(): one fault and its recovery (1-7 s): kill -9 of a data node then
# its restart 1.5-6.5 s later, SIGSTOP of a data node then SIGCONT 2-6 s
# later, kill -9 of one nginx
# worker (the master starts another), PostgreSQL stopped (fast, or
# immediate: SIGQUIT, crash recovery at the next start) and started.
# Every process is found by the pid the harness recorded, never by name.
# heal(): everything running and not stopped again.

package Plinth::Chaos::Nemesis;

use Time::HiRes qw(sleep time);

sub new {
    my ($class, %o) = @_;
    my $self = bless { seed => 1, log => sub {}, %o, counts => {}, stopped => {},
        pg_mode => 0, bag => [] }, $class;
    $self->{rng} = $self->{seed} || 1;
    return $self;
}

sub _rand {    # deterministic per seed: [0, 1)
    my ($self) = @_;
    $self->{rng} = ($self->{rng} * 1103515245 + 12345) % 2147483648;
    return $self->{rng} / 2147483648;
}

sub counts { $_[0]{counts} }

sub _node {
    my ($self) = @_;
    my $n = $self->{cluster}->nodes;
    return 1 + int($self->_rand * $n);
}

sub step {
    my ($self) = @_;
    my $c = $self->{cluster};
    # every kind once per round, in a shuffled order
    unless (@{ $self->{bag} }) {
        my @k = qw(kill_node stop_node kill_worker restart_pg);
        for (my $i = $#k; $i > 0; $i--) {
            my $j = int($self->_rand * ($i + 1));
            @k[$i, $j] = @k[$j, $i];
        }
        $self->{bag} = \@k;
    }
    my $kind = shift @{ $self->{bag} };
    my $what;
    if ($kind eq 'kill_node') {
        my $i = $self->_node;
        my $pid = $c->pid_of("node$i");
        $c->kill_node($i);
        $what = "kill -9 data node $i (pid $pid)";
        # sometimes longer than repaird's offline_after (3 s in t/96)
        my $d = 1.5 + 5 * $self->_rand;
        sleep $d;
        $self->_start_node($i);
        $what .= sprintf ', down %.1fs', $d;
        $what .= ', restarted';
    } elsif ($kind eq 'stop_node') {
        my $i = $self->_node;
        my $pid = $c->pid_of("node$i");
        if ($pid && Plinth::Cluster::pid_alive($pid)) {
            kill 'STOP', $pid;
            $self->{stopped}{$pid} = 1;
            my $d = 2 + 4 * $self->_rand;
            sleep $d;
            kill 'CONT', $pid;
            delete $self->{stopped}{$pid};
            $what = sprintf 'SIGSTOP data node %d (pid %d) for %.1fs, SIGCONT', $i, $pid, $d;
        } else {
            $what = "data node $i not running";
        }
    } elsif ($kind eq 'kill_worker') {
        my @g = @{ $self->{gateways} || ['nginx'] };
        my $master = $c->pid_of($g[int($self->_rand * @g)]);
        my @w = $master ? Plinth::Cluster::children_of($master) : ();
        if (@w) {
            my $pid = $w[int($self->_rand * @w)];
            kill 'KILL', $pid;
            $what = "kill -9 nginx worker $pid (master $master)";
        } else {
            $what = 'no nginx worker found';
        }
        sleep 1 + $self->_rand;
    } else {
        my $mode = $self->{pg_mode}++ % 2 ? 'immediate' : 'fast';
        if ($mode eq 'fast') {
            $c->stop_pg;            # SIGINT: PostgreSQL's fast shutdown
        } else {
            my $pid = $c->pid_of('pg');
            if ($pid && Plinth::Cluster::pid_alive($pid)) {
                kill 'QUIT', $pid;  # immediate shutdown: crash recovery next
                my $deadline = time + 15;
                sleep 0.05 while time < $deadline && Plinth::Cluster::pid_alive($pid);
            }
            $c->stop_pg;            # clears the pid file (KILL if still there)
        }
        sleep 0.5 + $self->_rand;
        $self->_retry(sub { $c->start_pg });
        $what = "PostgreSQL stopped ($mode) and started";
    }
    $self->{counts}{$kind}++;
    $self->{log}->($what);
    return $what;
}

sub _retry {
    my ($self, $f) = @_;
    my $err;
    for (1 .. 5) {
        return 1 if eval { $f->(); 1 };
        $err = $@;
        $self->{log}->("retrying: $err");
        sleep 1;
    }
    die $err;
}

sub _start_node {
    my ($self, $i) = @_;
    $self->_retry(sub { $self->{cluster}->start_node($i) });
}

sub heal {
    my ($self) = @_;
    my $c = $self->{cluster};
    kill 'CONT', $_ for keys %{ $self->{stopped} };
    $self->{stopped} = {};
    $self->_retry(sub { $c->start_pg });
    $self->_start_node($_) for 1 .. $c->nodes;
    $self->_retry(sub { $c->start_nginx });
}

1;
