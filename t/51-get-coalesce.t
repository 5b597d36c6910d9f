# GET and HEAD lookups sent together (plinth_get_coalesce, the default 1;
# ngx_plinth_getq.c): while a worker's lookup statement runs, the lookups
# that arrive wait and then go in one statement. Made deterministic by a
# lock: a psql holds ACCESS EXCLUSIVE on `objects`, so the first GET's
# statement waits; the GETs started meanwhile queue in the worker (one
# worker here); once the lock goes, they are sent together, and each must
# get exactly its own answer: bytes, errors (NoSuchKey, NoSuchBucket,
# AccessDenied, a delete marker), HEAD, a multipart object (asked again for
# its parts), keys that need quoting in an array literal.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Plinth::Test;
use Plinth::TestUtil;
use Encode qw(encode_utf8);
use URI::Escape qw(uri_escape);
use Time::HiRes qw(sleep);

my $c = Plinth::Test::cluster();
restart_with(template_with(worker_processes => 'worker_processes 1;'));
my $log0 = $c->error_log_size;

sub s3 { Plinth::Test::s3_request(@_) }

sub metric {
    my ($name) = @_;
    my $r = s3(GET => '/metrics');
    return $r->{body} =~ /^\Q$name\E (\d+)$/m ? $1 : undef;
}

sub esc { join '/', map { uri_escape($_) } split m{/}, $_[0], -1 }

# ------------------------------------------------------------ fixtures

is(s3(PUT => '/gqa')->{status}, 200, 'bucket gqa');
is(s3(PUT => '/gqpub', headers => { 'x-amz-acl' => 'public-read' })->{status},
    200, 'bucket gqpub (public-read)');
is(s3(PUT => '/gqver')->{status}, 200, 'bucket gqver');
is(s3(PUT => '/gqver?versioning',
      body => '<VersioningConfiguration><Status>Enabled</Status>'
        . '</VersioningConfiguration>')->{status}, 200, 'gqver versioned');

my @keys = ('plain', 'a"quote', 'back\\slash', 'comma,key', '{brace}',
    'NULL', 'space key', encode_utf8("\x{43a}\x{43b}\x{44e}\x{447}"),
    'dir/sub/obj');
my %body;
for my $i (0 .. $#keys) {
    my $k = $keys[$i];
    $body{$k} = Plinth::Test::random_bytes(1000 + 97 * $i);
    is(s3(PUT => '/gqa/' . esc($k), body => $body{$k})->{status}, 200,
        "PUT gqa/$k");
}
my $pub = Plinth::Test::random_bytes(3000);
is(s3(PUT => '/gqpub/p', body => $pub)->{status}, 200, 'PUT gqpub/p');
is(s3(PUT => '/gqver/gone', body => 'x')->{status}, 200, 'PUT gqver/gone');
is(s3(DELETE => '/gqver/gone')->{status}, 204, 'DELETE gqver/gone: a marker');

