#!/usr/bin/env bash
# Installs every Debian package Plinth needs to build, run and test.
# Nothing is downloaded from anywhere but Debian's archive.
set -euo pipefail

PKGS=(
    build-essential pkg-config
    nginx nginx-dev                     # the packaged nginx and its module build kit
    libssl-dev libpcre2-dev zlib1g-dev   # headers nginx-dev's configure checks for
    libpq-dev postgresql                 # metadata store
    libxxhash-dev                        # XXH3 block checksums (data node)
    libprotobuf-c-dev protobuf-c-compiler
    libyaml-dev                          # configuration files
    libmicrohttpd-dev                    # data node HTTP/1.1 server
    libxml2-dev                          # S3 XML request bodies
    libjansson-dev                       # JSON request bodies (batch GET)
    libisal-dev                          # CRC32C checksums (ISA-L)
    perl libtest-base-perl               # test harness (prove, Test::Base)
    libio-socket-ssl-perl                # HTTP::Tiny over TLS to data nodes (t/47-tls.t)
    awscli python3-boto3                 # real S3 clients for end-to-end tests
    s3cmd rclone
    curl procps iproute2 util-linux openssl
    libcurl4-openssl-dev                 # bench/loadgen.c: libcurl's multi interface, SigV4
    prometheus                           # promtool checks the /metrics output
    clang libclang-rt-14-dev             # libFuzzer targets (fuzz/, make fuzz)
)

SUDO=
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
        || missing+=("$p")
done

# Node.js and npm run the AWS SDK for JavaScript tests (t/93-js-sdk.t).
# Only when absent: a machine may carry another vendor's nodejs, which
# conflicts with Debian's npm.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    missing+=(nodejs npm)
fi

if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
    # packages with services (postgresql, nginx, prometheus) must not start
    # them: the tests and `make run` start their own, by pid
    policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod +x /usr/sbin/policy-rc.d
        policy=/usr/sbin/policy-rc.d
    fi
    $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}"
    if [ -n "$policy" ]; then $SUDO rm -f "$policy"; fi
fi
