package Plinth::Test;

# Data-driven tests in Test::Nginx's block style, on Test::Base.
#
#   use lib 't/lib';
#   use Plinth::Test;
#   cluster_options(rf => 3, w => 2);     # optional, before run_tests
#   run_tests();                          # plans itself (done_testing)
#   __DATA__
#
#   === TEST 1: create bucket
#   --- request
#   PUT /b1
#   --- error_code: 200
#
# Blocks run in order against one cluster per .t file, started before the
# first block that needs it (a block with only nginx_t_fails needs none).
# Sections (an unknown one fails the block, so a typo skips no check):
#   request            METHOD URI [HTTP/1.x], then the body; without `eval`
#                      the body loses its final newline.  eval may give an
#                      arrayref: several requests on one connection, and
#                      any expectation may then be an arrayref too.
#   request_body_file  body read from a file (path relative to the repo)
#   more_headers       Name: value, one a line (eval may give an arrayref of
#                      such strings: one per request)
#   raw_request        bytes sent as they are, on a new connection (never
#                      signed)
#   error_code  response_body  response_body_like  response_body_unlike
#   response_headers   Name: value exact; "Name:" or "!Name": absent
#   response_headers_like   Name: regex
#   error_log  no_error_log   one literal substring a line, or eval to qr//
#                      (or an arrayref of them); over error.log and
#                      nginx's stderr written during the block.  Every
#                      block also checks @DEFAULT_NO_ERROR_LOG.
#   setup  teardown    Perl, with $cluster and $block
#   check              Perl after the requests, with $res (the last),
#                      $responses, $cluster, $block; Test::More functions
#                      (names get the block title prepended)
#   http_config  config   extra http{}/server{} lines: nginx restarted with
#                      them for this block, then with the default again
#   nginx_t_fails      regex that `nginx -t` output must match (with the
#                      block's http_config/config); no request is sent
#   timeout            seconds for each request (default 10)
#
# Signing: every `request` (and s3_request) is signed with SigV4 in the
# Authorization header with the cluster's admin key (Plinth::Cluster makes
# it: $cluster->credentials), the payload hash being the SHA-256 of the body
# sent.  A request that carries its own Authorization header, or an
# X-Amz-Signature in its query, is sent as it is; so is every request of a
# cluster without credentials (no PostgreSQL).  The gateway ignores
# signatures while plinth_auth is off.  Sections (eval may give an arrayref:
# one value per request):
#   unsigned           send as is: an anonymous request
#   sign_as            admin (default), user2, or ACCESS_KEY_ID:SECRET
#   presign            a presigned URL (X-Amz-* query parameters) valid this
#                      many seconds, instead of the headers
#   payload_hash       sent in X-Amz-Content-Sha256 and signed instead of the
#                      body's hash: UNSIGNED-PAYLOAD, or a wrong hash for
#                      negative tests; empty: no X-Amz-Content-Sha256 header
#   sign_date          the signing time: seconds from now (-1200: 20 minutes
#                      ago) or an x-amz-date (20130524T000000Z)
#   sign_region        the region signed (default the cluster's, us-east-1)
# An X-Amz-Content-Sha256 given in more_headers is signed as given.
# For Perl-coded tests (each documented where it is defined):
#   s3_request(...)    the same options: unsigned, sign_as, sign, presign,
#                      payload_hash, sign_date, time, region
#   sign_request($method, $uri, ...)   signed headers, for s3_request or
#                      (format => 'raw') raw_request
#   presign_url($method, $uri, expires => s, ...)   a presigned target
#   sign_chunked($method, $uri, data => ..., mode => ...)   an aws-chunked
#                      upload: headers and framed body
#   client_credentials([user2])   keys for real clients
# PLINTH_TEST_AUTH=sigv4 runs a .t file with plinth_auth sigv4 unless its
# cluster_options say otherwise.

use strict;
use warnings;

use Test::Base -base;
use Test::Base::Filter ();
use Plinth::Cluster;
use Plinth::SigV4 ();

use Digest::MD5 qw(md5_hex);
use Errno qw(EAGAIN EINTR EWOULDBLOCK);
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(sleep time);

our @EXPORT = qw(run_tests cluster cluster_options s3_request raw_request
    aws random_bytes md5_hex done_testing note explain subtest BAIL_OUT
    sign_request presign_url sign_chunked client_credentials checksum_base64
    racing_requests flip_byte placement placement_all part_placement);

# Test::More functions Test::Base does not pass on
*checksum_base64 = \&Plinth::SigV4::checksum_base64;
*note = \&Test::More::note;
*explain = \&Test::More::explain;
*subtest = \&Test::More::subtest;
*BAIL_OUT = \&Test::More::BAIL_OUT;

# Patterns every block checks in the logs nginx wrote during it (literal
# substrings).  A .t file may change this list before run_tests.
our @DEFAULT_NO_ERROR_LOG = ('[alert]', '[crit]', '[emerg]',
    'AddressSanitizer');

our $DEFAULT_TIMEOUT = 10;

my %SECTIONS = map { $_ => 1 } qw(
    request request_body_file more_headers raw_request
    error_code response_body response_body_like response_body_unlike
    response_headers response_headers_like error_log no_error_log
    setup teardown check http_config config nginx_t_fails timeout
    unsigned sign_as presign payload_hash sign_date sign_region
    ONLY SKIP LAST);

my @SIGN_SECTIONS = qw(unsigned sign_as presign payload_hash sign_date
    sign_region);

my %OPTS;
my $CLUSTER;
my $START_ERROR;     # a failed start is not retried by every block
my $CONN;            # the keep-alive connection: { sock, buf, port }

Plinth::Test->default_object->filters_delay(1);

# ---------------------------------------------------------------- cluster

sub cluster_options {
    croak "cluster_options: the cluster already exists" if $CLUSTER;
    %OPTS = (%OPTS, @_);
}

