# Striped GET (ngx_plinth_stripe.c): a large object, or a large range of
# one, read in stripes from several replicas at once and sent in order.
# Byte-compared: whole objects, ranges across stripes and parts, a
# multipart object; a replica corrupt in the middle of a stripe (resumed
# at the byte), each replica corrupt somewhere else, a stripe no replica
# can read after the headers (the connection cut short), every replica
# gone (a clean 503); a throttled replica dropped from the stripe (what
# each node sent, from its /metrics); egress counted; bad directive values.
use lib 't/lib';
use Plinth::Test;

# 4 MiB stripes of 1 MiB blocks: a stripe's read spans blocks, so a
# corrupt block in its middle is met after bytes were sent
cluster_options(http_extra => "plinth_stripe_size 4m;\n    plinth_stripe_window 3;\n    plinth_usage_flush 1s;");

our %BODY;

sub put_ok {
    my ($uri, $body) = @_;
    my $r = s3_request(PUT => $uri, body => $body, timeout => 120);
    die "PUT $uri: $r->{status} $r->{body}" unless $r->{status} == 200;
    $BODY{$uri} = $body;
    return $r;
}

# the access log line of the last request for $key
sub last_access {
    my ($key) = @_;
    open my $fh, '<', cluster()->dir . '/logs/access.log' or return {};
    my $line;
    while (<$fh>) { $line = $_ if /"key":"\Q$key\E"/ }
    close $fh;
    require JSON::PP;
    return $line ? JSON::PP::decode_json($line) : {};
}

sub node_sent {
    my ($i) = @_;
    my $r = cluster()->node_request($i, GET => '/metrics');
    return $r->{content} =~ /^plinth_node_sent_bytes_total\{[^}]*\} (\d+)/m ? $1 : -1;
}

run_tests();

__DATA__

=== TEST 1: objects: 20 MiB + 5 bytes, a multipart one of 5 MiB + 9 MiB + 1 MiB parts, one of 9 MiB
--- timeout: 180
--- check
is(s3_request(PUT => '/stp')->{status}, 200, 'bucket');
main::put_ok('/stp/big', random_bytes(20 * 1024 * 1024 + 5));
main::put_ok('/stp/nine', random_bytes(9 * 1024 * 1024));
my $r = s3_request(POST => '/stp/mp?uploads');
my ($id) = $r->{body} =~ m{<UploadId>([^<]+)</UploadId>};
my @parts = (random_bytes(5 * 1024 * 1024), random_bytes(9 * 1024 * 1024), random_bytes(1024 * 1024));
my @etags;
for my $n (1 .. 3) {
    $r = s3_request(PUT => "/stp/mp?partNumber=$n&uploadId=$id", body => $parts[$n - 1], timeout => 60);
    push @etags, $r->{headers}{etag};
}
my $xml = '<CompleteMultipartUpload>'
    . join('', map { "<Part><PartNumber>$_</PartNumber><ETag>$etags[$_ - 1]</ETag></Part>" } 1 .. 3)
    . '</CompleteMultipartUpload>';
is(s3_request(POST => "/stp/mp?uploadId=$id", body => $xml, timeout => 60)->{status}, 200, 'multipart object');
$::BODY{'/stp/mp'} = join '', @parts;



=== TEST 2: whole GETs are byte-identical, and several replicas served each
--- timeout: 60
--- check
for my $key (qw(big nine mp)) {
    my $want = $::BODY{"/stp/$key"};
    my $r = s3_request(GET => "/stp/$key", timeout => 60);
    is($r->{status}, 200, "$key: 200");
    is($r->{headers}{'content-length'}, length $want, "$key: Content-Length");
    ok(length($r->{body}) == length($want) && md5_hex($r->{body}) eq md5_hex($want),
       "$key: byte-identical (" . length($want) . " bytes)");
    my $log = main::last_access($key);
    my @nodes = split /,/, $log->{nodes} // '';
    cmp_ok(scalar @nodes, '>=', 2, "$key: read from several replicas ($log->{nodes})");
}



