package Plinth::Admin;

# Users and access keys in Plinth's metadata database (sql/002_access_keys.sql),
# through the psql binary.  Used by bin/plinth-admin and by Plinth::Cluster
# (the keys it creates at a cluster's first start).
#
#   my $a = Plinth::Admin->new(conninfo => 'host=127.0.0.1 port=5432 dbname=plinth user=plinth');
#   my $k = $a->create_key(user => 'alice', admin => 0, description => 'laptop');
#   # { access_key_id => 'PL...', secret_key => '...', user_id => 'alice', ... }
#   $a->list_keys(user => 'alice');  $a->list_users;
#   $a->delete_key($id);  $a->set_key_status($id, 'inactive');
#
# Every value reaches SQL as a psql variable (-v name=value, used as
# :'name' in the script read from stdin): never pasted into SQL text.
# Errors die with a message meant for a person ("no such access key ...").

use strict;
use warnings;

use Carp qw(croak);
use Plinth::Cluster;

our $PSQL = $ENV{PLINTH_PSQL} || "$Plinth::Cluster::PG_BIN/psql";

my $NULL = "\x01NULL\x01";

sub new {
    my ($class, %o) = @_;
    croak "Plinth::Admin: conninfo is needed" unless defined $o{conninfo};
    return bless { timeout => 30, psql => $PSQL, %o }, $class;
}

# The conninfo of the cluster whose files are in $dir (its `ports` file,
# written by Plinth::Cluster), or undef.
sub conninfo_of_dir {
    my ($dir) = @_;
    open my $fh, '<', "$dir/ports" or return undef;
    while (<$fh>) {
        return Plinth::Cluster::conninfo_for_port($1) if /^pg\s+(\d+)\s*$/;
    }
    return undef;
}

# query($sql, name => value, ...) -> rows (arrayrefs; NULL is undef): a
# list in list context, an arrayref in scalar context.  The script runs in
# one transaction; values are psql variables (:'name' in $sql).  One
# statement's rows only: psql ends each result with a newline, which is
# not taken for a separator here.
sub query {
    my ($self, $sql, %vars) = @_;
    my @argv = ($self->{psql}, '-X', '-q', '-1', '-v', 'ON_ERROR_STOP=1',
        '-At', '-F', "\x1f", '-R', "\x1e", '-P', "null=$NULL",
        '-d', $self->{conninfo});
    for my $n (sort keys %vars) {
        croak "bad psql variable name '$n'" unless $n =~ /^[a-z_][a-z0-9_]*$/;
        my $v = $vars{$n};
        croak "psql variable '$n' is undefined" unless defined $v;
        croak "psql variable '$n' holds a NUL byte" if $v =~ /\0/;
        push @argv, '-v', "$n=$v";
    }
    push @argv, '-f', '-';
    my ($rc, $out, $err) = Plinth::Cluster::run_command(\@argv,
        stdin => $sql, timeout => $self->{timeout},
        env => { PGCONNECT_TIMEOUT => 5 });
    if ($rc != 0) {
        $err =~ s/^psql:<stdin>:\d+: //mg;
        $err =~ s/\s+\z//;
        die "cannot reach the database ($self->{conninfo}): is the cluster "
            . "running?\n  $err\n" if $err =~ /connection to server .* failed/;
        die "database error: " . ($err || "psql exited with $rc") . "\n";
    }
    my @rows;
    $out =~ s/\n\z//;
    for my $line (split /\x1e/, $out) {
        push @rows, [map { $_ eq $NULL ? undef : $_ } split /\x1f/, $line, -1];
    }
    return wantarray ? @rows : \@rows;
}

# ---------------------------------------------------------------- secrets

# $n characters of $alphabet from /dev/urandom, each equally likely
# (bytes past the largest multiple of the alphabet's size are dropped).
sub random_string {
    my ($n, $alphabet) = @_;
    my $len = length $alphabet;
    my $limit = 256 - 256 % $len;
    open my $fh, '<:raw', '/dev/urandom' or die "/dev/urandom: $!\n";
    my $out = '';
    while (length $out < $n) {
        my $buf;
        my $r = sysread($fh, $buf, 64);
        die "/dev/urandom: " . (defined $r ? 'end of file' : $!) . "\n" unless $r;
        for my $b (unpack 'C*', $buf) {
            next if $b >= $limit;
            $out .= substr($alphabet, $b % $len, 1);
            last if length $out == $n;
        }
    }
    close $fh;
    return $out;
}

