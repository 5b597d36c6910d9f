# TLS on the internal hop: Plinth::Cluster with hop_tls => 1 makes a CA
# and a certificate per data node with openssl; the data nodes serve HTTPS
# only (libmicrohttpd with GnuTLS), the gateway proxies to them over https
# checking their certificates against the CA (proxy_ssl_verify), repaird
# and the nodes' pulls use libcurl with the CA. Checked: S3 PUT, GET,
# Range GET, batch GET (its multi-reads, POST with a body) and DELETE
# through the gateway; a replica rebuilt by repaird
# (an https pull from a peer); a plain-HTTP request to a data node gets
# nothing; a gateway that trusts another CA refuses the nodes.
use strict;
use warnings;

use lib 't/lib';
use Plinth::Test;
use Plinth::Cluster;
use Plinth::TestUtil;

use HTTP::Tiny;
use Time::HiRes qw(sleep time);

cluster_options(
    nodes => 3,
    hop_tls => 1,
    components => [qw(pg nodes nginx repaird)],
    repaird_opts => {
        health_interval => '300ms',
        probe_timeout   => '1s',
        offline_after   => '5s',
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
sub slurp { my $t = do { local (@ARGV, $/) = "$_[0]"; <> }; $t // '' }

like(slurp("$c->{dir}/logs/node1.log"), qr/listening on 127\.0\.0\.1:\d+ \(HTTPS\)/,
    'data node 1 serves HTTPS');
my $conf = slurp($c->nginx_conf);
like($conf, qr{proxy_pass https://plinth_datanodes/blobs/;}, 'the gateway proxies to https://');
like($conf, qr{^\s*proxy_ssl_verify on;}m, '... and checks the certificates (proxy_ssl_verify on)');

# --------------------------------------------------------------- a plain-HTTP client gets nothing

my $n1 = $c->node_port(1);
my $plain = HTTP::Tiny->new(timeout => 5)->get("http://127.0.0.1:$n1/health");
is($plain->{status}, 599, 'plain HTTP to a TLS data node: no HTTP answer (connection fails)');
my $signed_plain = HTTP::Tiny->new(timeout => 5)->get("http://127.0.0.1:$n1/blobs?limit=10",
    { headers => $c->hop_headers('GET', '/blobs?limit=10') });
is($signed_plain->{status}, 599, '... even signed: no listing over plain HTTP');
my $noca = HTTP::Tiny->new(timeout => 5, verify_SSL => 1,
    SSL_options => { SSL_ca_file => '/etc/ssl/certs/ca-certificates.crt' })
    ->get("https://127.0.0.1:$n1/health");
is($noca->{status}, 599, 'HTTPS checked against the system CAs: the node certificate is refused (cluster CA only)');
my $h = $c->node_request(1, 'GET', '/health', { sign => 0 });
is($h->{status}, 200, 'HTTPS checked against the cluster CA: /health 200');

# --------------------------------------------------------------- S3 through the gateway, over the TLS hop

is(s3_request(PUT => '/tlshop')->{status}, 200, 'bucket created');
my $body = random_bytes(2 * 1024 * 1024 + 333);
is(s3_request(PUT => '/tlshop/obj', body => $body, timeout => 60)->{status}, 200,
    'PUT of 2 MiB: the gateway wrote W replicas over TLS');
my $g = s3_request(GET => '/tlshop/obj', timeout => 60);
ok($g->{status} == 200 && $g->{body} eq $body, 'GET: byte-identical');
is(s3_request(GET => '/tlshop/obj', headers => { Range => 'bytes=1048570-1048589' })->{body},
    substr($body, 1048570, 20), 'Range GET across a block boundary');
my ($row) = $c->psql("SELECT replace(v.blob_id::text, '-', ''), array_to_string(v.nodes, ',') "
    . "FROM objects o JOIN versions v USING (version_id) WHERE o.key = 'obj'");
my ($blob, @nodes) = ($row->[0], split /,/, $row->[1]);
is(scalar @nodes, 3, "the blob is on 3 nodes (@nodes)");
my $r = $c->node_request($nodes[0], 'GET', "/blobs/$blob");
ok($r->{status} == 200 && $r->{content} eq $body, "signed HTTPS GET on node $nodes[0]: the object's bytes");

# --------------------------------------------------------------- batch GET's multi-read over TLS

my @small = map { random_bytes(3000 + 511 * $_) } 1 .. 5;
s3_request(PUT => "/tlshop/s$_", body => $small[$_ - 1]) for 1 .. 5;
my $bt = s3_request(POST => '/tlshop?batch', body => '{"entries":[' . join(',', map { qq({"key":"s$_"}) } 1 .. 5) . ']}',
    headers => ['Content-Type' => 'application/json'], timeout => 60);
is($bt->{status}, 200, 'batch GET of 5 small objects over the TLS hop: 200');
is(length $bt->{body}, $bt->{headers}{'content-length'}, '... every byte of Content-Length');
my $at = 0;
my $in_order = 1;
for my $i (0 .. 4) {
    $at += 512;    # the entry's ustar header
    $in_order = 0 unless substr($bt->{body}, $at, length $small[$i]) eq $small[$i];
    $at += int((length($small[$i]) + 511) / 512) * 512;
}
ok($in_order, '... each entry byte-identical, in order');
my $multi = 0;
for my $i (1 .. 3) {
    $multi += () = slurp("$c->{dir}/logs/node$i.log") =~ m{POST /blobs/multi 200}g;
}
cmp_ok($multi, '>=', 1, "... read by multi-reads over HTTPS ($multi)");

# --------------------------------------------------------------- repaird rebuilds a replica over TLS

my $victim = $nodes[1];
unlink $c->blob_path($victim, $blob) or die "unlink: $!";
is($c->node_request($victim, 'GET', "/blobs/$blob/verify")->{status}, 404,
    "the replica on node $victim deleted behind the system's back");
my $t0 = time;
$c->psql("SELECT plinth_report_bad_replica('$blob', $victim, 'missing')");
wait_for(sub { $c->node_request($victim, 'GET', "/blobs/$blob/verify")->{status} == 200 }, 30,
    'repaird rebuilds it');
pass(sprintf 'repaird rebuilt the replica on node %d over TLS in %.2fs (an https pull from a peer)',
    $victim, time - $t0);
$r = $c->node_request($victim, 'GET', "/blobs/$blob");
ok($r->{status} == 200 && $r->{content} eq $body, '... byte-identical');
like(slurp("$c->{dir}/logs/node$victim.log"),
    qr/POST \/blobs\/$blob\/pull 201[^\n]*"request_id":"rd-/, "... node ${victim}'s log: repaird's pull, 201");

# --------------------------------------------------------------- DELETE

is(s3_request(DELETE => '/tlshop/obj')->{status}, 204, 'DELETE through the gateway');
is(s3_request(GET => '/tlshop/obj')->{status}, 404, '... then GET: 404');

# --------------------------------------------------------------- a gateway that trusts another CA

my $other = "$c->{dir}/other-ca";
mkdir $other;
my ($rc, $out) = Plinth::Cluster::run_command(['openssl', 'req', '-x509', '-newkey', 'rsa:2048',
    '-nodes', '-days', '2', '-subj', '/CN=Another CA', '-keyout', "$other/ca.key",
    '-out', "$other/ca.crt"], timeout => 60, merge => 1);
is($rc, 0, 'another CA') or diag $out;
s3_request(PUT => '/tlshop/k2', body => 'kept');
my $tdir = $c->tls_dir;
(my $wrong = $c->render) =~ s{proxy_ssl_trusted_certificate \Q$tdir\E/ca\.crt;}
    {proxy_ssl_trusted_certificate $other/ca.crt;};
$c->restart_nginx(template_text => $wrong);
my $w = s3_request(GET => '/tlshop/k2');
is($w->{status}, 503, 'a gateway trusting another CA reads nothing: 503');
like(slurp($c->error_log_path), qr/upstream SSL certificate verify error/,
    '... its error log: upstream SSL certificate verify error');
$c->restart_nginx;
is(s3_request(GET => '/tlshop/k2')->{body}, 'kept', 'the right CA again: the object reads');

done_testing();
