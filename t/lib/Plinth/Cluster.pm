package Plinth::Cluster;

# A local Plinth cluster: PostgreSQL, N data nodes and one nginx gateway,
# all on 127.0.0.1, all under one directory.  The same code serves the test
# suite (a throwaway cluster per .t file, in a temporary directory) and
# `make run` (bin/plinth-cluster, a persistent cluster in ./run).
#
# Every process is started by fork+exec from here, its pid recorded in
# <dir>/pids/<name>.pid, and stopped by that pid: TERM (INT for PostgreSQL,
# its "fast" shutdown), a bounded wait, then KILL of it and of the children
# it had.  Nothing is ever looked up or signalled by name.  Every wait is
# bounded in time.
#
# Layout of <dir>:
#   pg/              PostgreSQL data directory (owned by postgres)
#   pgsock/          its unix socket directory (TCP 127.0.0.1 is what we use)
#   nodeN/data/      data node N's data_dir (blobs in objects/ab/cd/<id>)
#   nodeN.yaml       data node N's configuration
#   repairdN.yaml    repaird instance N's configuration (component repaird)
#   cluster.yaml     the node list read by the gateway
#   cluster.secret   the cluster secret (mode 0600, 64 random hex digits,
#                    made at the first prepare): every request to a data
#                    node is signed with it (ngx_plinth_hop.h); tests sign
#                    theirs with hop_headers() or node_request()
#   nginx.conf       conf/nginx.conf rendered
#   logs/            error.log access.log nginx.stderr postgresql.log nodeN.log
#   tmp/             nginx temp paths
#   pids/            one pid file per process started
#   ports            the ports chosen, reused by the next start
#   gwK/             gateway K's prefix (K >= 2, with gateways => N):
#                    nginx.conf, logs/, tmp/; gateway 1 is the nginx above
#   lb/              the load balancer (conf/lb.conf) when gateways > 1:
#                    nginx.conf, logs/access.log (upstream per request)
#   credentials      the access keys made at the first start (mode 0600):
#                    shell-style PLINTH_ACCESS_KEY=... lines (see below)
#   aws-credentials  the same keys as an AWS shared credentials file
#                    ([default] is the admin, [user2] the second user)

use strict;
use warnings;

use Carp qw(croak);
use Digest::SHA qw(hmac_sha256_hex);
use Cwd qw(abs_path);
use File::Basename qw(basename dirname);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir tempfile);
use HTTP::Tiny;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Scalar::Util qw(weaken);
use Time::HiRes qw(sleep time);

our $ROOT = abs_path(dirname(abs_path(__FILE__)) . '/../../..');
# The build directory the binaries come from: build/, or build-san/ for
# `make test SAN=1` (PLINTH_BUILD, relative to the repository or absolute).
our $BUILD = do {
    my $b = $ENV{PLINTH_BUILD} || 'build';
    $b =~ m{^/} ? $b : "$ROOT/$b";
};
our $NGINX = $ENV{PLINTH_NGINX} || '/usr/sbin/nginx';

# `make test SAN=1` (scripts/san-test.sh) sets PLINTH_SAN_LOG_DIR: the
# sanitizer reports of every process this test file starts (nginx, its
# workers, data nodes, repaird, unit tests, tools) go to a directory of the
# file's own, <dir>/<file>/san.<pid> (ASan's and UBSan's log_path,
# rewritten here; mode 1777, nginx's workers run as nobody). At the end
# every report is printed and the test file fails. Only a test file does
# this: a program it runs (bin/plinth-cluster) keeps the file's directory.
our $SAN_DIR;
my $SAN_PID = $$;
if ($ENV{PLINTH_SAN_LOG_DIR} && $0 =~ /\.t\z/) {
    (my $name = basename($0)) =~ s/\.t\z//;
    $SAN_DIR = "$ENV{PLINTH_SAN_LOG_DIR}/$name";
    make_path($SAN_DIR);
    chmod 01777, $SAN_DIR;
    for my $v (qw(ASAN_OPTIONS UBSAN_OPTIONS)) {
        my @o = grep { length && !/^log_path=/ } split /:/, $ENV{$v} // '';
        $ENV{$v} = join ':', @o, "log_path=$SAN_DIR/san";
    }
}