=== TEST 3: ranges across stripes and parts, a suffix, an open end
--- timeout: 60
--- check
my $big = $::BODY{'/stp/big'};
my $mp = $::BODY{'/stp/mp'};
my @cases = (
    ['big', 'bytes=1000-15000000', substr($big, 1000, 15000000 - 1000 + 1)],
    ['big', 'bytes=4194303-12582913', substr($big, 4194303, 12582913 - 4194303 + 1)],
    ['big', 'bytes=-9000001', substr($big, -9000001)],
    ['big', 'bytes=11000000-', substr($big, 11000000)],
    ['mp', 'bytes=5000000-14680065', substr($mp, 5000000, 14680065 - 5000000 + 1)],
    ['mp', 'bytes=0-', $mp],
);
for my $c (@cases) {
    my ($key, $range, $want) = @$c;
    my $r = s3_request(GET => "/stp/$key", headers => [Range => $range], timeout => 60);
    is($r->{status}, 206, "$key $range: 206");
    ok(length($r->{body}) == length($want) && md5_hex($r->{body}) eq md5_hex($want),
       "$key $range: byte-identical (" . length($want) . " bytes)");
}



=== TEST 4: a replica corrupt in the middle of a stripe: the stripe resumes at that byte elsewhere
--- timeout: 60
--- check
my ($blob, $nodes) = main::placement('stp', 'big');
# block 5 (stripe 1 holds blocks 4-7) on two replicas, at different bytes:
# whichever the stripe asks first, its read fails after bytes were sent
my $off = cluster()->error_log_size;
flip_byte(cluster()->blob_path($nodes->[0], $blob), 5 * 1024 * 1024 + 777);
flip_byte(cluster()->blob_path($nodes->[1], $blob), 5 * 1024 * 1024 + 99999);
my $r = s3_request(GET => '/stp/big', timeout => 60);
is($r->{status}, 200, '200');
ok(md5_hex($r->{body}) eq md5_hex($::BODY{'/stp/big'}), 'byte-identical');
my $log = cluster()->error_log_since($off);
like($log, qr/resuming on another replica|answered 500/, 'a failed replica was left for another');



=== TEST 5: every replica corrupt, each in another block: the GET is still whole
--- timeout: 60
--- check
# one bad block in each stripe, on another replica each time: every
# stripe starts with all its replicas (an unstriped read would have set
# each replica aside in turn and run out)
my ($blob, $nodes) = main::placement_all('stp', 'nine');
flip_byte(cluster()->blob_path($nodes->[0], $blob), 1 * 1024 * 1024 + 5);
flip_byte(cluster()->blob_path($nodes->[1], $blob), 5 * 1024 * 1024 + 5);
flip_byte(cluster()->blob_path($nodes->[2], $blob), 8 * 1024 * 1024 + 5);
for my $round (1 .. 3) {
    my $r = s3_request(GET => '/stp/nine', timeout => 60);
    is($r->{status}, 200, "round $round: 200");
    ok(md5_hex($r->{body}) eq md5_hex($::BODY{'/stp/nine'}), "round $round: byte-identical");
}



=== TEST 6: a later stripe no replica can read: headers went out, so the connection is cut short
--- timeout: 60
--- check
main::put_ok('/stp/doomed', random_bytes(12 * 1024 * 1024));
my ($blob, $nodes) = main::placement_all('stp', 'doomed');
flip_byte(cluster()->blob_path($_, $blob), 9 * 1024 * 1024 + 1) for @$nodes;
my $off = cluster()->error_log_size;
my $r = s3_request(GET => '/stp/doomed', timeout => 60);
is($r->{status}, 200, 'the headers said 200');
is($r->{headers}{'content-length'}, 12 * 1024 * 1024, 'Content-Length of the whole object');
cmp_ok(length $r->{body}, '<', 12 * 1024 * 1024, 'fewer bytes than Content-Length (' . length($r->{body}) . ')');
is(substr($r->{body}, 0, 8 * 1024 * 1024), substr($::BODY{'/stp/doomed'}, 0, 8 * 1024 * 1024),
   'what came before the unreadable stripe is right');
like(cluster()->error_log_since($off), qr/cutting the connection/, 'logged');
is(s3_request(GET => '/stp/big', timeout => 60)->{status}, 200, 'the gateway serves on');