# a multipart object of two parts (5 MiB and 1 KiB)
my $up = s3(POST => '/gqa/mp?uploads');
my ($upload) = ($up->{body} // '') =~ m{<UploadId>([^<]+)</UploadId>};
ok($upload, 'multipart upload started');
my @part = (Plinth::Test::random_bytes(5 * 1024 * 1024),
    Plinth::Test::random_bytes(1024));
my @etag;
for my $n (1, 2) {
    my $r = s3(PUT => "/gqa/mp?partNumber=$n&uploadId=$upload",
        body => $part[$n - 1]);
    is($r->{status}, 200, "part $n");
    push @etag, $r->{headers}{etag};
}
is(s3(POST => "/gqa/mp?uploadId=$upload",
      body => '<CompleteMultipartUpload>'
        . join('', map { "<Part><PartNumber>$_</PartNumber><ETag>"
            . $etag[$_ - 1] . '</ETag></Part>' } 1, 2)
        . '</CompleteMultipartUpload>')->{status}, 200, 'multipart completed');
$body{mp} = $part[0] . $part[1];

# every answer of one burst: [method, uri, options, status, check]
sub burst {
    my @want;
    for my $k (@keys, 'mp') {
        push @want, ['GET', '/gqa/' . esc($k), {}, 200, $body{$k}];
    }
    push @want, ['HEAD', '/gqa/plain', {}, 200, undef],
        ['GET', '/gqa/no-such-key', {}, 404, qr{<Code>NoSuchKey</Code>}],
        ['GET', '/gq-no-such-bucket/k', {}, 404,
         qr{<Code>NoSuchBucket</Code>}],
        ['GET', '/gqa/plain', { unsigned => 1 }, 403,
         qr{<Code>AccessDenied</Code>}],
        ['GET', '/gqpub/p', { unsigned => 1 }, 200, $pub],
        ['GET', '/gqver/gone', {}, 404, qr{<Code>NoSuchKey</Code>}];
    return @want;
}

sub check_answers {
    my ($what, $want, $got) = @_;
    for my $i (0 .. $#$want) {
        my ($m, $uri, undef, $status, $check) = @{ $want->[$i] };
        my $h = $got->[$i];
        is($h->{status}, $status, "$what: $m $uri: $status")
            or diag(show($h));
        if (ref $check) {
            like($h->{body} // '', $check, "$what: ... its error");
        } elsif (defined $check) {
            ok(defined $h->{body} && $h->{body} eq $check,
               "$what: ... its own bytes (" . length($check) . ')');
        } else {
            is($h->{body}, '', "$what: ... no body");
            is($h->{headers}{'content-length'}, length $body{plain},
               "$what: ... its length");
        }
    }
    is($got->[-1]{headers}{'x-amz-delete-marker'}, 'true',
       "$what: the delete marker says so");
}

# ------------------------------------------------------------ together

{
    my $l0 = metric('plinth_get_lookups_total');
    my $s0 = metric('plinth_get_lookup_statements_total');
    ok(defined $l0 && defined $s0, 'the lookup counters are in /metrics');

    lock_table('objects');
    my $first = http_start(GET => '/gqa/plain');
    wait_for(sub { lock_waiters() >= 1 }, 10,
        'the first lookup to wait for the lock');
    my @want = burst();
    my @h = map { http_start($_->[0], $_->[1], %{ $_->[2] }) } @want;
    sleep 0.5;
    ok(!defined $first->{status} && lock_waiters() == 1,
       'the burst waits in the worker, not in PostgreSQL');
    unlock_tables();
    http_wait([$first, @h], 20);
    is($first->{status}, 200, 'the first GET: ' . show($first));
    ok($first->{body} eq $body{plain}, '... its bytes');
    check_answers('together', \@want, \@h);

    my $n = 1 + @want;
    # the metrics GETs are not lookups; the multipart object is asked
    # again by the full statement, not counted
    is(metric('plinth_get_lookups_total') - $l0, $n,
       "$n lookups counted");
    is(metric('plinth_get_lookup_statements_total') - $s0, 2,
       'in two statements: the first alone, then the whole burst');
}

# ------------------------------------------------------------ clients hang up

{
    lock_table('objects');
    my $first = http_start(GET => '/gqa/plain');
    wait_for(sub { lock_waiters() >= 1 }, 10, 'the first lookup to wait');
    my @gone = map { http_start(GET => '/gqa/plain') } 1 .. 5;
    my @stay = map { http_start(GET => '/gqa/' . esc($keys[$_])) } 0 .. 3;
    sleep 0.3;
    close $_->{sock} for @gone;
    delete $_->{sock} for @gone;
    unlock_tables();
    http_wait([$first, @stay], 20);
    is($first->{status}, 200, 'hang-ups: the first GET is answered');
    for my $i (0 .. 3) {
        is($stay[$i]{status}, 200, "hang-ups: $keys[$i] is answered");
        ok(($stay[$i]{body} // '') eq $body{ $keys[$i] }, '... its bytes');
    }
    my $r = s3(GET => '/gqa/plain');
    is($r->{status}, 200, 'hang-ups: the worker serves the next GET');
}

# ------------------------------------------------------------ a statement fails

# the lookups of a statement that times out all get 503, none hangs
restart_with(template_with(worker_processes => 'worker_processes 1;',
    plinth_pg_query_timeout => '    plinth_pg_query_timeout 700ms;'));
{
    lock_table('objects');
    my $first = http_start(GET => '/gqa/plain');
    wait_for(sub { lock_waiters() >= 1 }, 10, 'the first lookup to wait');
    my @h = map { http_start(GET => '/gqa/' . esc($_)) } @keys;
    http_wait([$first, @h], 20);
    unlock_tables();
    for my $h ($first, @h) {
        is($h->{status}, 503, 'a failed statement: 503 ' . show($h));
        like($h->{body} // '', qr{<Code>ServiceUnavailable</Code>|<Code>SlowDown</Code>},
             '... an S3 error');
    }
    wait_for(sub { (s3(GET => '/gqa/plain')->{status} // 0) == 200 }, 10,
        'the pool to serve GETs again');
    my @again = map { http_start(GET => '/gqa/' . esc($_)) } @keys;
    http_wait(\@again, 20);
    ok(!(grep { ($_->{status} // 0) != 200 } @again),
       'after it, a burst of GETs is answered');
}

# ------------------------------------------------------------ a reload

# lookups queued in a worker when nginx reloads are answered by that worker
restart_with(template_with(worker_processes => 'worker_processes 1;'));
{
    lock_table('objects');
    my $first = http_start(GET => '/gqa/plain');
    wait_for(sub { lock_waiters() >= 1 }, 10, 'the first lookup to wait');
    my @want = burst();
    my @h = map { http_start($_->[0], $_->[1], %{ $_->[2] }) } @want;
    sleep 0.3;
    # HUP by hand: the old worker cannot end before these are answered
    my $master = $c->pid_of('nginx');
    ok($master && kill('HUP', $master), 'nginx reloading');
    sleep 0.7;
    unlock_tables();
    http_wait([$first, @h], 20);
    is($first->{status}, 200, 'reload: the first GET is answered');
    check_answers('reload', \@want, \@h);
}

# ------------------------------------------------------------ off

# plinth_get_coalesce 0: every lookup its own statement, nothing counted
restart_with(template_with(worker_processes => 'worker_processes 1;',
    plinth_pg_pool_size => "    plinth_pg_pool_size 4;\n    plinth_get_coalesce 0;"));
{
    my $l0 = metric('plinth_get_lookups_total');
    lock_table('objects');
    my $first = http_start(GET => '/gqa/plain');
    wait_for(sub { lock_waiters() >= 1 }, 10, 'the first lookup to wait');
    my @want = burst();
    my @h = map { http_start($_->[0], $_->[1], %{ $_->[2] }) } @want;
    wait_for(sub { lock_waiters() >= 4 }, 10,
        'off: the lookups wait in PostgreSQL, each on its connection');
    unlock_tables();
    http_wait([$first, @h], 20);
    check_answers('off', \@want, \@h);
    is(metric('plinth_get_lookups_total') - $l0, 0, 'off: nothing counted');
}

my $log = $c->error_log_since($log0);
unlike($log, qr/\[(?:alert|crit|emerg)\]|exited on signal/,
       'no alert, crash or lost worker in error.log');
restart_with(template_with(worker_processes => 'worker_processes 2;'));

done_testing();
