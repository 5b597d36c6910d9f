#!/usr/bin/env bash
# san-test.sh [BUILD_DIR [PROVE_ARGS...]]: runs the test suite (default
# t/*.t) on the sanitizer build (BUILD_DIR, default build-san, made by
# `make SAN=1 all unit bench-tools fuzz-build`; `make test SAN=1` does
# both). Every sanitizer report fails the run: each test file prints and
# fails on its own (t/lib/Plinth/Cluster.pm), and the run ends with the
# count of every report file written.
#
#   scripts/san-test.sh build-san t/42-health-endpoint.t    one file
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
b=${1:-build-san}
shift || true
if [ $# -eq 0 ]; then set -- t/*.t; fi

logs=$repo/$b/san-logs
rm -rf "$logs"
mkdir -p "$logs"
chmod 1777 "$logs"

export PLINTH_BUILD=$b
export PLINTH_NGINX=$repo/$b/sbin/nginx
export PLINTH_SAN_LOG_DIR=$logs
# Reports go to files (daemons have no terminal): <logs>/<test file>/san.<pid>
# (the harness gives each test file its directory; this one is the default).
# halt_on_error: the first error ends the process (an nginx worker is
# respawned by its master), and the report is complete.
# UBSan: built with -fno-sanitize-recover=all, so undefined behaviour is
# fatal too; print_stacktrace for a usable report.
# Leaks are detected at exit in every program; suppressions (narrow, with
# the reason) in scripts/lsan.supp.
# detect_odr_violation=0: every nginx dynamic module defines its own
# ngx_modules[] (ngx_http_plinth_module_modules.c, made by nginx's
# configure) beside the executable's, by nginx's design; with ODR
# indicators (scripts/build-module.sh) each is registered as its own, and
# ASan would abort nginx at load_module for the duplicate name. Our
# programs are single executables besides this module.
export ASAN_OPTIONS="log_path=$logs/san:halt_on_error=1:detect_leaks=1:strict_init_order=1:detect_stack_use_after_return=0:detect_odr_violation=0"
export UBSAN_OPTIONS="log_path=$logs/san:halt_on_error=1:print_stacktrace=1"
export LSAN_OPTIONS="suppressions=$repo/scripts/lsan.supp:print_suppressions=0"
for s in /usr/bin/llvm-symbolizer /usr/lib/llvm-14/bin/llvm-symbolizer; do
    if [ -x "$s" ]; then export ASAN_SYMBOLIZER_PATH=$s; break; fi
done

start=$(date +%s)
prove "$@"
rc=$?
end=$(date +%s)

mapfile -t reports < <(find "$logs" -type f -name 'san.*' | sort)
if [ ${#reports[@]} -gt 0 ]; then
    for f in "${reports[@]}"; do
        echo "=== sanitizer report $f"
        cat "$f"
    done
    rc=1
fi
echo "sanitizers: ${#reports[@]} report(s) in $logs; wall time $((end - start)) s"
exit $rc
