# Bad input, inventoried: a data node's disk that is full, then read-only.
# Four data nodes, RF=3, W=2; node 4's data directory is a 2 MiB tmpfs
# mounted by this test (unmounted in END, even on failure).
#
# Full disk:
# - a write that does not fit: the node answers 507 disk_full before it
#   reads the body (Content-Length) or when a write hits ENOSPC (chunked),
#   and leaves nothing: no blob, tmp/ empty;
# - the gateway places the refused copy on the ring's next node for the
#   key (ngx_plinth_fanout.c, ngx_http_plinth_put_replace): every object
#   gets its 3 copies on nodes 1-3, reads back byte-exact;
# - filled to less than a block free, the node says "full" in /health and
#   repaird records it (node_health.is_full).
# Read-only data directory (remount,ro; root ignores permissions):
# - /health probes a write (create, write, fsync, unlink in tmp/): status
#   "read_only", writable false, the reason;
# - repaird records it as taking no writes (is_full); new PUTs go to the
#   other nodes; the blobs already there still read (directly and through
#   the gateway); remounted read-write, the node is "ok" again.
use lib 't/lib';
use Plinth::Test;
use Plinth::TestUtil;

# a write to a connection the node closed (a full disk refuses a body
# early) must fail the write, not kill the test before its END unmounts
$SIG{PIPE} = 'IGNORE';
use HTTP::Tiny;
use IO::Socket::INET;
use Time::HiRes qw(sleep time);

# mounting needs root (CAP_SYS_ADMIN): try once, or skip the file
{
    require File::Temp;
    my $probe = File::Temp::tempdir(CLEANUP => 1);
    my $ok = $> == 0
        && system("mount -t tmpfs -o size=64k tmpfs '$probe' 2>/dev/null") == 0;
    system('umount', $probe) if $ok;
    Test::More::plan(skip_all => 'cannot mount a tmpfs (needs root)') unless $ok;
}

cluster_options(
    auth => 'sigv4',
    nodes => 4,
    components => [qw(pg nodes nginx repaird)],
    per_node_opts => { 4 => { capacity_bytes => 0 } },
    http_extra => 'plinth_health_refresh 1s;',
    repaird_opts => {
        health_interval => '300ms',
        offline_after   => '30s',
        lock_retry      => '500ms',
        repair_interval => '60s',
        scrub_interval  => '60s',
        gc_interval     => '60s',
    },
);

our ($MNT, $CL, %OBJ);
our $HTTP = HTTP::Tiny->new(timeout => 10, keep_alive => 0);

END {
    # the node first (it holds the directory open), then the mount
    if ($MNT) {
        eval { $CL->stop_node(4) if $CL };
        system('umount', $MNT) == 0 or system('umount', '-l', $MNT);
    }
}

sub s3_code { ($_[0]{body} =~ m{<Code>([^<]+)</Code>})[0] // '' }

sub node_url { 'http://127.0.0.1:' . $::CL->node_port($_[0]) }

sub health {
    my ($i) = @_;
    my $r = $::HTTP->get(node_url($i) . '/health', { headers => { Accept => 'application/json' } });
    my %h;
    $h{status} = $1 if $r->{content} =~ /"status":"([^"]*)"/;
    $h{writable} = $1 if $r->{content} =~ /"writable":(true|false)/;
    $h{write_error} = $1 if $r->{content} =~ /"write_error":"([^"]*)"/;
    $h{free} = $1 if $r->{content} =~ /"disk_free_bytes":(\d+)/;
    $h{http} = $r->{status};
    return \%h;
}

sub node4_files {
    my $d = $::CL->node_data_dir(4);
    return (scalar(() = glob "$d/objects/*/*/*"), scalar(() = glob "$d/tmp/*"));
}

