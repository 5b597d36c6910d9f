# The closed internal hop on a real cluster (PostgreSQL, three data nodes,
# nginx, repaird; RF=3, W=2): the S3 flow works because the gateway signs
# every data-node request; a request to a data node's port without the
# cluster's signature (none, another secret, a stale date, another
# method or blob) is refused with 403 for GET, HEAD, PUT, DELETE, pull,
# listing and scrub, and changes nothing; a data node configured with
# another secret refuses the gateway, repaird and its peers, and pulls
# nothing from them; once it has the cluster's secret again repaird
# re-replicates onto it. A gateway or repaird without a secret does not
# start. (The data node's own checks are in t/datanode-smoke.sh.)
use strict;
use warnings;

use lib 't/lib';
use Plinth::Test;
use Plinth::Cluster;
use Plinth::TestUtil;

use Digest::MD5 qw(md5_hex);
use Time::HiRes qw(sleep time);

cluster_options(
    nodes => 3,
    components => [qw(pg nodes nginx repaird)],
    repaird_opts => {
        health_interval => '300ms',
        probe_timeout   => '500ms',
        offline_after   => '3s',
        lock_retry      => '500ms',
        repair_interval => '1s',
        repair_rate     => 0,
        scrub_interval  => 0,
        gc_interval     => 0,
        rebalance_interval => 0,
        http_timeout    => '20s',
    },
);

my $c = cluster();

sub put_ok {
    my ($uri, $body) = @_;
    my $r = s3_request(PUT => $uri, body => $body);
    die "PUT $uri: $r->{status} $r->{body}" unless $r->{status} == 200;
    return $r;
}

# [blob hex, [nodes]] of a key's current version
sub blob_of {
    my ($key) = @_;
    my ($row) = $c->psql("SELECT replace(v.blob_id::text, '-', ''), "
        . "array_to_string(v.nodes, ',') FROM objects o "
        . "JOIN versions v USING (version_id) WHERE o.key = '$key'");
    return ($row->[0], [split /,/, $row->[1]]);
}

