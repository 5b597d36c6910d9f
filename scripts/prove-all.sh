#!/usr/bin/env bash
# make test's runner: prove every t/*.t file. The tests' diagnostics
# (Test::More's diag, on stderr) are also kept in BUILD/test-diag.log; when
# a file fails, the diagnostics of its failed tests are printed again after
# prove's summary, so the end of a long CI log says what went wrong, not
# only which test number did.
#
#   scripts/prove-all.sh BUILD_DIR [prove arguments]
set -uo pipefail

build=${1:?usage: prove-all.sh BUILD_DIR [prove args]}
shift
mkdir -p "$build"
diag="$build/test-diag.log"
: > "$diag"

prove "$@" t/*.t 2> >(tee "$diag" >&2)
rc=$?
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
