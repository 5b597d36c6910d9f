#!/usr/bin/perl
# multi-read.pl -- the data node's POST /blobs/multi bodies, for the tests
# (proto/plinth.proto: MultiReadRequest in, MultiReadEntry frames out).
#
#   perl t/multi-read.pl encode ID:OFFSET:LENGTH ... > body
#   perl t/multi-read.pl decode < answer
#       one line per frame: "<index> <code or ok> <length> <size> <md5 of data>"
use strict;
use warnings;
use Digest::MD5 qw(md5_hex);

sub varint {
    my ($v) = @_;
    my $out = '';
    while ($v >= 0x80) {
        $out .= chr(($v & 0x7f) | 0x80);
        $v >>= 7;
    }
    return $out . chr($v);
}

sub field_len { my ($tag, $s) = @_; return chr($tag) . varint(length $s) . $s; }

binmode STDOUT;
binmode STDIN;
my $cmd = shift // '';

if ($cmd eq 'encode') {
    my $body = '';
    for my $a (@ARGV) {
        my ($id, $off, $len) = split /:/, $a;
        my $item = field_len(0x0a, $id);
        $item .= chr(0x10) . varint($off) if $off;
        $item .= chr(0x18) . varint($len) if $len;
        $body .= field_len(0x0a, $item);
    }
    print $body;
    exit 0;
}

if ($cmd eq 'decode') {
    local $/;
    my $in = <STDIN> // '';
    my $p = 0;
    while ($p < length $in) {
        die "short frame length\n" if $p + 4 > length $in;
        my $hl = unpack('V', substr($in, $p, 4));
        $p += 4;
        die "short frame header\n" if $p + $hl > length $in;
        my $h = substr($in, $p, $hl);
        $p += $hl;
        my %f = (1 => 0, 2 => '', 3 => 0, 4 => 0);
        my $q = 0;
        my $rv = sub {
            my ($v, $s) = (0, 0);
            while (1) {
                my $b = ord(substr($h, $q++, 1));
                $v |= ($b & 0x7f) << $s;
                $s += 7;
                last unless $b & 0x80;
            }
            return $v;
        };
        while ($q < length $h) {
            my $key = $rv->();
            my ($num, $wt) = ($key >> 3, $key & 7);
            if ($wt == 0) {
                $f{$num} = $rv->();
            } elsif ($wt == 2) {
                my $l = $rv->();
                $f{$num} = substr($h, $q, $l);
                $q += $l;
            } else {
                die "wire type $wt\n";
            }
        }
        my $data = '';
        if ($f{2} eq '') {
            die "short frame data\n" if $p + $f{3} > length $in;
            $data = substr($in, $p, $f{3});
            $p += $f{3};
        }
        printf "%d %s %d %d %s\n", $f{1}, $f{2} eq '' ? 'ok' : $f{2}, $f{3},
            $f{4}, md5_hex($data);
    }
    exit 0;
}

die "usage: $0 encode ID:OFFSET:LENGTH ... | decode\n";