our $KEY_ALPHABET = join '', 'A' .. 'Z', '0' .. '9';
our $SECRET_ALPHABET = join '', 'A' .. 'Z', 'a' .. 'z', '0' .. '9';

sub new_access_key_id { 'PL' . random_string(18, $KEY_ALPHABET) }
sub new_secret_key    { random_string(40, $SECRET_ALPHABET) }

# ---------------------------------------------------------------- checks

sub check_user_name {
    my ($u) = @_;
    die "a user name is needed (--user NAME)\n" unless defined $u && length $u;
    die "user name '$u': use 1 to 64 of A-Z a-z 0-9 . _ @ + = , -\n"
        unless $u =~ /^[A-Za-z0-9._@+=,-]{1,64}\z/;
    die "user 'anonymous' is the identity of unsigned requests: it has no keys\n"
        if $u eq 'anonymous';
}

sub check_key_id {
    my ($id) = @_;
    die "an access key id is needed\n" unless defined $id && length $id;
    die "no such access key: $id\n" unless $id =~ /^[A-Z0-9]{16,128}\z/;
}

sub _text {
    my ($what, $v, $max) = @_;
    return unless defined $v;
    die "$what: at most $max characters\n" if length $v > $max;
    die "$what: no control characters\n" if $v =~ /[\x00-\x1f\x7f]/;
}

# ---------------------------------------------------------------- keys

