# Cost tracking and access patterns (sql/016, ngx_plinth_usage.c,
# ngx_plinth_admin.c): stored bytes per bucket and tier kept by a trigger
# on versions, egress and reads counted in shared memory by both workers
# and flushed in batches, the admin API (GET /admin/v1/cost and
# /admin/v1/access, administrators only) and bin/plinth-admin's tables, all
# checked against figures computed here by hand.
#
# The storage classes of some versions are set directly in SQL: the
# storage-class feature (x-amz-storage-class, tier moves) lands separately;
# what is tested here is that the accounting follows versions.storage_class.
use lib 't/lib';
use Plinth::Test;
use JSON::PP ();
use IO::Socket::INET;
use Time::HiRes qw(sleep time);

# a flush every second, so the test need not wait long
# (and each answer names the worker that served it, for TEST 9)
cluster_options(auth => 'sigv4', http_extra => 'plinth_usage_flush 1s;',
                server_extra => 'add_header X-Plinth-Worker $pid always;');

our $GIB = 1073741824;
our %PRICE = (hot => 0.10, warm => 0.05, cold => 0.01, egress => 0.09);
our $RF = 3;
our $MIB5 = 5 * 1024 * 1024;

sub api {
    my ($path, %o) = @_;
    my $r = s3_request(GET => $path, %o);
    die "GET $path: $r->{status} $r->{body}\n" unless $r->{status} == 200;
    die "GET $path: Content-Type $r->{headers}{'content-type'}\n"
        unless ($r->{headers}{'content-type'} // '') eq 'application/json';
    return JSON::PP::decode_json($r->{body});
}

sub bucket_cost {
    my ($b) = @_;
    my $c = api("/admin/v1/cost?bucket=$b");
    die "cost of $b: " . scalar(@{ $c->{buckets} }) . " buckets\n"
        unless @{ $c->{buckets} } == 1 && $c->{buckets}[0]{bucket} eq $b;
    return $c->{buckets}[0];
}

sub near {
    my ($got, $want, $name) = @_;
    my $ok = defined $got && abs($got - $want) <= 1e-9 + 1e-9 * abs($want);
    Test::More::ok($ok, $name) or Test::More::diag("got " . ($got // 'undef') . ", want $want");
}

# waits (at most 30 s) until $cond returns true; returns its last value
sub wait_until {
    my ($cond) = @_;
    my $deadline = time + 30;
    my $v;
    while (1) {
        $v = $cond->();
        return $v if $v || time > $deadline;
        sleep 0.25;
    }
}

sub put_ok {
    my ($uri, $body) = @_;
    my $r = s3_request(PUT => $uri, body => $body);
    die "PUT $uri: $r->{status} $r->{body}\n" unless $r->{status} == 200;
    return $r;
}

sub get_ok {
    my ($uri, @h) = @_;
    my $r = s3_request(GET => $uri, @h ? (headers => [@h]) : ());
    die "GET $uri: $r->{status}\n" unless $r->{status} == 200 || $r->{status} == 206;
    return $r;
}

# what is stored, for "nothing changed" checks
sub snapshot {
    my @rows = cluster()->psql(
        "SELECT (SELECT string_agg(bucket_id || ':' || tier || ':' || shard || ':' || stored_bytes || ':' || versions, ',' ORDER BY bucket_id, tier, shard) FROM cost_tracking), "
      . "(SELECT string_agg(bucket_id || ':' || egress_bytes || ':' || reads, ',' ORDER BY bucket_id) FROM cost_egress), "
      . "(SELECT string_agg(bucket_id || ':' || key || ':' || read_count || ':' || last_access, ',' ORDER BY bucket_id, key) FROM object_access), "
      . "(SELECT string_agg(version_id || ':' || state, ',' ORDER BY version_id) FROM versions), "
      . "(SELECT string_agg(name || ':' || value, ',' ORDER BY name) FROM cost_settings)");
    return join "|", map { $_ // '' } @{ $rows[0] };
}

# the per-tier totals by a full scan of versions (only a test does this)
sub scanned {
    my ($b) = @_;
    my %t = (hot => 0, warm => 0, cold => 0);
    for my $row (cluster()->psql(
        "SELECT coalesce(plinth_storage_class_tier(v.storage_class), 'hot'), sum(v.size) "
      . "FROM versions v JOIN buckets b USING (bucket_id) "
      . "WHERE b.name = '$b' AND v.state = 'committed' AND NOT v.delete_marker GROUP BY 1"))
    {
        $t{$row->[0]} = $row->[1];
    }
    return \%t;
}

sub admin_cmd {
    my (@args) = @_;
    my ($rc, $out) = Plinth::Cluster::run_command(
        ["$Plinth::Cluster::ROOT/bin/plinth-admin", '--dir', cluster()->dir, @args],
        timeout => 60, merge => 1);
    return ($rc, $out);
}

sub table_rows {
    my ($out) = @_;
    my @lines = grep { /\S/ && !/^Prices/ } split /\n/, $out;
    my @head = split /\s+/, shift @lines;
    return map { my @c = split /\s+/; +{ map { $head[$_] => $c[$_] } 0 .. $#head } } @lines;
}

# GETs of $uri on $n connections at once: the pid of the worker of each
sub racing_gets {
    my ($uri, $n) = @_;
    my $c = cluster();
    my @socks;
    for (1 .. $n) {
        my $req = { method => 'GET', uri => $uri, headers => [['Connection', 'close']],
                    body => '', version => 'HTTP/1.1' };
        Plinth::Test::_sign($req, $c);
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->port,
                                      Timeout => 5) or die "connect: $!";
        binmode $s;
        push @socks, [$s, Plinth::Test::_build_request($req, $c->port)];
    }
    for my $p (@socks) {
        my ($s, $d) = @$p;
        my $off = 0;
        while ($off < length $d) {
            my $w = syswrite($s, $d, length($d) - $off, $off);
            die "write: $!" unless defined $w;
            $off += $w;
        }
    }
    my @pids;
    for my $p (@socks) {
        my ($s) = @$p;
        my ($buf, $deadline) = ('', time + 30);
        while (time < $deadline) {
            my $r = sysread($s, $buf, 65536, length $buf);
            last unless $r;
        }
        die "GET $uri: " . substr($buf, 0, 40) unless $buf =~ m{^HTTP/1\.1 200 };
        push @pids, $buf =~ m{\r\nX-Plinth-Worker: (\d+)\r\n}i ? $1 : 0;
        close $s;
    }
    return @pids;
}

run_tests();

__DATA__

=== TEST 1: stored bytes per bucket and tier: single PUTs, an overwrite, a delete, multipart, every version of a versioned bucket
--- timeout: 120
--- check
put_ok('/cost-a');
put_ok('/cost-a/never', 'n' x 10);
put_ok('/cost-a/one', 'o' x 1000);
put_ok('/cost-a/two', 't' x 3000);
put_ok('/cost-a/two', 'T' x 2500);      # unversioned: the 3000 bytes go
put_ok('/cost-a/gone', 'g' x 700);
is(s3_request(DELETE => '/cost-a/gone')->{status}, 204, 'a delete');
# multipart: 5 MiB + 1000 bytes, billed by the object's size
my $r = s3_request(POST => '/cost-a/mp?uploads');
my ($up) = $r->{body} =~ m{<UploadId>([^<]+)</UploadId>};
my @etags;
for my $p ([1, 'p' x $::MIB5], [2, 'q' x 1000]) {
    $r = s3_request(PUT => "/cost-a/mp?partNumber=$p->[0]&uploadId=$up", body => $p->[1]);
    is($r->{status}, 200, "part $p->[0]");
    push @etags, $r->{headers}{etag};
}
# an open upload's parts are not billed: one more upload, left open
my $open = s3_request(POST => '/cost-a/open?uploads');
my ($up2) = $open->{body} =~ m{<UploadId>([^<]+)</UploadId>};
is(s3_request(PUT => "/cost-a/open?partNumber=1&uploadId=$up2", body => 'x' x 4000)->{status}, 200, 'a part of an open upload');
$r = s3_request(POST => "/cost-a/mp?uploadId=$up", body =>
    "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>$etags[0]</ETag></Part>"
  . "<Part><PartNumber>2</PartNumber><ETag>$etags[1]</ETag></Part></CompleteMultipartUpload>");
is($r->{status}, 200, 'multipart completed');

# a versioned bucket: three versions of k (all billed), a delete marker
put_ok('/cost-v');
is(s3_request(PUT => '/cost-v?versioning', body => '<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>')->{status}, 200, 'versioning on');
my @vid;
for my $n (100, 200, 300) {
    push @vid, put_ok('/cost-v/k', 'v' x $n)->{headers}{'x-amz-version-id'};
}
$::VID100 = $vid[0];
is(s3_request(DELETE => '/cost-v/k')->{status}, 204, 'a delete marker on k');
put_ok('/cost-v/x', 'x' x 50);

# tiers, set in SQL (see the top of this file): the 100-byte version of k
# to STANDARD_IA (warm), the 200-byte one to GLACIER (cold), cost-a/one to
# DEEP_ARCHIVE (cold)
cluster()->psql("UPDATE versions SET storage_class = 'STANDARD_IA' WHERE size = 100 AND key = 'k'");
cluster()->psql("UPDATE versions SET storage_class = 'GLACIER' WHERE size = 200 AND key = 'k'");
cluster()->psql("UPDATE versions SET storage_class = 'DEEP_ARCHIVE' WHERE key = 'one' AND state = 'committed'");

my %want = (
    'cost-a' => { hot => 10 + 2500 + $::MIB5 + 1000, warm => 0, cold => 1000, versions => 4 },
    'cost-v' => { hot => 300 + 50, warm => 100, cold => 200, versions => 4 },
);
for my $b (sort keys %want) {
    my $c = bucket_cost($b);
    my $w = $want{$b};
    for my $t (qw(hot warm cold)) {
        is($c->{stored_bytes}{$t}, $w->{$t}, "$b: $t bytes $w->{$t}");
        near($c->{storage_cost_per_month}{$t}, $w->{$t} * $::RF * $::PRICE{$t} / $::GIB,
             "$b: $t cost = bytes x RF x price / GiB");
    }
    is($c->{stored_bytes}{total}, $w->{hot} + $w->{warm} + $w->{cold}, "$b: total bytes");
    is($c->{versions}, $w->{versions}, "$b: $w->{versions} versions billed");
    my $sc = 0;
    $sc += $w->{$_} * $::RF * $::PRICE{$_} / $::GIB for qw(hot warm cold);
    near($c->{storage_cost_per_month}{total}, $sc, "$b: storage cost per month $sc");
    is_deeply(main::scanned($b), { map { $_ => $w->{$_} } qw(hot warm cold) },
              "$b: the trigger's totals are what a scan of versions finds");
}
my $all = api('/admin/v1/cost');
is($all->{replication_factor}, 3, 'the gateway\'s replication factor');
is_deeply($all->{prices}, { hot => 0.10, warm => 0.05, cold => 0.01, egress => 0.09 }, 'default prices (DESIGN.md)');
is($all->{totals}{stored_bytes}{total}, 10 + 2500 + $::MIB5 + 1000 + 1000 + 650, 'totals over every bucket');
is($all->{currency}, 'USD', 'in dollars');

# a tier move back: the bytes follow the version
cluster()->psql("UPDATE versions SET storage_class = 'STANDARD' WHERE key = 'one' AND state = 'committed'");
is(bucket_cost('cost-a')->{stored_bytes}{cold}, 0, 'one moved back to STANDARD: no cold bytes');
is(bucket_cost('cost-a')->{stored_bytes}{hot}, 10 + 2500 + $::MIB5 + 1000 + 1000, '... and hot again');
cluster()->psql("UPDATE versions SET storage_class = 'DEEP_ARCHIVE' WHERE key = 'one' AND state = 'committed'");
# a permanent delete of a version
is(s3_request(DELETE => "/cost-v/k?versionId=$vid[2]")->{status}, 204, 'the 300-byte version deleted for good');
is(bucket_cost('cost-v')->{stored_bytes}{hot}, 50, 'cost-v: hot 50 bytes left');
is(s3_request(DELETE => "/cost-a/open?uploadId=$up2")->{status}, 204, 'the open upload aborted');



=== TEST 2: egress and reads: whole GETs and ranges on both workers, counted in shared memory and flushed
--- timeout: 120
--- check
my $t0 = time;
my @codes = racing_requests(map { [GET => '/cost-a/one'] } 1 .. 3);
is_deeply(\@codes, [200, 200, 200], 'three GETs of one (1000 bytes each), on three connections');
sleep 0.05;
for (1 .. 2) {
    my $r = get_ok('/cost-a/two', Range => 'bytes=0-99');
    is(length $r->{body}, 100, 'a range of two: 100 bytes');
}
sleep 0.05;
my $r = get_ok('/cost-a/mp', Range => "bytes=5242000-5242999");
is($r->{status}, 206, 'a range across the parts of mp');
is(length $r->{body}, 1000, '1000 bytes of mp');
is(s3_request(HEAD => '/cost-a/one')->{status}, 200, 'a HEAD (not a read)');
is(s3_request(GET => '/cost-a/missing')->{status}, 404, 'a missing key (not a read)');
is(s3_request(GET => '/cost-a/one', headers => [Range => 'bytes=5000-6000'])->{status}, 416, 'an unsatisfiable range (not a read)');
get_ok('/cost-v/x') for 1 .. 2;
get_ok("/cost-v/k?versionId=$::VID100");
my $t1 = time;

my $want_a = 3 * 1000 + 2 * 100 + 1000;
my $c = wait_until(sub { my $c = bucket_cost('cost-a'); $c->{egress_bytes} >= $want_a ? $c : undef });
ok($c, 'the reads were flushed within 30 s');
is($c->{egress_bytes}, $want_a, "cost-a: egress $want_a bytes (3 x 1000 + 2 x 100 + 1000)");
is($c->{reads}, 6, 'cost-a: 6 reads');
near($c->{egress_cost}, $want_a * $::PRICE{egress} / $::GIB, 'cost-a: egress cost = bytes x 0.09 / GiB');
near($c->{total_cost}, $c->{storage_cost_per_month}{total} + $want_a * $::PRICE{egress} / $::GIB, 'cost-a: total = storage + egress');
my $v = wait_until(sub { my $c = bucket_cost('cost-v'); $c->{egress_bytes} >= 200 ? $c : undef });
is($v->{egress_bytes}, 2 * 50 + 100, 'cost-v: egress 200 bytes (a version read counts too)');
is($v->{reads}, 3, 'cost-v: 3 reads');

my %reads = map { $_->[0] => [$_->[1], $_->[2]] } cluster()->psql(
    "SELECT a.key, a.read_count, extract(epoch FROM a.last_access) FROM object_access a "
  . "JOIN buckets b USING (bucket_id) WHERE b.name = 'cost-a'");
is_deeply({ map { $_ => $reads{$_}[0] } keys %reads }, { one => 3, two => 2, mp => 1 }, 'read counts per key');
for my $k (sort keys %reads) {
    ok($reads{$k}[1] >= $t0 - 1 && $reads{$k}[1] <= $t1 + 1, "$k: last access during the test");
}

my $hot = api('/admin/v1/access?bucket=cost-a&hottest=3');
is_deeply([map { "$_->{key}:$_->{read_count}" } @{ $hot->{hottest} }], ['one:3', 'two:2', 'mp:1'], 'hottest: one, two, mp');
my $cold = api('/admin/v1/access?bucket=cost-a&coldest=4');
is_deeply([map { $_->{key} } @{ $cold->{coldest} }], [qw(never one two mp)],
          'coldest: never (not read since written), then by last access: one, two, mp');
is($cold->{coldest}[0]{read_count}, 0, 'never: 0 reads');
is($cold->{coldest}[0]{last_access}, undef, 'never: no last access');
is(scalar @{ api('/admin/v1/access?bucket=cost-a&hottest=1')->{hottest} }, 1, 'hottest=1: one entry');
is_deeply([map { $_->{key} } @{ api('/admin/v1/access?bucket=cost-a')->{hottest} }], [qw(one two mp)], 'the default: hottest');

my $m = s3_request(GET => '/metrics', unsigned => 1)->{body};
like($m, qr/^plinth_usage_flushes_total [1-9]/m, '/metrics: usage flushes counted');
like($m, qr/^plinth_usage_dropped_reads_total 0$/m, '/metrics: no read dropped');
$::EGRESS_A = $want_a;



=== TEST 3: the admin API refuses non-admins and bad parameters, and changes nothing
--- timeout: 60
--- check
my $before = main::snapshot();
for my $path ('/admin/v1/cost', '/admin/v1/cost?bucket=cost-a', '/admin/v1/access?bucket=cost-a') {
    for my $who ([unsigned => [unsigned => 1]], [user2 => [sign_as => 'user2']]) {
        my $r = s3_request(GET => $path, @{ $who->[1] });
        is($r->{status}, 403, "$path, $who->[0]: 403");
        like($r->{body}, qr{<Code>AccessDenied</Code>}, "$path, $who->[0]: AccessDenied");
    }
}
my @cases = (
    ['/admin/v1/cost?bucket=no-such-bucket', 404, 'NoSuchBucket'],
    ['/admin/v1/access?bucket=no-such-bucket', 404, 'NoSuchBucket'],
    ['/admin/v1/cost?bucket=', 400, 'InvalidArgument'],
    ['/admin/v1/cost?bucket=cost-a&verbose=1', 400, 'InvalidArgument'],
    ['/admin/v1/access', 400, 'InvalidArgument'],
    ['/admin/v1/access?bucket=cost-a&hottest=0', 400, 'InvalidArgument'],
    ['/admin/v1/access?bucket=cost-a&hottest=1001', 400, 'InvalidArgument'],
    ['/admin/v1/access?bucket=cost-a&coldest=ten', 400, 'InvalidArgument'],
    ['/admin/v1/access?bucket=cost-a&coldest=', 400, 'InvalidArgument'],
    ['/admin/v1/access?bucket=cost-a&hottest=2&coldest=2', 400, 'InvalidArgument'],
);
for my $c (@cases) {
    my ($path, $status, $code) = @$c;
    my $r = s3_request(GET => $path);
    is($r->{status}, $status, "$path: $status");
    like($r->{body}, qr{<Code>$code</Code>}, "$path: $code");
}
for my $m (qw(PUT DELETE POST)) {
    my $r = s3_request($m => '/admin/v1/cost', body => '');
    is($r->{status}, 405, "$m /admin/v1/cost: 405");
    like($r->{body}, qr{<Code>MethodNotAllowed</Code>}, "$m: MethodNotAllowed");
}
is(main::snapshot(), $before, 'nothing stored changed');



=== TEST 4: counts in shared memory survive nginx -s reload
--- timeout: 120
--- check
# flushes every 60 s: the reads stay in the zone until the reload
cluster()->reload_nginx(http_extra => 'plinth_usage_flush 60s;');
sleep 1.5;     # the new workers' first flush (an empty one) is done
my $before = bucket_cost('cost-a')->{egress_bytes};
is($before, $::EGRESS_A, "egress before: $before");
get_ok('/cost-a/two') for 1 .. 2;    # 2 x 2500 bytes
sleep 2;
is(bucket_cost('cost-a')->{egress_bytes}, $before, 'not flushed yet (60 s interval)');
my $m = s3_request(GET => '/metrics', unsigned => 1)->{body};
like($m, qr/^plinth_usage_pending_keys [1-9]/m, 'pending in the zone');
# back to 1 s: the new workers flush what the old ones counted
cluster()->reload_nginx;
my $c = wait_until(sub { my $c = bucket_cost('cost-a'); $c->{egress_bytes} > $before ? $c : undef });
is($c && $c->{egress_bytes}, $before + 5000, 'after the reload: +5000 bytes flushed');
is($c && $c->{reads}, 8, 'and 2 more reads');
my ($n) = cluster()->psql("SELECT read_count FROM object_access a JOIN buckets b USING (bucket_id) WHERE b.name = 'cost-a' AND a.key = 'two'");
is($n->[0], 4, 'two: 4 reads');
$::EGRESS_A = $before + 5000;



=== TEST 5: bin/plinth-admin prints the API's figures as tables; prices are set there
--- timeout: 120
--- check
my $api = api('/admin/v1/cost');
my ($rc, $out) = main::admin_cmd('cost');
is($rc, 0, 'plinth-admin cost') or diag($out);
like($out, qr/^Prices \(USD\): hot 0\.1, warm 0\.05, cold 0\.01 per GiB-month per replica; egress 0\.09 per GiB; replication factor 3$/m, 'prices and RF line');
my %rows = map { $_->{BUCKET} => $_ } main::table_rows($out);
for my $b (@{ $api->{buckets} }, { %{ $api->{totals} }, bucket => 'TOTAL' }) {
    my $row = $rows{$b->{bucket}};
    ok($row, "a row for $b->{bucket}") or next;
    is($row->{HOT_BYTES}, $b->{stored_bytes}{hot}, "$b->{bucket}: hot bytes");
    is($row->{WARM_BYTES}, $b->{stored_bytes}{warm}, "$b->{bucket}: warm bytes");
    is($row->{COLD_BYTES}, $b->{stored_bytes}{cold}, "$b->{bucket}: cold bytes");
    is($row->{EGRESS_BYTES}, $b->{egress_bytes}, "$b->{bucket}: egress bytes");
    is($row->{READS}, $b->{reads}, "$b->{bucket}: reads");
    near($row->{STORAGE_USD_MONTH}, $b->{storage_cost_per_month}{total}, "$b->{bucket}: storage cost");
    near($row->{EGRESS_USD}, $b->{egress_cost}, "$b->{bucket}: egress cost");
    near($row->{TOTAL_USD}, $b->{total_cost}, "$b->{bucket}: total");
}
is($rows{'cost-a'}{EGRESS_BYTES}, $::EGRESS_A, 'cost-a egress as counted');

($rc, $out) = main::admin_cmd('access', 'cost-a', '--coldest', 2);
is($rc, 0, 'plinth-admin access --coldest 2') or diag($out);
my $cold = api('/admin/v1/access?bucket=cost-a&coldest=2');
is_deeply([map { "$_->{KEY}:$_->{READS}" } main::table_rows($out)],
          [map { "$_->{key}:$_->{read_count}" } @{ $cold->{coldest} }], 'the same coldest two as the API');
($rc, $out) = main::admin_cmd('access', 'cost-a');
is_deeply([map { "$_->{KEY}:$_->{READS}" } main::table_rows($out)], ['two:4', 'one:3', 'mp:1'], 'hottest by default');
($rc, $out) = main::admin_cmd('access', 'no-such-bucket');
is($rc, 1, 'an unknown bucket: exit 1');
like($out, qr/no such bucket/, '... saying so');
($rc, $out) = main::admin_cmd('access', 'cost-a', '--hottest', 0);
isnt($rc, 0, '--hottest 0 refused');

# a price change: the API and the command follow it
($rc, $out) = main::admin_cmd('prices', '--hot', '0.2', '--egress', '0.5');
is($rc, 0, 'plinth-admin prices --hot 0.2 --egress 0.5') or diag($out);
my $c = bucket_cost('cost-a');
near($c->{storage_cost_per_month}{hot}, $c->{stored_bytes}{hot} * $::RF * 0.2 / $::GIB, 'hot cost at $0.20');
near($c->{egress_cost}, $::EGRESS_A * 0.5 / $::GIB, 'egress cost at $0.50');
($rc, $out) = main::admin_cmd('prices', '--hot', 'cheap');
is($rc, 1, 'a price that is not a number: refused');
($rc, $out) = main::admin_cmd('prices', '--hot', '0.10', '--egress', '0.09');
is($rc, 0, 'prices back');



=== TEST 6: a full zone flushes early, and what does not fit is counted as dropped
--- timeout: 180
--- check
put_ok('/cost-d');
put_ok("/cost-d/k$_", "d$_") for 1 .. 40;
sub metric { my ($m, $n) = @_; $m =~ /^\Q$n\E (\d+)$/m ? $1 : undef }
# 16 keys at most, and no timer flush in the time of the test (60 s):
# only early flushes (at three quarters full) write
cluster()->reload_nginx(http_extra => "plinth_usage_flush 60s;\n    plinth_usage_entries 16;");
my $m0 = s3_request(GET => '/metrics', unsigned => 1)->{body};
get_ok("/cost-d/k$_") for 1 .. 40;
my ($m1, $db, $pending, $dropped);
# a flush in flight is in none of the three: wait (bounded) for its answer
wait_until(sub {
    $m1 = s3_request(GET => '/metrics', unsigned => 1)->{body};
    ($db) = cluster()->psql("SELECT coalesce(sum(read_count), 0) FROM object_access a JOIN buckets b USING (bucket_id) WHERE b.name = 'cost-d'");
    $db = $db->[0];
    $pending = metric($m1, 'plinth_usage_pending_keys');
    $dropped = metric($m1, 'plinth_usage_dropped_reads_total') - metric($m0, 'plinth_usage_dropped_reads_total');
    $db + $pending + $dropped == 40 });
is($db + $pending + $dropped, 40, "every read is flushed ($db), pending ($pending) or counted dropped ($dropped)");
cmp_ok($db, '>=', 12, "early flushes wrote $db reads without the 60 s timer");
cmp_ok($pending, '<=', 16, "$pending keys pending: never more than the cap");
cmp_ok(metric($m1, 'plinth_usage_flushes_total') - metric($m0, 'plinth_usage_flushes_total'), '>=', 1, 'early flushes counted');
cluster()->reload_nginx;



=== TEST 7: keys with quotes, backslashes, commas, braces and UTF-8 reach object_access intact
--- timeout: 60
--- check
sub pct { my ($s) = @_; utf8::encode($s); $s =~ s{([^A-Za-z0-9\-._~/])}{sprintf '%%%02X', ord $1}ge; $s }
put_ok('/cost-w');
my @keys = ("we\"ird\\,{k} \x{e9}t\x{e9}", 'NULL', 'a,b', '{}');
for my $k (@keys) {
    put_ok('/cost-w/' . pct($k), "body of $k");
    get_ok('/cost-w/' . pct($k)) for 1 .. 2;
}
my $rows = wait_until(sub {
    my @r = cluster()->psql("SELECT a.key, a.read_count FROM object_access a JOIN buckets b USING (bucket_id) WHERE b.name = 'cost-w' ORDER BY a.key");
    @r == 4 && !grep({ $_->[1] != 2 } @r) ? \@r : undef });
ok($rows, 'four keys flushed with 2 reads each');
my %got = map { my $k = $_->[0]; utf8::decode($k); $k => $_->[1] } @{ $rows // [] };
is_deeply(\%got, { map { $_ => 2 } @keys }, 'the keys as written');
my $hot = api('/admin/v1/access?bucket=cost-w&hottest=10');
is_deeply([sort map { $_->{key} } @{ $hot->{hottest} }], [sort @keys], 'the API lists them by name');



=== TEST 8: garbage collection's deletes and a bucket's deletion keep the totals equal to a scan
--- timeout: 60
--- check
my $inv = "SELECT b.name, coalesce((SELECT sum(stored_bytes) FROM cost_tracking c WHERE c.bucket_id = b.bucket_id), 0), "
        . "coalesce((SELECT sum(size) FROM versions v WHERE v.bucket_id = b.bucket_id AND v.state = 'committed' AND NOT v.delete_marker), 0) "
        . "FROM buckets b ORDER BY b.name";
# what repaird's garbage collection does to versions it has collected
cluster()->psql("DELETE FROM versions WHERE state IN ('garbage', 'failed')");
my @bad = grep { $_->[1] != $_->[2] } cluster()->psql($inv);
is(scalar @bad, 0, 'every bucket: kept totals = a scan of versions, after garbage rows are deleted')
    or diag(join "\n", map { "@$_" } @bad);
# a bucket emptied and deleted: its rows go, and a new bucket of that name starts at 0
put_ok('/cost-e');
put_ok('/cost-e/a', 'a' x 123);
is(bucket_cost('cost-e')->{stored_bytes}{hot}, 123, 'cost-e: 123 bytes');
is(s3_request(DELETE => '/cost-e/a')->{status}, 204, 'emptied');
is(s3_request(DELETE => '/cost-e')->{status}, 204, 'deleted');
my ($n) = cluster()->psql("SELECT count(*) FROM cost_tracking c LEFT JOIN buckets b USING (bucket_id) WHERE b.bucket_id IS NULL");
is($n->[0], 0, 'no cost rows of a deleted bucket');
put_ok('/cost-e');
is(bucket_cost('cost-e')->{stored_bytes}{total}, 0, 'the new cost-e starts at 0');
is(bucket_cost('cost-e')->{egress_bytes}, 0, '... and no egress');
@bad = grep { $_->[1] != $_->[2] } cluster()->psql($inv);
is(scalar @bad, 0, 'every bucket: kept totals = a scan, at the end');



=== TEST 9: reads served by both workers add up in the one zone
--- timeout: 120
--- check
put_ok('/cost-x');
put_ok('/cost-x/w', 'w' x 777);
my (%pids, $n);
for my $round (1 .. 20) {
    my @p = racing_gets('/cost-x/w', 8);
    $n += @p;
    $pids{$_}++ for @p;
    last if keys %pids >= 2;
}
cmp_ok(scalar(keys %pids), '>=', 2, "both workers served reads (" . join(', ', map { "$_: $pids{$_}" } sort keys %pids) . ")");
my $c = wait_until(sub { my $c = bucket_cost('cost-x'); $c->{reads} >= $n ? $c : undef });
is($c && $c->{reads}, $n, "$n reads counted");
is($c && $c->{egress_bytes}, $n * 777, "egress: $n x 777 bytes");



=== TEST 10: a flush PostgreSQL cannot take is kept and written once it is back
--- timeout: 180
--- check
sub metric2 { my ($m, $n) = @_; $m =~ /^\Q$n\E (\d+)$/m ? $1 : undef }
my $before = bucket_cost('cost-x');
# the reads wait in the zone (60 s interval) ...
cluster()->reload_nginx(http_extra => 'plinth_usage_flush 60s;');
get_ok('/cost-x/w') for 1 .. 3;
my $m0 = s3_request(GET => '/metrics', unsigned => 1)->{body};
# ... PostgreSQL goes away, and the gateway flushes every second again
cluster()->stop_pg;
cluster()->reload_nginx;
my $m1 = wait_until(sub {
    my $m = s3_request(GET => '/metrics', unsigned => 1)->{body};
    metric2($m, 'plinth_usage_flush_failures_total') > metric2($m0, 'plinth_usage_flush_failures_total') ? $m : undef });
ok($m1, 'flushes failed while PostgreSQL was down');
cmp_ok(metric2($m1 // '', 'plinth_usage_pending_keys') // 0, '>=', 1, 'the reads were put back into the zone');
cluster()->start_pg;
my $c = wait_until(sub { my $c = eval { bucket_cost('cost-x') }; $c && $c->{reads} > $before->{reads} ? $c : undef });
is($c && $c->{reads}, $before->{reads} + 3, 'written once PostgreSQL is back: 3 more reads, not 6');
is($c && $c->{egress_bytes}, $before->{egress_bytes} + 3 * 777, 'and their bytes');



=== TEST 11: one transaction's changes go to one row of a bucket's totals (its backend's shard), and concurrent overwrites in one bucket neither fail nor miscount
--- timeout: 120
--- check
my $c = cluster();
put_ok('/cost-race');
put_ok("/cost-race/s$_", 's' x 100) for 1 .. 2;
my @ids = map { $_->[0] } $c->psql("SELECT v.version_id FROM versions v JOIN buckets b USING (bucket_id) "
    . "WHERE b.name = 'cost-race' AND v.state = 'committed' ORDER BY v.version_id");
is(scalar(@ids), 2, 'two committed versions');
# Two statements of one transaction change two versions of one tier (an
# overwrite's commit does so): before migration 025 their deltas went to
# the rows of version_id % 16, here both to the backend's row. The test
# counts the rows the transaction wrote (xmin), then takes its change back.
my ($r) = $c->psql(
    "CREATE FUNCTION pg_temp.two(a bigint, b bigint) RETURNS text LANGUAGE plpgsql AS \$f\$ "
  . "DECLARE n bigint; s text; BEGIN "
  . "UPDATE versions SET size = size + 1 WHERE version_id = a; "
  . "UPDATE versions SET size = size + 1 WHERE version_id = b; "
  . "SELECT count(*), string_agg(shard::text, ',') INTO n, s FROM cost_tracking "
  . "WHERE xmin = pg_current_xact_id()::xid; "
  . "UPDATE versions SET size = size - 1 WHERE version_id IN (a, b); "
  . "RETURN n || ':' || s || ':' || (pg_backend_pid() % 64); END \$f\$; "
  . "SELECT pg_temp.two($ids[0], $ids[1])");
my ($n, $shard, $mine) = split /:/, $r->[0] // '';
is($n, 1, "the transaction wrote one row of the totals ($r->[0])");
is($shard, $mine, "its backend's shard");
is(bucket_cost('cost-race')->{stored_bytes}{hot}, 200, 'the totals are what they were');

# 8 clients overwriting 20 keys of one bucket for 4 s
my $k = $c->credentials;
my ($rc, $out) = Plinth::Cluster::run_command(["$Plinth::Cluster::BUILD/plinth-loadgen",
    '--endpoint', $c->endpoint, '--access-key', $k->{access_key}, '--secret-key', $k->{secret_key},
    '--region', $k->{region}, '--bucket', 'cost-race', '--workload', 'put', '--size', '1K',
    '--keys', 20, '--concurrency', 8, '--duration', 4], timeout => 60, merge => 1);
my ($line) = grep { /^\{/ } reverse split /\n/, $out;
my $j = eval { JSON::PP::decode_json($line // '') };
ok($j && $j->{ops} > 0, 'the overwrites ran (' . ($j ? $j->{ops} : 'no JSON') . ' PUTs)') or diag $out;
is($j && $j->{errors}, 0, 'none failed');
my $log = do { local $/; open my $f, '<', $c->dir . '/logs/postgresql.log' or die $!; <$f> };
unlike($log, qr/deadlock detected/, 'PostgreSQL found no deadlock');
my $want = scanned('cost-race');
is(bucket_cost('cost-race')->{stored_bytes}{hot}, $want->{hot}, "stored bytes equal a scan of the versions ($want->{hot})");



=== TEST 12: a PUT's own two statements bill its version without the triggers (sql/029); the setting that skips them is off again after each, so later statements of the same transaction are billed by the triggers
--- check
my $c = cluster();
put_ok('/cost-inline');
put_ok('/cost-inline/old', 'o' x 300);
# begin and commit as the gateway sends them, then two more writes in the
# same transaction: an overwrite's replaced version (through
# plinth_make_current, in the commit) and a storage-class change by hand
my ($r) = $c->psql(
    "CREATE FUNCTION pg_temp.t() RETURNS text LANGUAGE plpgsql AS \$f\$ "
  . "DECLARE v bigint; s1 text; s2 text; res text; BEGIN "
  . "SELECT version_id INTO v FROM plinth_put_begin_c('cost-inline', 'old', 1000, "
  . "'e', NULL, NULL, (SELECT owner_id FROM buckets WHERE name = 'cost-inline'), "
  . "'private', NULL); "
  . "s1 := coalesce(current_setting('plinth.triggers_inline', true), ''); "
  . "res := plinth_put_commit(v, '{1,2,3}'::integer[], false, NULL, NULL, NULL, "
  . "'{}'::bigint[], '{}'::integer[]); "
  . "s2 := coalesce(current_setting('plinth.triggers_inline', true), ''); "
  . "UPDATE versions SET storage_class = 'STANDARD_IA' WHERE version_id = v; "
  . "RETURN s1 || ':' || s2 || ':' || res; END \$f\$; SELECT pg_temp.t()");
is($r->[0], 'off:off:current', 'the setting is off after the begin and after the commit; the version is current');
my $got = bucket_cost('cost-inline')->{stored_bytes};
is($got->{hot}, 0, 'hot: the replaced 300 bytes left (trigger), the new 1000 moved on (trigger)');
is($got->{warm}, 1000, 'warm: the new version, billed by the commit and moved by the class change');
my $want = scanned('cost-inline');
is_deeply([@$got{qw(hot warm cold)}], [@$want{qw(hot warm cold)}], 'equal to a scan of versions');
# a pending version bills nothing, and the begin's insert fired no trigger
# that could have (a versioned bucket's version id is still decided)
is(s3_request(PUT => '/cost-inline?versioning', body =>
    '<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>')->{status},
    200, 'versioning enabled');
($r) = $c->psql("SELECT vid, storage_class FROM plinth_put_begin_c('cost-inline', 'p', 77, 'e', NULL, NULL, "
    . "(SELECT owner_id FROM buckets WHERE name = 'cost-inline'), 'private', NULL)");
like($r->[0], qr/^[0-9a-f]{32}$/, "a pending version of a versioned bucket has its version id ($r->[0])");
is(bucket_cost('cost-inline')->{stored_bytes}{total}, 1000, 'and bills nothing while pending');
