#!/usr/bin/env bash
# lint-clang.sh [BUILD_DIR]: compiles the gateway module's sources with
# clang and the warnings nginx's configure gives clang (-Wextra,
# -Wconditional-uninitialized, ...), syntax only, against the include
# paths of the gcc build in BUILD_DIR (default build). `make test` runs it
# first: the sanitizer build (make test SAN=1) compiles the module with
# clang and -Werror, so a warning only clang gives would otherwise stop
# that build without the everyday one noticing (it did, for a day: a
# variable clang could not prove set). About 10 s.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
b=$repo/${1:-build}
objs=$b/nginx
work=$b/nginx-src

if ! command -v clang >/dev/null; then
    echo "lint-clang: clang not found (scripts/install-deps.sh installs it)" >&2
    exit 1
fi
if [ ! -f "$objs/Makefile" ] || [ ! -d "$work" ]; then
    echo "lint-clang: no gcc build of the module in $b (make module first)" >&2
    exit 1
fi

# the include paths nginx's configure wrote for the module
incs=$(make -s -f "$objs/Makefile" -C "$work" --no-print-directory \
       --eval 'plinth-print-incs: ; @echo $(ALL_INCS)' plinth-print-incs)

# as auto/cc/clang sets them (build-san/nginx/Makefile's CFLAGS)
flags=(-fsyntax-only -fPIC -pipe -O -Wall -Wextra -Wpointer-arith
       -Wconditional-uninitialized -Wno-unused-parameter -Werror)

cd "$work"
fail=0
n=0
for f in "$repo"/ngx_plinth_module/*.c; do
    n=$((n + 1))
    # shellcheck disable=SC2086
    if ! clang "${flags[@]}" $incs "$f"; then
        fail=$((fail + 1))
    fi
done
if [ "$fail" -ne 0 ]; then
    echo "lint-clang: $fail of $n module sources have clang warnings" >&2
    exit 1
fi
echo "lint-clang: $n module sources clean under clang"
