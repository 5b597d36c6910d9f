# PutObject's SQL (sql/023) on PostgreSQL alone: the begin writes the
# versions row once with every column it knows (ACL, storage class, S3
# version id), with the same checks as before; late replicas are recorded
# in batches, on their own or carried by another PUT's commit, only on
# committed rows, each node once.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Temp qw(tempdir);
use Test::More;
use Plinth::Cluster;

my $dir = tempdir('plinth-t27-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $pg = Plinth::Cluster->new(dir => $dir, nodes => 0, components => ['pg'],
    log => sub { note($_[0]) });
ok($pg->start, 'PostgreSQL started, migrations applied');

sub row { my @r = $pg->psql($_[0]); return $r[0] }

$pg->psql("INSERT INTO users (user_id, display_name) VALUES ('me', 'me'), "
    . "('you', 'you')");
$pg->psql("INSERT INTO buckets (name, owner_id) VALUES ('b', 'me'), "
    . "('vb', 'me')");
$pg->psql("UPDATE buckets SET versioning = 'Enabled' WHERE name = 'vb'");
$pg->psql("UPDATE buckets SET storage_class = 'STANDARD_IA' WHERE name = 'b'");

# ------------------------------------------------------------ begin

# one INSERT, no UPDATE, in the begin's transaction (exact counters)
my $r = row("SELECT s.n_tup_ins, s.n_tup_upd FROM (SELECT count(*) AS c "
    . "FROM plinth_put_begin_c('b', 'k1', 5, 'e1', 'text/plain', "
    . "'x-amz-meta-a:1', 'me', 'public-read', 'GLACIER')) x, LATERAL "
    . "(SELECT n_tup_ins, n_tup_upd FROM pg_stat_xact_user_tables "
    . "WHERE relname = 'versions' AND x.c = 1) s");
is_deeply($r, [1, 0], 'begin: the versions row inserted once, never updated');

my $v1 = row("SELECT version_id, blob_id, vid, versioned, storage_class "
    . "FROM plinth_put_begin_c('b', 'k1', 5, 'e1', 'text/plain', "
    . "'x-amz-meta-a:1', 'me', 'public-read', 'GLACIER')");
like($v1->[1], qr/^[0-9a-f]{32}$/, 'begin: a blob id of 32 hex digits');
is_deeply([@$v1[2 .. 4]], ['null', 'f', 'GLACIER'],
    'begin: version "null", bucket unversioned, the class asked for');
is_deeply(row("SELECT state, acl, storage_class, size, etag, content_type, "
        . "meta, owner_id, vid IS NULL, replace(blob_id::text, '-', '') "
        . "FROM versions WHERE version_id = $v1->[0]"),
    ['pending', 'public-read', 'GLACIER', 5, 'e1', 'text/plain',
     'x-amz-meta-a:1', 'me', 't', $v1->[1]],
    'begin: every column in the row');

my $v2 = row("SELECT version_id, vid, versioned, storage_class "
    . "FROM plinth_put_begin_c('b', 'k2', 1, 'e2', NULL, NULL, 'me', "
    . "'private', NULL)");
is($v2->[3], 'STANDARD_IA', "begin: no class given: the bucket's default");

my $vv = row("SELECT version_id, vid, versioned FROM plinth_put_begin_c("
    . "'vb', 'k', 1, 'e', NULL, NULL, 'me', 'private', NULL)");
like($vv->[1], qr/^[0-9a-f]{32}$/, 'begin, versioned bucket: an S3 version id');
is($vv->[2], 't', 'begin, versioned bucket: versioned');
is(row("SELECT vid FROM versions WHERE version_id = $vv->[0]")->[0], $vv->[1],
    'begin: the version id returned is the one stored');

eval { $pg->psql("SELECT plinth_put_begin_c('b', 'k', 1, 'e', NULL, NULL, "
    . "'you', 'private', NULL)") };
like($@, qr/not yours/, "begin: another user's bucket: refused (PL011)");
eval { $pg->psql("SELECT plinth_put_begin_c('nob', 'k', 1, 'e', NULL, NULL, "
    . "'me', 'private', NULL)") };
like($@, qr/no bucket/, 'begin: no such bucket (PL001)');

# ------------------------------------------------------------ late replicas

is(row("SELECT plinth_put_commit($v1->[0], '{1,2}', false, NULL, NULL, "
    . "NULL, '{}', '{}')")->[0], 'current', 'commit, nothing carried');
is(row("SELECT plinth_put_commit($v2->[0], '{2,3}', false, NULL, NULL, "
    . "NULL, '{$v1->[0]}', '{3}')")->[0], 'current',
    'commit carrying a late replica of another version');
is(row("SELECT array_to_string(nodes, ',') FROM versions "
    . "WHERE version_id = $v1->[0]")->[0], '1,2,3',
    'the late replica is recorded by that commit');
is(row("SELECT array_to_string(nodes, ',') FROM versions "
    . "WHERE version_id = $v2->[0]")->[0], '2,3',
    "the commit's own placement is the nodes it was given");

my $p = row("SELECT version_id FROM plinth_put_begin_c('b', 'k3', 1, 'e', "
    . "NULL, NULL, 'me', 'private', NULL)")->[0];
is(row("SELECT plinth_put_add_nodes('{$v1->[0],$v2->[0],$v2->[0],$p}', "
    . "'{3,1,4,1}', true)")->[0], 1,
    'a batch: one row changed (a node already there, a pending row left)');
is_deeply([map { $_->[0] } $pg->psql("SELECT coalesce(nullif("
        . "array_to_string(nodes, ','), ''), 'none') FROM versions WHERE version_id IN ($v1->[0], $v2->[0], $p) "
        . "ORDER BY version_id")],
    ['1,2,3', '2,3,1,4', 'none'], 'each version got the nodes it lacked, once');
is(row("SELECT plinth_put_add_nodes('{$v2->[0]}', '{4}', false)")->[0], 0,
    'again: nothing to change');

# a version that became garbage (overwritten) gets no late replica
row("SELECT plinth_put_commit($p, '{1}', false, NULL, NULL, NULL, '{}', '{}')");
my $p2 = row("SELECT version_id FROM plinth_put_begin_c('b', 'k3', 1, 'e', "
    . "NULL, NULL, 'me', 'private', NULL)")->[0];
row("SELECT plinth_put_commit($p2, '{1}', false, NULL, NULL, NULL, "
    . "'{$p}', '{2}')");
is_deeply(row("SELECT state, array_to_string(nodes, ',') FROM versions "
        . "WHERE version_id = $p"), ['garbage', '1'],
    'a replaced version: garbage, no late replica added');

# the 6-argument commit of gateways not yet reloaded still works
my $o = row("SELECT version_id FROM plinth_put_begin_c('b', 'k4', 1, 'e', "
    . "NULL, NULL, 'me', 'private', NULL)")->[0];
is(row("SELECT plinth_put_commit($o, '{1,2}', false, NULL, NULL, NULL)")->[0],
    'current', 'the 6-argument commit');

# cost_tracking still counts committed bytes (sql/016's triggers)
is(row("SELECT sum(stored_bytes), sum(versions) FROM cost_tracking c "
        . "JOIN buckets b USING (bucket_id) WHERE b.name = 'b'")->[1], 4,
    'cost_tracking: the four current versions of b');

$pg->stop;
done_testing();
