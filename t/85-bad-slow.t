# Bad input, inventoried: clients that are too slow.  nginx's own timeouts
# answer them, before or around the module (conf/nginx.conf sets them; here
# they are 1 s so the test stays short):
# - headers too slow (client_header_timeout): nginx closes the connection
#   without an answer and logs 408; the module never saw a request;
# - a body too slow (client_body_timeout): nginx ends the request with 408
#   and closes the connection without an answer (there is nobody reading
#   one, and S3 does the same: RequestTimeout is only advisory); the PUT
#   never reached a data node: no version, no blob;
# - a reader too slow for a GET (send_timeout): the connection is closed,
#   the data-node subrequest is cancelled, the worker goes on.
# That nginx answers, not the module, is acceptable: no S3 request was
# complete, so there is no S3 error to give, and a client that stalls gets
# no answer from S3 either (it closes the connection, 400 RequestTimeout
# at best).  After each: what is stored is unchanged and the gateway
# serves the next request at once.
use lib 't/lib';
use Plinth::Test;
use Plinth::TestUtil;
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(sleep time);

cluster_options(
    auth => 'sigv4',
    server_extra => join("\n",
        'client_header_timeout 1s;',
        'client_body_timeout 1s;',
        'send_timeout 1s;'),
);

our ($BEFORE, $BIG);

sub snapshot {
    my @s;
    for my $k (qw(slow)) {
        my $r = s3_request(GET => "/slowb/$k");
        push @s, "$k $r->{status} " . ($r->{headers}{etag} // '') . ' ' . md5_hex($r->{body});
    }
    my $l = s3_request(GET => '/slowb?list-type=2');
    push @s, join ',', $l->{body} =~ m{<Key>([^<]+)</Key>}g;
    my $v = s3_request(GET => '/slowb?versions');
    push @s, join ',', $v->{body} =~ m{<VersionId>([^<]+)</VersionId>}g;
    return join "\n", @s;
}

sub blob_count {
    my $n = 0;
    for my $i (1 .. cluster()->nodes) {
        my $d = cluster()->node_data_dir($i);
        $n += () = glob "$d/objects/*/*/*";
        $n += () = glob "$d/tmp/*";
    }
    return $n;
}

# a connection that sends $bytes, then nothing; returns what came back and
# how long until the server closed it
sub stall {
    my ($bytes, $limit) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => cluster()->port,
        Proto => 'tcp', Timeout => 5) or die "connect: $!";
    binmode $s;
    my $t0 = time;
    syswrite($s, $bytes) == length $bytes or die "write: $!";
    my ($got, $closed) = ('', 0);
    my $sel = IO::Select->new($s);
    while (time - $t0 < $limit) {
        next unless $sel->can_read(0.2);
        my $n = sysread($s, $got, 65536, length $got);
        if (!$n) { $closed = 1; last }
    }
    close $s;
    return ($got, $closed, time - $t0);
}

sub access_statuses {
    my ($off) = @_;
    my $log = cluster()->error_log_since($off, cluster()->dir . '/logs/access.log');
    return [map { /"status":(\d+)/ ? $1 : () } split /\n/, $log];
}

# the access log's size once it has settled: nginx logs a request after
# its answer is sent, so the line of the last request a check made may
# land a moment after the client has it (bounded: at most 3 s)
sub access_size {
    my $path = cluster()->dir . '/logs/access.log';
    my ($t0, $size) = (time, -s $path || 0);
    while (time - $t0 < 3) {
        sleep 0.25;
        my $now = -s $path || 0;
        last if $now == $size;
        $size = $now;
    }
    return $size;
}

run_tests();

__DATA__

=== TEST 1: what is stored: a bucket with versioning and an object
--- check
is(s3_request(PUT => '/slowb')->{status}, 200, 'bucket');
is(s3_request(PUT => '/slowb?versioning', body => '<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>')->{status}, 200, 'versioned');
is(s3_request(PUT => '/slowb/slow', body => 'stored before')->{status}, 200, 'an object');
$::BIG = random_bytes(8 * 1024 * 1024);
is(s3_request(PUT => '/slowb/big', body => $::BIG, timeout => 60)->{status}, 200, 'an 8 MiB object');
$::BEFORE = snapshot();