# san_reports() -> list of [file, text]: the sanitizer reports written so far
# by processes of this test file (none outside `make test SAN=1`).
sub san_reports {
    return () unless $SAN_DIR;
    return map { [$_, _read_file($_) // ''] } sort glob("$SAN_DIR/san.*");
}
our $PG_BIN = $ENV{PLINTH_PG_BIN} || '/usr/lib/postgresql/15/bin';

my %CHILDREN;       # pid => 1 for processes forked by this process
my @INSTANCES;      # weak references, for END
my %USED_PORTS;     # ports handed out by this process

my @COMPONENTS = qw(pg nodes nginx);
# Optional components: asked for by name (components => [..., 'repaird']),
# never started unless asked, so tests that do not ask see no repaird.
my @OPTIONAL = qw(repaird);

sub new {
    my ($class, %o) = @_;
    croak "Plinth::Cluster: auth must be sigv4 or off, not '"
        . ($o{auth} // 'undef') . "'"
        if exists $o{auth} && !(defined $o{auth} && $o{auth} =~ /^(sigv4|off)\z/);

    my $self = bless {
        nodes         => 3,
        rf            => 3,
        w             => 2,
        node_opts     => {},
        per_node_opts => {},
        http_extra    => '',
        server_extra  => '',
        cluster_yaml_extra => '',
        pg_fast       => 1,
        keep          => 0,
        components    => [@COMPONENTS],
        template      => "$ROOT/conf/nginx.conf",
        template_text => undef,
        sql_dir       => "$ROOT/sql",
        module        => "$BUILD/ngx_plinth_module.so",
        datanode      => "$BUILD/plinth-datanode",
        repaird       => "$BUILD/plinth-repaird",
        repaird_opts  => {},
        start_timeout => 30,
        stop_timeout  => 15,
        log           => sub { print STDERR "$_[0]\n" },
        auth          => 'sigv4',
        region        => 'us-east-1',
        gateways      => 1,
        lb_template   => "$ROOT/conf/lb.conf",
        %o,
        owner_pid     => $$,
        started       => {},
    }, $class;

    my %known = map { $_ => 1 } qw(dir port pg_port node_ports nodes rf w
        node_opts per_node_opts http_extra server_extra cluster_yaml_extra
        pg_fast keep components template template_text sql_dir module
        datanode start_timeout stop_timeout log owner_pid started auth
        region repaird repaird_opts repaird_port gateways lb_template hop_tls
        tiers);
    for (keys %o) {
        croak "Plinth::Cluster: unknown option '$_'" unless $known{$_};
    }
    for my $c (@{ $self->{components} }) {
        croak "Plinth::Cluster: unknown component '$c'"
            unless grep { $_ eq $c } @COMPONENTS, @OPTIONAL;
    }
    $self->{nodes} = 0 unless $self->has('nodes');
    croak "Plinth::Cluster: gateways must be 1 to 8"
        unless $self->{gateways} =~ /^[1-8]\z/;

    if (defined $self->{dir}) {
        make_path($self->{dir});
        $self->{dir} = abs_path($self->{dir});
    } else {
        $self->{dir} = tempdir('plinth-XXXXXX', DIR => '/tmp', CLEANUP => 0);
        $self->{own_dir} = 1;
    }
    chmod 0755, $self->{dir};

    $self->_choose_ports;

    push @INSTANCES, $self;
    weaken($INSTANCES[-1]);
    return $self;
}

sub has {
    my ($self, $component) = @_;
    return scalar grep { $_ eq $component } @{ $self->{components} };
}

# ---------------------------------------------------------------- accessors

sub dir      { $_[0]{dir} }
sub port     { $_[0]{port} }
sub pg_port  { $_[0]{pg_port} }
sub nodes    { $_[0]{nodes} }
sub endpoint { "http://127.0.0.1:$_[0]{port}" }
sub gateways { $_[0]{gateways} }
# gateway K's own port: the endpoint's with one gateway; behind the load
# balancer (gateways > 1) a port of its own
sub gateway_port {
    my ($self, $k) = @_;
    $k //= 1;
    croak "no gateway $k" unless $k =~ /^\d+\z/ && $k >= 1 && $k <= $self->{gateways};
    return $self->{gateways} > 1 ? $self->{gw_ports}[$k - 1] : $self->{port};
}
sub gateway_endpoint { 'http://127.0.0.1:' . $_[0]->gateway_port($_[1]) }
sub gateway_dir { $_[1] && $_[1] > 1 ? "$_[0]{dir}/gw$_[1]" : $_[0]{dir} }
sub gateway_name { $_[1] && $_[1] > 1 ? "gw$_[1]" : 'nginx' }
sub lb_dir { "$_[0]{dir}/lb" }
sub node_port { my ($self, $i) = @_; $self->_check_node($i); $self->{node_ports}[$i - 1] }
sub node_dir  { my ($self, $i) = @_; $self->_check_node($i); "$self->{dir}/node$i" }
sub node_data_dir { $_[0]->node_dir($_[1]) . '/data' }
sub node_yaml { my ($self, $i) = @_; "$self->{dir}/node$i.yaml" }
sub cluster_yaml { "$_[0]{dir}/cluster.yaml" }
sub cluster_secret_file { "$_[0]{dir}/cluster.secret" }

# The cluster secret, made on first use (32 bytes of /dev/urandom, hex).
sub cluster_secret {
    my ($self) = @_;
    my $f = $self->cluster_secret_file;
    unless (-s $f) {
        open my $r, '<:raw', '/dev/urandom' or croak "/dev/urandom: $!";
        read($r, my $bytes, 32) == 32 or croak "short read of /dev/urandom";
        close $r;
        _write_private($f, unpack('H*', $bytes) . "\n");
    }
    my $s = _read_file($f) // croak "cannot read $f: $!";
    $s =~ s/\s+\z//;
    return $s;
}

# hop_headers($method, $target, %o) -> { header => value }: X-Request-Id,
# X-Plinth-Date and X-Plinth-Signature for a request to a data node, as a
# gateway, repaird or a pulling node signs it (ngx_plinth_hop.h). $target
# is the path and query exactly as sent. %o: rid, date (unix seconds),
# secret (to sign with another one).
my $HOP_RID = 0;
sub hop_headers {
    my ($self, $method, $target, %o) = @_;
    my $rid = $o{rid} // "test-$$-" . ++$HOP_RID;
    my $date = $o{date} // time;
    $date = int $date;
    my $secret = $o{secret} // $self->cluster_secret;
    my $sig = hmac_sha256_hex(
        "PLINTH-HOP-1\n$method\n$target\n$date\n$rid", $secret);
    return { 'X-Request-Id' => $rid, 'X-Plinth-Date' => $date,
             'X-Plinth-Signature' => $sig };
}

# node_request($i, $method, $target, \%opts) -> HTTP::Tiny response: a
# signed request to data node $i. %opts as HTTP::Tiny's (content, headers)
# plus sign => 0 (send it unsigned) and hop => { hop_headers options }.
sub node_request {
    my ($self, $i, $method, $target, $opts) = @_;
    my %opts = %{ $opts || {} };
    my $sign = exists $opts{sign} ? delete $opts{sign} : 1;
    my %hop = %{ delete $opts{hop} || {} };
    my $timeout = delete $opts{timeout} // 30;
    $opts{headers} = { %{ $opts{headers} || {} },
        $sign ? %{ $self->hop_headers($method, $target, %hop) } : () };
    $self->{node_http} //= $self->node_http(timeout => $timeout,
        keep_alive => 1);
    return $self->{node_http}->request($method,
        $self->node_url($i) . $target, \%opts);
}

sub node_scheme { $_[0]{hop_tls} ? 'https' : 'http' }
sub tls_dir { "$_[0]{dir}/tls" }

# An HTTP::Tiny for the data nodes: with hop_tls, HTTPS that checks the
# node's certificate against the cluster CA (IO::Socket::SSL).
sub node_http {
    my ($self, %o) = @_;
    return HTTP::Tiny->new(%o) unless $self->{hop_tls};
    return HTTP::Tiny->new(%o, verify_SSL => 1,
        SSL_options => { SSL_ca_file => $self->tls_dir . '/ca.crt' });
}

# hop_tls: a CA and one certificate per data node (CN nodeN; names
# plinth-datanode, the name gateways check, and IP 127.0.0.1, the address
# repaird and the nodes' pulls check), made with openssl once.
sub _make_tls {
    my ($self) = @_;
    my $t = $self->tls_dir;
    make_path($t);
    chmod 0755, $t;
    my $run = sub {
        my ($rc, $out) = run_command([@_], timeout => 60, merge => 1);
        croak "@_: $out" if $rc != 0;
    };
    unless (-s "$t/ca.crt") {
        $run->('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
            '-days', '30', '-subj', '/CN=Plinth cluster CA',
            '-keyout', "$t/ca.key", '-out', "$t/ca.crt");
    }
    _write_file("$t/node.ext", "subjectAltName = DNS:plinth-datanode, IP:127.0.0.1\n"
        . "extendedKeyUsage = serverAuth\n");
    for my $i (1 .. $self->{nodes}) {
        next if -s "$t/node$i.crt";
        $run->('openssl', 'req', '-newkey', 'rsa:2048', '-nodes',
            '-subj', "/CN=node$i", '-keyout', "$t/node$i.key",
            '-out', "$t/node$i.csr");
        $run->('openssl', 'x509', '-req', '-in', "$t/node$i.csr",
            '-CA', "$t/ca.crt", '-CAkey', "$t/ca.key", '-CAcreateserial',
            '-days', '30', '-extfile', "$t/node.ext", '-out', "$t/node$i.crt");
        chmod 0600, "$t/node$i.key";
    }
    chmod 0644, "$t/ca.crt";
    chmod 0600, "$t/ca.key";
}
sub node_url {
    my ($self, $i) = @_;
    return $self->node_scheme . '://127.0.0.1:' . $self->node_port($i);
}
sub nginx_conf   { "$_[0]{dir}/nginx.conf" }
sub error_log_path { "$_[0]{dir}/logs/error.log" }
sub pg_conninfo { conninfo_for_port($_[0]{pg_port}) }
sub conninfo_for_port { "host=127.0.0.1 port=$_[0] dbname=plinth user=plinth" }
sub auth     { $_[0]{auth} }
sub region   { $_[0]{region} }
sub credentials_file     { "$_[0]{dir}/credentials" }
sub aws_credentials_file { "$_[0]{dir}/aws-credentials" }

sub blob_path {
    my ($self, $i, $id) = @_;
    croak "blob_path: '$id' is not a 32-hex blob id"
        unless defined $id && $id =~ /^[0-9a-f]{32}$/;
    return $self->node_data_dir($i) . '/objects/' . substr($id, 0, 2) . '/'
        . substr($id, 2, 2) . "/$id";
}

sub _check_node {
    my ($self, $i) = @_;
    croak "no data node $i (nodes are 1.." . $self->{nodes} . ")"
        unless defined $i && $i =~ /^\d+$/ && $i >= 1 && $i <= $self->{nodes};
}

# ---------------------------------------------------------------- ports

sub port_free {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
        LocalPort => $port, Proto => 'tcp', Listen => 1, ReuseAddr => 1);
    return 0 unless $s;
    close $s;
    return 1;
}

sub free_port {
    for (1 .. 200) {
        my $p = 20000 + int(rand(40001));
        next if $USED_PORTS{$p};
        next unless port_free($p);
        $USED_PORTS{$p} = 1;
        return $p;
    }
    croak "no free port found in 20000-60000 after 200 tries";
}

# Explicit options win; then the ports a previous run in this directory
# recorded (if still free or still ours); then new random free ports.
sub _choose_ports {
    my ($self) = @_;
    my %saved;
    if (open my $fh, '<', "$self->{dir}/ports") {
        while (<$fh>) {
            $saved{$1} = $2 if /^(\w+)\s+(\d+)\s*$/;
        }
    }
    my $pick = sub {
        my ($name) = @_;
        my $p = $saved{$name};
        if ($p && ($self->_alive_name($name) || port_free($p))) {
            $USED_PORTS{$p} = 1;
            return $p;
        }
        return free_port();
    };
    $self->{port_chosen} = !defined $self->{port};
    $self->{pg_port} //= $pick->('pg');
    $self->{port} //= $pick->('nginx');
    $USED_PORTS{ $self->{port} } = 1;
    my @np = @{ $self->{node_ports} || [] };
    for my $i (1 .. $self->{nodes}) {
        $np[$i - 1] //= $pick->("node$i");
    }
    $self->{node_ports} = \@np;
    if ($self->{gateways} > 1) {
        my @gp = @{ $self->{gw_ports} || [] };
        $gp[$_ - 1] //= $pick->("gw$_") for 1 .. $self->{gateways};
        $self->{gw_ports} = \@gp;
    }
}

sub _save_ports {
    my ($self) = @_;
    my $text = "pg $self->{pg_port}\nnginx $self->{port}\n";
    $text .= "node$_ $self->{node_ports}[$_ - 1]\n" for 1 .. $self->{nodes};
    if ($self->{gateways} > 1) {
        $text .= "gw$_ $self->{gw_ports}[$_ - 1]\n" for 1 .. $self->{gateways};
    }
    _write_file("$self->{dir}/ports", $text);
}

# ---------------------------------------------------------------- helpers

sub _write_file {
    my ($path, $text, $mode) = @_;
    open my $fh, '>', "$path.tmp$$" or croak "cannot write $path: $!";
    print $fh $text;
    close $fh or croak "cannot write $path: $!";
    chmod $mode // 0644, "$path.tmp$$";
    rename "$path.tmp$$", $path or croak "cannot rename to $path: $!";
}

sub _read_file {
    my ($path) = @_;
    open my $fh, '<', $path or return undef;
    local $/;
    my $t = <$fh>;
    return $t;
}

sub _tail {
    my ($path, $lines) = @_;
    my $t = _read_file($path) // return "($path: none)";
    my @l = split /\n/, $t;
    splice @l, 0, @l - $lines if @l > $lines;
    return join('', map { "    $_\n" } @l);
}

sub _notice {
    my ($self, $msg) = @_;
    $self->{log}->($msg) if $self->{log};
}

sub _uid_gid {
    my ($user) = @_;
    my @pw = getpwnam($user) or croak "no such user '$user'";
    return @pw[2, 3];
}

# The user PostgreSQL runs as: it refuses root.
sub _pg_user { $> == 0 ? 'postgres' : undef }

# In the child after fork: drop to $user, if any.
sub _become {
    my ($user) = @_;
    return unless defined $user;
    my ($uid, $gid) = _uid_gid($user);
    $) = "$gid $gid";
    POSIX::setgid($gid) or die "setgid $gid: $!";
    POSIX::setuid($uid) or die "setuid $uid: $!";
    die "could not become $user" unless $< == $uid && $> == $uid;
}

