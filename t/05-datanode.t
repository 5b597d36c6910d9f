# The data node on its own (no gateway): store, fetch, ranges, stat, list,
# delete, health, checksum failures, disk full, keep-alive. The checks live
# in t/datanode-smoke.sh, which prints TAP. Plinth::Cluster is loaded only
# for `make test SAN=1`: the data node's sanitizer reports fail this file.
use lib 't/lib';
use Plinth::Cluster ();

system('bash', 't/datanode-smoke.sh');
exit($? == -1 ? 127 : ($? & 127) ? 1 : $? >> 8);
