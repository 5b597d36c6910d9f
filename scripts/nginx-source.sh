#!/usr/bin/env bash
# nginx-source.sh DIR: unpacks the full source of Debian's nginx package
# (Debian's patches applied) into DIR, for the sanitizer build of nginx
# (scripts/build-module.sh with PLINTH_SAN=1). nginx-dev ships only the
# headers; the .c files come from Debian's archive with `apt-get source`.
#
# The archive does not always still hold the source of the installed
# binary's exact version (a security update's .dsc may be gone from the
# pool); any version is accepted whose headers are byte-identical to
# nginx-dev's (/usr/share/nginx/src/src), so the module's structures match
# the packaged nginx's. Newest first.
set -euo pipefail

dest=$1
hdrs=${NGINX_SRC:-/usr/share/nginx/src}/src

SUDO=
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

# deb-src entries for Debian's archive (the machine has deb entries only)
if [ -z "$(apt-cache showsrc nginx 2>/dev/null | awk '/^Version:/')" ]; then
    list=/etc/apt/sources.list.d/plinth-debian-src.sources
    echo "adding Debian source entries ($list)"
    $SUDO tee "$list" >/dev/null <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
fi
command -v dpkg-source >/dev/null \
    || $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq dpkg-dev

tmp=$(mktemp -d "${TMPDIR:-/tmp}/plinth-nginx-src.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
installed=$(dpkg-query -W -f='${Version}' nginx-dev)
versions=$( (echo "$installed"; apt-cache showsrc nginx | awk '/^Version:/ {print $2}' \
    | sort -rV) | awk '!seen[$0]++')

for v in $versions; do
    rm -rf "${tmp:?}"/*
    if ! (cd "$tmp" && apt-get source -qq "nginx=$v" >/dev/null 2>&1); then
        echo "nginx source $v: not in the archive"
        continue
    fi
    d=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d -name 'nginx-*' | head -1)
    if [ -z "$d" ]; then continue; fi
    if (cd "$hdrs" && find . -name '*.h' -print0 \
            | xargs -0 -I{} cmp -s {} "$d/src/{}") \
       && [ "$(cd "$hdrs" && find . -name '*.h' | wc -l)" -gt 50 ]; then
        rm -rf "$dest"
        mv "$d" "$dest"
        echo "nginx source $v (headers identical to nginx-dev $installed)"
        exit 0
    fi
    echo "nginx source $v: headers differ from nginx-dev $installed"
done
echo "no source of Debian's nginx with nginx-dev's headers found" >&2
exit 1
