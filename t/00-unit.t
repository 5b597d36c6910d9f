# The C unit tests: every executable in build/unit/ (made by `make unit`,
# which `make test` runs first) is one test here.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Basename qw(basename);
use Plinth::Cluster;
use Test::More;

my $dir = "$Plinth::Cluster::BUILD/unit";

my @tests = sort grep { -f $_ && -x $_ } glob("$dir/*");
ok(scalar @tests, "build/unit/ has unit test executables")
    or diag("none found in $dir: run `make unit` (make test does)");

for my $t (@tests) {
    my ($rc, $out) = Plinth::Cluster::run_command([$t], timeout => 300,
        merge => 1, cwd => $Plinth::Cluster::ROOT);
    my $name = basename($t);
    if (ok($rc == 0, "$name exits 0")) {
        note($out) if length $out;
    } else {
        diag("$name exited with "
            . ($rc < 0 ? 'a signal or timeout' : "code $rc") . ":\n$out");
    }
}

done_testing();
