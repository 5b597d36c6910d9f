#!/usr/bin/env bash
# Builds build/ngx_plinth_module.so against Debian's nginx-dev so that it
# loads into the packaged /usr/sbin/nginx (same configure flags, same
# patched headers). The nginx-dev tree is copied under build/ so the build
# never writes into /usr.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
src=${NGINX_SRC:-/usr/share/nginx/src}
work=$repo/build/nginx-src
objs=$repo/build/nginx

if [ ! -f "$objs/Makefile" ] || [ "$repo/config" -nt "$objs/Makefile" ] \
    || [ "$src/conf_flags" -nt "$objs/Makefile" ]; then
    rm -rf "$work" "$objs"
    mkdir -p "$repo/build"
    cp -a "$src" "$work"
    cd "$work"
    # shellcheck disable=SC1091
    . ./conf_flags
    ./configure "${NGX_CONF_FLAGS[@]}" \
        ${PLINTH_CC_OPT:+--with-cc-opt="$PLINTH_CC_OPT"} \
        ${PLINTH_LD_OPT:+--with-ld-opt="$PLINTH_LD_OPT"} \
        --add-dynamic-module="$repo" --builddir="$objs" >"$repo/build/configure.log" 2>&1 \
        || { tail -30 "$repo/build/configure.log"; exit 1; }
fi

make -s -f "$objs/Makefile" -C "$work" modules
cp "$objs/ngx_http_plinth_module.so" "$repo/build/ngx_plinth_module.so.tmp"
# rename, never overwrite: a running nginx maps the old file
mv -f "$repo/build/ngx_plinth_module.so.tmp" "$repo/build/ngx_plinth_module.so"