# run_command(\@argv, timeout => s, user => name, env => {..},
#             merge => 1, stdin => $bytes)
# Runs a command to completion (bounded by timeout, then TERM/KILL).
# Returns ($exit_code, $stdout, $stderr); with merge, stderr goes to
# stdout.  A command killed by timeout or signal gives exit code -1.
sub run_command {
    my ($argv, %o) = @_;
    my $timeout = $o{timeout} // 60;
    my ($ofh, $ofile) = tempfile('plinth-out-XXXXXX', DIR => '/tmp', UNLINK => 1);
    my ($efh, $efile) = tempfile('plinth-err-XXXXXX', DIR => '/tmp', UNLINK => 1);
    my ($ifh, $ifile);
    if (defined $o{stdin}) {
        ($ifh, $ifile) = tempfile('plinth-in-XXXXXX', DIR => '/tmp', UNLINK => 1);
        binmode $ifh;
        print $ifh $o{stdin};
        close $ifh;
    }
    my $pid = fork;
    croak "fork: $!" unless defined $pid;
    if ($pid == 0) {
        eval {
            open STDIN, '<', $ifile // '/dev/null' or die "stdin: $!";
            open STDOUT, '>&', $ofh or die "stdout: $!";
            if ($o{merge}) {
                open STDERR, '>&', $ofh or die "stderr: $!";
            } else {
                open STDERR, '>&', $efh or die "stderr: $!";
            }
            $ENV{$_} = $o{env}{$_} for keys %{ $o{env} || {} };
            _become($o{user});
            chdir($o{cwd} // '/');
            exec { $argv->[0] } @$argv or die "exec $argv->[0]: $!";
        };
        print STDERR "plinth: $@";
        POSIX::_exit(127);
    }
    my $deadline = time + $timeout;
    my $rc;
    while (1) {
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid) { $rc = $?; last }
        if ($r == -1) { $rc = -1; last }
        if (time > $deadline) {
            kill 'TERM', $pid;
            my $d2 = time + 5;
            while (time < $d2 && waitpid($pid, WNOHANG) == 0) { sleep 0.05 }
            if (waitpid($pid, WNOHANG) == 0) {
                kill 'KILL', $pid;
                waitpid($pid, 0);
            }
            print $efh "\nplinth: '@$argv' killed after ${timeout}s\n";
            $rc = -1;
            last;
        }
        sleep 0.02;
    }
    my $out = _read_file($ofile) // '';
    my $err = _read_file($efile) // '';
    close $ofh;
    close $efh;
    unlink grep { defined } $ofile, $efile, $ifile;
    my $code = $rc == -1 ? -1 : ($rc & 127) ? -1 : $rc >> 8;
    return ($code, $out, $err);
}

# Start a long-running process in the background: its own session, stdin
# from /dev/null, stdout and stderr appended to $log, pid in pids/$name.pid.
sub _spawn {
    my ($self, $name, $argv, %o) = @_;
    make_path("$self->{dir}/pids");
    my $log = $o{log};
    open my $lfh, '>>', $log or croak "cannot open $log: $!";
    my $pid = fork;
    croak "fork: $!" unless defined $pid;
    if ($pid == 0) {
        eval {
            POSIX::setsid();
            open STDIN, '<', '/dev/null' or die "stdin: $!";
            open STDOUT, '>&', $lfh or die "stdout: $!";
            open STDERR, '>&', $lfh or die "stderr: $!";
            $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP PIPE CHLD);
            _become($o{user});
            chdir '/';
            exec { $argv->[0] } @$argv or die "exec $argv->[0]: $!";
        };
        print STDERR "plinth: cannot start $name: $@";
        POSIX::_exit(127);
    }
    close $lfh;
    $CHILDREN{$pid} = 1;
    _write_file($self->_pidfile($name), "$pid\n");
    $self->{started}{$name} = $pid;
    return $pid;
}

sub _pidfile { "$_[0]{dir}/pids/$_[1].pid" }

sub _expect_cmd {
    my ($name) = @_;
    return 'postgres' if $name eq 'pg';
    return 'nginx' if $name eq 'nginx' || $name eq 'lb' || $name =~ /^gw\d+$/;
    return 'plinth-datanode' if $name =~ /^node\d+$/;
    return 'plinth-repaird' if $name =~ /^repaird\d+$/;
    return '';
}

sub pid_of {
    my ($self, $name) = @_;
    my $t = _read_file($self->_pidfile($name)) // return undef;
    return $t =~ /^(\d+)/ ? $1 : undef;
}

sub pid_alive {
    my ($pid) = @_;
    return 0 unless $pid && $pid > 1;
    if ($CHILDREN{$pid}) {
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid || $r == -1) {
            delete $CHILDREN{$pid};
            return 0;
        }
    }
    return 0 unless kill 0, $pid;
    my $stat = _read_file("/proc/$pid/stat") // return 0;
    return 0 if $stat =~ /^\d+ \(.*\) [ZX] /s;
    return 1;
}

sub _cmdline {
    my ($pid) = @_;
    my $c = _read_file("/proc/$pid/cmdline") // return '';
    $c =~ tr/\0/ /;
    return $c;
}

# Alive, and still the program we started (not a recycled pid).
sub _alive_name {
    my ($self, $name) = @_;
    my $pid = $self->pid_of($name) or return 0;
    return 0 unless pid_alive($pid);
    my $want = _expect_cmd($name);
    return 0 if length $want && index(_cmdline($pid), $want) < 0;
    return $pid;
}

sub alive { my ($self, $name) = @_; $self->_alive_name($name) ? 1 : 0 }

sub children_of {
    my ($ppid) = @_;
    my @kids;
    opendir my $dh, '/proc' or return ();
    for my $p (grep { /^\d+$/ } readdir $dh) {
        my $stat = _read_file("/proc/$p/stat") // next;
        push @kids, $p if $stat =~ /^\d+ \(.*\) \S+ (\d+) /s && $1 == $ppid;
    }
    return @kids;
}