# create_key(user => NAME, display_name => TEXT, admin => 0|1,
#            description => TEXT)
# Creates the user if missing (display name: given, else the user name),
# makes it an admin if admin => 1 (never the reverse), and adds a new
# active key.  Returns { access_key_id, secret_key, user_id, display_name,
# is_admin, created_user (1 if the user was created), created_at }.
sub create_key {
    my ($self, %o) = @_;
    check_user_name($o{user});
    _text('display name', $o{display_name}, 256);
    _text('description', $o{description}, 1024);
    # one statement: the user (made or found; admin => 1 promotes it), then
    # the key.  xmax = 0: the row was inserted, not updated.
    my $sql = <<'SQL';
with u as (
    insert into users (user_id, display_name, is_admin)
    values (:'user', coalesce(nullif(:'display_name', ''), :'user'),
            :'admin'::boolean)
    on conflict (user_id) do update
        set is_admin = users.is_admin or excluded.is_admin
    returning user_id, display_name, is_admin, xmax = 0 as created
), k as (
    insert into access_keys (access_key_id, secret_key, user_id, description)
    select :'key_id', :'secret', user_id, nullif(:'description', '') from u
    returning created_at
)
select u.user_id, u.display_name, u.is_admin, u.created,
       to_char(k.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
  from u, k;
SQL
    for my $attempt (1 .. 3) {
        my $id = new_access_key_id();
        my $secret = new_secret_key();
        my @rows = eval {
            $self->query($sql, user => $o{user},
                display_name => $o{display_name} // '',
                admin => $o{admin} ? 'true' : 'false',
                description => $o{description} // '',
                key_id => $id, secret => $secret);
        };
        if ($@) {
            # an id already taken (1 in 36^18): draw again
            next if $@ =~ /access_keys_pkey/ && $attempt < 3;
            die $@;
        }
        die "database error: the key was not stored\n" unless @rows == 1;
        my ($uid, $dn, $adm, $created, $at) = @{ $rows[0] };
        return { access_key_id => $id, secret_key => $secret,
            user_id => $uid, display_name => $dn, is_admin => $adm eq 't' ? 1 : 0,
            created_user => $created eq 't' ? 1 : 0, created_at => $at };
    }
}

# list_keys(user => NAME) -> [{ access_key_id, user_id, status, created_at,
# description }], by user then creation.  Never the secrets.
sub list_keys {
    my ($self, %o) = @_;
    my @rows = $self->query(<<'SQL', user => $o{user} // '');
select access_key_id, user_id, status,
       to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       description
  from access_keys
 where :'user' = '' or user_id = :'user'
 order by user_id, created_at, access_key_id;
SQL
    return [map { { access_key_id => $_->[0], user_id => $_->[1],
        status => $_->[2], created_at => $_->[3], description => $_->[4] } } @rows];
}

sub count_keys {
    my ($self) = @_;
    return ($self->query('select count(*) from access_keys;'))[0][0];
}

# Whether the access_keys table exists (migration 002 applied).
sub has_schema {
    my ($self) = @_;
    return ($self->query("select to_regclass('access_keys') is not null;"))[0][0] eq 't';
}

# the key's row (without the secret), or undef
sub get_key {
    my ($self, $id) = @_;
    my @r = $self->query(<<'SQL', id => $id);
select access_key_id, user_id, status from access_keys where access_key_id = :'id';
SQL
    return @r ? { access_key_id => $r[0][0], user_id => $r[0][1],
        status => $r[0][2] } : undef;
}

# The secret of an existing key (for the cluster's own credentials file).
sub secret_of {
    my ($self, $id) = @_;
    my @r = $self->query(
        "select secret_key from access_keys where access_key_id = :'id';",
        id => $id);
    return @r ? $r[0][0] : undef;
}

# delete_key($id) -> the deleted key's user; dies "no such access key".
sub delete_key {
    my ($self, $id) = @_;
    check_key_id($id);
    my @r = $self->query(<<'SQL', id => $id);
delete from access_keys where access_key_id = :'id' returning user_id;
SQL
    die "no such access key: $id\n" unless @r;
    return $r[0][0];
}

# set_key_status($id, 'active' | 'inactive') -> the key's user.
sub set_key_status {
    my ($self, $id, $status) = @_;
    check_key_id($id);
    croak "status: active or inactive" unless ($status // '') =~ /^(active|inactive)$/;
    my @r = $self->query(<<'SQL', id => $id, status => $status);
update access_keys set status = :'status' where access_key_id = :'id'
returning user_id;
SQL
    die "no such access key: $id\n" unless @r;
    return $r[0][0];
}

# list_users -> [{ user_id, display_name, is_admin, keys, active_keys,
# buckets, created_at }]
sub list_users {
    my ($self) = @_;
    my @rows = $self->query(<<'SQL');
select u.user_id, u.display_name, u.is_admin,
       (select count(*) from access_keys k where k.user_id = u.user_id),
       (select count(*) from access_keys k where k.user_id = u.user_id
                                             and k.status = 'active'),
       (select count(*) from buckets b where b.owner_id = u.user_id),
       to_char(u.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
  from users u
 order by u.user_id;
SQL
    return [map { { user_id => $_->[0], display_name => $_->[1],
        is_admin => $_->[2] eq 't' ? 1 : 0, keys => $_->[3],
        active_keys => $_->[4], buckets => $_->[5], created_at => $_->[6] } } @rows];
}


# ---------------------------------------------------------------- cost

# The same reports as the gateway's admin API (GET /admin/v1/cost and
# /admin/v1/access), from the same SQL functions (sql/016), decoded.
# cost_report($bucket or undef) -> hashref; access_report($bucket,
# 'hottest'|'coldest', $n) -> hashref.  An unknown bucket dies "no bucket".
sub _json_of {
    my ($self, $sql, %vars) = @_;
    require JSON::PP;
    my @r = eval { $self->query($sql, %vars) };
    if ($@) {
        my $e = $@;
        die "no such bucket: $vars{bucket}\n" if $e =~ /no bucket "/;
        die $e;
    }
    return JSON::PP::decode_json($r[0][0]);
}

sub cost_report {
    my ($self, $bucket) = @_;
    return $self->_json_of(
        "select plinth_cost_report(nullif(:'bucket', ''), null);",
        bucket => $bucket // '');
}

sub access_report {
    my ($self, $bucket, $which, $n) = @_;
    die "access: --hottest and --coldest take a number from 1 to 1000\n"
        unless $n =~ /^\d{1,4}\z/ && $n >= 1 && $n <= 1000;
    return $self->_json_of(
        "select plinth_access_report(:'bucket', :'which', :'n'::integer);",
        bucket => $bucket, which => $which, n => $n);
}

# set_prices(hot => USD, warm => .., cold => .., egress => ..): per
# GiB-month stored (hot, warm, cold; times the replication factor) and per
# GiB sent (egress).  Returns { name => value } of every setting.
sub set_prices {
    my ($self, %p) = @_;
    for my $n (sort keys %p) {
        die "price $n: one of hot, warm, cold, egress\n"
            unless $n =~ /^(hot|warm|cold|egress)\z/;
        die "price $n: a number of dollars, e.g. 0.023\n"
            unless $p{$n} =~ /^\d{1,6}(\.\d{1,10})?\z/;
        $self->query("update cost_settings set value = :'v'::numeric, "
            . "updated_at = now() where name = :'n';", n => $n, v => $p{$n});
    }
    my @rows = $self->query("select name, value::text from cost_settings order by name;");
    return { map { $_->[0] => $_->[1] } @rows };
}

# ---------------------------------------------------------------- tiers

our @CLASSES = qw(STANDARD STANDARD_IA GLACIER DEEP_ARCHIVE);

# set_bucket_class($bucket, $class): the class of writes that name none.
sub set_bucket_class {
    my ($self, $bucket, $class) = @_;
    die "storage class: one of @CLASSES\n"
        unless grep { $_ eq ($class // '') } @CLASSES;
    my @r = $self->query(<<'SQL', b => $bucket, c => $class);
update buckets set storage_class = :'c' where name = :'b' returning name;
SQL
    die "no such bucket: $bucket\n" unless @r;
    return 1;
}

# set_tiering($bucket, down_days => N, up_reads => M, up_days => K):
# Plinth's access rule for the bucket (sql/017, bucket_tiering).
sub set_tiering {
    my ($self, $bucket, %o) = @_;
    for my $k (qw(down_days up_days)) {
        die "--" . ($k =~ tr/_/-/r) . ": a positive number of days\n"
            unless defined $o{$k} && $o{$k} =~ /^(?:\d+(?:\.\d*)?|\.\d+)$/
                && $o{$k} > 0;
    }
    die "--up-reads: a positive whole number\n"
        unless defined $o{up_reads} && $o{up_reads} =~ /^[1-9]\d{0,17}$/;
    my @r = $self->query(<<'SQL', b => $bucket, d => $o{down_days}, r => $o{up_reads}, u => $o{up_days});
insert into bucket_tiering (bucket_id, down_days, up_reads, up_days)
select bucket_id, :'d', :'r', :'u' from buckets where name = :'b'
on conflict (bucket_id) do update
   set down_days = excluded.down_days, up_reads = excluded.up_reads,
       up_days = excluded.up_days
returning bucket_id;
SQL
    die "no such bucket: $bucket\n" unless @r;
    return 1;
}

sub drop_tiering {
    my ($self, $bucket) = @_;
    my @r = $self->query(<<'SQL', b => $bucket);
delete from bucket_tiering t using buckets b
 where b.bucket_id = t.bucket_id and b.name = :'b' returning b.name;
SQL
    die "no access rule on bucket $bucket\n" unless @r;
    return 1;
}

# list_tiering -> [{ bucket, storage_class, down_days, up_reads, up_days }]
# (every bucket, with its default class; the rule's fields undef if none)
sub list_tiering {
    my ($self) = @_;
    my @rows = $self->query(<<'SQL');
select b.name, b.storage_class, t.down_days, t.up_reads, t.up_days
  from buckets b left join bucket_tiering t using (bucket_id)
 order by b.name;
SQL
    return [map { { bucket => $_->[0], storage_class => $_->[1],
        down_days => $_->[2], up_reads => $_->[3], up_days => $_->[4] } } @rows];
}

1;
