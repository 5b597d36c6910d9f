# The PostgreSQL pool on the real cluster: PostgreSQL going away and coming
# back (503 ServiceUnavailable at once, never a hang; recovery without
# restarting nginx, with the data stored before), queries in flight when it
# goes, clients that disconnect while their query runs or waits, and many
# concurrent requests over a pool of 4.
#
# Blocks that need a query to be "running" for a while hold a lock from a
# background psql (lock_table below): a gateway query on that table waits,
# deterministically, until unlock_tables.
use strict;
use warnings;

use lib 't/lib';
use Plinth::Test;
use Plinth::Cluster;

use Errno qw(EAGAIN EINTR EWOULDBLOCK);
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(sleep time);

our $LOCKER_APP = 'plinth_test_locker';
our %LOCKERS;           # pid => table, background psql processes we started
our $NGINX_PID;         # nginx's master before PostgreSQL went away

# ------------------------------------------------------------------ helpers

sub template_text {
    my $f = "$Plinth::Cluster::ROOT/conf/nginx.conf";
    open my $fh, '<', $f or die "$f: $!";
    local $/;
    return scalar <$fh>;
}

# template_with(from => to, ...): conf/nginx.conf with whole lines replaced.
# `from` is a directive (the line that starts with it, the rest of the line
# included) or a qr//; each must match exactly once.
sub template_with {
    my @subs = @_;
    my $t = template_text();
    while (my ($from, $to) = splice @subs, 0, 2) {
        my $re = ref $from ? $from : qr/^[ \t]*\Q$from\E(?=[\s;{])[^\n]*$/m;
        my $n = () = $t =~ /$re/g;
        die "template_with: '$from' matches $n times" unless $n == 1;
        $t =~ s/$re/$to/;
    }
    return $t;
}

# Line number (in the rendered file) of the first line that starts with
# $directive (after blanks), for matching nginx's "in FILE:LINE".
sub conf_line {
    my ($text, $directive) = @_;
    my @l = split /\n/, cluster()->render(template_text => $text);
    for my $i (0 .. $#l) {
        return $i + 1 if $l[$i] =~ /^\s*\Q$directive\E[\s;]/;
    }
    die "conf_line: no line starts with '$directive'";
}

# nginx -t on a configuration (template text, or a hashref of render
# overrides) must fail and say $re.
sub nginx_t_fails_like {
    my ($conf, $re, $name) = @_;
    my $c = cluster();
    my ($rc, $out) = ref $conf eq 'HASH' ? $c->nginx_t(%$conf)
        : $c->nginx_t(template_text => $conf);
    ok($rc != 0, "$name: nginx -t fails") or diag("nginx -t output:\n$out");
    like($out, $re, "$name: nginx -t says why") or diag("nginx -t output:\n$out");
}

sub nginx_t_ok {
    my ($conf, $name) = @_;
    my $c = cluster();
    my ($rc, $out) = ref $conf eq 'HASH' ? $c->nginx_t(%$conf)
        : $c->nginx_t(template_text => $conf);
    is($rc, 0, "$name: nginx -t accepts it") or diag("nginx -t output:\n$out");
}

sub write_file {
    my ($path, $text) = @_;
    open my $fh, '>', $path or die "$path: $!";
    print $fh $text;
    close $fh or die "$path: $!";
}

# wait_for(sub { ... }, $timeout, $what): poll until true (bounded).
sub wait_for {
    my ($cond, $timeout, $what) = @_;
    my $deadline = time + $timeout;
    while (1) {
        my $v = $cond->();
        return $v if $v;
        die "timed out after ${timeout}s waiting for $what\n" if time > $deadline;
        sleep 0.05;
    }
}

# --- requests on their own connections, in parallel

# http_start($method, $uri, body => .., headers => {..}, unsigned => 1):
# connect, send the whole request (Connection: close; signed with the admin
# key unless unsigned) and return a handle for http_wait.
sub http_start {
    my ($method, $uri, %o) = @_;
    my $c = cluster();
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $c->port, Proto => 'tcp', Timeout => 5)
        or die "connect to nginx: $!";
    binmode $s;
    my $body = $o{body} // '';
    my @h = (['Host', '127.0.0.1'], ['Connection', 'close']);
    push @h, [$_, $o{headers}{$_}] for sort keys %{ $o{headers} || {} };
    push @h, ['Content-Length', length $body]
        if length $body || $method eq 'PUT';
    # signed with the admin key (SigV4, as s3_request signs); unsigned => 1:
    # an anonymous request
    my $head = $o{unsigned}
        ? join('', map { "$_->[0]: $_->[1]\r\n" } @h)
        : sign_request($method, $uri, body => $body, headers => \@h,
            format => 'raw');
    my $req = "$method $uri HTTP/1.1\r\n$head\r\n$body";
    local $SIG{PIPE} = 'IGNORE';
    my $off = 0;
    while ($off < length $req) {
        my $n = syswrite($s, $req, length($req) - $off, $off);
        die "send $method $uri: $!" unless defined $n;
        $off += $n;
    }
    $s->blocking(0);
    return { sock => $s, method => $method, uri => $uri, t0 => time,
        buf => '' };
}