# PLINTH_TEST_AUTH=sigv4 (or off) runs a file with that plinth_auth unless
# its cluster_options say otherwise.
sub _cluster {
    $CLUSTER ||= Plinth::Cluster->new(pg_fast => 1,
        ($ENV{PLINTH_TEST_AUTH} ? (auth => $ENV{PLINTH_TEST_AUTH}) : ()),
        %OPTS, keep => 0, log => sub { Test::More::diag($_[0]) });
    return $CLUSTER;
}

# The shared cluster of this .t file, started if it was not yet.
sub cluster {
    my $c = _cluster();
    die $START_ERROR if $START_ERROR;
    unless ($c->is_started) {
        my $ok = eval { $c->start; 1 };
        # a free port chosen a moment ago may be taken by another program
        # by the time its process binds it: once more, on new ports
        if (!$ok && $@ =~ /port \d+ \(.*\) is in use/) {
            Test::More::note("retrying on new ports: $@");
            eval { $c->stop };
            undef $CLUSTER;
            $c = _cluster();
            $ok = eval { $c->start; 1 };
        }
        unless ($ok) {
            $START_ERROR = "the cluster did not start: $@";
            eval { $c->stop };
            die $START_ERROR;
        }
        Test::More::note("cluster in " . $c->dir . ", endpoint " . $c->endpoint);
    }
    return $c;
}

# ---------------------------------------------------------------- helpers

sub random_bytes {
    my ($n) = @_;
    open my $fh, '<:raw', '/dev/urandom' or die "/dev/urandom: $!";
    my $buf = '';
    while (length($buf) < $n) {
        my $r = sysread($fh, $buf, $n - length($buf), length $buf);
        die "/dev/urandom: $!" unless $r;
    }
    return $buf;
}

# Test::Base's END plans 'no_plan' unless plan() went through its wrapper:
# so do we, then let done_testing check and close.
sub done_testing {
    my $tb = Test::Builder->new;
    Test::More::plan('no_plan') unless $tb->has_plan;
    Test::More::done_testing(@_);
}

