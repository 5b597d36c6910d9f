# The data node on its own (no gateway): store, fetch, ranges, stat, list,
# delete, health, checksum failures, disk full, keep-alive. The checks live
# in t/datanode-smoke.sh, which prints TAP.
exec 'bash', 't/datanode-smoke.sh' or die "cannot run t/datanode-smoke.sh: $!";