sub _descendants {
    my ($pid) = @_;
    my @all;
    my @todo = ($pid);
    while (@todo && @all < 1000) {
        my @k = children_of(shift @todo);
        push @all, @k;
        push @todo, @k;
    }
    return @all;
}

# Stop the process recorded under $name: $sig, wait up to stop_timeout,
# then KILL it and whatever children it had.  Returns 1 if it was running.
sub _stop_name {
    my ($self, $name, $sig) = @_;
    my $pid = $self->_alive_name($name);
    unless ($pid) {
        unlink $self->_pidfile($name);
        delete $self->{started}{$name};
        return 0;
    }
    my @kids = _descendants($pid);
    kill $sig, $pid;
    my $deadline = time + $self->{stop_timeout};
    while (time < $deadline && pid_alive($pid)) { sleep 0.05 }
    if (pid_alive($pid)) {
        $self->_notice("plinth: $name (pid $pid) did not stop on $sig in "
            . "$self->{stop_timeout}s: killing it");
        kill 'KILL', $pid, _descendants($pid);
        my $d2 = time + 5;
        while (time < $d2 && pid_alive($pid)) { sleep 0.05 }
    }
    my @left = grep { pid_alive($_) } @kids;
    if (@left) {
        my $d3 = time + 5;
        while (time < $d3 && (@left = grep { pid_alive($_) } @left)) {
            sleep 0.05;
        }
        kill 'KILL', @left if @left;
    }
    unlink $self->_pidfile($name);
    delete $self->{started}{$name};
    return 1;
}

sub _wait_port {
    my ($port, $timeout, $alive) = @_;
    my $deadline = time + $timeout;
    while (time < $deadline) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
            PeerPort => $port, Proto => 'tcp', Timeout => 1);
        if ($s) { close $s; return 1 }
        return 0 if $alive && !$alive->();
        sleep 0.05;
    }
    return 0;
}

# ---------------------------------------------------------------- prepare

sub _fix_ancestors {
    my ($self) = @_;
    return unless $> == 0;
    my $d = $self->{dir};
    my @anc;
    while ($d ne '/' && $d ne '') {
        $d = dirname($d);
        unshift @anc, $d;
    }
    for my $a (@anc) {
        my @st = stat $a or next;
        next if $st[2] & 0001;
        chmod(($st[2] & 07777) | 0001, $a)
            or croak "cannot chmod o+x $a: $!";
        $self->_notice("plinth: made $a traversable by other users "
            . "(chmod o+x) so that postgres and nobody can reach $self->{dir}");
    }
}