# aws([{timeout => s, stdin => bytes, as => 'user2'},] @args)
#   -> ($exit_code, $output)
# Signed with the cluster's admin key (as => 'user2': the second user's;
# see client_credentials).
sub aws {
    my %o = ref $_[0] eq 'HASH' ? %{ shift() } : ();
    my $c = cluster();
    my ($ak, $sk) = client_credentials($o{as});
    my $home = tempdir('plinth-aws-XXXXXX', DIR => '/tmp', CLEANUP => 1);
    my ($rc, $out) = Plinth::Cluster::run_command(
        ['/usr/bin/aws', '--endpoint-url', $c->endpoint, @_],
        timeout => $o{timeout} // 120, merge => 1, stdin => $o{stdin},
        cwd => $home,
        env => {
            AWS_ACCESS_KEY_ID          => $ak,
            AWS_SECRET_ACCESS_KEY      => $sk,
            AWS_DEFAULT_REGION         => $c->region,
            AWS_CONFIG_FILE            => '/dev/null',
            AWS_SHARED_CREDENTIALS_FILE => '/dev/null',
            AWS_EC2_METADATA_DISABLED  => 'true',
            AWS_PAGER                  => '',
            HOME                       => $home,
            PATH                       => "/usr/bin:/bin:" . ($ENV{PATH} // ''),
        });
    return ($rc, $out);
}

# s3_request($method, $uri, headers => {..} | [n, v, ..], body => $bytes,
#            timeout => s, version => 'HTTP/1.1', signing options) -> $res
# $res = { status, reason, headers => {lower-case name => value},
#          header_list => [[name, value], ..], body, error }
# Signed with the admin key unless told otherwise (see "Signing" above);
# signing options, as the block sections:
#   unsigned => 1 (or sign => 0)   sent as is
#   sign_as => 'admin' | 'user2' | 'AKID:SECRET'
#   sign => { access_key => .., secret_key => .. } (or 'user2')
#   presign => $expires_seconds
#   payload_hash => 'UNSIGNED-PAYLOAD' | hex | '' (no header)
#   sign_date => -1200 | '20130524T000000Z';  time => epoch seconds
#   region => 'us-east-1'
#   port => N (connect to this port instead of the endpoint's)
sub s3_request {
    my ($method, $uri, %o) = @_;
    my $c = cluster();
    my @h;
    if (ref $o{headers} eq 'HASH') {
        @h = map { [$_, $o{headers}{$_}] } sort keys %{ $o{headers} };
    } elsif (ref $o{headers} eq 'ARRAY') {
        my @l = @{ $o{headers} };
        if (@l && ref $l[0] eq 'ARRAY') {
            @h = map { [@$_] } @l;
        } else {
            push @h, [splice(@l, 0, 2)] while @l;
        }
    }
    my $req = { method => $method, uri => $uri, headers => \@h,
        body => $o{body} // '', version => $o{version} // 'HTTP/1.1' };
    _sign($req, $c, %o);
    # port => N: send it to that port (one gateway of several) with the
    # Host and signature of the endpoint, as a load balancer passes it on
    my $port = $o{port} // $c->port;
    return _exchange($port, _build_request($req, $port), $method,
        $o{timeout} // $DEFAULT_TIMEOUT);
}

# racing_requests([$method, $uri, %o], ...) -> @statuses: every request
# (signed as s3_request signs) is written on its own connection before any
# answer is read, so the server sees them all at once.
sub racing_requests {
    my @reqs = @_;
    my $c = cluster();
    my @socks;
    for my $q (@reqs) {
        my ($method, $uri, %o) = @$q;
        my @h = (@{ Plinth::SigV4::_header_list($o{headers}) },
                 ['Connection', 'close']);
        my $req = { method => $method, uri => $uri, headers => \@h,
            body => $o{body} // '', version => 'HTTP/1.1' };
        _sign($req, $c, %o);
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
            PeerPort => $c->port, Timeout => 5) or die "connect: $!";
        binmode $s;
        push @socks, [$s, _build_request($req, $c->port)];
    }
    for my $p (@socks) {
        my ($s, $d) = @$p;
        my $off = 0;
        while ($off < length $d) {
            my $n = syswrite($s, $d, length($d) - $off, $off);
            die "write: $!" unless defined $n;
            $off += $n;
        }
    }
    my @codes;
    for my $p (@socks) {
        my ($s) = @$p;
        my ($buf, $deadline) = ('', time + 30);
        while (time < $deadline) {
            my $n = sysread($s, $buf, 65536, length $buf);
            last unless $n;
        }
        push @codes, $buf =~ m{^HTTP/1\.1 (\d+)} ? $1 : 0;
        close $s;
    }
    return @codes;
}

# placement($bucket, $key) -> ($blob_hex, [node ids]): where the current
# version of an object lives (its blob id without dashes and versions.nodes
# in its order); an empty list if the key has no current version.
# part_placement($bucket, $key) -> ([$blob_hex, [node ids]], ...): the same
# for each part of a multipart object, in part order.
sub placement {
    my @rows = _current_blobs('versions', @_, '');
    return unless @rows;
    return ($rows[0][0], [ split /,/, $rows[0][1] ]);
}

# placement_all($bucket, $key, $copies) -> as placement, once $copies
# (default 3) nodes are recorded: a copy acknowledged after the commit
# (past plinth_put_linger, on a slow disk) is added a moment later, and a
# test that damages "every" replica must see it. Dies after 10 s.
sub placement_all {
    my ($bucket, $key, $copies) = @_;
    $copies //= 3;
    my $deadline = time + 10;
    while (1) {
        my ($blob, $nodes) = placement($bucket, $key);
        return ($blob, $nodes) if $nodes && @$nodes >= $copies;
        die "placement_all: $bucket/$key has " . scalar(@{ $nodes || [] })
            . " of $copies copies recorded after 10 s\n" if time > $deadline;
        sleep 0.05;
    }
}

sub part_placement {
    return map { [$_->[0], [ split /,/, $_->[1] ]] }
        _current_blobs('version_parts', @_, ' ORDER BY x.part_number');
}

sub _current_blobs {
    my ($table, $bucket, $key, $order) = @_;
    return cluster()->psql(
        "SELECT replace(x.blob_id::text, '-', ''), "
      . "array_to_string(x.nodes, ',') FROM $table x "
      . "JOIN objects o USING (version_id) "
      . "JOIN buckets b ON b.bucket_id = o.bucket_id "
      . "WHERE b.name = '$bucket' AND o.key = '$key' AND NOT o.deleted$order");
}

# flip_byte($path, $offset): inverts one byte of a file in place (a blob
# rotting on disk, for fault tests)
sub flip_byte {
    my ($path, $offset) = @_;
    open my $fh, '+<:raw', $path or die "open $path: $!";
    seek $fh, $offset, 0 or die "seek: $!";
    read $fh, my $c, 1 or die "read: $!";
    seek $fh, $offset, 0 or die "seek: $!";
    print $fh chr(ord($c) ^ 0xff) or die "write: $!";
    close $fh or die "close: $!";
}

# raw_request($bytes, timeout => s) -> $res: sent as is on a new connection
sub raw_request {
    my ($bytes, %o) = @_;
    my $c = cluster();
    return _raw_exchange($c->port, $bytes, $o{timeout} // $DEFAULT_TIMEOUT);
}

# ---------------------------------------------------------------- signing

# client_credentials([$who]) -> ($access_key, $secret_key) for real clients
# (aws, boto3, s3cmd, rclone, the JS SDK): $PLINTH_TEST_ACCESS_KEY and
# $PLINTH_TEST_SECRET_KEY if set, else the cluster's admin key ($who
# 'user2': the second user's), else 'plinth', 'plinth' (a cluster without
# PostgreSQL has no keys).
sub client_credentials {
    my ($who) = @_;
    if ((!defined $who || $who eq 'admin')
        && defined $ENV{PLINTH_TEST_ACCESS_KEY}
        && defined $ENV{PLINTH_TEST_SECRET_KEY}) {
        return ($ENV{PLINTH_TEST_ACCESS_KEY}, $ENV{PLINTH_TEST_SECRET_KEY});
    }
    my $k = _keys_of(cluster(), $who // 'admin', defined $who);
    return $k ? ($k->{access_key}, $k->{secret_key}) : ('plinth', 'plinth');
}

# The key to sign with: undef (send unsigned) when the cluster has none and
# none was asked for by name.
sub _keys_of {
    my ($c, $who, $explicit) = @_;
    if (ref $who eq 'HASH') {
        croak "sign: access_key and secret_key are needed"
            unless defined $who->{access_key} && defined $who->{secret_key};
        return $who;
    }
    $who =~ s/^\s+|\s+$//g;
    if ($who =~ /^([^:\s]+):(\S+)$/) {
        return { access_key => $1, secret_key => $2 };
    }
    my $cr = $c->credentials;
    unless ($cr) {
        return undef unless $explicit;
        croak "sign_as $who: the cluster has no credentials file ("
            . $c->credentials_file . ")";
    }
    return { access_key => $cr->{access_key}, secret_key => $cr->{secret_key} }
        if $who eq 'admin' || $who eq 'default' || $who eq '';
    return { access_key => $cr->{user2_access_key},
        secret_key => $cr->{user2_secret_key} } if $who eq 'user2';
    croak "sign_as '$who': admin, user2 or ACCESS_KEY_ID:SECRET";
}

sub _sign_time {
    my (%o) = @_;
    return (time => $o{time}) if defined $o{time};
    my $d = $o{sign_date};
    return () unless defined $d && $d =~ /\S/;
    $d =~ s/^\s+|\s+$//g;
    return (amz_date => $d) if $d =~ /^\d{8}T\d{6}Z$/;
    croak "sign_date '$d': seconds from now (-1200) or YYYYMMDDTHHMMSSZ"
        unless $d =~ /^[+-]?\d+$/;
    return (time => time + $d);
}

# Sign $req ({method, uri, headers => [[n, v], ..], body}) in place, with
# s3_request's signing options.  Returns the signer's result, or undef
# when the request goes unsigned.
sub _sign {
    my ($req, $c, %o) = @_;
    return undef if $o{unsigned} || (exists $o{sign} && !$o{sign});
    my $h = $req->{headers};
    return undef if grep { lc($_->[0]) eq 'authorization' } @$h;
    return undef if ($req->{uri} // '') =~ /[?&]X-Amz-Signature=/i;
    my $who = ref $o{sign} || (defined $o{sign} && $o{sign} ne '1')
        ? $o{sign} : $o{sign_as};
    my $k = _keys_of($c, $who // 'admin', defined $who) or return undef;
    my %args = (access_key => $k->{access_key}, secret_key => $k->{secret_key},
        region => $o{region} // $k->{region} // $c->region,
        method => $req->{method}, _sign_time(%o));
    my $host = "127.0.0.1:" . $c->port;

    if (defined $o{presign} && $o{presign} =~ /\S/) {
        (my $exp = $o{presign}) =~ s/^\s+|\s+$//g;
        my ($hh) = grep { lc($_->[0]) eq 'host' } @$h;
        my $p = Plinth::SigV4::presign(%args, uri => $req->{uri},
            host => $hh ? $hh->[1] : $host, expires => $exp);
        $req->{uri} = $p->{uri};
        return $p;
    }

    unshift @$h, ['Host', $host] unless grep { lc($_->[0]) eq 'host' } @$h;
    my %payload;
    if (defined $o{payload_hash}) {
        (my $ph = $o{payload_hash}) =~ s/^\s+|\s+$//g;
        if ($ph eq '') {
            @$h = grep { lc($_->[0]) ne 'x-amz-content-sha256' } @$h;
            %payload = (content_sha256_header => 0, body => $req->{body});
        } else {
            %payload = (payload_hash => $ph);
        }
    } else {
        my $body = $req->{body} // '';
        if (grep { lc($_->[0]) eq 'transfer-encoding' && $_->[1] =~ /chunked/i } @$h) {
            # the body is given framed: what the server hashes is the data
            my $d = Plinth::SigV4::decode_http_chunked($body);
            %payload = defined $d ? (body => $d) : (payload_hash => 'UNSIGNED-PAYLOAD');
        } else {
            %payload = (body => $body);
        }
    }
    my $s = Plinth::SigV4::sign_request(%args, %payload, uri => $req->{uri},
        headers => $h);
    @$h = @{ $s->{headers} };
    return $s;
}

# sign_request($method, $uri, body => $bytes, headers => {..} | [n, v, ..],
#              signing options of s3_request, format => 'raw')
# The headers of a request signed as s3_request would sign it: a flat list
# (name, value, ...) with Host, X-Amz-Date, X-Amz-Content-Sha256 and
# Authorization added to those given (an arrayref in scalar context); with
# format => 'raw', the text "Name: value\r\n..." for raw_request.  Send it
# with s3_request(..., headers => \@h, body => $bytes) (seen as signed
# already) or raw_request.
sub sign_request {
    my ($method, $uri, %o) = @_;
    my $c = cluster();
    my $req = { method => $method, uri => $uri, body => $o{body} // '',
        headers => Plinth::SigV4::_header_list($o{headers}) };
    delete @o{qw(unsigned presign)};
    my $sig = _sign($req, $c, %o, sign_as => $o{sign_as} // $o{as} // 'admin')
        or croak "sign_request: the cluster has no credentials";
    my @flat = map { @$_ } @{ $req->{headers} };
    return join('', map { "$_->[0]: $_->[1]\r\n" } @{ $req->{headers} })
        if ($o{format} // '') eq 'raw';
    return wantarray ? @flat : \@flat;
}

# presign_url($method, $uri, expires => 3600, sign_as => 'admin', time =>
#             epoch | sign_date => offset, region => .., full => 1)
# The request target (path?query) of a presigned URL; full => 1: with
# http://127.0.0.1:PORT in front.
sub presign_url {
    my ($method, $uri, %o) = @_;
    my $c = cluster();
    my $req = { method => $method, uri => $uri, headers =>
        Plinth::SigV4::_header_list($o{headers}) };
    $o{presign} = $o{expires} // 3600;
    _sign($req, $c, %o, sign_as => $o{sign_as} // $o{as} // 'admin')
        or croak "presign_url: the cluster has no credentials";
    return $o{full} ? $c->endpoint . $req->{uri} : $req->{uri};
}

# sign_chunked($method, $uri, data => $bytes, mode => 'signed' |
#     'signed-trailer' | 'unsigned-trailer', chunk_size => 65536 |
#     chunk_sizes => [..], checksum => 'crc32' | trailers => [[n, v], ..],
#     headers => .., signing options)
#   -> (\@headers_flat, $body)
# An aws-chunked upload (Content-Encoding: aws-chunked, STREAMING-* payload
# hash, per-chunk signatures, trailer), for
# s3_request($method, $uri, headers => $h, body => $body).
sub sign_chunked {
    my ($method, $uri, %o) = @_;
    my $c = cluster();
    my $k = _keys_of($c, $o{sign_as} // $o{as} // 'admin', 1);
    my $h = Plinth::SigV4::_header_list($o{headers});
    unshift @$h, ['Host', "127.0.0.1:" . $c->port]
        unless grep { lc($_->[0]) eq 'host' } @$h;
    my $s = Plinth::SigV4::sign_streaming(%o, method => $method, uri => $uri,
        headers => $h, access_key => $k->{access_key},
        secret_key => $k->{secret_key}, region => $o{region} // $c->region,
        _sign_time(%o));
    return ([map { @$_ } @{ $s->{headers} }], $s->{body});
}

# ---------------------------------------------------------------- client

sub _build_request {
    my ($req, $port) = @_;
    my @h = @{ $req->{headers} };
    my %have = map { lc($_->[0]) => 1 } @h;
    my $body = $req->{body} // '';
    unshift @h, ['Host', "127.0.0.1:$port"] unless $have{host};
    if (!$have{'content-length'} && !$have{'transfer-encoding'}
        && (length $body || $req->{method} =~ /^(PUT|POST)$/)) {
        push @h, ['Content-Length', length $body];
    }
    my $head = "$req->{method} $req->{uri} $req->{version}\r\n";
    $head .= "$_->[0]: $_->[1]\r\n" for @h;
    return "$head\r\n$body";
}

sub _reset_conn {
    close $CONN->{sock} if $CONN && $CONN->{sock};
    undef $CONN;
}

sub _connect {
    my ($port, $timeout) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
        Proto => 'tcp', Timeout => $timeout);
    return undef unless $s;
    binmode $s;
    $s->blocking(0);
    return { sock => $s, buf => '', port => $port };
}

sub _write_all {
    my ($conn, $data, $deadline) = @_;
    my $sel = IO::Select->new($conn->{sock});
    my $off = 0;
    local $SIG{PIPE} = 'IGNORE';
    while ($off < length $data) {
        my $left = $deadline - time;
        return "timeout while sending" if $left <= 0;
        next unless $sel->can_write($left);
        my $n = syswrite($conn->{sock}, $data, length($data) - $off, $off);
        if (!defined $n) {
            next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
            return "send: $!";
        }
        $off += $n;
    }
    return undef;
}

# Read more bytes into $conn->{buf}.  Returns 1, 0 on EOF, or an error.
sub _fill {
    my ($conn, $deadline) = @_;
    my $sel = IO::Select->new($conn->{sock});
    while (1) {
        my $left = $deadline - time;
        return "timeout" if $left <= 0;
        next unless $sel->can_read($left);
        my $n = sysread($conn->{sock}, $conn->{buf}, 65536, length $conn->{buf});
        if (!defined $n) {
            next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
            return "recv: $!";
        }
        return $n ? 1 : 0;
    }
}

# Read one response.  $res->{error} is set on timeout, early close or a
# malformed answer; $res->{_nothing} when the peer closed before a byte.
sub _read_response {
    my ($conn, $method, $deadline) = @_;
    my $res = { status => 0, reason => '', headers => {}, header_list => [],
        body => '' };
    my $got_any = length $conn->{buf};
    while (1) {
        # the head
        my $end;
        while (1) {
            if ($conn->{buf} =~ /\r?\n\r?\n/) {
                $end = $+[0];
                last;
            }
            my $r = _fill($conn, $deadline);
            if ($r ne '1') {
                $res->{_close} = 1;
                $res->{_nothing} = 1 unless $got_any;
                $res->{error} = $r eq '0'
                    ? ($got_any ? 'connection closed in the response head'
                                : 'connection closed without a response')
                    : "$r before the response head";
                $res->{body} = $conn->{buf};
                return $res;
            }
            $got_any = 1;
        }
        my $head = substr($conn->{buf}, 0, $end, '');
        my ($status_line, @lines) = split /\r?\n/, $head;
        unless ($status_line =~ m{^HTTP/(\d\.\d) (\d{3})(?: (.*))?$}) {
            $res->{error} = "malformed status line: $status_line";
            $res->{_close} = 1;
            $res->{body} = $head . $conn->{buf};
            return $res;
        }
        @$res{qw(version status reason)} = ($1, $2, $3 // '');
        $res->{headers} = {};
        $res->{header_list} = [];
        for (@lines) {
            next unless /^([^:\s]+):[ \t]*(.*?)[ \t]*$/;
            push @{ $res->{header_list} }, [$1, $2];
            my $n = lc $1;
            $res->{headers}{$n} = exists $res->{headers}{$n}
                ? "$res->{headers}{$n}, $2" : $2;
        }
        last unless $res->{status} =~ /^1/ && $res->{status} != 101;
    }
    my $h = $res->{headers};
    my $conn_hdr = lc($h->{connection} // '');
    $res->{_close} = 1 if $conn_hdr =~ /close/
        || ($res->{version} eq '1.0' && $conn_hdr !~ /keep-alive/);

    if ($method eq 'HEAD' || $res->{status} =~ /^(1\d\d|204|304)$/) {
        return $res;
    }
    if (lc($h->{'transfer-encoding'} // '') =~ /chunked/) {
        my $body = '';
        while (1) {
            while ($conn->{buf} !~ /\r?\n/) {
                my $r = _fill($conn, $deadline);
                return _partial($res, $body, $r) if $r ne '1';
            }
            $conn->{buf} =~ s/^([^\r\n]*)\r?\n//;
            my $line = $1;
            unless ($line =~ /^([0-9a-fA-F]+)/) {
                $res->{error} = "bad chunk size line '$line'";
                $res->{_close} = 1;
                $res->{body} = $body;
                return $res;
            }
            my $size = hex $1;
            if ($size == 0) {
                # trailers, up to the empty line
                while (1) {
                    while ($conn->{buf} !~ /\r?\n/) {
                        my $r = _fill($conn, $deadline);
                        return _partial($res, $body, $r) if $r ne '1';
                    }
                    $conn->{buf} =~ s/^([^\r\n]*)\r?\n//;
                    last if $1 eq '';
                }
                last;
            }
            while (length($conn->{buf}) < $size + 2) {
                my $r = _fill($conn, $deadline);
                return _partial($res, $body . $conn->{buf}, $r) if $r ne '1';
            }
            $body .= substr($conn->{buf}, 0, $size, '');
            $conn->{buf} =~ s/^\r?\n//;
        }
        $res->{body} = $body;
        $res->{chunked} = 1;
        return $res;
    }
    if (defined $h->{'content-length'}) {
        my $len = $h->{'content-length'};
        $len =~ s/,.*//;
        while (length($conn->{buf}) < $len) {
            my $r = _fill($conn, $deadline);
            return _partial($res, $conn->{buf}, $r) if $r ne '1';
        }
        $res->{body} = substr($conn->{buf}, 0, $len, '');
        return $res;
    }
    # neither: the body ends when the connection does
    while (1) {
        my $r = _fill($conn, $deadline);
        last if $r eq '0';
        return _partial($res, $conn->{buf}, $r) if $r ne '1';
    }
    $res->{body} = $conn->{buf};
    $conn->{buf} = '';
    $res->{_close} = 1;
    return $res;
}

sub _partial {
    my ($res, $body, $r) = @_;
    $res->{body} = $body;
    $res->{_close} = 1;
    $res->{error} = $r eq '0' ? 'connection closed in the response body'
        : "$r in the response body";
    return $res;
}

sub _exchange {
    my ($port, $bytes, $method, $timeout) = @_;
    my $deadline = time + $timeout;
    for my $attempt (1, 2) {
        _reset_conn() if $CONN && $CONN->{port} != $port;
        my $reused = $CONN ? 1 : 0;
        $CONN ||= _connect($port, $timeout);
        return { status => 0, headers => {}, header_list => [], body => '',
            error => "cannot connect to 127.0.0.1:$port: $@" } unless $CONN;
        $CONN->{buf} = '';
        my $err = _write_all($CONN, $bytes, $deadline);
        my $res;
        if ($err) {
            $res = { status => 0, headers => {}, header_list => [],
                body => '', error => $err, _close => 1, _nothing => 1 };
        } else {
            $res = _read_response($CONN, $method, $deadline);
        }
        if ($res->{_close} || $res->{error}) {
            _reset_conn();
            # a kept-alive connection the server had closed: once more
            next if $reused && $res->{_nothing} && $attempt == 1
                && time < $deadline;
        }
        $res->{request} = $bytes;
        return $res;
    }
}

sub _raw_exchange {
    my ($port, $bytes, $timeout) = @_;
    my $deadline = time + $timeout;
    my $conn = _connect($port, $timeout)
        or return { status => 0, headers => {}, header_list => [],
            body => '', error => "cannot connect to 127.0.0.1:$port: $@" };
    my $res;
    if (my $err = _write_all($conn, $bytes, $deadline)) {
        # the server may answer (400) before reading everything
        $res = _read_response($conn, 'GET', $deadline);
        $res->{error} //= $err if !$res->{status};
    } else {
        my ($method) = $bytes =~ /^([A-Z]+) /;
        $res = _read_response($conn, $method // 'GET', $deadline);
    }
    close $conn->{sock};
    $res->{request} = $bytes;
    return $res;
}

# ---------------------------------------------------------------- blocks

package Plinth::Test::Filter;
our @ISA = ('Test::Base::Filter');

# `--- x eval`: Perl evaluated in package main (so the helpers exported
# there are in scope); an error fails loudly instead of becoming the value.
sub eval {
    my ($self, @v) = @_;
    return Plinth::Test::_eval_main(join('', @v), 'section');
}

package Plinth::Test;

sub _eval_main {
    my ($code, $what) = @_;
    my @r = CORE::eval("package main;\n#line 1 \"$what\"\n$code");
    die "error in $what: $@" if $@;
    return @r;
}

sub _compile {
    my ($code, $args, $what) = @_;
    my $sub = CORE::eval("package main; sub { my ($args) = \@_;\n"
        . "#line 1 \"$what\"\n$code\n}");
    die "error compiling $what: $@" unless $sub;
    return $sub;
}

sub _has { exists $_[0]->{ $_[1] } }

sub _filters_of {
    my ($block, $section) = @_;
    my $map = $block->_section_map || {};
    return $map->{$section} ? $map->{$section}{filters} // '' : '';
}

sub _parse_request {
    my ($text, $exact) = @_;
    $text =~ s/\A\s+//;
    my ($line, $body) = split /\n/, $text, 2;
    $line =~ s/\s+\z//;
    my ($method, $uri, $version) = split ' ', $line;
    die "request: no method in '$line'" unless $method;
    $body //= '';
    $body =~ s/\n\z// unless $exact;
    return { method => $method, uri => $uri // '/',
        version => $version // 'HTTP/1.1', body => $body };
}

sub _parse_headers {
    my ($v) = @_;
    return () unless defined $v;
    return @$v if ref $v eq 'ARRAY' && (!@$v || ref $v->[0] eq 'ARRAY');
    return map { [$_, $v->{$_}] } sort keys %$v if ref $v eq 'HASH';
    my @h;
    for my $line (split /\n/, $v) {
        next unless $line =~ /\S/;
        $line =~ s/^\s+//;
        $line =~ s/\r?$//;
        die "more_headers: expected 'Name: value', got '$line'"
            unless $line =~ /^([^:\s]+):\s?(.*)$/;
        push @h, [$1, $2];
    }
    return @h;
}

# The expectation for request $i of $n: arrays give one per request, a
# scalar applies to every request.
sub _exp {
    my ($v, $i) = @_;
    return ref $v eq 'ARRAY' ? $v->[$i] : $v;
}

sub _regex {
    my ($v) = @_;
    return $v if ref $v eq 'Regexp';
    $v =~ s/\n\z//;
    return qr/$v/s;
}

sub _log_patterns {
    my ($v) = @_;
    my @p = ref $v eq 'ARRAY' ? @$v : ref $v eq 'Regexp' ? ($v)
        : grep { /\S/ } split /\n/, $v;
    return @p;
}

sub _log_has {
    my ($text, $p) = @_;
    return ref $p eq 'Regexp' ? $text =~ $p : index($text, $p) >= 0;
}

sub _short {
    my ($s, $max) = @_;
    $max //= 2000;
    return 'undef' unless defined $s;
    my $t = length($s) > $max
        ? substr($s, 0, $max) . "... (" . length($s) . " bytes)" : $s;
    $t =~ s/([^\x09\x0a\x20-\x7e])/sprintf '\\x%02x', ord $1/ge;
    return $t;
}

sub _is_str {
    my ($got, $exp, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    if (defined $got && defined $exp && $got eq $exp) {
        return Test::More::pass($name);
    }
    Test::More::fail($name);
    Test::More::diag("     got: '" . _short($got) . "'\n"
        . "expected: '" . _short($exp) . "'");
    return 0;
}

sub _dump_res {
    my ($res) = @_;
    my $t = "response: "
        . ($res->{status} ? "$res->{status} $res->{reason}" : 'none')
        . ($res->{error} ? " ($res->{error})" : '') . "\n";
    $t .= "  $_->[0]: $_->[1]\n" for @{ $res->{header_list} || [] };
    $t .= "  body: " . _short($res->{body}, 1500) . "\n";
    return $t;
}

sub run_tests {
    my $tb = Test::Builder->new;
    Test::More::plan('no_plan') unless $tb->has_plan;
    for my $block (Test::Base::blocks()) {
        _run_block($block);
    }
    done_testing() unless $tb->expected_tests;
}

sub _run_block {
    my ($block) = @_;
    my $name = $block->name;
    my $tb = Test::Builder->new;
    my $fails_before = grep { !$_ } $tb->summary;

    for my $s (grep { !/^_/ } keys %$block) {
        next if $s =~ /^(name|description|seq_num|is_filtered|blocks_object|original_values)$/;
        unless ($SECTIONS{$s}) {
            Test::More::fail("$name - unknown section '--- $s'");
            return;
        }
    }
    unless (eval { $block->run_filters unless $block->is_filtered; 1 }) {
        Test::More::fail("$name - sections evaluate");
        Test::More::diag($@);
        return;
    }

    if (_has($block, 'nginx_t_fails')) {
        _run_nginx_t_block($block, $name);
        return;
    }

    my $c = eval { cluster() };
    unless ($c) {
        Test::More::fail("$name - cluster started");
        Test::More::diag($@);
        return;
    }
    my $timeout = $block->timeout || $DEFAULT_TIMEOUT;
    my $custom = _has($block, 'http_config') || _has($block, 'config');
    my ($log_off, $err_off) = (0, 0);
    my @responses;

    my $ok = eval {
        if ($custom) {
            my $join = sub { join "\n", grep { defined && length } @_ };
            _reset_conn();
            unless (eval {
                $c->restart_nginx(
                    http_extra => $join->($c->{http_extra}, $block->http_config),
                    server_extra => $join->($c->{server_extra}, $block->config));
                1 }) {
                Test::More::fail("$name - nginx starts with the block's config");
                Test::More::diag($@);
                return 1;
            }
        }
        $log_off = $c->error_log_size;
        $err_off = -s $c->stderr_log_path || 0;

        if (_has($block, 'setup')) {
            my $sub = _compile($block->setup, '$cluster, $block', "$name setup");
            unless (eval { $sub->($c, $block); 1 }) {
                Test::More::fail("$name - setup");
                Test::More::diag($@);
                return 1;
            }
            _reset_conn();
        }

        @responses = _send_requests($block, $c, $timeout);
        _check_responses($block, $name, \@responses);

        if (_has($block, 'check')) {
            my $sub = _compile($block->check,
                '$res, $cluster, $block, $responses', "$name check");
            _with_prefix($name, sub {
                eval { $sub->($responses[-1], $c, $block, \@responses); 1 }
                    or Test::More::fail("check died: $@");
            });
        }

        _check_logs($block, $name, $c, $log_off, $err_off, $timeout);
        1;
    };
    unless ($ok) {
        Test::More::fail("$name - harness error");
        Test::More::diag($@);
    }

    if (_has($block, 'teardown')) {
        my $sub = eval { _compile($block->teardown, '$cluster, $block',
            "$name teardown") };
        unless ($sub && eval { $sub->($c, $block); 1 }) {
            Test::More::fail("$name - teardown");
            Test::More::diag($@);
        }
        _reset_conn();
    }

    my $fails_after = grep { !$_ } $tb->summary;
    if ($fails_after > $fails_before) {
        my $d = "--- $name failed; what happened:\n";
        for my $i (0 .. $#responses) {
            $d .= "request " . ($i + 1) . ": "
                . _short((split /\r?\n/, $responses[$i]{request} // '')[0], 200)
                . "\n" . _dump_res($responses[$i]);
        }
        my $log = $c->error_log_since($log_off);
        my @l = split /\n/, $log;
        splice @l, 0, @l - 30 if @l > 30;
        $d .= "error.log during the block (last 30 lines):\n"
            . join('', map { "  $_\n" } @l);
        $d .= "cluster files: " . $c->dir . "\n";
        Test::More::diag($d);
    }

    if ($custom) {
        _reset_conn();
        unless (eval { $c->restart_nginx; 1 }) {
            Test::More::fail("$name - nginx restarts with the default config");
            Test::More::diag($@);
        }
    }
}

# Test::More functions called in `check` get "$name - " in their names.
sub _with_prefix {
    my ($name, $code) = @_;
    my $orig = \&Test::Builder::ok;
    no warnings 'redefine';
    local *Test::Builder::ok = sub {
        my ($self, $test, $tname) = @_;
        local $Test::Builder::Level = $Test::Builder::Level + 1;
        $tname = defined $tname && length $tname ? "$name - $tname"
            : "$name - check";
        return $orig->($self, $test, $tname);
    };
    $code->();
}

sub _send_requests {
    my ($block, $c, $timeout) = @_;
    my @res;
    if (_has($block, 'raw_request')) {
        my $raw = $block->raw_request;
        for my $bytes (ref $raw eq 'ARRAY' ? @$raw : ($raw)) {
            push @res, _raw_exchange($c->port, $bytes, $timeout);
        }
        return @res;
    }
    return () unless _has($block, 'request');
    my $exact = _filters_of($block, 'request') =~ /\beval\b/;
    my $r = $block->request;
    my @reqs = ref $r eq 'ARRAY' ? @$r : ($r);
    my $mh = $block->more_headers;
    my $per_request = ref $mh eq 'ARRAY' && @$mh
        && !grep { ref $_ } @$mh;       # eval: one string per request
    die "more_headers: " . scalar(@$mh) . " values for " . scalar(@reqs)
        . " requests" if $per_request && @$mh != @reqs;
    my @headers = $per_request ? () : _parse_headers($mh);
    my $file_body;
    if (_has($block, 'request_body_file')) {
        my $f = $block->request_body_file;
        $f =~ s/^\s+|\s+$//g;
        $f = "$Plinth::Cluster::ROOT/$f" unless $f =~ m{^/};
        open my $fh, '<:raw', $f or die "request_body_file $f: $!";
        local $/;
        $file_body = <$fh>;
    }
    for my $i (0 .. $#reqs) {
        my $req = _parse_request($reqs[$i], $exact);
        $req->{headers} = [map { [@$_] }
            $per_request ? _parse_headers($mh->[$i]) : @headers];
        $req->{body} = $file_body if defined $file_body;
        my %sign;
        for my $s (@SIGN_SECTIONS) {
            next unless _has($block, $s);
            my $v = _exp($block->$s, $i);
            $v = 1 if $s eq 'unsigned' && !ref $block->$s;
            $v =~ s/^\s+|\s+$//g if defined $v && !ref $v;
            $sign{ $s eq 'sign_region' ? 'region' : $s } = $v;
        }
        _sign($req, $c, %sign);
        push @res, _exchange($c->port, _build_request($req, $c->port),
            $req->{method}, $timeout);
    }
    return @res;
}

sub _check_responses {
    my ($block, $name, $responses) = @_;
    my $n = @$responses;
    for my $i (0 .. $n - 1) {
        my $res = $responses->[$i];
        my $tn = $n > 1 ? "$name (request " . ($i + 1) . ")" : $name;

        if (_has($block, 'error_code')) {
            my $want = _exp($block->error_code, $i);
            $want =~ s/^\s+|\s+$//g if defined $want;
            _is_str($res->{status}, $want, "$tn - status code ok")
                or ($res->{error} && Test::More::diag("  ($res->{error})"));
        } elsif ($res->{error}) {
            Test::More::fail("$tn - response received");
            Test::More::diag("  $res->{error}");
        }

        if (_has($block, 'response_headers')) {
            my $v = _exp($block->response_headers, $i);
            for my $line (split /\n/, $v // '') {
                next unless $line =~ /\S/;
                $line =~ s/^\s+|\s+$//g;
                if ($line =~ /^!\s*(\S+)$/ || $line =~ /^([^:\s]+):\s*$/) {
                    my $h = $1;
                    Test::More::ok(!defined $res->{headers}{ lc $h },
                        "$tn - header $h absent")
                        or Test::More::diag("  $h: $res->{headers}{lc $h}");
                    next;
                }
                die "response_headers: expected 'Name: value', got '$line'"
                    unless $line =~ /^([^:\s]+):\s*(.*)$/;
                _is_str($res->{headers}{ lc $1 }, $2, "$tn - header $1 ok");
            }
        }

        if (_has($block, 'response_headers_like')) {
            my $v = _exp($block->response_headers_like, $i);
            for my $line (split /\n/, $v // '') {
                next unless $line =~ /\S/;
                $line =~ s/^\s+//;
                die "response_headers_like: expected 'Name: regex', got '$line'"
                    unless $line =~ /^([^:\s]+):\s*(.*?)\s*$/;
                my ($h, $re) = ($1, $2);
                my $got = $res->{headers}{ lc $h };
                Test::More::ok(defined $got && $got =~ /$re/,
                    "$tn - header $h like /$re/")
                    or Test::More::diag("  $h: " . ($got // '(absent)'));
            }
        }

        if (_has($block, 'response_body')) {
            _is_str($res->{body}, _exp($block->response_body, $i) // '',
                "$tn - response_body - response is expected");
        }
        if (_has($block, 'response_body_like')) {
            my $re = _regex(_exp($block->response_body_like, $i));
            Test::More::ok($res->{body} =~ $re,
                "$tn - response_body_like - response matches")
                or Test::More::diag("  body: '" . _short($res->{body}) . "'\n"
                    . "  does not match: $re");
        }
        if (_has($block, 'response_body_unlike')) {
            my $re = _regex(_exp($block->response_body_unlike, $i));
            Test::More::ok($res->{body} !~ $re,
                "$tn - response_body_unlike - response does not match")
                or Test::More::diag("  body: '" . _short($res->{body}) . "'\n"
                    . "  matches: $re");
        }
    }
}

sub _check_logs {
    my ($block, $name, $c, $log_off, $err_off, $timeout) = @_;
    my @want = _has($block, 'error_log') ? _log_patterns($block->error_log) : ();
    my $read = sub {
        $c->error_log_since($log_off)
            . $c->error_log_since($err_off, $c->stderr_log_path);
    };
    # lines may be written just after the response: wait for them, bounded
    my $log = $read->();
    my $deadline = time + ($timeout < 3 ? $timeout : 3);
    while (@want && grep({ !_log_has($log, $_) } @want) && time < $deadline) {
        sleep 0.05;
        $log = $read->();
    }
    sleep 0.05;
    $log = $read->();

    for my $p (@want) {
        Test::More::ok(_log_has($log, $p), "$name - error_log has '$p'");
    }
    if (_has($block, 'no_error_log')) {
        for my $p (_log_patterns($block->no_error_log)) {
            my ($line) = grep { _log_has($_, $p) } split /\n/, $log;
            Test::More::ok(!defined $line, "$name - no_error_log '$p'")
                or Test::More::diag("  found: $line");
        }
    }
    my @defaults = grep {
        my $d = $_;
        !grep { !ref $_ && index($_, $d) >= 0 } @want;
    } @DEFAULT_NO_ERROR_LOG;
    if (@defaults) {
        my @bad = grep {
            my $l = $_;
            grep { index($l, $_) >= 0 } @defaults;
        } split /\n/, $log;
        Test::More::ok(!@bad, "$name - no " . join('/', @defaults)
            . " in the nginx logs")
            or Test::More::diag(join '', map { "  $_\n" } @bad);
    }
}

sub _run_nginx_t_block {
    my ($block, $name) = @_;
    my $c = _cluster();
    my $join = sub { join "\n", grep { defined && length } @_ };
    my ($rc, $out) = eval {
        $c->nginx_t(
            http_extra => $join->($c->{http_extra}, $block->http_config),
            server_extra => $join->($c->{server_extra}, $block->config));
    };
    unless (defined $rc) {
        Test::More::fail("$name - nginx -t ran");
        Test::More::diag($@);
        return;
    }
    Test::More::ok($rc != 0, "$name - nginx -t fails")
        or Test::More::diag("nginx -t output:\n$out");
    my $re = _regex($block->nginx_t_fails);
    Test::More::ok($out =~ $re, "$name - nginx -t says $re")
        or Test::More::diag("nginx -t output:\n$out");
}

1;
