# A data node killed with kill -9 under concurrent 4 KiB PUTs, with
# group_commit false and true: after a restart every acknowledged blob is
# there, byte for byte. The checks live in t/datanode-crash.sh (TAP).
exec 'bash', 't/datanode-crash.sh' or die "cannot run t/datanode-crash.sh: $!";