sub _yaml_scalar {
    my ($v) = @_;
    return '""' unless defined $v;
    return $v if $v =~ m{^[\w./:@+-]+$} && $v !~ /^(true|false|yes|no|on|off|null|~)$/i;
    (my $q = $v) =~ s/(["\\])/\\$1/g;
    $q =~ s/\n/\\n/g;
    return "\"$q\"";
}

sub _yaml {
    my ($data, $indent) = @_;
    $indent //= '';
    my $out = '';
    if (ref $data eq 'HASH') {
        for my $k (sort keys %$data) {
            my $v = $data->{$k};
            if (ref $v) {
                $out .= "$indent$k:\n" . _yaml($v, "$indent  ");
            } else {
                $out .= "$indent$k: " . _yaml_scalar($v) . "\n";
            }
        }
    } elsif (ref $data eq 'ARRAY') {
        for my $v (@$data) {
            if (ref $v) {
                my $sub = _yaml($v, "$indent  ");
                $sub =~ s/^\s+/$indent- /;
                $out .= $sub;
            } else {
                $out .= "$indent- " . _yaml_scalar($v) . "\n";
            }
        }
    }
    return $out;
}

sub _node_config {
    my ($self, $i) = @_;
    my $nd = $self->node_dir($i);
    my %c = (
        node_id        => $i,
        listen         => "127.0.0.1:" . $self->node_port($i),
        data_dir       => "$nd/data",
        block_size     => 1048576,
        capacity_bytes => 10 * 1024 ** 3,
        reserve_bytes  => 0,
        log_level      => 'info',
        pid_file       => "$nd/plinth-datanode.pid",
        cluster_secret_file => $self->cluster_secret_file,
        ($self->{hop_tls} ? (
            tls_cert => $self->tls_dir . "/node$i.crt",
            tls_key  => $self->tls_dir . "/node$i.key",
            tls_ca   => $self->tls_dir . '/ca.crt') : ()),
        %{ $self->{node_opts} },
        %{ $self->{per_node_opts}{$i} || {} },
    );
    return \%c;
}

# The cluster file. Option tiers => ['hot', 'hot', 'warm', ...] gives
# node i the tier $tiers[i - 1] (default hot).
sub cluster_yaml_text {
    my ($self) = @_;
    my $t = "# written by Plinth::Cluster\n";
    if ($self->{nodes} == 0) {
        $t .= "nodes: []\n";
    } else {
        $t .= "nodes:\n";
        for my $i (1 .. $self->{nodes}) {
            next if $self->{removed}{$i};
            $t .= "  - id: $i\n"
                . "    address: 127.0.0.1:" . $self->node_port($i) . "\n"
                . "    zone: z$i\n"
                . "    tier: " . ($self->{tiers}[$i - 1] // 'hot') . "\n"
                . "    weight: 1\n";
        }
    }
    $t .= $self->{cluster_yaml_extra} if length $self->{cluster_yaml_extra};
    return $t;
}

# Create the directories and write every file a start needs.  Idempotent;
# nginx_t() calls it, so directive tests need no running process.
sub prepare {
    my ($self) = @_;
    my $d = $self->{dir};
    $self->_fix_ancestors;
    for my $sub (qw(logs tmp pids)) {
        make_path("$d/$sub");
        chmod 0755, "$d/$sub";
    }
    $self->cluster_secret;      # made once, kept across restarts
    $self->_make_tls if $self->{hop_tls};
    for my $i (1 .. $self->{nodes}) {
        make_path($self->node_data_dir($i));
        chmod 0755, $self->node_dir($i), $self->node_data_dir($i);
        _write_file($self->node_yaml($i),
            "# written by Plinth::Cluster\n" . _yaml($self->_node_config($i)));
    }
    _write_file($self->cluster_yaml, $self->cluster_yaml_text);
    $self->_save_ports;
    return $self;
}

# ---------------------------------------------------------------- start/stop

sub start {
    my ($self) = @_;
    $self->prepare;
    $self->_install_signal_handlers unless $self->{keep};
    $self->start_pg if $self->has('pg');
    $self->start_node($_) for 1 .. ($self->has('nodes') ? $self->{nodes} : 0);
    if ($self->has('nginx')) {
        $self->start_nginx;
        if ($self->{gateways} > 1) {
            $self->start_gateway($_) for 2 .. $self->{gateways};
            $self->start_lb;
        }
    }
    $self->start_repaird(1) if $self->has('repaird');
    $self->{is_started} = 1;
    return $self;
}

sub is_started { $_[0]{is_started} ? 1 : 0 }

# Processes this object should have: name => alive (0/1).
sub status {
    my ($self) = @_;
    my @names;
    push @names, 'pg' if $self->has('pg');
    push @names, map { "node$_" } 1 .. $self->{nodes};
    push @names, 'nginx' if $self->has('nginx');
    if ($self->has('nginx') && $self->{gateways} > 1) {
        push @names, (map { "gw$_" } 2 .. $self->{gateways}), 'lb';
    }
    push @names, 'repaird1' if $self->has('repaird');
    return map { [$_, $self->pid_of($_), $self->alive($_)] } @names;
}

sub running {
    my ($self) = @_;
    my @s = $self->status;
    return 0 unless @s;
    return (grep { $_->[2] } @s) == @s ? 1 : 0;
}

sub any_running {
    my ($self) = @_;
    return scalar grep { $_->[2] } $self->status;
}

sub stop {
    my ($self) = @_;
    # every repaird instance started (by this or another process)
    for (sort glob("$self->{dir}/pids/repaird*.pid")) {
        $self->_stop_name($1, 'TERM') if m{/(repaird\d+)\.pid$};
    }
    # the load balancer and gateways 2.. (also when this object was made
    # without gateways => N: make stop stops what make run started)
    for (sort glob("$self->{dir}/pids/{lb,gw*}.pid")) {
        $self->_stop_name($1, 'TERM') if m{/(lb|gw\d+)\.pid$};
    }
    $self->stop_nginx;
    my %n = map { $_ => 1 } 1 .. $self->{nodes};
    # nodes a start from another process may have had
    for (glob("$self->{dir}/pids/node*.pid")) {
        $n{$1} = 1 if m{/node(\d+)\.pid$};
    }
    $self->_stop_name("node$_", 'TERM') for sort { $a <=> $b } keys %n;
    $self->stop_pg;
    $self->{is_started} = 0;
    return $self;
}

# --- PostgreSQL

sub _pg_psql_argv {
    my ($self, %o) = @_;
    return ["$PG_BIN/psql", '-X', '-q', '-v', 'ON_ERROR_STOP=1',
        '-h', '127.0.0.1', '-p', $self->{pg_port},
        '-U', $o{user} // 'plinth', '-d', $o{db} // 'plinth'];
}

my $NULL = "\x01NULL\x01";

# psql($sql, user => 'plinth', db => 'plinth', timeout => 60)
# Rows as arrayrefs (NULL as undef): a list in list context, an arrayref
# in scalar context.  Dies with psql's message on error.
sub psql {
    my ($self, $sql, %o) = @_;
    my $argv = $self->_pg_psql_argv(%o);
    # unit/record separators, so tabs and newlines in values survive
    push @$argv, '-At', '-F', "\x1f", '-R', "\x1e", '-P', "null=$NULL",
        '-c', $sql;
    my ($rc, $out, $err) = run_command($argv, timeout => $o{timeout} // 60,
        env => { PGCONNECT_TIMEOUT => 5 });
    croak "psql failed (exit $rc): $err\n  sql: $sql\n" if $rc != 0;
    my @rows;
    $out =~ s/\n\z//;
    for my $line (split /\x1e/, $out) {
        push @rows, [map { $_ eq $NULL ? undef : $_ } split /\x1f/, $line, -1];
    }
    return wantarray ? @rows : \@rows;
}

sub _pg_ready {
    my ($self) = @_;
    my $argv = $self->_pg_psql_argv(user => 'postgres', db => 'postgres');
    push @$argv, '-At', '-c', 'select 1';
    my ($rc, $out) = run_command($argv, timeout => 10,
        env => { PGCONNECT_TIMEOUT => 2 });
    return $rc == 0 && $out =~ /^1$/m;
}

sub start_pg {
    my ($self) = @_;
    return $self if $self->_alive_name('pg');
    $self->prepare unless -d "$self->{dir}/pids";
    my $pgdir = "$self->{dir}/pg";
    my $sock = "$self->{dir}/pgsock";
    my $user = _pg_user();
    my $log = "$self->{dir}/logs/postgresql.log";
    for my $d ($pgdir, $sock) {
        make_path($d);
        chown((_uid_gid($user))[0, 1], $d) if defined $user;
    }
    chmod 0700, $pgdir;
    chmod 0755, $sock;
    unless (-e "$pgdir/PG_VERSION") {
        my @argv = ("$PG_BIN/initdb", '-D', $pgdir, '-U', 'postgres',
            '--auth=trust', '-E', 'UTF8', '--locale=C');
        push @argv, '--no-sync' if $self->{pg_fast};
        my ($rc, $out, $err) = run_command(\@argv, user => $user,
            timeout => 180);
        croak "initdb failed (exit $rc):\n$out$err" if $rc != 0;
    }
    if (open my $fh, '<', "$pgdir/postmaster.pid") {
        my $old = <$fh>;
        if ($old && $old =~ /^(\d+)/ && pid_alive($1)
            && index(_cmdline($1), 'postgres') >= 0) {
            croak "a PostgreSQL (pid $1) already runs on $pgdir but is not "
                . "recorded in $self->{dir}/pids: stop it first";
        }
    }
    croak "port $self->{pg_port} (PostgreSQL) is in use"
        unless port_free($self->{pg_port});
    # unix socket paths are limited to 107 bytes; TCP is what we use
    my $k = length("$sock/.s.PGSQL.$self->{pg_port}") < 100 ? $sock : '';
    my @argv = ("$PG_BIN/postgres", '-D', $pgdir, '-p', $self->{pg_port},
        '-k', $k, '-c', 'listen_addresses=127.0.0.1',
        '-c', 'max_connections=200');
    push @argv, '-c', 'fsync=off', '-c', 'synchronous_commit=off',
        '-c', 'full_page_writes=off' if $self->{pg_fast};
    my $pid = $self->_spawn('pg', \@argv, log => $log, user => $user);

    my $deadline = time + $self->{start_timeout};
    while (1) {
        croak "PostgreSQL exited at start; $log says:\n" . _tail($log, 20)
            unless pid_alive($pid);
        last if $self->_pg_ready;
        croak "PostgreSQL not ready after $self->{start_timeout}s; $log says:\n"
            . _tail($log, 20) if time > $deadline;
        sleep 0.1;
    }
    $self->_pg_bootstrap;
    $self->migrate;
    $self->_ensure_credentials;
    return $self;
}

sub _pg_bootstrap {
    my ($self) = @_;
    my %su = (user => 'postgres', db => 'postgres');
    my @r = $self->psql("select 1 from pg_roles where rolname = 'plinth'", %su);
    $self->psql("create role plinth login", %su) unless @r;
    @r = $self->psql("select 1 from pg_database where datname = 'plinth'", %su);
    $self->psql("create database plinth owner plinth", %su) unless @r;
}

# Apply sql/*.sql (lexical order) not yet in schema_migrations, each file
# and its schema_migrations row in one transaction, as the plinth role
# (owner of the database, so it owns what the migrations create).
# The version recorded is the file name without ".sql".
# Returns the versions applied.
sub migrate {
    my ($self) = @_;
    $self->psql("create table if not exists schema_migrations ("
        . "version text primary key, "
        . "applied_at timestamptz not null default now())");
    my %done = map { $_->[0] => 1 }
        $self->psql("select version from schema_migrations");
    my @applied;
    for my $f (sort glob("$self->{sql_dir}/*.sql")) {
        my $v = basename($f, '.sql');
        next if $done{$v};
        croak "migration file name '$v.sql': use only [A-Za-z0-9_.-]"
            unless $v =~ /^[\w.-]+$/;
        my $argv = $self->_pg_psql_argv;
        push @$argv, '-1', '-f', $f, '-c',
            "insert into schema_migrations (version) values ('$v')";
        my ($rc, $out, $err) = run_command($argv, timeout => 600,
            env => { PGCONNECT_TIMEOUT => 5 });
        croak "migration $f failed (exit $rc), nothing of it applied:\n$out$err"
            if $rc != 0;
        push @applied, $v;
    }
    return @applied;
}

# --- access keys
#
# At the first start (migrations applied, no access key in the database)
# two keys are made, as bin/plinth-admin makes them (Plinth::Admin): user
# "admin" (is_admin) and user "user2" (not privileged: the second identity
# for tests between users).  They are written to <dir>/credentials, mode
# 0600, shell-style (sourceable; values are [A-Za-z0-9] only):
#
#   PLINTH_REGION=us-east-1
#   PLINTH_USER=admin
#   PLINTH_ACCESS_KEY=PL...
#   PLINTH_SECRET_KEY=...
#   PLINTH_USER2=user2
#   PLINTH_USER2_ACCESS_KEY=PL...
#   PLINTH_USER2_SECRET_KEY=...
#
# and to <dir>/aws-credentials ([default] and [user2] profiles).  Later
# starts reuse them.  Nothing is made when migration 002 is not applied
# (a test's own sql_dir) or when keys exist already.

sub _write_private {
    my ($path, $text) = @_;
    my $tmp = "$path.tmp$$";
    unlink $tmp;
    sysopen(my $fh, $tmp, POSIX::O_WRONLY() | POSIX::O_CREAT() | POSIX::O_EXCL(),
        0600) or croak "cannot write $tmp: $!";
    print $fh $text;
    close $fh or croak "cannot write $tmp: $!";
    chmod 0600, $tmp;
    rename $tmp, $path or croak "cannot rename to $path: $!";
}

sub _credentials_text {
    my ($self, $c) = @_;
    return "# Plinth access keys of the cluster in $self->{dir}, made at its first\n"
        . "# start (bin/plinth-admin makes more).  Keep this file private.\n"
        . "# Shell: . $self->{dir}/credentials\n"
        . "PLINTH_REGION=$c->{region}\n"
        . "PLINTH_USER=$c->{user}\n"
        . "PLINTH_ACCESS_KEY=$c->{access_key}\n"
        . "PLINTH_SECRET_KEY=$c->{secret_key}\n"
        . "PLINTH_USER2=$c->{user2}\n"
        . "PLINTH_USER2_ACCESS_KEY=$c->{user2_access_key}\n"
        . "PLINTH_USER2_SECRET_KEY=$c->{user2_secret_key}\n";
}

sub _aws_credentials_text {
    my ($self, $c) = @_;
    return "# Plinth access keys (AWS_SHARED_CREDENTIALS_FILE=$self->{dir}/aws-credentials)\n"
        . "[default]\n"
        . "aws_access_key_id = $c->{access_key}\n"
        . "aws_secret_access_key = $c->{secret_key}\n\n"
        . "[user2]\n"
        . "aws_access_key_id = $c->{user2_access_key}\n"
        . "aws_secret_access_key = $c->{user2_secret_key}\n";
}

sub _read_credentials {
    my ($self) = @_;
    my $t = _read_file($self->credentials_file) // return undef;
    my %v;
    for (split /\n/, $t) {
        next unless /^\s*(?:export\s+)?(PLINTH_\w+)=(["']?)(.*?)\2\s*$/;
        $v{$1} = $3;
    }
    return undef unless $v{PLINTH_ACCESS_KEY} && $v{PLINTH_SECRET_KEY};
    return {
        access_key       => $v{PLINTH_ACCESS_KEY},
        secret_key       => $v{PLINTH_SECRET_KEY},
        user             => $v{PLINTH_USER} // 'admin',
        user2_access_key => $v{PLINTH_USER2_ACCESS_KEY},
        user2_secret_key => $v{PLINTH_USER2_SECRET_KEY},
        user2            => $v{PLINTH_USER2} // 'user2',
        region           => $v{PLINTH_REGION} // $self->{region},
    };
}

sub _ensure_credentials {
    my ($self) = @_;
    require Plinth::Admin;
    my $admin = Plinth::Admin->new(conninfo => $self->pg_conninfo);
    return unless $admin->has_schema;
    my $file = $self->credentials_file;
    if ($admin->count_keys == 0) {
        my $note = 'made by Plinth::Cluster at the first start';
        my $k1 = $admin->create_key(user => 'admin', admin => 1,
            display_name => 'admin', description => $note);
        my $k2 = $admin->create_key(user => 'user2',
            display_name => 'user2', description => $note);
        my $c = {
            access_key => $k1->{access_key_id}, secret_key => $k1->{secret_key},
            user => 'admin',
            user2_access_key => $k2->{access_key_id},
            user2_secret_key => $k2->{secret_key}, user2 => 'user2',
            region => $self->{region},
        };
        _write_private($file, $self->_credentials_text($c));
        _write_private($self->aws_credentials_file,
            $self->_aws_credentials_text($c));
        $self->{credentials} = $c;
        return;
    }
    my $c = $self->_read_credentials;
    unless ($c) {
        $self->_notice("plinth: the database has access keys but $file is "
            . "missing: make one with bin/plinth-admin --dir $self->{dir} "
            . "key create --user admin --admin");
        return;
    }
    for my $id (grep { defined } @$c{qw(access_key user2_access_key)}) {
        my $k = $admin->get_key($id);
        $self->_notice("plinth: access key $id of $file is "
            . ($k ? "inactive" : "no longer in the database"))
            if !$k || $k->{status} ne 'active';
    }
    _write_private($self->aws_credentials_file, $self->_aws_credentials_text($c))
        unless -e $self->aws_credentials_file;
    $self->{credentials} = $c;
}

# credentials -> { access_key, secret_key, user, user2_access_key,
# user2_secret_key, user2, region } from <dir>/credentials, or undef when
# there is none (no PostgreSQL, or not started yet).
sub credentials {
    my ($self) = @_;
    return $self->{credentials} ||= $self->_read_credentials;
}

sub stop_pg {
    my ($self) = @_;
    # SIGINT is PostgreSQL's "fast" shutdown (TERM would wait for clients)
    $self->_stop_name('pg', 'INT');
    return $self;
}

# --- data nodes

sub start_node {
    my ($self, $i) = @_;
    $self->_check_node($i);
    my $name = "node$i";
    return $self if $self->_alive_name($name);
    croak "$self->{datanode} is not built (make datanode)"
        unless -x $self->{datanode};
    make_path($self->node_data_dir($i));
    _write_file($self->node_yaml($i),
        "# written by Plinth::Cluster\n" . _yaml($self->_node_config($i)));
    my $port = $self->node_port($i);
    croak "port $port (data node $i) is in use" unless port_free($port);
    my $log = "$self->{dir}/logs/$name.log";
    my $pid = $self->_spawn($name, [$self->{datanode}, '-c', $self->node_yaml($i)],
        log => $log);
    my $http = $self->node_http(timeout => 1, keep_alive => 0);
    my $deadline = time + $self->{start_timeout};
    while (1) {
        croak "data node $i exited at start; $log says:\n" . _tail($log, 20)
            unless pid_alive($pid);
        my $r = $http->get($self->node_url($i) . '/health',
            { headers => { Accept => 'application/json' } });
        last if $r->{status} != 599;
        croak "data node $i: no answer on /health after "
            . "$self->{start_timeout}s; $log says:\n" . _tail($log, 20)
            if time > $deadline;
        sleep 0.05;
    }
    return $self;
}

sub stop_node {
    my ($self, $i) = @_;
    $self->_check_node($i);
    $self->_stop_name("node$i", 'TERM');
    return $self;
}

sub kill_node {
    my ($self, $i) = @_;
    $self->_check_node($i);
    my $pid = $self->_alive_name("node$i") or return $self;
    kill 'KILL', $pid;
    my $deadline = time + 10;
    while (time < $deadline && pid_alive($pid)) { sleep 0.02 }
    unlink $self->_pidfile("node$i");
    delete $self->{started}{"node$i"};
    return $self;
}

# add_node() -> $i: a new data node (the next id, a free port) is written
# into the cluster file and started; reload nginx and repaird (reload_nginx,
# reload_repaird) to use it.  remove_node($i): stopped and taken out of
# the cluster file (its data directory stays).
sub add_node {
    my ($self) = @_;
    my $i = ++$self->{nodes};
    $self->{node_ports}[$i - 1] //= free_port();
    $self->prepare;
    $self->start_node($i);
    return $i;
}

sub remove_node {
    my ($self, $i) = @_;
    $self->stop_node($i);
    $self->{removed}{$i} = 1;
    _write_file($self->cluster_yaml, $self->cluster_yaml_text);
    return $self;
}

# SIGHUP: repaird re-reads the cluster file.
# SIGHUP, then wait until repaird has applied it (it does so between its
# steps): what is read afterwards is not the state from before the reload.
sub reload_repaird {
    my ($self, $i) = @_;
    $i //= 1;
    my $pid = $self->_alive_name("repaird$i")
        or croak "reload_repaird: repaird$i is not running";
    my $log = $self->repaird_log($i);
    my $off = -s $log || 0;
    kill 'HUP', $pid;
    my $deadline = time + 60;
    until ($self->error_log_since($off, $log) =~ /cluster file applied/) {
        croak "reload_repaird: repaird$i did not apply the reload in 60 s"
            if time > $deadline;
        sleep 0.05;
    }
    return $self;
}

# --- repaird
#
# Instance $i (1, 2, ...) runs build/plinth-repaird -c <dir>/repaird$i.yaml,
# logs to logs/repaird$i.log, serves /metrics on repaird_port($i).  Its
# configuration is repaird's defaults with the cluster's pg, cluster file
# and replication factor, overridden by repaird_opts (new or set_repaird_opts).

sub repaird_yaml { "$_[0]{dir}/repaird$_[1].yaml" }
sub repaird_log  { "$_[0]{dir}/logs/repaird$_[1].log" }

sub repaird_port {
    my ($self, $i) = @_;
    $self->{repaird_ports}[$i] //= $i == 1 && $self->{repaird_port}
        ? $self->{repaird_port} : free_port();
    return $self->{repaird_ports}[$i];
}

sub set_repaird_opts {
    my ($self, %o) = @_;
    $self->{repaird_opts} = { %{ $self->{repaird_opts} }, %o };
    return $self;
}

sub _repaird_config {
    my ($self, $i) = @_;
    return {
        pg                 => $self->pg_conninfo,
        cluster            => $self->cluster_yaml,
        listen             => '127.0.0.1:' . $self->repaird_port($i),
        instance           => "repaird$i",
        replication_factor => $self->{rf},
        log_level          => 'info',
        cluster_secret_file => $self->cluster_secret_file,
        ($self->{hop_tls} ? (tls_ca => $self->tls_dir . '/ca.crt') : ()),
        %{ $self->{repaird_opts} },
    };
}

sub start_repaird {
    my ($self, $i) = @_;
    $i //= 1;
    my $name = "repaird$i";
    return $self if $self->_alive_name($name);
    croak "$self->{repaird} is not built (make repaird)"
        unless -x $self->{repaird};
    $self->prepare unless -d "$self->{dir}/pids";
    _write_file($self->repaird_yaml($i),
        "# written by Plinth::Cluster\n" . _yaml($self->_repaird_config($i)));
    my $port = $self->repaird_port($i);
    my ($rc, $out, $err) = run_command([$self->{repaird}, '-t', '-c',
        $self->repaird_yaml($i)], timeout => 10, merge => 1);
    croak "plinth-repaird -t rejected " . $self->repaird_yaml($i) . ":\n$out"
        if $rc != 0;
    my $log = $self->repaird_log($i);
    my $pid = $self->_spawn($name, [$self->{repaird}, '-c',
        $self->repaird_yaml($i)], log => $log);
    unless (_wait_port($port, $self->{start_timeout}, sub { pid_alive($pid) })) {
        my $why = pid_alive($pid) ? "does not serve /metrics on $port" : "exited at start";
        $self->_stop_name($name, 'TERM');
        croak "plinth-repaird $why; $log says:\n" . _tail($log, 20);
    }
    return $self;
}

sub stop_repaird {
    my ($self, $i) = @_;
    $self->_stop_name('repaird' . ($i // 1), 'TERM');
    return $self;
}

# SIGKILL, as a crash: no clean exit, the lock goes with the session.
sub kill_repaird {
    my ($self, $i) = @_;
    my $name = 'repaird' . ($i // 1);
    my $pid = $self->_alive_name($name) or return $self;
    kill 'KILL', $pid;
    my $deadline = time + 10;
    while (time < $deadline && pid_alive($pid)) { sleep 0.02 }
    unlink $self->_pidfile($name);
    delete $self->{started}{$name};
    return $self;
}

# repaird_metrics($i) -> { "name{labels}" => value } from its /metrics.
sub repaird_metrics {
    my ($self, $i) = @_;
    my $r = HTTP::Tiny->new(timeout => 5)->get(
        'http://127.0.0.1:' . $self->repaird_port($i // 1) . '/metrics');
    return undef unless $r->{success};
    my %m;
    for (split /\n/, $r->{content}) {
        next if /^#/;
        $m{$1} = $2 if /^(\S+)\s+(-?[\d.e+]+)$/;
    }
    return \%m;
}

# --- nginx

sub _template_text {
    my ($self) = @_;
    return $self->{template_text} if defined $self->{template_text};
    return _read_file($self->{template})
        // croak "cannot read $self->{template}: $!";
}

# render(%overrides) -> text of conf/nginx.conf with every @TOKEN@ replaced.
# Overrides: any of http_extra server_extra rf w port module template_text
# auth.
sub render {
    my ($self, %o) = @_;
    my $g = sub { exists $o{$_[0]} ? $o{$_[0]} : $self->{ $_[0] } };
    my $text = exists $o{template_text} ? $o{template_text}
        : $self->_template_text;
    my %tok = (
        MODULE       => $g->('module'),
        PREFIX       => $o{prefix} // $self->{dir},
        USER         => $> == 0 ? 'nobody nogroup' : scalar getpwuid($>),
        LISTEN       => '127.0.0.1:' . (exists $o{port} ? $o{port}
                                        : $self->gateway_port(1)),
        PG_CONNINFO  => $self->pg_conninfo,
        CLUSTER_YAML => $self->cluster_yaml,
        CLUSTER_SECRET => $self->cluster_secret_file,
        HOP_SCHEME   => $self->node_scheme,
        HOP_TLS      => $self->{hop_tls} ? join("\n            ",
            'proxy_ssl_trusted_certificate ' . $self->tls_dir . '/ca.crt;',
            'proxy_ssl_verify on;', 'proxy_ssl_verify_depth 2;',
            'proxy_ssl_name plinth-datanode;',
            'proxy_ssl_protocols TLSv1.2 TLSv1.3;',
            'proxy_ssl_session_reuse on;') : '',
        RF           => $g->('rf'),
        W            => $g->('w'),
        AUTH         => $g->('auth'),
        HTTP_EXTRA   => $g->('http_extra') // '',
        SERVER_EXTRA => $g->('server_extra') // '',
    );
    # comment lines keep their tokens (the template documents them there)
    my @lines = split /(?<=\n)/, $text;
    for (@lines) {
        next if /^\s*#/;
        s{\@([A-Z][A-Z0-9_]*)\@}{exists $tok{$1} ? $tok{$1} : "\@$1\@"}ge;
    }
    return join '', @lines;
}

sub _nginx_test_file {
    my ($self, $file) = @_;
    # `nginx -t` returns from main() leaving the pool of its on-stack
    # init_cycle unreferenced (nginx.c: ngx_create_pool(1024) for init_cycle,
    # never destroyed on the -t path): nginx's leak, not Plinth's, and the
    # only one LeakSanitizer finds in it, so -t alone runs without leak
    # detection; the running master and workers keep it.
    my %env = $SAN_DIR ? (env => { ASAN_OPTIONS =>
        ($ENV{ASAN_OPTIONS} // '') . ':detect_leaks=0' }) : ();
    my ($rc, $out, $err) = run_command(
        [$NGINX, '-t', '-p', "$self->{dir}/", '-c', $file],
        timeout => 60, merge => 1, %env);
    return ($rc, $out);
}

# nginx_t($conf_text) or nginx_t(%overrides) -> ($exit_code, $output)
# Runs `nginx -t` on a config: the text given, or conf/nginx.conf rendered
# with overrides (see render).  Needs no running process.
sub nginx_t {
    my $self = shift;
    my $text = @_ == 1 ? $_[0] : $self->render(@_);
    $self->prepare;
    my $file = "$self->{dir}/nginx-t.conf";
    _write_file($file, $text);
    return $self->_nginx_test_file($file);
}

# Render with %o into nginx.conf after `nginx -t` accepted it.
sub _install_conf {
    my ($self, %o) = @_;
    my $text = $self->render(%o);
    croak "$self->{module} is not built (make module)"
        if $text =~ /^\s*load_module\s+\Q$self->{module}\E/m
        && !-f $self->{module};
    my $new = "$self->{dir}/nginx.conf.new";
    _write_file($new, $text);
    my ($rc, $out) = $self->_nginx_test_file($new);
    croak "nginx -t rejected the configuration ($new):\n$out" if $rc != 0;
    rename $new, $self->nginx_conf or croak "rename: $!";
    $self->{nginx_overrides} = {%o};
}

sub start_nginx {
    my ($self, %o) = @_;
    return $self if $self->_alive_name('nginx');
    $self->prepare unless -d "$self->{dir}/pids";
    $self->_install_conf(%o);
    my $port = exists $o{port} ? $o{port} : $self->gateway_port(1);
    if (!port_free($port) && !exists $o{port} && $self->{port_chosen}
        && $self->{gateways} == 1
        && !$self->_alive_name('nginx')) {
        # a port we chose was taken meanwhile (another test run): choose again
        $self->{port} = $port = free_port();
        $self->_save_ports;
        $self->_install_conf(%o);
    }
    my $log = "$self->{dir}/logs/nginx.stderr";
    croak "port $port (nginx) is in use by another program" unless port_free($port);
    my $pid = $self->_spawn('nginx', [$NGINX, '-p', "$self->{dir}/",
        '-c', $self->nginx_conf, '-g', 'daemon off;'], log => $log);
    unless (_wait_port($port, $self->{start_timeout}, sub { pid_alive($pid) })) {
        my $why = pid_alive($pid) ? "does not accept on port $port after "
            . "$self->{start_timeout}s" : "exited at start";
        $self->_stop_name('nginx', 'TERM');
        croak "nginx $why; logs:\n" . _tail($log, 10)
            . _tail($self->error_log_path, 20);
    }
    return $self;
}

sub stop_nginx {
    my ($self) = @_;
    $self->_stop_name('nginx', 'TERM');
    return $self;
}

# start_gateway($k), $k >= 2: another gateway (conf/nginx.conf rendered
# with prefix gwK/ and the gateway's own port), same PostgreSQL, same
# data nodes, same secret. Gateway 1 is start_nginx.
sub start_gateway {
    my ($self, $k) = @_;
    return $self->start_nginx if $k == 1;
    my $name = $self->gateway_name($k);
    return $self if $self->_alive_name($name);
    my $gd = $self->gateway_dir($k);
    for my $sub (qw(logs tmp)) {
        make_path("$gd/$sub");
        chmod 0755, $gd, "$gd/$sub";
    }
    my $port = $self->gateway_port($k);
    my $conf = "$gd/nginx.conf";
    _write_file("$conf.new", $self->render(port => $port, prefix => $gd));
    my ($rc, $out) = $self->_nginx_test_file("$conf.new");
    croak "nginx -t rejected gateway ${k}'s configuration ($conf.new):\n$out" if $rc != 0;
    rename "$conf.new", $conf or croak "rename $conf: $!";
    croak "port $port (gateway $k) is in use" unless port_free($port);
    my $log = "$gd/logs/nginx.stderr";
    my $pid = $self->_spawn($name, [$NGINX, '-p', "$gd/", '-c', $conf,
        '-g', 'daemon off;'], log => $log);
    unless (_wait_port($port, $self->{start_timeout}, sub { pid_alive($pid) })) {
        $self->_stop_name($name, 'TERM');
        croak "gateway $k does not start; logs:\n" . _tail($log, 10)
            . _tail("$gd/logs/error.log", 20);
    }
    return $self;
}

# quit_gateway($k): `nginx -s quit` (SIGQUIT to its master): it stops
# accepting at once, finishes what it has, exits. Waits (bounded) for the
# exit; returns the seconds it took.
sub quit_gateway {
    my ($self, $k) = @_;
    my $name = $self->gateway_name($k);
    my $pid = $self->_alive_name($name) or croak "gateway $k is not running";
    my $t0 = time;
    kill 'QUIT', $pid;
    my $deadline = $t0 + 60;
    while (time < $deadline && pid_alive($pid)) { sleep 0.05 }
    croak "gateway $k did not exit within 60 s of SIGQUIT" if pid_alive($pid);
    unlink $self->_pidfile($name);
    delete $self->{started}{$name};
    return time - $t0;
}

# The load balancer: plain nginx from conf/lb.conf on the endpoint port,
# an upstream of every gateway.
sub render_lb {
    my ($self) = @_;
    my $text = _read_file($self->{lb_template})
        // croak "cannot read $self->{lb_template}: $!";
    my %tok = (
        PREFIX   => $self->lb_dir,
        USER     => $> == 0 ? 'nobody nogroup' : scalar getpwuid($>),
        LISTEN   => "127.0.0.1:$self->{port}",
        GATEWAYS => join("\n        ", map {
            'server 127.0.0.1:' . $self->gateway_port($_)
            . ' max_fails=1 fail_timeout=2s;' } 1 .. $self->{gateways}),
    );
    my @lines = split /(?<=\n)/, $text;
    for (@lines) {
        next if /^\s*#/;
        s{\@([A-Z][A-Z0-9_]*)\@}{exists $tok{$1} ? $tok{$1} : "\@$1\@"}ge;
    }
    return join '', @lines;
}

sub start_lb {
    my ($self) = @_;
    return $self if $self->_alive_name('lb');
    my $ld = $self->lb_dir;
    for my $sub (qw(logs tmp)) {
        make_path("$ld/$sub");
        chmod 0755, $ld, "$ld/$sub";
    }
    my $conf = "$ld/nginx.conf";
    _write_file("$conf.new", $self->render_lb);
    my ($rc, $out) = $self->_nginx_test_file("$conf.new");
    croak "nginx -t rejected the load balancer's configuration ($conf.new):\n$out"
        if $rc != 0;
    rename "$conf.new", $conf or croak "rename $conf: $!";
    my $port = $self->{port};
    croak "port $port (load balancer) is in use" unless port_free($port);
    my $log = "$ld/logs/nginx.stderr";
    my $pid = $self->_spawn('lb', [$NGINX, '-p', "$ld/", '-c', $conf,
        '-g', 'daemon off;'], log => $log);
    unless (_wait_port($port, $self->{start_timeout}, sub { pid_alive($pid) })) {
        $self->_stop_name('lb', 'TERM');
        croak "the load balancer does not start; logs:\n" . _tail($log, 10)
            . _tail("$ld/logs/error.log", 20);
    }
    return $self;
}

# restart_nginx(%overrides): stop, render conf/nginx.conf with the
# overrides (only for this start: restart_nginx() goes back to the options
# given to new), start.
sub restart_nginx {
    my ($self, %o) = @_;
    $self->stop_nginx;
    $self->start_nginx(%o);
    return $self;
}

# reload_nginx(%overrides): re-render (checked by nginx -t first; like
# restart_nginx, no overrides means the options given to new), HUP the
# master, wait until every old worker is gone and new ones answer.
sub reload_nginx {
    my ($self, %o) = @_;
    my $master = $self->_alive_name('nginx')
        or croak "reload_nginx: nginx is not running";
    my @old = children_of($master);
    my $off = $self->error_log_size;
    $self->_install_conf(%o);
    kill 'HUP', $master;
    my $deadline = time + $self->{start_timeout};
    while (1) {
        my %old = map { $_ => 1 } @old;
        my @new = grep { !$old{$_} } children_of($master);
        my @left = grep { pid_alive($_) } @old;
        last if @new && !@left;
        croak "nginx reload not finished after $self->{start_timeout}s "
            . "(old workers left: @left, new: @new); error.log:\n"
            . $self->error_log_since($off)
            if time > $deadline;
        sleep 0.05;
    }
    _wait_port($self->{port}, 5)
        or croak "nginx does not accept on port $self->{port} after reload";
    return $self;
}

sub error_log_size { -s $_[0]->error_log_path || 0 }

# The text nginx appended to logs/error.log since $offset (bytes).
sub error_log_since {
    my ($self, $offset, $file) = @_;
    $file //= $self->error_log_path;
    open my $fh, '<', $file or return '';
    seek $fh, $offset // 0, 0;
    local $/;
    my $t = <$fh>;
    return $t // '';
}

sub stderr_log_path { "$_[0]{dir}/logs/nginx.stderr" }

# ---------------------------------------------------------------- cleanup

sub _install_signal_handlers {
    for my $sig (qw(INT TERM HUP)) {
        next if ref $SIG{$sig} || (defined $SIG{$sig} && $SIG{$sig} ne ''
            && $SIG{$sig} ne 'DEFAULT');
        $SIG{$sig} = sub { print STDERR "plinth: caught SIG$sig, stopping\n";
            exit 130 };
    }
}

sub cleanup {
    my ($self) = @_;
    return if $self->{cleaned} || $$ != $self->{owner_pid};
    $self->{cleaned} = 1;
    return if $self->{keep};
    local ($?, $!, $@);
    eval { $self->stop if %{ $self->{started} } || $self->any_running; 1 }
        or print STDERR "plinth: cleanup: $@";
    if ($self->{own_dir}) {
        if ($ENV{PLINTH_KEEP}) {
            print STDERR "# plinth: PLINTH_KEEP=1, cluster files kept in $self->{dir}\n";
        } else {
            remove_tree($self->{dir});
        }
    }
}

sub DESTROY { $_[0]->cleanup }

END {
    {
        local $?;
        for my $c (grep { defined } @INSTANCES) {
            $c->cleanup;
        }
    }
    # after every process is stopped (leak reports are written at exit)
    if ($SAN_DIR && $$ == $SAN_PID) {
        my @r = san_reports();
        for (@r) {
            print STDERR "# sanitizer report $_->[0]:\n$_->[1]\n";
        }
        if (@r) {
            print STDERR "# " . scalar(@r) . " sanitizer report(s): this test file fails\n";
            $? ||= 1;
        }
    }
}

1;
