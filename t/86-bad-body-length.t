# Bad input, inventoried: a body that does not match its Content-Length.
#
# Shorter (the client disconnects mid-PUT): the gateway reads a whole body
# before any byte goes to a data node (GATEWAY.md), so a body cut off
# reaches no data node and no version is begun; nginx logs "client
# prematurely closed connection" and sends nothing (there is nobody to
# answer).  Checked: no version row of any state for the key, the key's
# previous version still served, and after repaird's garbage collection
# (short grace periods) every blob file on every data node belongs to a
# committed version, and the data nodes' tmp/ directories are empty.
#
# Longer: HTTP says the body is exactly Content-Length bytes; what follows
# is the next request on the connection.  So the object gets the declared
# bytes unless the client's own checks refuse them: a signed payload hash
# of the longer body -> 400 XAmzContentSHA256Mismatch, a Content-MD5 of it
# -> 400 BadDigest (nothing stored); unsigned and without Content-MD5 the
# declared prefix is stored (that is what was sent, by HTTP's rules), and
# the extra bytes, parsed as a request line, get nginx's own 400.
use lib 't/lib';
use Plinth::Test;
use Plinth::TestUtil;
use Digest::MD5 ();
use Digest::SHA qw(sha256_hex);
use MIME::Base64 qw(encode_base64);
use IO::Socket::INET;
use Time::HiRes qw(sleep time);

cluster_options(
    auth => 'sigv4',
    components => [qw(pg nodes nginx repaird)],
    repaird_opts => {
        health_interval => '300ms',
        lock_retry      => '500ms',
        repair_interval => '60s',
        scrub_interval  => '1s',
        scrub_grace     => '1s',
        gc_interval     => '500ms',
        gc_grace        => '1s',
        pending_grace   => '1s',
        orphan_grace    => '2s',
    },
);

our ($BEFORE, $UP);

