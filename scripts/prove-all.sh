#!/usr/bin/env bash
# make test's runner: prove every t/*.t file. prove runs verbose; its whole
# output is kept in BUILD/test-verbose.log, and the console shows one line
# per file with the number of tests it ran (and skipped), every failed test,
# and prove's summary. A file whose count changes between runs is skipping
# assertions somewhere, so the counts are also kept in BUILD/test-counts.txt.
# The tests' diagnostics (Test::More's diag, on stderr) are kept in
# BUILD/test-diag.log; when a file fails, the diagnostics of its failed tests
# are printed again after prove's summary, so the end of a long CI log says
# what went wrong, not only which test number did.
#
#   scripts/prove-all.sh BUILD_DIR [prove arguments]
set -uo pipefail

build=${1:?usage: prove-all.sh BUILD_DIR [prove args]}
shift
mkdir -p "$build"
diag="$build/test-diag.log"
verbose="$build/test-verbose.log"
counts="$build/test-counts.txt"
: > "$diag"

# inside a file's block (after "t/x.t .. "), only failed tests are shown;
# the block ends at prove's verdict for the file ("ok", "Failed 2/9
# subtests", "Dubious, ...", "skipped: ..."), printed with the file's counts
summarize() {
    awk -v counts="$counts" '
        function verdict(line) {
            printf "%-28s %s (%d tests%s)\n", file, line, n,
                skipped ? ", " skipped " skipped" : ""
            printf "%s %d %d\n", file, n, skipped > counts
            fflush(); infile = 0
        }
        /^t\/.*\.t \.+ *$/ { file = $1; n = 0; skipped = 0; infile = 1; next }
        /^t\/.*\.t \.+ skipped:/ { printf "%s 0 0\n", $1 > counts }
        infile && /^(not )?ok [0-9]+/ {
            n++
            if ($0 ~ /# (skip|SKIP)/) skipped++
            if ($0 ~ /^not ok/) { print file ": " $0; fflush() }
            next
        }
        infile && /^(ok$|ok +[0-9]+ms$|Failed |Dubious|skipped:|No subtests run|All [0-9]+ subtests passed)/ {
            verdict($0); next
        }
        infile { next }
        { print; fflush() }
    '
}

: > "$counts"
prove -v "$@" t/*.t 2> >(tee "$diag" >&2) | tee "$verbose" | summarize
rc=${PIPESTATUS[0]}
# let tee finish writing before the log is read
wait

if [ "$rc" -ne 0 ]; then
    echo
    echo "==== diagnostics of the failed tests (from $diag) ===="
    # Test::More prints "#   Failed test '...'" and then the test's own
    # diag lines; keep each failure with what follows it, bounded
    grep -n -A 40 -e '^#   Failed test' -e '^# Looks like' -e 'BAIL OUT' \
        -e 'Dubious' "$diag" | head -n 400
    echo "==== make test: Result: FAIL (prove exited $rc) ===="
fi
exit "$rc"