sub disk_placement {
    my ($key) = @_;
    my ($row) = $::CL->psql("SELECT array_to_string(v.nodes, ','), replace(v.blob_id::text, '-', '') "
        . "FROM versions v JOIN buckets b USING (bucket_id) WHERE b.name = 'disk' "
        . "AND v.key = '$key' AND v.state = 'committed'");
    return $row ? ([sort split /,/, $row->[0] // ''], $row->[1]) : ([], undef);
}

sub node_health_row {
    my ($row) = $::CL->psql("SELECT status, is_full FROM node_health WHERE node_id = 4");
    return $row ? "$row->[0] $row->[1]" : '';
}

# a direct write to a data node, chunked (no Content-Length: the node
# cannot refuse it up front)
sub chunked_put {
    my ($i, $id, $bytes) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $::CL->node_port($i),
        Timeout => 10) or die "connect: $!";
    binmode $s;
    my $hop = $::CL->hop_headers(PUT => "/blobs/$id");
    print $s "PUT /blobs/$id HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
        . join('', map { "$_: $hop->{$_}\r\n" } sort keys %$hop) . "\r\n";
    my $chunk = 'c' x 65536;
    for (1 .. int($bytes / 65536)) {
        last unless print $s sprintf("%x\r\n", length $chunk) . "$chunk\r\n";
    }
    print $s "0\r\n\r\n";
    my ($buf, $deadline) = ('', time + 30);
    while (time < $deadline) {
        my $n = sysread($s, $buf, 65536, length $buf);
        last unless $n;
    }
    close $s;
    my ($st) = $buf =~ m{^HTTP/1\.\d (\d+)};
    my ($err) = $buf =~ m{X-Plinth-Error: (\S+)}i;
    return ($st // 0, $err // '');
}

run_tests();

__DATA__

=== TEST 1: node 4's data directory on a 2 MiB tmpfs
--- check
$::CL = $cluster;
my $d = $cluster->node_data_dir(4);
$cluster->stop_node(4);
ok(system('mount', '-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', $d) == 0, "tmpfs mounted on $d");
$::MNT = $d;
$cluster->start_node(4);
my $h = health(4);
is($h->{status}, 'ok', 'node 4 is ok on its tmpfs');
is($h->{writable}, 'true', 'and writable');
ok($h->{free} <= 2 * 1024 * 1024, "its free space is the tmpfs's ($h->{free})");
is(s3_request(PUT => '/disk')->{status}, 200, 'bucket');



=== TEST 2: objects too large for node 4: it answers 507 up front, the gateway places the copy elsewhere
--- timeout: 120
--- check
my $log0 = $cluster->error_log_size;
for my $n (1 .. 8) {
    my $body = random_bytes(3 * 1024 * 1024 + $n);
    my $r = s3_request(PUT => "/disk/big$n", body => $body, timeout => 60);
    is($r->{status}, 200, "big$n: 200");
    $::OBJ{"big$n"} = md5_hex($body);
}
my $log = $cluster->error_log_since($log0);
# 507 before the body is read; or nginx, still sending it, sees the
# connection closed (rc 502, status 0)
my $with507 = () = $log =~ /data node 4 refused blob \S+: rc \d+, status 507/g;
my $refused = () = $log =~ /data node 4 refused blob/g;
my $moved = () = $log =~ /goes to data node \d+ in place of node 4/g;
ok($with507 >= 1, "node 4 refused $refused of the writes, $with507 of them with a 507 the gateway saw");
is($moved, $refused, 'each refused copy went to another node');
for my $k (sort keys %::OBJ) {
    my ($nodes) = disk_placement($k);
    is("@$nodes", '1 2 3', "$k: 3 copies, on nodes 1-3");
    my $g = s3_request(GET => "/disk/$k", timeout => 60);
    is(md5_hex($g->{body}), $::OBJ{$k}, "$k reads back byte-exact");
}
my ($blobs, $tmp) = node4_files();
is($blobs, 0, 'node 4 holds no blob');
is($tmp, 0, 'and nothing in its tmp/');
is(health(4)->{status}, 'ok', 'node 4 is still ok (nothing was written)');



=== TEST 3: ENOSPC mid-write (a chunked write, no Content-Length): 507 disk_full, no partial blob
--- timeout: 60
--- check
my ($st, $err) = chunked_put(4, 'ab' x 16, 3 * 1024 * 1024);
is($st, 507, 'node 4 answers 507');
is($err, 'disk_full', 'X-Plinth-Error: disk_full');
my ($blobs, $tmp) = node4_files();
is($blobs, 0, 'no blob under its final name');
is($tmp, 0, 'the temp file is removed');
is($::CL->node_request(4, GET => '/blobs/' . ('ab' x 16))->{status}, 404, 'the blob is not there');
is(health(4)->{status}, 'ok', 'the space came back: ok');



=== TEST 4: filled to under a block free: "full" in /health, repaird records it, writes avoid it
--- timeout: 60
--- check
my $id = 'cd' x 16;
my $r = $::CL->node_request(4, PUT => "/blobs/$id", { content => 'f' x (1536 * 1024) });
is($r->{status}, 201, 'a 1.5 MiB blob fits');
is(health(4)->{status}, 'full', 'node 4 says full');
ok(eval { wait_for(sub { node_health_row() eq 'online t' }, 20, 'repaird to record it full') },
   'repaird records it: online, is_full') or diag(node_health_row());
sleep 2.5;    # every worker's plinth_health_refresh (1s here)
my $log0 = $cluster->error_log_size;
for my $n (1 .. 4) {
    is(s3_request(PUT => "/disk/small$n", body => "small $n" x 100)->{status}, 200, "small$n: 200");
    my ($nodes) = disk_placement("small$n");
    ok(!grep({ $_ == 4 } @$nodes) && @$nodes == 3, "small$n: 3 copies, none on node 4 (@$nodes)");
}
unlike($cluster->error_log_since($log0), qr/data node 4 refused/, 'node 4 was not even tried');
is($::CL->node_request(4, DELETE => "/blobs/$id")->{status}, 204, 'the filler removed');
is(health(4)->{status}, 'ok', 'ok again');
ok(eval { wait_for(sub { node_health_row() eq 'online f' }, 20, 'repaird to record it') },
   'repaird records it writable again');
sleep 2.5;    # every worker's plinth_health_refresh (1s here): node 4 takes writes again



=== TEST 5: a read-only data directory: "read_only" in /health, writes go elsewhere, reads still work
--- timeout: 120
--- check
# objects with a copy on node 4, written while it is writable
my @on4;
for my $n (1 .. 12) {
    my $body = "on node 4 maybe, $n " x 50;
    is(s3_request(PUT => "/disk/ro$n", body => $body)->{status}, 200, "ro$n: 200");
    my ($nodes, $blob) = disk_placement("ro$n");
    push @on4, ["ro$n", $blob, md5_hex($body)] if grep { $_ == 4 } @$nodes;
}
ok(@on4 >= 2, scalar(@on4) . ' of them have a copy on node 4');
ok(system('mount', '-o', 'remount,ro', $::MNT) == 0, 'node 4 remounted read-only');
# /health probes at most once a second
my $h = eval { wait_for(sub { my $x = health(4); $x->{status} eq 'read_only' && $x }, 10, 'read_only') } || health(4);
is($h->{http}, 200, '/health answers');
is($h->{status}, 'read_only', 'status read_only');
is($h->{writable}, 'false', 'writable false');
like($h->{write_error}, qr/Read-only file system/, 'and why');
ok(eval { wait_for(sub { node_health_row() eq 'online t' }, 20, 'repaird to record it') },
   'repaird records it: online (readable), takes no writes') or diag(node_health_row());
# before the gateways know it: a write to node 4 fails (500 io_error) and
# goes to another node
my $log0 = $cluster->error_log_size;
my $early = 'written before the gateways know';
is(s3_request(PUT => '/disk/early', body => $early)->{status}, 200, 'a write at once: 200');
my ($en) = disk_placement('early');
ok(!grep({ $_ == 4 } @$en) && @$en == 3, "3 copies, none on node 4 (@$en)");
is(s3_request(GET => '/disk/early')->{body}, $early, 'it reads back');
sleep 2.5;    # every worker's plinth_health_refresh (1s here)
for my $n (1 .. 6) {
    my $body = "while read-only $n" x 20;
    is(s3_request(PUT => "/disk/rw$n", body => $body)->{status}, 200, "rw$n: 200");
    my ($nodes) = disk_placement("rw$n");
    ok(!grep({ $_ == 4 } @$nodes) && @$nodes == 3, "rw$n: 3 copies, none on node 4 (@$nodes)");
    is(s3_request(GET => "/disk/rw$n")->{body}, $body, "rw$n reads back");
}
for my $o (@on4) {
    my ($key, $blob, $md5) = @$o;
    my $g = $::CL->node_request(4, GET => "/blobs/$blob");
    is($g->{status}, 200, "$key: node 4 still serves its copy");
    is(md5_hex($g->{content}), $md5, "$key: byte-exact");
    is(md5_hex(s3_request(GET => "/disk/$key")->{body}), $md5, "$key reads back through the gateway");
}
# a write straight to it fails cleanly
my ($st, $err) = chunked_put(4, 'ef' x 16, 100_000);
is($st, 500, 'a direct write: 500');
is($err, 'io_error', 'io_error');
ok(system('mount', '-o', 'remount,rw', $::MNT) == 0, 'remounted read-write');
ok(eval { wait_for(sub { health(4)->{status} eq 'ok' }, 10, 'ok') }, 'node 4 is ok again');
ok(eval { wait_for(sub { node_health_row() eq 'online f' }, 20, 'repaird to record it') },
   'repaird records it writable again');
my ($blobs, $tmp) = node4_files();
is($tmp, 0, 'nothing left in its tmp/');
