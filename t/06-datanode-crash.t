# A data node killed with kill -9 under concurrent 4 KiB PUTs, with
# group_commit false and true: after a restart every acknowledged blob is
# there, byte for byte. The checks live in t/datanode-crash.sh (TAP).
# Plinth::Cluster is loaded for `make test SAN=1`: the data node's
# sanitizer reports fail this file.
use lib 't/lib';
use Plinth::Cluster ();

system('bash', 't/datanode-crash.sh');
exit($? == -1 ? 127 : ($? & 127) ? 1 : $? >> 8);
