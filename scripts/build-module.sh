#!/usr/bin/env bash
# Builds $PLINTH_BUILD/ngx_plinth_module.so (PLINTH_BUILD: default build).
#
# Normal build: against Debian's nginx-dev so that the module loads into the
# packaged /usr/sbin/nginx (same configure flags, same patched headers). The
# nginx-dev tree is copied under the build directory so the build never
# writes into /usr.
#
# PLINTH_SAN=1 (make SAN=1, into build-san/): nginx-dev has only headers, so
# the full source of Debian's nginx package is unpacked (`apt-get source`,
# scripts/nginx-source.sh) and nginx itself is built with the packaged
# binary's configure flags, with clang (see the Makefile: SAN_CC), plus
# AddressSanitizer and UBSan and
# NGX_DEBUG_PALLOC=1 (every ngx_palloc is a malloc of its own, so ASan sees
# an overflow of a pool allocation; with pools a small overflow stays inside
# the pool's block and nothing reports it). Binary and module come from the
# same configure: $PLINTH_BUILD/sbin/nginx and the module beside it.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bdir=$repo/${PLINTH_BUILD:-build}
src=${NGINX_SRC:-/usr/share/nginx/src}
work=$bdir/nginx-src
objs=$bdir/nginx
san=${PLINTH_SAN:-0}

cc_opt=${PLINTH_CC_OPT:-}
ld_opt=${PLINTH_LD_OPT:-}
with_cc=()
if [ "$san" = 1 ]; then
    with_cc=(--with-cc="${PLINTH_SAN_CC:-clang}")
    # nginx's own UB that is not Plinth's: scripts/nginx-ubsan.ignore
    cc_opt="$cc_opt ${PLINTH_SAN_CFLAGS:?PLINTH_SAN_CFLAGS unset (make SAN=1 sets it)} -DNGX_DEBUG_PALLOC=1"
    cc_opt="$cc_opt -fsanitize-ignorelist=$repo/scripts/nginx-ubsan.ignore"
    # every dynamic module defines its own ngx_modules[] (and names, order),
    # which the executable's interpose: without ODR indicators the module's
    # ASan registration poisons the executable's array as a 16-byte one, and
    # the next reload's ngx_cycle_modules() reads "past" it (a false
    # global-buffer-overflow, t/44 reloads)
    cc_opt="$cc_opt -fsanitize-address-use-odr-indicator"
    # -z nodelete: nginx dlcloses its modules when a worker or the master
    # destroys the cycle pool on exit, before LeakSanitizer runs; memory the
    # module holds in its statics then looks leaked and its frames are
    # "<unknown module>". Kept mapped, they are roots and symbolized.
    ld_opt="$ld_opt $PLINTH_SAN_LDFLAGS -Wl,-z,nodelete"
fi

# shellcheck disable=SC1091
. "$src/conf_flags"
extra=()
if [ "$san" = 1 ] && [ -x /usr/sbin/nginx ]; then
    # the packaged binary (nginx-core) has static modules conf_flags does not
    # list (sub, gunzip, secure_link, ...): the sanitizer build has them too
    for f in $(/usr/sbin/nginx -V 2>&1 | tr ' ' '\n' \
               | grep -E '^--with-http_[a-z0-9_]+_module$'); do
        case " ${NGX_CONF_FLAGS[*]} " in
            *" $f "*) ;;
            *) extra+=("$f") ;;
        esac
    done
fi

stamp=$objs/.flags
flags="san=$san ${extra[*]} ${with_cc[*]} cc=$cc_opt ld=$ld_opt $(cat "$repo/scripts/nginx-ubsan.ignore" 2>/dev/null | cksum)"
if [ ! -f "$objs/Makefile" ] || [ "$repo/config" -nt "$objs/Makefile" ] \
    || [ "$src/conf_flags" -nt "$objs/Makefile" ] \
    || [ "$(cat "$stamp" 2>/dev/null)" != "$flags" ]; then
    rm -rf "$work" "$objs"
    mkdir -p "$bdir"
    if [ "$san" = 1 ]; then
        "$repo/scripts/nginx-source.sh" "$work"
    else
        cp -a "$src" "$work"
    fi
    cd "$work"
    ./configure "${NGX_CONF_FLAGS[@]}" "${extra[@]}" "${with_cc[@]}" \
        ${cc_opt:+--with-cc-opt="$cc_opt"} \
        ${ld_opt:+--with-ld-opt="$ld_opt"} \
        --add-dynamic-module="$repo" --builddir="$objs" >"$bdir/configure.log" 2>&1 \
        || { tail -30 "$bdir/configure.log"; exit 1; }
    echo "$flags" >"$stamp"
fi

if [ "$san" = 1 ]; then
    make -s -f "$objs/Makefile" -C "$work" binary modules
    mkdir -p "$bdir/sbin"
    cp "$objs/nginx" "$bdir/sbin/nginx.tmp"
    mv -f "$bdir/sbin/nginx.tmp" "$bdir/sbin/nginx"
else
    make -s -f "$objs/Makefile" -C "$work" modules
fi
cp "$objs/ngx_http_plinth_module.so" "$bdir/ngx_plinth_module.so.tmp"
# rename, never overwrite: a running nginx maps the old file
mv -f "$bdir/ngx_plinth_module.so.tmp" "$bdir/ngx_plinth_module.so"
