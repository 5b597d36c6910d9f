package Plinth::SigV4;

# AWS Signature Version 4 for S3, the client side, for the tests: pure
# Perl (Digest::SHA, Compress::Zlib, MIME::Base64: all core), no I/O, no
# clock unless no time is given.  Verified by t/02-sigv4-signer.t against
# the worked examples of the S3 API reference and AWS's SigV4 test suite.
#
#   use Plinth::SigV4 qw(sign_request presign sign_streaming);
#
#   my $s = sign_request(method => 'PUT', uri => '/b/k?x=1',
#       headers => [[Host => '127.0.0.1:9000'], ['Content-Type' => 'a/b']],
#       body => $bytes, access_key => $ak, secret_key => $sk);
#   # $s->{headers}: the headers given, plus X-Amz-Date,
#   # X-Amz-Content-Sha256 and Authorization; also $s->{signature},
#   # canonical_request, string_to_sign, signed_headers, scope, amz_date,
#   # payload_hash, signing_key (binary)
#
#   my $p = presign(method => 'GET', uri => '/b/k', host => '127.0.0.1:9000',
#       expires => 3600, access_key => $ak, secret_key => $sk);
#   # $p->{uri}: /b/k?X-Amz-Algorithm=...&X-Amz-Signature=...
#
#   my $u = sign_streaming(method => 'PUT', uri => '/b/k', headers => [...],
#       data => $bytes, mode => 'signed-trailer', checksum => 'crc32', ...);
#   # $u->{headers} (Content-Encoding: aws-chunked, Content-Length, ...)
#   # and $u->{body}: the aws-chunked framing, byte for byte
#
# S3 rules: the canonical URI is the raw path as sent, each segment
# percent-decoded then UriEncode()d once (A-Za-z0-9-._~ kept, the rest
# %XX upper case); the path is never normalized.  Query names and values
# are percent-decoded ('+' stays a plus) and UriEncode()d, sorted by name
# then value; a presigned URL leaves X-Amz-Signature out.  Header values
# are trimmed and runs of blanks collapsed; repeated headers are joined
# with ','.
#
# Times: time => epoch seconds, or amz_date => '20130524T000000Z'; neither:
# now.

use strict;
use warnings;

use Carp qw(croak);
use Compress::Zlib ();
use Digest::SHA qw(sha1 sha256 sha256_hex hmac_sha256 hmac_sha256_hex);
use Exporter 'import';
use MIME::Base64 qw(encode_base64);
use POSIX qw(strftime);

our @EXPORT_OK = qw(sign_request presign sign_streaming chunked_body
    uri_encode uri_decode canonical_uri canonical_query canonical_headers
    signing_key amz_date parse_amz_date checksum_base64 sha256_hex
    decode_http_chunked EMPTY_SHA256 UNSIGNED_PAYLOAD);
our %EXPORT_TAGS = (all => \@EXPORT_OK);

use constant EMPTY_SHA256 =>
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
use constant UNSIGNED_PAYLOAD => 'UNSIGNED-PAYLOAD';
use constant ALGORITHM => 'AWS4-HMAC-SHA256';

our %STREAMING = (
    'signed'           => 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
    'signed-trailer'   => 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER',
    'unsigned-trailer' => 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
);

# ---------------------------------------------------------------- encoding