sub snapshot {
    my @s;
    for my $k (qw(short long)) {
        my $r = s3_request(GET => "/blen/$k");
        push @s, "$k $r->{status} " . ($r->{headers}{etag} // '') . ' ' . md5_hex($r->{body});
    }
    my $l = s3_request(GET => '/blen?list-type=2');
    push @s, join ',', $l->{body} =~ m{<Key>([^<]+)</Key>}g;
    my $p = s3_request(GET => "/blen/mp?uploadId=$::UP");
    push @s, "parts $p->{status} " . join ',', $p->{body} =~ m{<ETag>([^<]+)</ETag>}g;
    return join "\n", @s;
}

sub s3_code { ($_[0]{body} =~ m{<Code>([^<]+)</Code>})[0] // '' }

# every blob file on every data node, and what is in their tmp/
sub blob_files {
    my ($c) = @_;
    my (%blobs, @tmp);
    for my $i (1 .. $c->nodes) {
        my $d = $c->node_data_dir($i);
        for my $f (glob "$d/objects/*/*/*") {
            $blobs{ (split m{/}, $f)[-1] } .= "$i,";
        }
        push @tmp, glob "$d/tmp/*";
    }
    return (\%blobs, \@tmp);
}

# blobs of committed versions and of upload parts: the only ones that may stay
sub live_blobs {
    my ($c) = @_;
    my %live;
    for my $q ("SELECT replace(blob_id::text, '-', '') FROM versions WHERE state = 'committed' AND blob_id IS NOT NULL",
               "SELECT replace(blob_id::text, '-', '') FROM version_parts",
               "SELECT replace(blob_id::text, '-', '') FROM upload_parts") {
        $live{ $_->[0] } = 1 for $c->psql($q);
    }
    return \%live;
}

# a signed PUT whose body stops after $send of its $len bytes: the socket is
# closed there
sub cut_put {
    my ($c, $uri, $len, $send) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->port,
        Proto => 'tcp', Timeout => 5) or die "connect: $!";
    binmode $s;
    my $head = "PUT $uri HTTP/1.1\r\n"
        . sign_request(PUT => $uri, format => 'raw', payload_hash => 'UNSIGNED-PAYLOAD',
                       headers => [Host => 'localhost', 'Content-Length' => $len])
        . "\r\n";
    my $data = $head . ('z' x $send);
    my $off = 0;
    while ($off < length $data) {
        my $n = syswrite($s, $data, 65536 > length($data) - $off ? length($data) - $off : 65536, $off);
        die "write: $!" unless defined $n;
        $off += $n;
    }
    sleep 0.2;    # the gateway has read what was sent
    close $s;
}

sub versions_of {
    my ($c, $key) = @_;
    return map { $_->[0] } $c->psql("SELECT v.state FROM versions v JOIN buckets b USING (bucket_id) "
        . "WHERE b.name = 'blen' AND v.key = '$key'");
}

run_tests();

__DATA__

=== TEST 1: what is stored: two objects, an open upload with a part
--- check
is(s3_request(PUT => '/blen')->{status}, 200, 'bucket');
is(s3_request(PUT => '/blen/short', body => 'short, before')->{status}, 200, 'short');
is(s3_request(PUT => '/blen/long', body => 'long, before')->{status}, 200, 'long');
my $r = s3_request(POST => '/blen/mp?uploads');
($::UP) = $r->{body} =~ m{<UploadId>([^<]+)</UploadId>};
ok($::UP, 'an open upload');
is(s3_request(PUT => "/blen/mp?partNumber=1&uploadId=$::UP", body => 'part one')->{status}, 200, 'its part');
$::BEFORE = snapshot();
note($::BEFORE);



=== TEST 2: the client disconnects mid-body: no version, no blob after garbage collection
--- timeout: 120
--- check
my $log0 = $cluster->error_log_size;
my @cuts = (
    ['small body, half sent', '/blen/short', 10_000, 5_000],
    ['head only, nothing of the body', '/blen/short', 1_000, 0],
    ['large body (spooled to a temp file), 3 of 8 MiB', '/blen/short', 8 << 20, 3 << 20],
    ['a new key, 1 byte short', '/blen/newkey', 4096, 4095],
    ['a multipart part, half sent', "/blen/mp?partNumber=2&uploadId=$::UP", 6 << 20, 3 << 20],
    ['a multipart part replacing part 1', "/blen/mp?partNumber=1&uploadId=$::UP", 100_000, 1],
);
for my $cut (@cuts) {
    my ($what, $uri, $len, $send) = @$cut;
    cut_put($cluster, $uri, $len, $send);
    is(snapshot(), $::BEFORE, "$what: everything stored is as it was");
}
# nginx saw every one of them go
my $n = wait_for(sub {
    my $log = $cluster->error_log_since($log0);
    my $k = () = $log =~ /client prematurely closed connection/g;
    $k >= @cuts ? $k : 0 }, 30, 'nginx to log the disconnects');
is($n, scalar @cuts, 'nginx logged each disconnect ("client prematurely closed connection")');
is(join(',', versions_of($cluster, 'newkey')), '', 'no version row of any state for the new key');
is(join(',', versions_of($cluster, 'short')), 'committed', 'the old key: only its committed version');

# garbage collection has run since: an overwritten version's blob, made
# now, goes; then every blob file left belongs to something live
my ($vb) = $cluster->psql("SELECT replace(v.blob_id::text, '-', '') FROM versions v JOIN buckets b USING (bucket_id) "
    . "WHERE b.name = 'blen' AND v.key = 'long' AND v.state = 'committed'");
is(s3_request(PUT => '/blen/long', body => 'long, after')->{status}, 200, 'long overwritten (garbage to collect)');
wait_for(sub { my ($b) = blob_files($cluster); !exists $b->{ $vb->[0] } }, 60,
    'garbage collection to remove the overwritten blob');
pass('garbage collection removed the overwritten version\'s blob');
# and a scrub pass (which finds orphans) has run past orphan_grace
sleep 3;
my $m0 = $cluster->repaird_metrics(1)->{plinth_scrub_blobs_checked_total} // 0;
wait_for(sub { ($cluster->repaird_metrics(1)->{plinth_scrub_blobs_checked_total} // 0) > $m0 }, 60,
    'a scrub pass');
my ($blobs, $tmp) = blob_files($cluster);
my $live = live_blobs($cluster);
is(join(' ', sort grep { !$live->{$_} } keys %$blobs), '', 'every blob file on the data nodes belongs to a live version or part');
is(join(' ', @$tmp), '', 'no write in progress is left in any data node\'s tmp/');
ok(scalar(keys %$blobs) >= 3, 'the live blobs are there (' . scalar(keys %$blobs) . ')');
$::BEFORE = snapshot();
is(s3_request(GET => '/blen/long')->{body}, 'long, after', 'long reads back');



=== TEST 3: a body longer than Content-Length
--- timeout: 60
--- check
my $declared = 'x' x 100;
my $sent = $declared . ('y' x 100);
my $put = sub {
    my ($uri, @h) = @_;
    my %o = @h;
    my $hash = delete $o{hash};
    my $r = raw_request("PUT $uri HTTP/1.1\r\n"
        . sign_request(PUT => $uri, format => 'raw', payload_hash => $hash,
                       headers => [Host => 'localhost', 'Content-Length' => length $declared, %o])
        . "\r\n" . $sent, timeout => 20);
    return $r;
};
# signed payload hash of all 200 bytes: the 100 read do not match it
my $r = $put->('/blen/short', hash => sha256_hex($sent));
is($r->{status}, 400, 'signed hash of the longer body: 400');
is(s3_code($r), 'XAmzContentSHA256Mismatch', 'XAmzContentSHA256Mismatch');
is(snapshot(), $::BEFORE, 'nothing stored changed');
# Content-MD5 of all 200 bytes
$r = $put->('/blen/short', hash => 'UNSIGNED-PAYLOAD',
    'Content-MD5' => encode_base64(Digest::MD5::md5($sent), ''));
is($r->{status}, 400, 'Content-MD5 of the longer body: 400');
is(s3_code($r), 'BadDigest', 'BadDigest');
is(snapshot(), $::BEFORE, 'nothing stored changed');
# neither: the declared 100 bytes are the body, the rest is a bad next request
$r = $put->('/blen/longer', hash => 'UNSIGNED-PAYLOAD');
is($r->{status}, 200, 'unsigned, no Content-MD5: 200 for the declared bytes');
my $g = s3_request(GET => '/blen/longer');
is($g->{body}, $declared, 'the object is exactly the declared 100 bytes');
is($g->{headers}{etag}, '"' . md5_hex($declared) . '"', 'ETag of those bytes');
# the extra bytes as the next request on the connection
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $cluster->port, Timeout => 5);
my $uri = '/blen/longer2';
print $s "PUT $uri HTTP/1.1\r\n"
    . sign_request(PUT => $uri, format => 'raw', payload_hash => 'UNSIGNED-PAYLOAD',
                   headers => [Host => 'localhost', 'Content-Length' => length $declared])
    . "\r\n" . $sent;
my ($buf, $deadline) = ('', time + 20);
$s->blocking(0);
while (time < $deadline) {
    my $n = sysread($s, $buf, 65536, length $buf);
    last if defined $n && $n == 0;
    last if $buf =~ m{HTTP/1\.1 200.*HTTP/1\.1 400}s && $buf =~ m{</html>};
    sleep 0.05;
}
close $s;
my @st = $buf =~ m{^HTTP/1\.1 (\d+)}mg;
is("@st", '200 400', 'on one connection: 200 for the PUT, then 400 for the extra bytes');
like($buf, qr{<center>nginx}, 'the 400 is nginx\'s own (the bytes are no request)');
is(s3_request(GET => "/blen/longer2")->{body}, $declared, 'that object too holds the declared bytes');
for my $k (qw(longer longer2)) {
    is(s3_request(DELETE => "/blen/$k")->{status}, 204, "$k deleted");
}
is(snapshot(), $::BEFORE, 'the rest is as it was');



=== TEST 4: the whole body sent, the client gone before the answer: all or nothing, no stray blob
--- timeout: 120
--- check
my $body = random_bytes(3 << 20);
for my $n (1 .. 3) {
    my $uri = "/blen/gone$n";
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $cluster->port, Timeout => 5)
        or die "connect: $!";
    binmode $s;
    my $data = "PUT $uri HTTP/1.1\r\n"
        . sign_request(PUT => $uri, format => 'raw', payload_hash => 'UNSIGNED-PAYLOAD',
                       headers => [Host => 'localhost', 'Content-Length' => length $body])
        . "\r\n" . $body;
    my $off = 0;
    while ($off < length $data) {
        my $w = syswrite($s, $data, length($data) - $off, $off);
        die "write: $!" unless defined $w;
        $off += $w;
    }
    close $s;    # at once: the fan-out is under way
}
# the gateway finishes or abandons each write on its own: a PUT is in the
# access log once the gateway is done with it (a PUT whose body is still
# being handled has no version row yet, which is not "decided")
my @states;
wait_for(sub {
    open my $fh, '<', $cluster->dir . '/logs/access.log' or return 0;
    my $log = do { local $/; <$fh> };
    return 0 if grep { $log !~ /"bucket":"blen","key":"gone$_","method":"PUT"/ } 1 .. 3;
    @states = map { join ',', versions_of($cluster, "gone$_") } 1 .. 3;
    !grep { /pending/ } @states }, 30, 'the writes to be decided');
for my $n (1 .. 3) {
    my $st = $states[$n - 1];
    ok($st eq 'committed' || $st eq '' || $st eq 'failed', "gone$n: committed or nothing ($st)");
    my $g = s3_request(GET => "/blen/gone$n", timeout => 60);
    if ($st eq 'committed') {
        is(md5_hex($g->{body}), md5_hex($body), "gone$n: committed, and whole");
    } else {
        is($g->{status}, 404, "gone$n: not committed, not served");
    }
}
# after garbage collection (a scrub pass finds orphans), nothing stray
sleep 3;
my $m0 = $cluster->repaird_metrics(1)->{plinth_scrub_blobs_checked_total} // 0;
wait_for(sub { ($cluster->repaird_metrics(1)->{plinth_scrub_blobs_checked_total} // 0) > $m0 }, 60,
    'a scrub pass');
wait_for(sub {
    my ($blobs) = blob_files($cluster);
    my $live = live_blobs($cluster);
    !grep { !$live->{$_} } keys %$blobs }, 30, 'only live blobs');
my ($blobs, $tmp) = blob_files($cluster);
my $live = live_blobs($cluster);
is(join(' ', sort grep { !$live->{$_} } keys %$blobs), '', 'every blob file belongs to a live version or part');
is(join(' ', @$tmp), '', 'no tmp/ leftovers');