=== TEST 2: headers too slow: closed after client_header_timeout, no answer, 408 logged
--- timeout: 30
--- check
for my $c (['nothing at all', ''],
           ['half a request line', 'PUT /slowb/slo'],
           ['the request line, then a header cut', "PUT /slowb/slow HTTP/1.1\r\nHost: local"],
           ['every header but the blank line', "GET /slowb/slow HTTP/1.1\r\nHost: localhost\r\n"]) {
    my ($what, $bytes) = @$c;
    my $off = access_size();
    my ($got, $closed, $dt) = stall($bytes, 10);
    ok($closed, "$what: the gateway closed the connection");
    ok($dt >= 0.9 && $dt < 5, "$what: after client_header_timeout (" . sprintf('%.1f', $dt) . ' s)');
    is($got, '', "$what: no answer was sent");
    my $st = eval { wait_for(sub { my $s = access_statuses($off); @$s ? $s : 0 }, 5, 'the access log') } || [];
    # nginx logs no line for a connection that never sent a byte
    is("@$st", length $bytes ? '408' : '', "$what: access log: " . (length $bytes ? '408' : 'nothing'));
    is(snapshot(), $::BEFORE, "$what: nothing stored changed");
}



=== TEST 3: a body too slow: closed after client_body_timeout, 408 logged, nothing stored, no blob anywhere
--- timeout: 60
--- check
my $blobs = blob_count();
for my $c (['PutObject, 10 of 1000 bytes', 'PUT', '/slowb/slow', 1000, 10],
           ['PutObject, a new key, 1 MiB of 4', 'PUT', '/slowb/new', 4 << 20, 1 << 20],
           ['DeleteObjects XML, half sent', 'POST', '/slowb?delete', 200, 100]) {
    my ($what, $method, $uri, $len, $send) = @$c;
    my $off = access_size();
    my $head = "$method $uri HTTP/1.1\r\n"
        . sign_request($method => $uri, format => 'raw', payload_hash => 'UNSIGNED-PAYLOAD',
                       headers => [Host => 'localhost', 'Content-Length' => $len])
        . "\r\n";
    my ($got, $closed, $dt) = stall($head . ('b' x $send), 15);
    ok($closed, "$what: the gateway closed the connection");
    ok($dt >= 0.9 && $dt < 8, "$what: after client_body_timeout (" . sprintf('%.1f', $dt) . ' s)');
    is($got, '', "$what: no answer was sent");
    my $st = eval { wait_for(sub { my $s = access_statuses($off); @$s ? $s : 0 }, 5, 'the access log') } || [];
    is("@$st", '408', "$what: access log: 408");
    is(snapshot(), $::BEFORE, "$what: nothing stored changed");
    is(blob_count(), $blobs, "$what: no blob or temp file on any data node");
    is(s3_request(GET => '/slowb/slow')->{status}, 200, "$what: the next request is served");
}



=== TEST 4: a reader too slow: closed after send_timeout, the worker goes on
--- timeout: 60
--- check
my $off = access_size();
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $cluster->port, Timeout => 5);
# a small receive buffer, and nothing read: the 8 MiB cannot be sent
setsockopt($s, Socket::SOL_SOCKET(), Socket::SO_RCVBUF(), 4096);
my $uri = '/slowb/big';
print $s "GET $uri HTTP/1.1\r\n" . sign_request(GET => $uri, format => 'raw',
    headers => [Host => 'localhost']) . "\r\n";
my $t0 = time;
my $st = eval { wait_for(sub { my $x = access_statuses($off); @$x ? $x : 0 }, 30, 'the access log') } || [];
my $dt = time - $t0;
is("@$st", '200', 'logged: 200 (the headers were sent)');
ok($dt < 20, 'ended by send_timeout, not by the reader (' . sprintf('%.1f', $dt) . ' s)');
my ($log) = cluster()->error_log_since(0) =~ /(client timed out[^\n]*)/;
ok($log, 'nginx: "client timed out"') or diag(cluster()->error_log_since(0) =~ /([^\n]*timed out[^\n]*)/);
# what did arrive is a prefix, far from whole
my ($got, $n) = ('', 0);
$s->blocking(0);
while (defined($n = sysread($s, $got, 65536, length $got)) && $n > 0) {}
close $s;
ok(length($got) < length($::BIG), 'the slow reader got part of it (' . length($got) . ' bytes)');
my $g = s3_request(GET => $uri, timeout => 60);
is(md5_hex($g->{body}), md5_hex($::BIG), 'the next reader gets all of it');
is(snapshot(), $::BEFORE, 'nothing stored changed');