# UriEncode of the S3 documentation: bytes; A-Za-z0-9 - . _ ~ as they are,
# everything else %XX (upper case); '/' kept when $keep_slash.
sub uri_encode {
    my ($s, $keep_slash) = @_;
    $s = '' unless defined $s;
    utf8::encode($s) if utf8::is_utf8($s);
    my $re = $keep_slash ? qr{([^A-Za-z0-9\-._~/])} : qr{([^A-Za-z0-9\-._~])};
    $s =~ s/$re/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

# %XX decoded (either case); a '%' not followed by two hex digits stays.
# '+' is a plus.
sub uri_decode {
    my ($s) = @_;
    $s = '' unless defined $s;
    $s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    return $s;
}

# The canonical URI of a raw request path (the query, if any, is cut).
sub canonical_uri {
    my ($path) = @_;
    $path = '/' unless defined $path && length $path;
    $path =~ s/[?#].*//s;
    return '/' if $path eq '';
    return join '/', map { uri_encode(uri_decode($_)) } split m{/}, $path, -1;
}

# The canonical query of a raw query string (without '?').  %o: presigned
# => 1 leaves X-Amz-Signature out.
sub canonical_query {
    my ($query, %o) = @_;
    return '' unless defined $query && length $query;
    my @p;
    for my $piece (split /&/, $query) {
        next if $piece eq '';
        my ($n, $v) = split /=/, $piece, 2;
        $v = '' unless defined $v;
        my $en = uri_encode(uri_decode($n));
        next if $o{presigned} && $en eq 'X-Amz-Signature';
        push @p, [$en, uri_encode(uri_decode($v))];
    }
    return join '&', map { "$_->[0]=$_->[1]" }
        sort { $a->[0] cmp $b->[0] || $a->[1] cmp $b->[1] } @p;
}

sub _trim {
    my ($v) = @_;
    $v = '' unless defined $v;
    $v =~ s/^[ \t]+|[ \t]+$//g;
    $v =~ s/[ \t]+/ /g;
    return $v;
}

# Headers in any of the forms the harness uses -> [[name, value], ...]:
# an arrayref of pairs, a flat arrayref (n, v, n, v), or a hashref.
sub _header_list {
    my ($h) = @_;
    return [] unless defined $h;
    if (ref $h eq 'HASH') {
        return [map { [$_, $h->{$_}] } sort keys %$h];
    }
    croak "headers: an arrayref or a hashref" unless ref $h eq 'ARRAY';
    return [map { [@$_] } @$h] if !@$h || ref $h->[0] eq 'ARRAY';
    my @l = @$h;
    croak "headers: odd number of elements" if @l % 2;
    my @out;
    push @out, [splice(@l, 0, 2)] while @l;
    return \@out;
}

# canonical_headers(\@pairs, \@names) -> ($canonical_text, 'a;b;c')
# Names are signed lower case, sorted; a name the request lacks is signed
# with an empty value (as a server does).
sub canonical_headers {
    my ($headers, $names) = @_;
    my %vals;
    for my $h (@$headers) {
        push @{ $vals{ lc $h->[0] } }, _trim($h->[1]);
    }
    my %seen;
    my @n = sort grep { !$seen{$_}++ } map { lc } @$names;
    my $text = join '', map { "$_:" . join(',', @{ $vals{$_} || [''] }) . "\n" } @n;
    return ($text, join(';', @n));
}

sub _default_signed {
    my ($headers) = @_;
    my @n = ('host');
    for my $h (@$headers) {
        my $n = lc $h->[0];
        push @n, $n if $n =~ /^x-amz-/ || $n eq 'content-md5'
            || $n eq 'content-type';
    }
    return \@n;
}

# ---------------------------------------------------------------- time, keys

sub amz_date {
    my ($t) = @_;
    $t = time unless defined $t;
    return strftime('%Y%m%dT%H%M%SZ', gmtime $t);
}

sub parse_amz_date {
    my ($d) = @_;
    croak "not an x-amz-date (YYYYMMDDTHHMMSSZ): '$d'"
        unless defined $d && $d =~ /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/;
    require Time::Local;
    return Time::Local::timegm($6, $5, $4, $3, $2 - 1, $1);
}

sub _amz_date_of {
    my (%o) = @_;
    return $o{amz_date} if defined $o{amz_date};
    return amz_date($o{time});
}

sub signing_key {
    my ($secret, $date8, $region, $service) = @_;
    my $k = hmac_sha256($date8, "AWS4$secret");
    $k = hmac_sha256($region, $k);
    $k = hmac_sha256($service, $k);
    return hmac_sha256('aws4_request', $k);
}

sub _keys {
    my (%o) = @_;
    croak "access_key and secret_key are needed"
        unless defined $o{access_key} && defined $o{secret_key};
    my $date = _amz_date_of(%o);
    croak "bad amz_date '$date'" unless $date =~ /^(\d{8})T\d{6}Z$/;
    my $d8 = $1;
    my $region = $o{region} // 'us-east-1';
    my $service = $o{service} // 's3';
    my $scope = "$d8/$region/$service/aws4_request";
    return ($date, $scope, signing_key($o{secret_key}, $d8, $region, $service));
}

sub _split_uri {
    my ($uri) = @_;
    $uri = '/' unless defined $uri && length $uri;
    $uri =~ s/#.*//s;
    my ($path, $query) = split /\?/, $uri, 2;
    return ($path, $query);
}

# ---------------------------------------------------------------- headers

# sign_request(%o) -> hashref; see the top of the file.
#   method uri headers access_key secret_key   required (headers need Host,
#                                               or give host => 'h:p')
#   payload_hash => 'UNSIGNED-PAYLOAD' | hex | STREAMING-...: sent in
#       X-Amz-Content-Sha256 (replacing one given) and signed; without it
#       an X-Amz-Content-Sha256 header given is signed as it is, else the
#       SHA-256 of body => bytes (default: empty) is sent and signed
#   time | amz_date       an X-Amz-Date header given is used when neither is
#   region (us-east-1)  service (s3)
#   signed_headers => [names] | 'all'   default: host, x-amz-*, content-md5,
#                                       content-type
#   content_sha256_header => 0   do not add X-Amz-Content-Sha256 (generic
#                                services sign without it)
sub sign_request {
    my (%o) = @_;
    my $method = $o{method} // croak "sign_request: method";
    my $headers = _header_list($o{headers});
    my %have = map { lc($_->[0]) => $_ } @$headers;
    if (!$have{host}) {
        croak "sign_request: no Host header (give headers or host)"
            unless defined $o{host};
        unshift @$headers, ['Host', $o{host}];
        $have{host} = $headers->[0];
    }

    # the date: explicit, else the header's, else now
    if (!defined $o{time} && !defined $o{amz_date} && $have{'x-amz-date'}) {
        $o{amz_date} = $have{'x-amz-date'}[1];
    }
    my $date = _amz_date_of(%o);
    if ($have{'x-amz-date'}) {
        $have{'x-amz-date'}[1] = $date;
    } else {
        push @$headers, ['X-Amz-Date', $date];
    }

    # the payload hash: explicit, else the header's, else of the body
    my $ph = $o{payload_hash};
    $ph = $have{'x-amz-content-sha256'}[1]
        if !defined $ph && $have{'x-amz-content-sha256'};
    $ph = sha256_hex($o{body} // '') unless defined $ph;
    if ($have{'x-amz-content-sha256'}) {
        $have{'x-amz-content-sha256'}[1] = $ph;
    } elsif ($o{content_sha256_header} // 1) {
        push @$headers, ['X-Amz-Content-Sha256', $ph];
    }
    @$headers = grep { lc($_->[0]) ne 'authorization' } @$headers;

    my ($amz_date, $scope, $key) = _keys(%o, amz_date => $date);
    my $names = $o{signed_headers};
    $names = [map { $_->[0] } @$headers] if defined $names && !ref $names
        && $names eq 'all';
    $names ||= _default_signed($headers);
    my ($path, $query) = _split_uri($o{uri});
    my ($ch, $sh) = canonical_headers($headers, $names);
    my $creq = join "\n", $method, canonical_uri($path),
        canonical_query($query), $ch, $sh, $ph;
    my $sts = join "\n", ALGORITHM, $amz_date, $scope, sha256_hex($creq);
    my $sig = hmac_sha256_hex($sts, $key);
    my $authz = ALGORITHM . " Credential=$o{access_key}/$scope, "
        . "SignedHeaders=$sh, Signature=$sig";
    push @$headers, ['Authorization', $authz];
    return {
        headers => $headers, authorization => $authz, signature => $sig,
        canonical_request => $creq, string_to_sign => $sts,
        signed_headers => $sh, scope => $scope, amz_date => $amz_date,
        payload_hash => $ph, signing_key => $key,
    };
}

# ---------------------------------------------------------------- presign

# presign(%o) -> { uri, query, signature, canonical_request,
#                  string_to_sign, amz_date, scope }
#   method uri access_key secret_key; host => 'h:p' or headers with Host
#   expires (3600)  time | amz_date  region  service
#   signed_headers => [names] (default: host only; their values from
#       headers)
#   payload_hash (UNSIGNED-PAYLOAD)
#   X-Amz-* parameters already in uri's query are kept and signed.
sub presign {
    my (%o) = @_;
    my $method = $o{method} // croak "presign: method";
    my $headers = _header_list($o{headers});
    unless (grep { lc($_->[0]) eq 'host' } @$headers) {
        croak "presign: no host" unless defined $o{host};
        unshift @$headers, ['Host', $o{host}];
    }
    my ($amz_date, $scope, $key) = _keys(%o);
    my $names = $o{signed_headers} || ['host'];
    my ($ch, $sh) = canonical_headers($headers, $names);
    my $expires = $o{expires} // 3600;
    my @q = (
        ['X-Amz-Algorithm', ALGORITHM],
        ['X-Amz-Credential', "$o{access_key}/$scope"],
        ['X-Amz-Date', $amz_date],
        ['X-Amz-Expires', $expires],
        ['X-Amz-SignedHeaders', $sh],
    );
    my $added = join '&', map { "$_->[0]=" . uri_encode($_->[1]) } @q;
    my ($path, $query) = _split_uri($o{uri});
    my $full = defined $query && length $query ? "$query&$added" : $added;
    my $creq = join "\n", $method, canonical_uri($path),
        canonical_query($full, presigned => 1), $ch, $sh,
        $o{payload_hash} // UNSIGNED_PAYLOAD;
    my $sts = join "\n", ALGORITHM, $amz_date, $scope, sha256_hex($creq);
    my $sig = hmac_sha256_hex($sts, $key);
    $full .= "&X-Amz-Signature=$sig";
    return {
        uri => "$path?$full", query => $full, signature => $sig,
        canonical_request => $creq, string_to_sign => $sts,
        amz_date => $amz_date, scope => $scope, signed_headers => $sh,
        signing_key => $key,
    };
}

# ---------------------------------------------------------------- aws-chunked

# checksum_base64($algorithm, $bytes): the value of x-amz-checksum-<alg>:
# base64 of the big-endian CRC32, CRC32C or CRC64NVME, or of the SHA-1 /
# SHA-256 digest. CRC32 is zlib's; CRC32C and CRC64NVME are computed here
# bit by bit from the catalogue's parameters (reflected, init and xorout
# all ones), independently of the gateway's code: keep the data small.
sub checksum_base64 {
    no warnings 'portable';    # 64-bit constants; this perl has 64-bit ints
    my ($alg, $data) = @_;
    $alg = lc $alg;
    my $raw = $alg eq 'crc32' ? pack('N', Compress::Zlib::crc32($data))
        : $alg eq 'crc32c' ? pack('N', _crc_reflected(0x82f63b78, 32, $data))
        : $alg eq 'crc64nvme'
            ? pack('Q>', _crc_reflected(0x9a6c9329ac4bc9b5, 64, $data))
        : $alg eq 'sha1' ? sha1($data)
        : $alg eq 'sha256' ? sha256($data)
        : croak "checksum_base64: '$alg' not supported "
                . "(crc32, crc32c, crc64nvme, sha1, sha256)";
    return encode_base64($raw, '');
}

sub _crc_reflected {
    no warnings 'portable';
    my ($poly, $width, $data) = @_;
    my $ones = $width == 64 ? 0xffffffffffffffff : 0xffffffff;
    my $crc = $ones;
    for my $byte (unpack 'C*', $data) {
        $crc ^= $byte;
        $crc = $crc & 1 ? ($crc >> 1) ^ $poly : $crc >> 1 for 1 .. 8;
    }
    return $crc ^ $ones;
}

sub _chunks {
    my ($data, %o) = @_;
    my @sizes;
    if ($o{chunk_sizes}) {
        @sizes = @{ $o{chunk_sizes} };
        my $sum = 0;
        $sum += $_ for @sizes;
        croak "chunk_sizes add up to $sum, the data has " . length($data)
            if $sum != length $data;
    } else {
        my $cs = $o{chunk_size} || 65536;
        my $left = length $data;
        while ($left > 0) {
            my $n = $left < $cs ? $left : $cs;
            push @sizes, $n;
            $left -= $n;
        }
    }
    my ($off, @c) = (0);
    for my $n (@sizes) {
        push @c, substr($data, $off, $n);
        $off += $n;
    }
    return @c;
}

# chunked_body(%o) -> { body, chunk_signatures, trailer_signature,
#                       decoded_length, content_length }
#   data; chunk_size (65536) or chunk_sizes => [..] (then the final empty
#       chunk); mode: signed | signed-trailer | unsigned-trailer
#   signed modes: seed_signature, amz_date, scope and signing_key (binary)
#       or secret_key (+ region, service)
#   trailers => [[name, value], ..] or checksum => 'crc32' (x-amz-checksum-
#       crc32 of the data); trailer modes only
#   trailer_eol ("\r\n"): what ends each trailer line
sub chunked_body {
    my (%o) = @_;
    my $data = $o{data} // '';
    my $mode = $o{mode} // 'signed';
    croak "chunked_body: mode '$mode' (signed, signed-trailer, unsigned-trailer)"
        unless $STREAMING{$mode};
    my $signed = $mode ne 'unsigned-trailer';
    my $trailer_mode = $mode =~ /trailer/;
    my @trailers = @{ $o{trailers} || [] };
    if ($o{checksum}) {
        push @trailers, ['x-amz-checksum-' . lc $o{checksum},
            checksum_base64($o{checksum}, $data)];
    }
    croak "chunked_body: trailers need a -trailer mode" if @trailers && !$trailer_mode;

    my ($key, $date, $scope, $prev);
    if ($signed) {
        $date = $o{amz_date} // croak "chunked_body: amz_date";
        $scope = $o{scope} // croak "chunked_body: scope";
        $key = $o{signing_key};
        if (!$key) {
            my (undef, $sc, $k) = _keys(%o, access_key => $o{access_key} // '-');
            ($key, $scope) = ($k, $sc);
        }
        $prev = $o{seed_signature} // croak "chunked_body: seed_signature";
    }
    my $eol = $o{trailer_eol} // "\r\n";
    my ($body, @sigs) = ('');
    for my $c (_chunks($data, %o), '') {
        my $head = sprintf '%x', length $c;
        if ($signed) {
            my $sts = join "\n", 'AWS4-HMAC-SHA256-PAYLOAD', $date, $scope,
                $prev, EMPTY_SHA256, sha256_hex($c);
            $prev = hmac_sha256_hex($sts, $key);
            push @sigs, $prev;
            $head .= ";chunk-signature=$prev";
        }
        $body .= "$head\r\n";
        $body .= "$c\r\n" if length $c;
    }
    my $tsig;
    if ($trailer_mode) {
        my $canon = '';
        for my $t (@trailers) {
            $body .= "$t->[0]:$t->[1]$eol";
            $canon .= lc($t->[0]) . ':' . _trim($t->[1]) . "\n";
        }
        if ($signed) {
            my $sts = join "\n", 'AWS4-HMAC-SHA256-TRAILER', $date, $scope,
                $prev, sha256_hex($canon);
            $tsig = hmac_sha256_hex($sts, $key);
            $body .= "x-amz-trailer-signature:$tsig$eol";
        }
    }
    $body .= "\r\n";
    return { body => $body, chunk_signatures => \@sigs,
        trailer_signature => $tsig, decoded_length => length $data,
        content_length => length $body, trailers => \@trailers };
}

# sign_streaming(%o): sign_request + chunked_body for one aws-chunked PUT.
#   sign_request's options (method uri headers access_key secret_key time
#   region service signed_headers) and chunked_body's (data chunk_size
#   chunk_sizes mode trailers checksum).  Adds Content-Encoding: aws-chunked
#   (unless a Content-Encoding is given: then aws-chunked is put first),
#   X-Amz-Decoded-Content-Length, X-Amz-Trailer (trailer modes),
#   X-Amz-Content-Sha256 (STREAMING-...) and Content-Length.
# Returns sign_request's hashref plus body, chunk_signatures,
# trailer_signature, seed_signature.
sub sign_streaming {
    my (%o) = @_;
    my $mode = $o{mode} // 'signed';
    croak "sign_streaming: mode '$mode'" unless $STREAMING{$mode};
    my $data = $o{data} // '';
    my @trailers = @{ $o{trailers} || [] };
    my $tnames = join ',', map { lc $_->[0] } @trailers;
    $tnames = join ',', grep { length } $tnames,
        $o{checksum} ? 'x-amz-checksum-' . lc $o{checksum} : '';

    # the framing's length does not depend on the signatures
    my $dry = chunked_body(%o, data => $data, seed_signature => '0' x 64,
        amz_date => '20000101T000000Z', scope => '-', signing_key => 'k');

    my $headers = _header_list($o{headers});
    my %have = map { lc($_->[0]) => $_ } @$headers;
    if ($have{'content-encoding'}) {
        $have{'content-encoding'}[1] = "aws-chunked,$have{'content-encoding'}[1]"
            unless $have{'content-encoding'}[1] =~ /aws-chunked/;
    } else {
        push @$headers, ['Content-Encoding', 'aws-chunked'];
    }
    push @$headers, ['X-Amz-Decoded-Content-Length', length $data]
        unless $have{'x-amz-decoded-content-length'};
    push @$headers, ['X-Amz-Trailer', $tnames]
        if length $tnames && !$have{'x-amz-trailer'};
    push @$headers, ['Content-Length', $dry->{content_length}]
        unless $have{'content-length'};
    @$headers = grep { lc($_->[0]) ne 'x-amz-content-sha256' } @$headers;

    my $s = sign_request(%o, headers => $headers, body => undef,
        payload_hash => $STREAMING{$mode});
    my $b = chunked_body(%o, data => $data, mode => $mode,
        seed_signature => $s->{signature}, amz_date => $s->{amz_date},
        scope => $s->{scope}, signing_key => $s->{signing_key});
    return { %$s, body => $b->{body}, chunk_signatures => $b->{chunk_signatures},
        trailer_signature => $b->{trailer_signature},
        seed_signature => $s->{signature} };
}

# ---------------------------------------------------------------- misc

# The bytes of an HTTP/1.1 chunked body, or undef if it is not one.
sub decode_http_chunked {
    my ($b) = @_;
    my $out = '';
    while (1) {
        return undef unless $b =~ s/^([0-9A-Fa-f]+)[^\r\n]*\r?\n//;
        my $n = hex $1;
        if ($n == 0) {
            return $out;
        }
        return undef if length($b) < $n;
        $out .= substr($b, 0, $n, '');
        return undef unless $b =~ s/^\r?\n//;
    }
}

1;
