# The gateway's access log is JSON (conf/nginx.conf's plinth_json): one
# object per request with the id the client saw, the S3 operation, bucket,
# key, status, bytes, the data nodes used and the duration; the data nodes
# log the same request id, so one grep follows a request everywhere.
use lib 't/lib';
use Plinth::Test;
use Encode ();
use JSON::PP ();
use Time::HiRes qw(sleep);

sub log_entries {
    my $path = cluster()->dir . '/logs/access.log';
    open my $fh, '<:raw', $path or return ();
    my @e;
    while (my $line = <$fh>) {
        my $j = eval { JSON::PP->new->utf8->decode($line) };
        push @e, $j ? $j : { _bad => $line };
    }
    return @e;
}

# the entry of a request, by the id the client saw (the log is written
# when the request ends: wait a moment)
sub entry_of {
    my ($id) = @_;
    for (1 .. 30) {
        my ($e) = grep { ($_->{request_id} // '') eq $id } log_entries();
        return $e if $e;
        sleep 0.1;
    }
    return undef;
}

sub grep_node_logs {
    my ($id) = @_;
    my $n = 0;
    for my $i (1 .. 3) {
        open my $fh, '<', cluster()->dir . "/logs/node$i.log" or next;
        while (<$fh>) {
            $n++ if /"request_id":"\Q$id\E"/;
        }
    }
    return $n;
}

run_tests();

__DATA__

=== TEST 1: every line of the access log is a JSON object
--- check
is(s3_request(PUT => '/logs')->{status}, 200, 'bucket');
s3_request(GET => '/');
sleep 0.3;
my @e = log_entries();
ok(scalar @e >= 2, scalar(@e) . ' entries');
is(scalar(grep { $_->{_bad} } @e), 0, 'every line parses as JSON')
    or diag(join '', map { $_->{_bad} // '' } @e);



=== TEST 2: PutObject: its request id, operation, bucket, key (escaped), status, bytes in, the nodes that took it
--- check
my $key = 'dir/quote"back\\slash é';
(my $uri = $key) =~ s/([^A-Za-z0-9\/._~-])/sprintf('%%%02X', ord $1)/ge;
my $body = random_bytes(12345);
my $r = s3_request(PUT => "/logs/$uri", body => $body);
is($r->{status}, 200, 'PUT 200');
my $id = $r->{headers}{'x-amz-request-id'};
my $e = entry_of($id);
ok($e, "an entry with request_id $id") or return;
is($e->{operation}, 'PutObject', 'operation PutObject');
is($e->{bucket}, 'logs', 'bucket');
is($e->{key}, Encode::decode('UTF-8', $key), 'key: quotes, backslash and UTF-8 intact');
is($e->{status}, 200, 'status, a number');
cmp_ok($e->{bytes_in}, '>=', 12345, 'bytes_in counts the body');
like($e->{nodes}, qr/^\d+,\d+(,\d+)?$/, "nodes: the W or more that took the write ($e->{nodes})");
# decoded from JSON: nginx writes 0.050, the decoder gives 0.05
like($e->{duration}, qr/^\d+(?:\.\d{1,3})?$/, 'duration in seconds (milliseconds at most)');
is($e->{method}, 'PUT', 'method');
ok(grep_node_logs($id) >= 2, 'the data nodes logged the same request id');



=== TEST 3: GetObject: bytes out and the one node that sent them; errors are logged with their status
--- check
s3_request(PUT => '/logs/g', body => 'x' x 5000);
my $r = s3_request(GET => '/logs/g');
my $e = entry_of($r->{headers}{'x-amz-request-id'});
is($e->{operation}, 'GetObject', 'GetObject');
cmp_ok($e->{bytes_out}, '>', 5000, 'bytes_out includes the body');
like($e->{nodes}, qr/^\d+$/, "nodes: the node read ($e->{nodes})");
$r = s3_request(GET => '/logs/nothing');
$e = entry_of($r->{headers}{'x-amz-request-id'});
is("$e->{operation} $e->{status}", 'GetObject 404', 'a 404 is logged as such');
is($e->{nodes}, '', 'no node was used');
$r = s3_request(GET => '/logs?list-type=2');
$e = entry_of($r->{headers}{'x-amz-request-id'});
is("$e->{operation} $e->{bucket} $e->{key}", 'ListObjectsV2 logs ', 'ListObjectsV2, the bucket, no key');