sub log_of { my $t = do { local (@ARGV, $/) = "$_[0]"; <> }; $t // '' }

# --------------------------------------------------------------- the S3 flow, signed by the gateway

is(s3_request(PUT => '/hop')->{status}, 200, 'bucket created');
my $body = random_bytes(300_000);
put_ok('/hop/a', $body);
my $g = s3_request(GET => '/hop/a');
ok($g->{status} == 200 && $g->{body} eq $body, 'PUT then GET through the gateway: byte-identical');
my ($blob, $nodes) = blob_of('a');
is(scalar @$nodes, 3, "the object's blob is on 3 nodes (@$nodes): the gateway's PUTs were accepted");
my $rid = $g->{headers}{'x-amz-request-id'};
my $nlog = join '', map { log_of("$c->{dir}/logs/node$_.log") } 1 .. 3;
like($nlog, qr/GET \/blobs\/$blob 20[06][^\n]*"request_id":"\Q$rid\E"/, 'a data node served the GET, under the gateway\'s request id');
unlike($nlog, qr/refused/, 'no data node refused anything of the gateway\'s');

# --------------------------------------------------------------- a data node's port, from outside

my $n1 = $nodes->[0];
my $r = $c->node_request($n1, 'GET', "/blobs/$blob");
ok($r->{status} == 200 && $r->{content} eq $body, "signed GET on node $n1: 200, the object's bytes");

my %bad = (
    'unsigned'              => { sign => 0 },
    'signed with another secret' => { hop => { secret => 'another-cluster-secret-0123456789' } },
    'dated 10 minutes ago'  => { hop => { date => time - 600 } },
    'dated 10 minutes ahead' => { hop => { date => time + 600 } },
);
for my $how (sort keys %bad) {
    for my $m (qw(GET HEAD DELETE)) {
        my $r = $c->node_request($n1, $m, "/blobs/$blob", { %{ $bad{$how} } });
        is($r->{status}, 403, "$m of a blob, $how: 403");
        is($r->{headers}{'x-plinth-error'}, 'forbidden', '... X-Plinth-Error: forbidden') if $m eq 'GET';
        ok($r->{content} !~ /\A\Q@{[substr $body, 0, 64]}/, '... and no byte of the blob') if $m eq 'GET';
    }
    my $new = md5_hex("hop-new-$how");
    my $r = $c->node_request($n1, 'PUT', "/blobs/$new", { content => 'x' x 5000, %{ $bad{$how} } });
    is($r->{status}, 403, "PUT of a blob, $how: 403");
    is($c->node_request($n1, 'GET', "/blobs/$new")->{status}, 404, '... nothing stored');
    my $to = (grep { $_ != $n1 } 1 .. 3)[0];
    my $other = md5_hex("hop-pull-$how");
    is($c->node_request($n1, 'PUT', "/blobs/$other", { content => 'p' x 5000 })->{status}, 201,
        "signed PUT of a fresh blob on node $n1: 201");
    $r = $c->node_request($to, 'POST', "/blobs/$other/pull?from=127.0.0.1:" . $c->node_port($n1),
        { %{ $bad{$how} } });
    is($r->{status}, 403, "pull onto node $to, $how: 403");
    is($c->node_request($to, 'GET', "/blobs/$other")->{status}, 404, '... nothing pulled');
    is($c->node_request($n1, 'GET', '/blobs?limit=10', { %{ $bad{$how} } })->{status}, 403,
        "listing, $how: 403");
    is($c->node_request($n1, 'GET', '/scrub?limit=1', { %{ $bad{$how} } })->{status}, 403,
        "scrub, $how: 403");
}
$r = $c->node_request($n1, 'DELETE', "/blobs/$blob",
    { headers => $c->hop_headers('GET', "/blobs/$blob") , sign => 0 });
is($r->{status}, 403, "a GET's signature sent with a DELETE: 403");
$r = $c->node_request($n1, 'GET', "/blobs/$blob");
ok($r->{status} == 200 && $r->{content} eq $body, "after all that, node $n1 still serves the blob, intact");
is(s3_request(GET => '/hop/a')->{body}, $body, '... and so does the gateway');
is($c->node_request($n1, 'GET', '/health', { sign => 0 })->{status}, 200,
    '/health answers unsigned (liveness; names no blob)');
my $to = (grep { $_ != $n1 } 1 .. 3)[0];
my $pulled = md5_hex('hop-signed-pull');
is($c->node_request($n1, 'PUT', "/blobs/$pulled", { content => 'q' x 70_000 })->{status}, 201,
    'a blob for a signed pull');
$r = $c->node_request($to, 'POST', "/blobs/$pulled/pull?from=127.0.0.1:" . $c->node_port($n1));
is($r->{status}, 201, "signed pull onto node $to: 201 (node $to signed its GET to node $n1)");

# --------------------------------------------------------------- a node with another secret

my $other_secret = "$c->{dir}/other.secret";
Plinth::Cluster::_write_private($other_secret, "a-different-cluster-secret-" . md5_hex(rand) . "\n");
$c->{per_node_opts}{3} = { cluster_secret_file => $other_secret };
$c->stop_node(3);
$c->start_node(3);

my @keys = map { "w/$_" } 1 .. 10;
my %bodies = map { $_ => random_bytes(20_000 + int rand 20_000) } @keys;
put_ok("/hop/$_", $bodies{$_}) for @keys;
my $on3 = grep { my (undef, $n) = blob_of($_); grep { $_ == 3 } @$n } @keys;
is($on3, 0, 'with node 3 on another secret, PUTs succeed on W=2 and node 3 takes none');
like(log_of("$c->{dir}/logs/node3.log"), qr/refused PUT \/blobs\/\w+: X-Plinth-Signature does not match/,
    "node 3's log: the gateway's PUTs refused, signature does not match");
ok((grep { s3_request(GET => "/hop/$_")->{body} eq $bodies{$_} } @keys) == @keys,
    'every object reads back through the gateway');

# node 3 (other secret) pulling from node 1: node 1 refuses node 3's GET
my ($b1) = blob_of($keys[0]);
my $n3h = $c->hop_headers('POST', "/blobs/$b1/pull?from=127.0.0.1:" . $c->node_port(1),
    secret => do { my $s = log_of($other_secret); $s =~ s/\s+\z//; $s });
$r = $c->node_request(3, 'POST', "/blobs/$b1/pull?from=127.0.0.1:" . $c->node_port(1),
    { headers => $n3h, sign => 0 });
is($r->{status}, 502, 'node 3 (another secret) pulls from node 1: 502');
is($r->{headers}{'x-plinth-error'}, 'source_failed', '... source_failed');
like(log_of("$c->{dir}/logs/node1.log"), qr/refused GET \/blobs\/$b1/, "... node 1 refused node 3's GET");
is($c->node_request(3, 'GET', "/blobs/$b1", { hop => { secret => do { my $s = log_of($other_secret); $s =~ s/\s+\z//; $s } } })->{status},
    404, '... and node 3 stored nothing');

# --------------------------------------------------------------- the secret back: repaird repairs

delete $c->{per_node_opts}{3};
$c->stop_node(3);
$c->start_node(3);
my $t0 = time;
wait_for(sub { (grep { my (undef, $n) = blob_of($_); @$n == 3 } @keys) == @keys }, 60,
    'repaird re-replicates every object onto node 3');
pass(sprintf 'repaird: all %d objects back on 3 nodes %.1fs after node 3 got the secret back',
    scalar @keys, time - $t0);
my $good = grep { my ($b) = blob_of($_);
    my $v = $c->node_request(3, 'GET', "/blobs/$b");
    $v->{status} == 200 && $v->{content} eq $bodies{$_} } @keys;
is($good, scalar @keys, "node 3 holds every object's bytes, pulled by signed requests");
like(log_of($c->repaird_log(1)), qr/./, 'repaird logged');
unlike(join('', map { log_of("$c->{dir}/logs/node$_.log") =~ /refused [^\n]*"request_id":"rd-/ ? 'x' : '' } 1 .. 2), qr/x/,
    "nodes 1 and 2 never refused repaird");

# --------------------------------------------------------------- no secret, no start

my $tmpl = $c->_template_text;
(my $nosecret = $tmpl) =~ s/^\s*plinth_cluster_secret_file[^\n]*\n//m;
die 'template unchanged' if $nosecret eq $tmpl;
my ($rc, $out) = $c->nginx_t(template_text => $nosecret);
isnt($rc, 0, 'nginx -t: plinth_cluster without plinth_cluster_secret_file fails');
like($out, qr/plinth_cluster needs plinth_cluster_secret_file/, '... and says why');
my $short = "$c->{dir}/short.secret";
Plinth::Cluster::_write_private($short, "too-short\n");
($rc, $out) = $c->nginx_t(template_text => $tmpl =~ s/\@CLUSTER_SECRET\@(?=;)/$short/r);
isnt($rc, 0, 'nginx -t: a secret shorter than 16 bytes fails');
like($out, qr/shorter than 16 bytes/, '... and says why');

my $ry = "$c->{dir}/repaird-nosecret.yaml";
open my $fh, '>', $ry or die $!;
print $fh "pg: \"" . $c->pg_conninfo . "\"\ncluster: " . $c->cluster_yaml . "\n";
close $fh;
($rc, $out) = Plinth::Cluster::run_command([$c->{repaird}, '-t', '-c', $ry], timeout => 10, merge => 1);
isnt($rc, 0, 'plinth-repaird -t without cluster_secret_file fails');
like($out, qr/cluster_secret_file.*required/, '... and says why');

done_testing();