=== TEST 7: every replica of the object gone: a clean 503 before any byte
--- timeout: 60
--- check
main::put_ok('/stp/gone', random_bytes(9 * 1024 * 1024));
my ($blob, $nodes) = main::placement_all('stp', 'gone');
unlink cluster()->blob_path($_, $blob) for @$nodes;
my $r = s3_request(GET => '/stp/gone', timeout => 60);
is($r->{status}, 503, '503');
like($r->{body}, qr{<Code>ServiceUnavailable</Code>}, 'an S3 error body');



=== TEST 8: a throttled replica is dropped from the stripe; the others carry the GET
--- timeout: 120
--- check
main::put_ok('/stp/slow', random_bytes(32 * 1024 * 1024));
my ($blob, $nodes) = main::placement('stp', 'slow');
my $slow = $nodes->[0];
my $c = cluster();
$c->stop_node($slow);
$c->{per_node_opts}{$slow} = { send_rate_limit => 2 * 1024 * 1024 };
$c->start_node($slow);
my %before = map { $_ => main::node_sent($_) } 1 .. 3;
my $r = s3_request(GET => '/stp/slow', timeout => 90);
is($r->{status}, 200, '200');
ok(md5_hex($r->{body}) eq md5_hex($::BODY{'/stp/slow'}), 'byte-identical');
my %sent = map { $_ => main::node_sent($_) - $before{$_} } 1 .. 3;
note(join ', ', map { "node $_ sent $sent{$_}" } 1 .. 3);
# the slow replica is asked first (placement order), measured, dropped
cmp_ok($sent{$slow}, '<=', 8 * 1024 * 1024, "the slow node (node $slow) sent at most two stripes");
my @fast = grep { $_ != $slow } 1 .. 3;
cmp_ok($sent{$fast[0]} + $sent{$fast[1]}, '>=', 24 * 1024 * 1024, 'the fast nodes sent the rest');
$c->stop_node($slow);
$c->{per_node_opts}{$slow} = {};
$c->start_node($slow);



=== TEST 9: a striped GET's bytes are its bucket's egress and one read
--- timeout: 60
--- check
# a bucket of its own: no other GET's egress is flushed into it
is(s3_request(PUT => '/stpe')->{status}, 200, 'bucket');
main::put_ok('/stpe/obj', random_bytes(10 * 1024 * 1024 + 3));
my @q = ("SELECT coalesce((SELECT egress_bytes FROM cost_egress e JOIN buckets b USING (bucket_id) WHERE b.name = 'stpe'), 0)",
         "SELECT coalesce((SELECT read_count FROM object_access a JOIN buckets b USING (bucket_id) WHERE b.name = 'stpe' AND a.key = 'obj'), 0)");
my $r = s3_request(GET => '/stpe/obj', timeout => 60);
is($r->{status}, 200, 'GET 200');
is(length $r->{body}, 10 * 1024 * 1024 + 3, 'every byte');
my ($e1, $n1);
for (1 .. 50) {
    ($e1) = map { $_->[0] } cluster()->psql($q[0]);
    ($n1) = map { $_->[0] } cluster()->psql($q[1]);
    last if $n1 > 0 && $e1 >= 10 * 1024 * 1024 + 3;
    select undef, undef, undef, 0.2;
}
is($n1, 1, 'one read of the key');
is($e1, 10 * 1024 * 1024 + 3, 'egress: the object bytes');



=== TEST 10: bad directive values are refused by nginx -t
--- check
for my $bad ('plinth_stripe_size 10k;', 'plinth_stripe_size 65m;', 'plinth_stripe_window 0;',
             'plinth_stripe_window 65;', 'plinth_stripe_size lots;') {
    my ($rc, $out) = cluster()->nginx_t(http_extra => $bad);
    isnt($rc, 0, "nginx -t refuses $bad");
    like($out, qr/plinth_stripe|invalid value/, "  and says why");
}
my ($rc) = cluster()->nginx_t(http_extra => 'plinth_stripe_size 0;');
is($rc, 0, 'plinth_stripe_size 0 (off) is accepted');