sub _parse_http {
    my ($h) = @_;
    my $buf = $h->{buf};
    my $i = index($buf, "\r\n\r\n");
    if ($i < 0) {
        $h->{error} //= 'no complete response header';
        return $h;
    }
    my ($status_line, @lines) = split /\r\n/, substr($buf, 0, $i);
    ($h->{status}) = $status_line =~ m{^HTTP/1\.\d (\d{3})};
    $h->{headers} = {};
    for (@lines) {
        $h->{headers}{ lc $1 } = $2 if /^([^:]+):\s*(.*)$/;
    }
    my $body = substr($buf, $i + 4);
    if (($h->{headers}{'transfer-encoding'} // '') =~ /chunked/i) {
        my $out = '';
        while ($body =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
            my $n = hex $1;
            last if $n == 0;
            $out .= substr($body, 0, $n, '');
            $body =~ s/^\r\n//;
        }
        $body = $out;
    }
    $h->{body} = $body;
    return $h;
}

# http_wait(\@handles, $timeout): read every answer to its end (the
# server closes); each handle gets status, headers, body, secs (time from
# its start to its end) or error.  Returns the handles.
sub http_wait {
    my ($hs, $timeout) = @_;
    my $deadline = time + $timeout;
    my %open = map { fileno($_->{sock}) => $_ } grep { $_->{sock} } @$hs;
    my $sel = IO::Select->new(map { $_->{sock} } values %open);
    while (%open) {
        my $left = $deadline - time;
        last if $left <= 0;
        for my $s ($sel->can_read($left)) {
            my $h = $open{ fileno $s };
            my $n = sysread($s, $h->{buf}, 65536, length $h->{buf});
            next if !defined $n && ($! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR);
            next if $n;
            $h->{read_error} = "$!" unless defined $n;
            $h->{secs} = time - $h->{t0};
            delete $open{ fileno $s };
            $sel->remove($s);
            close $s;
            delete $h->{sock};
            _parse_http($h);
        }
    }
    for my $h (values %open) {
        $sel->remove($h->{sock});
        close $h->{sock};
        delete $h->{sock};
        $h->{secs} = time - $h->{t0};
        $h->{error} = "no answer within ${timeout}s";
    }
    return @$hs;
}

sub http_one {
    my ($method, $uri, %o) = @_;
    my ($h) = http_wait([http_start($method, $uri, %o)], $o{timeout} // 10);
    return $h;
}

sub show {
    my ($h) = @_;
    return "$h->{method} $h->{uri}: "
        . ($h->{error} ? "error: $h->{error}" : "$h->{status} "
            . substr($h->{body} // '', 0, 300))
        . sprintf(" (%.2fs)", $h->{secs} // -1);
}

# --- a background psql holding a lock

sub _psql_argv {
    my $c = cluster();
    return ("$Plinth::Cluster::PG_BIN/psql", '-X', '-q', '-h', '127.0.0.1',
        '-p', $c->pg_port, '-U', 'plinth', '-d', 'plinth');
}

# lock_table($table): a background psql takes ACCESS EXCLUSIVE on $table
# (in an open transaction, for at most 60 s); returns once it holds it.
sub lock_table {
    my ($table) = @_;
    my $c = cluster();
    my @argv = (_psql_argv(),
        '-c', "SET client_connection_check_interval = '100ms'",
        '-c', 'BEGIN',
        '-c', "LOCK TABLE $table IN ACCESS EXCLUSIVE MODE",
        '-c', 'SELECT pg_sleep(60)');
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        POSIX::setsid();
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        $ENV{PGAPPNAME} = $LOCKER_APP;
        $ENV{PGCONNECT_TIMEOUT} = 5;
        { no warnings "exec"; exec { $argv[0] } @argv; }
        POSIX::_exit(127);
    }
    $LOCKERS{$pid} = $table;
    wait_for(sub {
        $c->psql("select count(*) from pg_locks l join pg_stat_activity a "
            . "on a.pid = l.pid where a.application_name = '$LOCKER_APP' "
            . "and l.granted and l.mode = 'AccessExclusiveLock' "
            . "and l.relation = '$table'::regclass")->[0][0] >= 1;
    }, 10, "the lock on $table");
    return $pid;
}

# Stop every locker we started (by pid), and end its session in the server.
sub unlock_tables {
    my $c = cluster();
    for my $pid (keys %LOCKERS) {
        kill 'TERM', $pid;
        my $deadline = time + 5;
        while (time < $deadline && waitpid($pid, POSIX::WNOHANG()) == 0) {
            sleep 0.02;
        }
        if (waitpid($pid, POSIX::WNOHANG()) == 0) {
            kill 'KILL', $pid;
            waitpid($pid, 0);
        }
        delete $LOCKERS{$pid};
    }
    return unless $c->alive('pg');
    $c->psql("select pg_terminate_backend(pid) from pg_stat_activity "
        . "where application_name = '$LOCKER_APP'");
    wait_for(sub {
        $c->psql("select count(*) from pg_stat_activity "
            . "where application_name = '$LOCKER_APP'")->[0][0] == 0;
    }, 10, 'the locker session to end');
}

# Gateway queries waiting for a lock (the locker's own session excluded).
sub lock_waiters {
    return cluster()->psql("select count(*) from pg_stat_activity "
        . "where datname = 'plinth' and wait_event_type = 'Lock' "
        . "and application_name <> '$LOCKER_APP'")->[0][0];
}

# Restart nginx on a template; the pool is ready once a request succeeded.
sub restart_with {
    my ($text, %o) = @_;
    my $c = cluster();
    $c->restart_nginx(template_text => $text, %o);
    wait_for(sub { (s3_request(GET => '/')->{status} // 0) == 200 }, 10,
        'the gateway to answer GET / with 200');
}

END {
    for my $pid (keys %LOCKERS) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
}

# 503 ServiceUnavailable as S3 XML, within $max seconds.
sub is_unavailable {
    my ($h, $max) = @_;
    my $what = show($h);
    is($h->{status}, 503, "503: $what");
    if ($h->{method} ne 'HEAD') {
        like($h->{body} // '', qr{^<\?xml version="1\.0" encoding="UTF-8"\?>\s*<Error><Code>ServiceUnavailable</Code><Message>[^<]+</Message><Resource>[^<]*</Resource><RequestId>[0-9A-F]{16}</RequestId></Error>\s*\z},
            "... an S3 ServiceUnavailable document");
        is($h->{headers}{'content-type'}, 'application/xml', '... application/xml');
    }
    like($h->{headers}{'x-amz-request-id'} // '', qr/^[0-9A-F]{16}$/, '... x-amz-request-id');
    ok(defined $h->{secs} && $h->{secs} < $max,
        sprintf("... at once: %.3fs < %ss", $h->{secs} // -1, $max));
}

# Until GET /pgbucket/before answers 200 again (each try bounded), at most
# $timeout seconds.  Returns (ok, seconds, tries, slowest try).
sub wait_recovered {
    my ($timeout) = @_;
    my $t0 = time;
    my ($tries, $slowest, $last) = (0, 0);
    while (time - $t0 < $timeout) {
        $last = http_one(GET => '/pgbucket/before', timeout => 5);
        $tries++;
        $slowest = $last->{secs} if ($last->{secs} // 0) > $slowest;
        return (1, time - $t0, $tries, $slowest, $last)
            if ($last->{status} // 0) == 200;
        sleep 0.1;
    }
    return (0, time - $t0, $tries, $slowest, $last);
}

run_tests();

__DATA__

=== TEST 1: data stored before the outage
--- setup
my $r = s3_request(PUT => '/pgbucket');
die "PUT /pgbucket: $r->{status}" unless $r->{status} == 200;
--- request eval
["PUT /pgbucket/before\nstored before the outage", "GET /pgbucket/before"]
--- error_code eval
[200, 200]
--- response_body_like eval
["", "^stored before the outage\\z"]
--- check
$main::NGINX_PID = $cluster->pid_of('nginx');
ok($main::NGINX_PID, "nginx runs (master $main::NGINX_PID)");



=== TEST 2: PostgreSQL stopped: every request is 503 ServiceUnavailable at once
--- setup
$cluster->stop_pg;
die 'PostgreSQL still runs' if $cluster->alive('pg');
--- check
# several rounds over about 3 s, so that requests meet the pool in every
# state: connections just broken, reconnecting, waiting for the next try
my $t0 = time;
my $round = 0;
while (time - $t0 < 3 || $round < 3) {
    $round++;
    for my $req (['GET', '/'], ['GET', '/pgbucket/before'],
                 ['HEAD', '/pgbucket/before'], ['HEAD', '/pgbucket'],
                 ['GET', '/pgbucket?list-type=2'], ['PUT', '/pgbucket/new', 'x'],
                 ['PUT', '/newbucket'], ['DELETE', '/pgbucket/before']) {
        my ($m, $u, $b) = @$req;
        is_unavailable(http_one($m, $u, body => $b, timeout => 5), 2);
    }
    sleep 0.3;
}
# and on one keep-alive connection: the connection stays usable
for (1 .. 3) {
    my $t = time;
    my $r = s3_request(GET => '/pgbucket/before', timeout => 5);
    is($r->{status}, 503, 'keep-alive connection: 503');
    like($r->{headers}{'retry-after'} // '', qr/^\d+$/, '... with Retry-After');
    ok(time - $t < 2, '... at once');
}
--- error_log eval
qr/no connection to postgresql|pg connection #\d+.* failed/
--- teardown
$cluster->start_pg;



=== TEST 3: PostgreSQL back: requests succeed again without restarting nginx, data intact
--- check
my ($ok, $secs, $tries, $slowest, $last) = wait_recovered(10);
ok($ok, sprintf('GET succeeds again after %.2fs (%d tries)', $secs, $tries))
    or diag(show($last));
ok($slowest < 2, sprintf('no try hung meanwhile (slowest %.2fs)', $slowest));
is($last->{body}, 'stored before the outage', 'the object stored before is there');
is($cluster->pid_of('nginx'), $main::NGINX_PID, 'nginx was not restarted');
# every connection of every worker serves again
for my $i (1 .. 24) {
    my $h = $i % 3 == 0 ? http_one(PUT => "/pgbucket/after$i", body => "after $i")
          : $i % 3 == 1 ? http_one(GET => '/pgbucket/before')
          :               http_one(GET => '/');
    is($h->{status}, 200, show($h));
}
my $list = s3_request(GET => '/pgbucket?list-type=2');
like($list->{body}, qr{<Key>after12</Key>.*<Key>before</Key>}s, 'the listing has old and new keys');



=== TEST 4: a query in flight whose connection is killed gets 503 at once
--- check
lock_table('buckets');
my $a = http_start(GET => '/');
wait_for(sub { lock_waiters() >= 1 }, 10, 'the gateway query to wait for the lock');
my $t0 = time;
# the server ends the gateway's session (what a PostgreSQL restart or a
# failover does to it); the lock stays held, so the query cannot finish
$cluster->psql("select pg_terminate_backend(pid) from pg_stat_activity "
    . "where datname = 'plinth' and wait_event_type = 'Lock' "
    . "and application_name <> '$main::LOCKER_APP'");
http_wait([$a], 8);
is($a->{status}, 503, 'the running query: ' . show($a));
like($a->{body} // '', qr{<Code>ServiceUnavailable</Code>}, '... ServiceUnavailable');
my $after = defined $a->{secs} ? $a->{t0} + $a->{secs} - $t0 : 99;
ok($after < 2, sprintf('... %.2fs after its session ended, not at the 10 s query timeout', $after));
unlock_tables();
my ($ok, $secs, $tries, $slowest, $last) = wait_recovered(10);
ok($ok, sprintf('the pool serves again after %.2fs', $secs)) or diag(show($last));
--- teardown
unlock_tables();



=== TEST 5: a query in flight when PostgreSQL stops: answered at once, never a hang
--- check
# PostgreSQL's fast shutdown ends the locker's session and the gateway's
# together: the query may fail (503) or, if the lock went first, finish
# (200); either way the answer comes at once and is a whole one
lock_table('buckets');
my $a = http_start(GET => '/');
wait_for(sub { lock_waiters() >= 1 }, 10, 'the gateway query to wait for the lock');
my $t0 = time;
$cluster->stop_pg;
my $stopped = time - $t0;
http_wait([$a], 8);
like($a->{status} // '', qr/^(200|503)$/, 'the running query: ' . show($a));
like($a->{body} // '', $a->{status} && $a->{status} == 200
    ? qr{</ListAllMyBucketsResult>\s*\z} : qr{<Code>ServiceUnavailable</Code>},
    '... a whole answer');
my $after = defined $a->{secs} ? $a->{t0} + $a->{secs} - $t0 : 99;
ok($after < 3,
    sprintf('... %.2fs after the stop began (PostgreSQL took %.2fs to stop), '
        . 'not at the 10 s query timeout', $after, $stopped));
is_unavailable(http_one(GET => '/pgbucket/before', timeout => 5), 2);
$cluster->start_pg;
unlock_tables();          # its psql exited when the server went away
my ($ok, $secs, $tries, $slowest, $last) = wait_recovered(10);
ok($ok, sprintf('recovered after %.2fs', $secs)) or diag(show($last));
--- teardown
$cluster->start_pg;
unlock_tables();



=== TEST 6: clients that disconnect while their query runs do not break the next requests
--- check
lock_table('buckets');
my @h = map { http_start(GET => '/') } 1 .. 3;
wait_for(sub { lock_waiters() >= 3 }, 10, 'three gateway queries to wait for the lock');
for my $h (@h) { close $h->{sock}; delete $h->{sock} }
sleep 0.3;
unlock_tables();
sleep 0.2;
# answers must not get mixed up: each request gets its own kind of answer
for my $i (1 .. 30) {
    my $k = $i % 3;
    my $h = $k == 0 ? http_one(GET => '/')
          : $k == 1 ? http_one(GET => '/pgbucket/before')
          :           http_one(GET => '/pgbucket?list-type=2&prefix=bef');
    is($h->{status}, 200, show($h));
    like($h->{body} // '', $k == 0 ? qr/^<\?xml[^>]*>\s*<ListAllMyBucketsResult /
        : $k == 1 ? qr/^stored before the outage\z/
        : qr{<ListBucketResult .*<Key>before</Key>.*<KeyCount>1</KeyCount>}s,
        '... its own answer');
}
--- teardown
unlock_tables();



=== TEST 7: pool of 1: a client gone while its query runs, another gone while queued
--- setup
my $t = template_with(
    worker_processes => 'worker_processes 1;',
    plinth_pg_pool_size => '    plinth_pg_pool_size 1;');
restart_with($t);
--- check
lock_table('buckets');
my $a = http_start(GET => '/');                        # runs, waits for the lock
wait_for(sub { lock_waiters() >= 1 }, 10, 'the gateway query to wait for the lock');
my $b = http_start(GET => '/pgbucket/before');         # queued behind it
sleep 0.3;
close $_->{sock} for $a, $b;
sleep 0.3;
unlock_tables();
# the one connection must come back to the pool, clean
for my $i (1 .. 10) {
    my $h = $i % 2 ? http_one(GET => '/pgbucket/before', timeout => 5)
                   : http_one(GET => '/', timeout => 5);
    is($h->{status}, 200, show($h));
    like($h->{body} // '', $i % 2 ? qr/^stored before the outage\z/
        : qr/<ListAllMyBucketsResult /, '... its own answer');
}
--- teardown
unlock_tables();
$cluster->restart_nginx;



=== TEST 8: 50 concurrent requests over separate connections, pool of 4: all succeed
--- check
my @h;
for my $i (1 .. 50) {
    push @h, $i % 2 ? http_start(PUT => "/pgbucket/c$i", body => "concurrent $i" x 10)
                    : http_start(GET => '/pgbucket/before');
}
my $t0 = time;
http_wait(\@h, 30);
my @bad = grep { ($_->{status} // 0) != 200 } @h;
is(scalar @bad, 0, sprintf('all 50 answered 200 (in %.2fs)', time - $t0))
    or diag(join "\n", map { show($_) } @bad);
is(scalar(grep { ($_->{body} // '') eq 'stored before the outage' }
    grep { $_->{method} eq 'GET' } @h), 25, 'every GET got the object');
my $bad = 0;
for my $i (grep { $_ % 2 } 1 .. 50) {
    my $r = s3_request(GET => "/pgbucket/c$i");
    $bad++ unless $r->{status} == 200 && $r->{body} eq "concurrent $i" x 10;
}
is($bad, 0, 'every PUT stored its own body');
my $l = s3_request(GET => '/pgbucket?list-type=2&prefix=c&max-keys=1000');
is(scalar(() = $l->{body} =~ /<Key>c\d+<\/Key>/g), 25, 'the listing has the 25 keys');



=== TEST 9: 200 concurrent requests: all succeed (they queue, none is refused)
--- check
my @h = map { http_start(GET => '/pgbucket/before') } 1 .. 200;
http_wait(\@h, 60);
my @bad = grep { ($_->{status} // 0) != 200 } @h;
is(scalar @bad, 0, 'all 200 answered 200')
    or diag(join "\n", map { show($_) } @bad[0 .. ($#bad < 9 ? $#bad : 9)]);



=== TEST 10: nginx started while PostgreSQL is down: 503 at once, then serves once it is up
--- setup
$cluster->stop_pg;
$cluster->restart_nginx;
--- check
for (1 .. 5) {
    is_unavailable(http_one(GET => '/pgbucket/before', timeout => 5), 2);
    sleep 0.2;
}
my $pid = $cluster->pid_of('nginx');
$cluster->start_pg;
my ($ok, $secs, $tries, $slowest, $last) = wait_recovered(10);
ok($ok, sprintf('serves after PostgreSQL started (%.2fs)', $secs)) or diag(show($last));
is($last->{body}, 'stored before the outage', '... the data stored before');
is($cluster->pid_of('nginx'), $pid, '... without a restart of nginx');
--- teardown
$cluster->start_pg;
