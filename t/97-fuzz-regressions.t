# Fuzz regressions: every committed input under fuzz/corpus/<target>/ (the
# seeds, and inputs that once broke a target) and fuzz/crashes/<target>/
# (inputs that crashed Plinth code before a fix) is run once through its
# libFuzzer binary, build/fuzz/<target> (made by `make fuzz-build`, which
# `make test` runs first). A libFuzzer binary given file paths runs each
# file once and exits non-zero on a crash, sanitizer report, leak or
# timeout.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Basename qw(basename);
use Plinth::Cluster;
use Test::More;

my $root = $Plinth::Cluster::ROOT;
my %inputs;

for my $kind (qw(corpus crashes)) {
    for my $dir (grep { -d } glob("$root/fuzz/$kind/*")) {
        push @{ $inputs{ basename($dir) } },
            sort grep { -f } glob("$dir/*");
    }
}

ok(scalar keys %inputs, "fuzz/corpus/ has seed corpora");

for my $t (sort keys %inputs) {
    my $bin = "$Plinth::Cluster::BUILD/fuzz/$t";
    my @files = @{ $inputs{$t} };

    unless (-x $bin) {
        fail("build/fuzz/$t exists (run `make fuzz-build`)");
        next;
    }

    my ($rc, $out) = Plinth::Cluster::run_command(
        [$bin, '-timeout=25', '-rss_limit_mb=2048', @files],
        timeout => 300, merge => 1, cwd => $root,
        env => { ASAN_OPTIONS => 'detect_leaks=1',
                 UBSAN_OPTIONS => 'print_stacktrace=1:halt_on_error=1' });

    my $ran = () = $out =~ /^Executed /mg;
    if (!ok($rc == 0 && $ran == @files,
            "$t: " . scalar(@files) . " committed inputs run clean")) {
        diag("build/fuzz/$t exited with "
            . ($rc < 0 ? 'a signal or timeout' : "code $rc")
            . ", ran $ran of " . scalar(@files) . ":\n$out");
    }
}

done_testing();
