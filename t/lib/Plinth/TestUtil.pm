package Plinth::TestUtil;

# Helpers shared by tests that change the gateway's configuration or make
# PostgreSQL slow on purpose (t/50-pg.t, t/60-directives.t):
#   template_text, template_with(from => to, ...)   conf/nginx.conf, edited
#   conf_line, nginx_t_fails_like, nginx_t_ok        nginx -t checks
#   http_start / http_wait / http_one                requests on own sockets
#   lock_table / unlock_tables / lock_waiters        a background psql that
#                                                    holds a table lock
#   restart_with, wait_for, write_file, show
# Background psql processes are killed (by pid) when the test exits.

use strict;
use warnings;

use Exporter 'import';
use Errno qw(EAGAIN EINTR EWOULDBLOCK);
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Test::More ();
use Time::HiRes qw(sleep time);

use Plinth::Cluster;
use Plinth::Test ();

our @EXPORT = qw(template_text template_with conf_line nginx_t_fails_like nginx_t_ok write_file wait_for http_start http_wait http_one show lock_table unlock_tables lock_waiters restart_with);

our $LOCKER_APP = 'plinth_test_locker';
our %LOCKERS;           # pid => table, background psql processes we started

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
    my @l = split /\n/, Plinth::Test::cluster()->render(template_text => $text);
    for my $i (0 .. $#l) {
        return $i + 1 if $l[$i] =~ /^\s*\Q$directive\E[\s;]/;
    }
    die "conf_line: no line starts with '$directive'";
}

# nginx -t on a configuration (template text, or a hashref of render
# overrides) must fail and say $re.
sub nginx_t_fails_like {
    my ($conf, $re, $name) = @_;
    my $c = Plinth::Test::cluster();
    my ($rc, $out) = ref $conf eq 'HASH' ? $c->nginx_t(%$conf)
        : $c->nginx_t(template_text => $conf);
    Test::More::ok($rc != 0, "$name: nginx -t fails") or Test::More::diag("nginx -t output:\n$out");
    Test::More::like($out, $re, "$name: nginx -t says why") or Test::More::diag("nginx -t output:\n$out");
}

sub nginx_t_ok {
    my ($conf, $name) = @_;
    my $c = Plinth::Test::cluster();
    my ($rc, $out) = ref $conf eq 'HASH' ? $c->nginx_t(%$conf)
        : $c->nginx_t(template_text => $conf);
    Test::More::is($rc, 0, "$name: nginx -t accepts it") or Test::More::diag("nginx -t output:\n$out");
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
    my $c = Plinth::Test::cluster();
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
        : Plinth::Test::sign_request($method, $uri, body => $body, headers => \@h,
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
    my $c = Plinth::Test::cluster();
    return ("$Plinth::Cluster::PG_BIN/psql", '-X', '-q', '-h', '127.0.0.1',
        '-p', $c->pg_port, '-U', 'plinth', '-d', 'plinth');
}

# lock_table($table): a background psql takes ACCESS EXCLUSIVE on $table
# (in an open transaction, for at most 60 s); returns once it holds it.
sub lock_table {
    my ($table) = @_;
    my $c = Plinth::Test::cluster();
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
    my $c = Plinth::Test::cluster();
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
    return Plinth::Test::cluster()->psql("select count(*) from pg_stat_activity "
        . "where datname = 'plinth' and wait_event_type = 'Lock' "
        . "and application_name <> '$LOCKER_APP'")->[0][0];
}

# Restart nginx on a template; the pool is ready once a request succeeded.
sub restart_with {
    my ($text, %o) = @_;
    my $c = Plinth::Test::cluster();
    $c->restart_nginx(template_text => $text, %o);
    wait_for(sub { (Plinth::Test::s3_request(GET => '/')->{status} // 0) == 200 }, 10,
        'the gateway to answer GET / with 200');
}

END {
    for my $pid (keys %LOCKERS) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
}

1;
