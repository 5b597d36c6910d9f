#!/usr/bin/env bash
# datanode-smoke.sh -- end-to-end checks of build/plinth-datanode with curl.
#
# Starts data nodes on 127.0.0.1 high ports under a private mktemp dir and
# drives the whole HTTP API: store/fetch/range/stat/delete/list/health,
# idempotent and conflicting puts, chunked bodies, bit rot in the first and
# in a later block, a garbled trailer, a client that disconnects mid-body,
# a full 2 MiB tmpfs (507, nothing left behind), keep-alive reuse, config
# test mode, graceful SIGTERM, the start-up scan, and the closed internal
# hop (every request but /health signed with the cluster secret; unsigned,
# wrongly signed and stale ones refused with 403). Prints TAP; exits
# non-zero if any check fails. Needs bash, curl, dd, od, grep; the tmpfs
# checks need root (skipped otherwise). Every process it starts is stopped
# by pid, every mount unmounted, the temp dir removed.
#
#   usage: bash t/datanode-smoke.sh        (from the repository root)
#   env:   PLINTH_DATANODE=path/to/binary  (default $PLINTH_BUILD/plinth-datanode,
#          PLINTH_BUILD defaulting to build)

set -u

BIN=${PLINTH_DATANODE:-${PLINTH_BUILD:-build}/plinth-datanode}
T=$(mktemp -d /tmp/plinth-dn-smoke.XXXXXX)
PIDS=()
MOUNTS=()
N=0
FAILED=0
RAWCURL=(curl -s --noproxy '*' --max-time 20)
CURL=(scurl)
SECRET=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
HOP_N=0

# hop_headers <method> <target> [secret] [date]: the three header lines
# (curl -H form) of a request signed as a gateway or repaird signs it:
# HMAC-SHA256 of "PLINTH-HOP-1\n<method>\n<target>\n<date>\n<rid>"
hop_headers() {
    local date=${4:-$(date +%s)} rid sig
    HOP_N=$((HOP_N + 1))
    rid=smoke-$$-$HOP_N
    sig=$(printf 'PLINTH-HOP-1\n%s\n%s\n%s\n%s' "$1" "$2" "$date" "$rid" \
          | openssl dgst -sha256 -hmac "${3:-$SECRET}" -r | cut -d' ' -f1)
    printf 'X-Request-Id: %s\nX-Plinth-Date: %s\nX-Plinth-Signature: %s\n' \
        "$rid" "$date" "$sig"
}

# scurl <curl args...>: curl, signed for its (last) URL and its method
# (-X M, -I for HEAD, POST for a body without -X; GET otherwise)
scurl() {
    local a prev="" method="" body=0 url="" target h
    local -a hs=()
    for a in "$@"; do
        case "$prev" in -X) method=$a ;; esac
        case "$a" in
            -I|--head) method=HEAD ;;
            --data-binary|-d|--data) body=1 ;;
            http://*) url=$a ;;
        esac
        prev=$a
    done
    [ -z "$method" ] && { [ "$body" = 1 ] && method=POST || method=GET; }
    target=/${url#http://*/}
    while IFS= read -r h; do hs+=(-H "$h"); done < <(hop_headers "$method" "$target")
    "${RAWCURL[@]}" "${hs[@]}" "$@"
}

cleanup() {
    local p m
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    for m in "${MOUNTS[@]}"; do
        umount "$m" 2>/dev/null
    done
    rm -rf "$T"
}
trap cleanup EXIT

ok() {      # ok <0|1> <description>
    N=$((N + 1))
    if [ "$1" = 1 ]; then
        echo "ok $N - $2"
    else
        echo "not ok $N - $2"
        FAILED=$((FAILED + 1))
    fi
}

is() {      # is <got> <expected> <description>
    if [ "$1" = "$2" ]; then ok 1 "$3"; else ok 0 "$3"; echo "#   got '$1', expected '$2'"; fi
}

skip() {
    N=$((N + 1))
    echo "ok $N # skip $1"
}

# status <curl args...>: print the HTTP status code only
status() { "${CURL[@]}" -o /dev/null -w '%{http_code}' "$@"; }

# header <name> <file>: value of a header in a curl -D dump
header() { grep -i "^$1:" "$2" | tail -1 | cut -d' ' -f2- | tr -d '\r'; }

# 61000-64999: above the kernel's ephemeral range and the harness's ports,
# so that other test runs' clusters do not take them between restarts
rand_port() { echo $((61000 + (RANDOM * 7 + $$) % 4000)); }

# write_conf <file> <port> <data_dir> [extra yaml lines...]
write_conf() {
    local f=$1 port=$2 dir=$3
    shift 3
    {
        echo "node_id: 7"
        echo "listen: 127.0.0.1:$port"
        echo "data_dir: $dir"
        echo "log_level: debug"
        echo "cluster_secret_file: $T/secret"
        for l in "$@"; do echo "$l"; done
    } >"$f"
}

# start_node <conf> <log>: start, wait for /health; sets NODE_PID
start_node() {
    local i port
    port=$(sed -n 's/^listen: 127.0.0.1://p' "$1")
    "$BIN" -c "$1" 2>>"$2" &
    NODE_PID=$!
    PIDS+=("$NODE_PID")
    for i in $(seq 1 50); do
        if [ "$(status "http://127.0.0.1:$port/health")" = 200 ]; then
            return 0
        fi
        kill -0 "$NODE_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# start_fresh <name> <data_dir> [yaml lines...]: config on a free port,
# start; sets NODE_PID and NODE_URL; returns non-zero if it never came up
start_fresh() {
    local name=$1 dir=$2 try port
    shift 2
    for try in 1 2 3 4 5; do
        port=$(rand_port)
        write_conf "$T/$name.yaml" "$port" "$dir" "$@"
        if start_node "$T/$name.yaml" "$T/$name.log"; then
            NODE_URL=http://127.0.0.1:$port
            return 0
        fi
        kill "$NODE_PID" 2>/dev/null
        wait "$NODE_PID" 2>/dev/null
        forget "$NODE_PID"
    done
    return 1
}

# stop_node <pid>: SIGTERM, wait at most 10 s; sets STOP_RC
stop_node() {
    local i
    kill -TERM "$1" 2>/dev/null
    for i in $(seq 1 100); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    STOP_RC=$?
    forget "$1"
}

# forget <pid>: drop a reaped pid so cleanup never signals a reused one
forget() {
    local p keep=()
    for p in "${PIDS[@]}"; do
        [ "$p" = "$1" ] || keep+=("$p")
    done
    PIDS=("${keep[@]}")
}

flip() {    # flip <file> <offset>: overwrite one byte with 0xff (or 0x00)
    local cur
    cur=$(od -An -tx1 -j "$2" -N1 "$1" | tr -d ' ')
    if [ "$cur" = ff ]; then
        printf '\x00' | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
    else
        printf '\xff' | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
    fi
}

path_of() { echo "$1/objects/${2:0:2}/${2:2:2}/$2"; }

if [ ! -x "$BIN" ]; then
    echo "1..0 # skip $BIN not built (make datanode)"
    exit 0
fi
(umask 077; echo "$SECRET" >"$T/secret")

# ---------------------------------------------------------------- config
D=$T/d1
PORT=$(rand_port)
write_conf "$T/good.yaml" "$PORT" "$D" "pid_file: $T/d1.pid"
"$BIN" -t -c "$T/good.yaml" 2>"$T/t.out"
is "$?" 0 "-t accepts a good config"

write_conf "$T/bad1.yaml" "$PORT" "$D" "block_size: 5000"
"$BIN" -t -c "$T/bad1.yaml" 2>"$T/t.out"
rc=$?
ok "$([ $rc = 1 ] && grep -q 'block_size.*5000' "$T/t.out" && echo 1)" \
   "-t rejects block_size 5000, naming key and value"

write_conf "$T/bad2.yaml" "$PORT" "$D" "colour: blue"
"$BIN" -t -c "$T/bad2.yaml" 2>"$T/t.out"
rc=$?
ok "$([ $rc = 1 ] && grep -q 'unknown key "colour"' "$T/t.out" && echo 1)" \
   "-t rejects an unknown key"

printf 'node_id: 7\nlisten: 127.0.0.1:%s\ndata_dir: %s\n' "$PORT" "$D" >"$T/bad4.yaml"
"$BIN" -t -c "$T/bad4.yaml" 2>"$T/t.out"
rc=$?
ok "$([ $rc = 1 ] && grep -q 'cluster_secret_file' "$T/t.out" && echo 1)" \
   "-t rejects a config without cluster_secret_file"

write_conf "$T/bad5.yaml" "$PORT" "$D"
echo short >"$T/short.secret"
sed -i "s|^cluster_secret_file: .*|cluster_secret_file: $T/short.secret|" "$T/bad5.yaml"
"$BIN" -t -c "$T/bad5.yaml" 2>"$T/t.out"
rc=$?
ok "$([ $rc = 1 ] && grep -q 'shorter than 16 bytes' "$T/t.out" && echo 1)" \
   "-t rejects a secret shorter than 16 bytes"

printf 'listen: 127.0.0.1:%s\ndata_dir: %s\n' "$PORT" "$D" >"$T/bad3.yaml"
"$BIN" -t -c "$T/bad3.yaml" 2>"$T/t.out"
rc=$?
ok "$([ $rc = 1 ] && grep -q 'node_id' "$T/t.out" && echo 1)" \
   "-t rejects a config without node_id"

# ---------------------------------------------------------------- start
if ! start_fresh d1 "$D" "pid_file: $T/d1.pid"; then
    ok 0 "data node starts"
    sed 's/^/# /' "$T/d1.log"
    echo "1..$N"
    exit 1
fi
P1=$NODE_PID
U=$NODE_URL
PORT=${U##*:}
ok 1 "data node starts on 127.0.0.1:$PORT"
ok "$([ "$(cat "$T/d1.pid")" = "$P1" ] && echo 1)" "pid file written"
is "$(find "$D/objects" -mindepth 1 -maxdepth 1 -type d -name '[0-9a-f][0-9a-f]' | wc -l)" 256 \
   "a new store starts with objects/00 .. objects/ff"

# ---------------------------------------------------------------- health
"${CURL[@]}" -D "$T/h" -o "$T/b" "$U/health"
is "$(header Content-Type "$T/h")" application/x-protobuf "health: protobuf by default"
J=$("${CURL[@]}" -H 'Accept: application/json' "$U/health")
ok "$(echo "$J" | grep -q '"node_id":7,"status":"ok"' && echo 1)" "health: JSON with Accept"

# ---------------------------------------------------------------- put/get
A=aaaa0000000000000000000000000001
B=bbbb0000000000000000000000000002
head -c 3145728 /dev/urandom >"$T/a"
cp "$T/a" "$T/b3"
"${CURL[@]}" -D "$T/h" -o "$T/put.out" -X PUT --data-binary @"$T/a" \
    -H 'X-Request-Id: smoke-put-a' "$U/blobs/$A"
is "$(grep -c '^HTTP/1.1 201 ' "$T/h")" 1 "PUT 3 MiB -> 201"
is "$(header X-Plinth-Size "$T/h")" 3145728 "PUT: X-Plinth-Size"
ok "$(header X-Plinth-Xxh3 "$T/h" | grep -qE '^[0-9a-f]{16}$' && echo 1)" "PUT: X-Plinth-Xxh3 is 16 hex"
XX=$(header X-Plinth-Xxh3 "$T/h")
ok "$([ -f "$(path_of "$D" "$A")" ] && echo 1)" "PUT: file at objects/aa/aa/<id>"
is "$(ls -A "$D/tmp" | wc -l)" 0 "PUT: tmp/ is empty afterwards"
is "$(status -X PUT --data-binary @"$T/a" "$U/blobs/$A")" 201 "PUT same bytes again -> 201 (idempotent)"
flip "$T/b3" 5
"${CURL[@]}" -D "$T/h" -o /dev/null -X PUT --data-binary @"$T/b3" "$U/blobs/$A"
is "$(header X-Plinth-Error "$T/h")" exists "PUT other bytes, same size -> 409 exists"
is "$(status -X PUT --data-binary 'short' "$U/blobs/$A")" 409 "PUT other size -> 409"
is "$(ls -A "$D/tmp" | wc -l)" 0 "refused puts leave nothing in tmp/"

is "$("${CURL[@]}" -o "$T/got" -w '%{http_code}' "$U/blobs/$A")" 200 "GET -> 200"
ok "$(cmp -s "$T/got" "$T/a" && echo 1)" "GET returns the stored bytes"
"${CURL[@]}" -I -o "$T/h" "$U/blobs/$A" -D "$T/h"
is "$(header Content-Length "$T/h")" 3145728 "HEAD: Content-Length"
is "$(header X-Plinth-Xxh3 "$T/h")/$(header Accept-Ranges "$T/h")" "$XX/bytes" "HEAD: X-Plinth-Xxh3 and Accept-Ranges"

# ---------------------------------------------------------------- ranges
"${CURL[@]}" -D "$T/h" -o "$T/r" -H 'Range: bytes=1048570-1048589' "$U/blobs/$A"
is "$(header Content-Range "$T/h")" "bytes 1048570-1048589/3145728" "Range a-b -> Content-Range"
ok "$(dd if="$T/a" bs=1 skip=1048570 count=20 status=none | cmp -s - "$T/r" && echo 1)" \
   "Range a-b across a block edge: right bytes"
# a range inside one block is sent straight from the verified block (iovec)
"${CURL[@]}" -D "$T/h" -o "$T/r" -H 'Range: bytes=1048600-1114135' "$U/blobs/$A"
ok "$(grep -q ' 206 ' "$T/h" && dd if="$T/a" bs=4096 skip=1048600 count=65536 \
      iflag=skip_bytes,count_bytes status=none | cmp -s - "$T/r" && echo 1)" \
   "Range inside block 1 (64 KiB from byte 1048600): right bytes"
"${CURL[@]}" -D "$T/h" -o "$T/r" -H 'Range: bytes=1048576-2097151' "$U/blobs/$A"
ok "$(grep -q ' 206 ' "$T/h" && dd if="$T/a" bs=1048576 skip=1 count=1 status=none \
      | cmp -s - "$T/r" && echo 1)" "Range of exactly block 1: right bytes"
"${CURL[@]}" -D "$T/h" -o "$T/r" -H 'Range: bytes=-10' "$U/blobs/$A"
ok "$(grep -q ' 206 ' "$T/h" && tail -c 10 "$T/a" | cmp -s - "$T/r" && echo 1)" "Range -n: last n bytes"
"${CURL[@]}" -D "$T/h" -o "$T/r" -H 'Range: bytes=3145720-' "$U/blobs/$A"
is "$(header Content-Length "$T/h")" 8 "Range a-: to the end"
"${CURL[@]}" -D "$T/h" -o /dev/null -H 'Range: bytes=3145728-' "$U/blobs/$A"
is "$(grep -c ' 416 ' "$T/h")/$(header Content-Range "$T/h")" "1/bytes */3145728" \
   "unsatisfiable Range -> 416 with bytes */size"

# ---------------------------------------------------------------- info/verify
"${CURL[@]}" -D "$T/h" -o "$T/info" "$U/blobs/$A/info"
ok "$(grep -q ' 200 ' "$T/h" && grep -q "$A" "$T/info" && echo 1)" "info -> 200 BlobInfo"
is "$(status "$U/blobs/$A/verify")" 200 "verify good blob -> 200"

# ---------------------------------------------------------------- errors
"${CURL[@]}" -D "$T/h" -o /dev/null "$U/blobs/AAAA0000000000000000000000000001"
is "$(grep -c ' 400 ' "$T/h")/$(header X-Plinth-Error "$T/h")" 1/bad_id "upper-case id -> 400 bad_id"
is "$(status "$U/blobs/abc")" 400 "short id -> 400"
is "$(status "$U/blobs/$A/other")" 404 "unknown sub-path -> 404"
"${CURL[@]}" -D "$T/h" -o /dev/null "$U/nope"
is "$(grep -c ' 404 ' "$T/h")/$(header X-Plinth-Error "$T/h")" 1/not_found "unknown path -> 404 not_found"
is "$(status -X POST "$U/blobs/$A")" 405 "POST blob -> 405"
is "$(status "$U/blobs/cccc0000000000000000000000000003")" 404 "GET unknown blob -> 404"
is "$(status -X DELETE "$U/blobs/cccc0000000000000000000000000003")" 404 "DELETE unknown blob -> 404"
is "$(status "$U/blobs/cccc0000000000000000000000000003/info")" 404 "info unknown blob -> 404"

# ---------------------------------------------------------------- empty, chunked
E=eeee0000000000000000000000000005
is "$(status -X PUT --data-binary '' "$U/blobs/$E")" 201 "PUT empty blob -> 201"
is "$("${CURL[@]}" -o "$T/r" -w '%{http_code}/%{size_download}' "$U/blobs/$E")" 200/0 "GET empty blob -> 200, 0 bytes"
is "$(status -H 'Range: bytes=0-' "$U/blobs/$E")" 416 "Range on empty blob -> 416"
C=cccc0000000000000000000000000004
head -c 2500000 /dev/urandom >"$T/c"
is "$(status -X PUT -H 'Transfer-Encoding: chunked' --data-binary @"$T/c" "$U/blobs/$C")" 201 \
   "chunked PUT -> 201"
"${CURL[@]}" -o "$T/got" "$U/blobs/$C"
ok "$(cmp -s "$T/got" "$T/c" && echo 1)" "chunked PUT stored the right bytes"

# ---------------------------------------------------------------- list
head -c 5000 /dev/urandom >"$T/small"
head -c 1500000 /dev/urandom >"$T/m"
is "$(status -X PUT --data-binary @"$T/small" "$U/blobs/$B")" 201 "PUT small blob"
"${CURL[@]}" -o "$T/list" "$U/blobs"
is "$(grep -ao '[0-9a-f]\{32\}' "$T/list" | tr '\n' ' ')" "$A $B $C $E " "list: all ids ascending"
"${CURL[@]}" -o "$T/list" "$U/blobs?limit=2"
is "$(grep -ao '[0-9a-f]\{32\}' "$T/list" | tr '\n' ' ')" "$A $B " "list limit=2: first two"
"${CURL[@]}" -o "$T/list" "$U/blobs?after=$B&limit=1"
is "$(grep -ao '[0-9a-f]\{32\}' "$T/list" | tr '\n' ' ')" "$C " "list after=B limit=1: next one"
is "$(status "$U/blobs?limit=0")" 400 "list limit=0 -> 400"
is "$(status "$U/blobs?after=xyz")" 400 "list bad after -> 400"

# ---------------------------------------------------------------- multi-read
# POST /blobs/multi: many ranges in one request (batch GET's small
# entries), each checked against its block checksums before it is sent
MR=(perl t/multi-read.pl)
F=ffff0000000000000000000000000006
head -c 7000 /dev/urandom >"$T/f"
is "$(status -X PUT --data-binary @"$T/f" "$U/blobs/$F")" 201 "PUT a blob to rot"
flip "$(path_of "$D" "$F")" 100
md5() { md5sum | cut -d' ' -f1; }
"${MR[@]}" encode "$B:0:5000" "$F:0:7000" "dddd0000000000000000000000000009:0:10" \
    "$A:1048570:20" "$B:4990:20" "$C:0:2500000" >"$T/mr.in"
"${CURL[@]}" -D "$T/h" -o "$T/mr.out" -X POST --data-binary @"$T/mr.in" "$U/blobs/multi"
is "$(grep -c '^HTTP/1.1 200 ' "$T/h")/$(header Content-Type "$T/h")" 1/application/x-plinth-multi \
   "multi-read -> 200 application/x-plinth-multi"
"${MR[@]}" decode <"$T/mr.out" >"$T/mr.txt"
is "$(wc -l <"$T/mr.txt")" 6 "multi-read: one frame per item"
is "$(sed -n 1p "$T/mr.txt")" "0 ok 5000 5000 $(md5 <"$T/small")" "multi-read: a whole blob, right bytes"
is "$(sed -n 2p "$T/mr.txt" | cut -d' ' -f1-3)" "1 corrupt 0" "multi-read: a rotten blob -> corrupt, no data"
is "$(sed -n 3p "$T/mr.txt" | cut -d' ' -f1-3)" "2 not_found 0" "multi-read: a missing blob -> not_found"
is "$(sed -n 4p "$T/mr.txt")" "3 ok 20 3145728 $(dd if="$T/a" bs=1 skip=1048570 count=20 status=none | md5)" \
   "multi-read: a range across a block edge, right bytes"
is "$(sed -n 5p "$T/mr.txt" | cut -d' ' -f1-4)" "4 bad_range 0 5000" "multi-read: a range past the end -> bad_range"
is "$(sed -n 6p "$T/mr.txt")" "5 ok 2500000 2500000 $(md5 <"$T/c")" "multi-read: items after failures still served"
# a range that holds one block whole and parts of the blocks either side
# (the whole block is read straight into the answer, the parts through a
# block buffer), and a corrupt blob after it: its frame replaces the bytes
# (and a range within the first 64 KiB of that 3 MiB blob: the node's
# one-pread read of a small blob finds the file longer and reads it as
# any other)
# (then ranges from a blob's first byte, which the node reads straight
# into the answer: a prefix of a small blob, whose larger size moves the
# data in the frame, a prefix of the large blob, too long for one pread,
# and a whole small blob right after their frames)
"${MR[@]}" encode "$A:1048000:1100000" "$F:0:7000" "$B:0:5000" "$A:100:1000" \
    "$B:0:100" "$A:0:1000" "$B:0:5000" >"$T/mr.mix"
"${CURL[@]}" -o "$T/mr.mixout" -X POST --data-binary @"$T/mr.mix" "$U/blobs/multi"
"${MR[@]}" decode <"$T/mr.mixout" >"$T/mr.mixtxt"
is "$(sed -n 1p "$T/mr.mixtxt")" "0 ok 1100000 3145728 $(dd if="$T/a" bs=1000 skip=1048 count=1100 status=none | md5)" \
   "multi-read: a range over a whole block and two parts, right bytes"
is "$(sed -n 2p "$T/mr.mixtxt" | cut -d' ' -f1-3)" "1 corrupt 0" "multi-read: ... a rotten blob after it -> corrupt, no data"
is "$(sed -n 3p "$T/mr.mixtxt")" "2 ok 5000 5000 $(md5 <"$T/small")" "multi-read: ... and the next item right after its frame"
is "$(sed -n 4p "$T/mr.mixtxt")" "3 ok 1000 3145728 $(dd if="$T/a" bs=100 skip=1 count=10 status=none | md5)" \
   "multi-read: a range near the start of a large blob, right bytes"
is "$(sed -n 5p "$T/mr.mixtxt")" "4 ok 100 5000 $(head -c 100 "$T/small" | md5)" \
   "multi-read: a small blob's first 100 bytes, right bytes"
is "$(sed -n 6p "$T/mr.mixtxt")" "5 ok 1000 3145728 $(head -c 1000 "$T/a" | md5)" \
   "multi-read: a large blob's first 1000 bytes, right bytes"
is "$(sed -n 7p "$T/mr.mixtxt")" "6 ok 5000 5000 $(md5 <"$T/small")" \
   "multi-read: ... and a whole small blob after them"
is "$(wc -l <"$T/mr.mixtxt")" 7 "multi-read: seven frames, nothing behind them"
printf 'not a protobuf \377\377\377' >"$T/mr.bad"
"${CURL[@]}" -D "$T/h" -o /dev/null -X POST --data-binary @"$T/mr.bad" "$U/blobs/multi"
is "$(grep -c ' 400 ' "$T/h")/$(header X-Plinth-Error "$T/h")" 1/bad_request "multi-read: malformed body -> 400 bad_request"
is "$(status -X POST --data-binary '' "$U/blobs/multi")" 400 "multi-read: no items -> 400"
"${MR[@]}" encode $(for i in $(seq 1 1025); do echo "$B:0:1"; done) >"$T/mr.many"
is "$(status -X POST --data-binary @"$T/mr.many" "$U/blobs/multi")" 400 "multi-read: 1025 items -> 400"
"${MR[@]}" encode "$B:0:0" >"$T/mr.zero"
is "$(status -X POST --data-binary @"$T/mr.zero" "$U/blobs/multi")" 400 "multi-read: an empty range -> 400"
"${MR[@]}" encode "XYZ:0:1" >"$T/mr.id"
"${CURL[@]}" -D "$T/h" -o /dev/null -X POST --data-binary @"$T/mr.id" "$U/blobs/multi"
is "$(header X-Plinth-Error "$T/h")" bad_id "multi-read: a bad id -> 400 bad_id"
"${MR[@]}" encode "$A:0:3145728" "$C:0:2500000" "$A:0:3145728" "$C:0:2500000" "$A:0:3145728" \
    "$C:0:2500000" "$A:0:3145728" >"$T/mr.big"
is "$(status -X POST --data-binary @"$T/mr.big" "$U/blobs/multi")" 400 "multi-read: over 16 MiB in all -> 400"
is "$(status "$U/blobs/multi")" 405 "multi-read: GET -> 405"
is "$("${RAWCURL[@]}" -o /dev/null -w '%{http_code}' -X POST --data-binary @"$T/mr.in" "$U/blobs/multi")" 403 \
   "multi-read: unsigned -> 403"
is "$(status -X DELETE "$U/blobs/$F")" 204 "rotten blob deleted"

# ---------------------------------------------------------------- keep-alive
"${CURL[@]}" -v -o /dev/null -o /dev/null "$U/health" "$U/blobs/$B/info" 2>"$T/kv"
ok "$(grep -q 'Re-using existing connection' "$T/kv" && echo 1)" "keep-alive: second request reuses the connection"

# ---------------------------------------------------------------- closed internal hop
# rstatus <method> <path> [header lines...]: status of a request with
# exactly the headers given (nothing signed unless given)
rstatus() {
    local m=$1 path=$2 h
    local -a hs=()
    shift 2
    for h in "$@"; do hs+=(-H "$h"); done
    "${RAWCURL[@]}" -o "$T/403" -D "$T/403h" -w '%{http_code}' -X "$m" "${hs[@]}" "$U$path"
}
# signed <method> <target> [secret] [date]: hop header lines as arguments
signed() { local -a out=(); while IFS= read -r l; do out+=("$l"); done < <(hop_headers "$@"); printf '%s\n' "${out[@]}"; }
mapfile -t GOOD < <(signed GET "/blobs/$B")
is "$(rstatus GET "/blobs/$B" "${GOOD[@]}")" 200 "hop: signed GET -> 200"
is "$("${RAWCURL[@]}" -o /dev/null -w '%{http_code}' "$U/health")" 200 "hop: /health stays open (liveness, names no blob)"
is "$(rstatus GET "/blobs/$B")" 403 "hop: unsigned GET -> 403"
is "$(header X-Plinth-Error "$T/403h")" forbidden "hop: ... X-Plinth-Error: forbidden"
ok "$(grep -aq 'serves only the cluster' "$T/403" && echo 1)" "hop: ... the body says why"
is "$(rstatus HEAD "/blobs/$B")" 403 "hop: unsigned HEAD -> 403"
is "$(rstatus GET "/blobs/$B/info")" 403 "hop: unsigned info -> 403"
is "$(rstatus GET "/blobs")" 403 "hop: unsigned listing -> 403"
is "$(rstatus GET "/scrub")" 403 "hop: unsigned scrub -> 403"
is "$(rstatus GET "/nope")" 403 "hop: unsigned unknown path -> 403 (nothing learnt)"
is "$(rstatus POST "/blobs/$B/pull?from=127.0.0.1:1")" 403 "hop: unsigned pull -> 403"
HB=eeee0000000000000000000000000009
is "$("${RAWCURL[@]}" -o /dev/null -w '%{http_code}' -X PUT --data-binary @"$T/small" "$U/blobs/$HB")" 403 "hop: unsigned PUT -> 403"
is "$(status "$U/blobs/$HB")" 404 "hop: ... nothing stored"
is "$(rstatus DELETE "/blobs/$B")" 403 "hop: unsigned DELETE -> 403"
is "$(status "$U/blobs/$B")" 200 "hop: ... the blob is still there"
mapfile -t H < <(signed GET "/blobs/$B" wrong-secret-wrong-secret-0123456789)
is "$(rstatus GET "/blobs/$B" "${H[@]}")" 403 "hop: signed with another secret -> 403"
ok "$(grep -aq 'does not match' "$T/403" && echo 1)" "hop: ... 'does not match'"
mapfile -t H < <(signed GET "/blobs/$B" "$SECRET" $(( $(date +%s) - 400 )))
is "$(rstatus GET "/blobs/$B" "${H[@]}")" 403 "hop: date 400 s old -> 403"
ok "$(grep -aq '300 s' "$T/403" && echo 1)" "hop: ... the date window named"
mapfile -t H < <(signed GET "/blobs/$B" "$SECRET" $(( $(date +%s) + 400 )))
is "$(rstatus GET "/blobs/$B" "${H[@]}")" 403 "hop: date 400 s ahead -> 403"
mapfile -t H < <(signed GET "/blobs/$B" "$SECRET" $(( $(date +%s) - 200 )))
is "$(rstatus GET "/blobs/$B" "${H[@]}")" 200 "hop: date 200 s old (in the window) -> 200"
mapfile -t H < <(signed GET "/blobs/$B")
is "$(rstatus DELETE "/blobs/$B" "${H[@]}")" 403 "hop: a GET's signature on a DELETE -> 403"
mapfile -t H < <(signed GET "/blobs/$A")
is "$(rstatus GET "/blobs/$B" "${H[@]}")" 403 "hop: another blob's signature -> 403"
mapfile -t H < <(signed GET "/blobs?limit=1")
is "$(rstatus GET "/blobs?limit=2" "${H[@]}")" 403 "hop: the query is signed too -> 403"
mapfile -t H < <(signed GET "/blobs/$B")
is "$(rstatus GET "/blobs/$B" "${H[0]}" "${H[1]}" "X-Plinth-Signature: ${SECRET:0:64}")" 403 "hop: a made-up signature -> 403"
is "$(rstatus GET "/blobs/$B" "${H[1]}" "${H[2]}")" 403 "hop: the request id left out -> 403"
is "$(status "$U/blobs/$B")" 200 "hop: ... and B is still served signed"

# ---------------------------------------------------------------- disconnect mid-body
K=dddd0000000000000000000000000006
(
    exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
    printf 'PUT /blobs/%s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n' "$K" >&3
    hop_headers PUT "/blobs/$K" | sed 's/$/\r/' >&3
    printf '\r\n' >&3
    head -c 300000 /dev/urandom >&3
    sleep 0.3
    exec 3>&-
)
for i in $(seq 1 30); do
    [ "$(ls -A "$D/tmp" | wc -l)" = 0 ] && break
    sleep 0.1
done
is "$(ls -A "$D/tmp" | wc -l)" 0 "client gone mid-body: temp file removed"
is "$(status "$U/blobs/$K")" 404 "client gone mid-body: no blob"

# ---------------------------------------------------------------- O_DIRECT
# A body over 512 KiB is written in 512 KiB units with O_DIRECT (no copy
# into the page cache), its last partial unit and footer without: seen
# mid-body in the temp file's flags (/proc/PID/fdinfo, octal; O_DIRECT's
# value differs between architectures, so it comes from Perl's Fcntl),
# then the blob must read back whole.
K=dddd0000000000000000000000000009
head -c 1200000 /dev/urandom >"$T/od"
ODIRECT=$(perl -MFcntl -e 'print O_DIRECT' 2>/dev/null)
FSTYPE=$(stat -f -c %T "$D")
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'PUT /blobs/%s HTTP/1.1\r\nHost: x\r\nContent-Length: 1200000\r\n' "$K" >&3
hop_headers PUT "/blobs/$K" | sed 's/$/\r/' >&3
printf '\r\n' >&3
head -c 600000 "$T/od" >&3
FLAGS=""
for i in $(seq 1 30); do
    for fd in /proc/$P1/fd/*; do
        case "$(readlink "$fd")" in
            "$D/tmp/$K".*) FLAGS=$(awk '/^flags:/ { print $2 }' "/proc/$P1/fdinfo/${fd##*/}") ;;
        esac
    done
    [ -n "$FLAGS" ] && break
    sleep 0.1
done
if [ -n "$ODIRECT" ] && { [ "$FSTYPE" = ext2/ext3 ] || [ "$FSTYPE" = xfs ]; }; then
    ok "$([ -n "$FLAGS" ] && [ $(( 8#$FLAGS & ODIRECT )) != 0 ] && echo 1)" \
       "a body over 512 KiB: its temp file is written with O_DIRECT (flags $FLAGS)"
else
    skip "O_DIRECT flag check: filesystem $FSTYPE"
fi
tail -c +600001 "$T/od" >&3
RESP=$(head -n 1 <&3 | tr -d '\r')
exec 3>&-
is "$RESP" "HTTP/1.1 201 Created" "... the put is answered 201"
scurl -o "$T/od.back" "$U/blobs/$K"
is "$(cmp "$T/od" "$T/od.back" && echo same)" same "... and reads back byte for byte (O_DIRECT units, buffered tail and footer)"
head -c 1048576 /dev/urandom >"$T/od2"
is "$(status -X PUT --data-binary @"$T/od2" "$U/blobs/dddd000000000000000000000000000a")" 201 \
   "a body of exactly two units (no partial tail) -> 201"
scurl -o "$T/od2.back" "$U/blobs/dddd000000000000000000000000000a"
is "$(cmp "$T/od2" "$T/od2.back" && echo same)" same "... and reads back byte for byte"
is "$(status -X DELETE "$U/blobs/$K")/$(status -X DELETE "$U/blobs/dddd000000000000000000000000000a")" \
   204/204 "both deleted again (the counts below stay as they were)"

# ---------------------------------------------------------------- bit rot
F=ffff0000000000000000000000000007
head -c 3145728 /dev/urandom >"$T/f"
status -X PUT --data-binary @"$T/f" "$U/blobs/$F" >/dev/null
flip "$(path_of "$D" "$A")" 10
"${CURL[@]}" -D "$T/h" -o "$T/r" "$U/blobs/$A"
is "$(grep -c ' 500 ' "$T/h")/$(header X-Plinth-Error "$T/h")" 1/corrupt "rot in block 0: GET -> 500 corrupt"
ok "$(! cmp -s <(head -c 100 "$T/r") <(head -c 100 "$T/a") && echo 1)" "rot in block 0: no data sent"
is "$(status "$U/blobs/$A/verify")" 500 "rot in block 0: verify -> 500"
is "$(status -H 'Range: bytes=2097152-2097160' "$U/blobs/$A")" 206 "rot in block 0: range in block 2 still served"

flip "$(path_of "$D" "$F")" 2621440
"${CURL[@]}" -o "$T/r" "$U/blobs/$F"
rc=$?
is "$rc" 18 "rot in block 2 of 3 MiB: connection cut (curl 18)"
sz=$(stat -c %s "$T/r")
ok "$([ "$sz" -le 2097152 ] && echo 1)" "rot in block 2: at most blocks 0-1 were sent ($sz bytes)"
ok "$(cmp -s "$T/r" <(head -c "$sz" "$T/f") && echo 1)" "rot in block 2: what was sent is right"
is "$(status -H 'Range: bytes=2621000-' "$U/blobs/$F")" 500 "rot in block 2: range starting there -> 500"
ok "$(grep '"level":"error"' "$T/d1.log" | grep "$F" | grep -q 'block 2' && echo 1)" \
   "rot logged at error with blob id and block index"
is "$(status -I "$U/blobs/$F")" 200 "rot in data: HEAD still 200 (trailer only)"

flip "$(path_of "$D" "$B")" $(( $(stat -c %s "$(path_of "$D" "$B")") - 1 ))
is "$(status "$U/blobs/$B")" 500 "garbled trailer: GET -> 500"
is "$(status "$U/blobs/$B/info")" 500 "garbled trailer: info -> 500"
is "$(status -I "$U/blobs/$B")" 500 "garbled trailer: HEAD -> 500"
J=$("${CURL[@]}" -H 'Accept: application/json' "$U/health")
ok "$(echo "$J" | grep -q '"corrupt_total":[1-9]' && echo 1)" "corruption counted in health"

# ---------------------------------------------------------------- delete
is "$(status -X DELETE "$U/blobs/$C")" 204 "DELETE -> 204"
is "$(status "$U/blobs/$C")" 404 "GET after DELETE -> 404"
ok "$([ ! -e "$(path_of "$D" "$C")" ] && echo 1)" "DELETE removed the file"
J=$("${CURL[@]}" -H 'Accept: application/json' "$U/health")
ok "$(echo "$J" | grep -q '"blob_count":4,' && echo 1)" "health counts 4 blobs after puts and delete"

# reads open a blob relative to its directory, which stays open
ok "$([ "$(find "/proc/$P1/fd" -mindepth 1 -lname "$D/objects/??/??" | wc -l)" -ge 3 ] && echo 1)" \
   "the blobs read keep their objects/ab/cd directories open"

# ---------------------------------------------------------------- restart
stop_node "$P1"
is "$STOP_RC" 0 "SIGTERM -> exit 0"
ok "$([ ! -e "$T/d1.pid" ] && echo 1)" "pid file removed at exit"
echo junk >"$D/tmp/$A.leftover"
EMPTY=$(find "$D/objects" -mindepth 1 -maxdepth 1 -type d -empty | sort | head -n 1)
ok "$([ -n "$EMPTY" ] && rmdir "$EMPTY" && echo 1)" "an empty top directory removed while stopped"
if start_node "$T/d1.yaml" "$T/d1.log"; then ok 1 "restarted"; else ok 0 "restarted"; fi
P1=$NODE_PID
ok "$([ -n "$EMPTY" ] && [ -d "$EMPTY" ] && echo 1)" "start-up makes a missing top directory again"
is "$(ls -A "$D/tmp" | wc -l)" 0 "start-up removes leftovers in tmp/"
J=$("${CURL[@]}" -H 'Accept: application/json' "$U/health")
ok "$(echo "$J" | grep -q '"blob_count":4,' && echo 1)" "start-up scan counts the blobs"
stop_node "$P1"
is "$STOP_RC" 0 "stopped again"
bad=$(grep -cv '^{"ts":"[0-9T:.-]*Z","level":"[a-z]*","node":7,"msg":' "$T/d1.log")
is "$bad" 0 "every log line is a JSON object with ts, level, node, msg"

# ---------------------------------------------------------------- blob dirs
# reads open a blob relative to its objects/ab/cd directory, kept open: at
# most a quarter of the descriptors the node may have; past that, by path
printf '#!/bin/sh\nulimit -n 64\nexec "%s" "$@"\n' "$(readlink -f "$BIN")" >"$T/lowfd.sh"
chmod +x "$T/lowfd.sh"
REALBIN=$BIN
BIN=$T/lowfd.sh
if start_fresh d5 "$T/d5"; then
    P5=$NODE_PID
    U5=$NODE_URL
    ids=()
    for i in $(seq 1 40); do
        id=$(printf '%04x%028d' $((i * 1531)) 0)
        printf 'blob %s %0100d' "$id" "$i" >"$T/b5"
        status -X PUT --data-binary @"$T/b5" "$U5/blobs/$id" >/dev/null
        ids+=("$id")
    done
    good=0
    for i in $(seq 1 40); do
        id=${ids[$((i - 1))]}
        [ "$("${CURL[@]}" "$U5/blobs/$id")" = "$(printf 'blob %s %0100d' "$id" "$i")" ] && good=$((good + 1))
    done
    is "$good" 40 "64 descriptors: 40 blobs in 40 directories each read back right"
    is "$(find "/proc/$P5/fd" -mindepth 1 -lname "$T/d5/objects/??/??" | wc -l)" 16 \
       "... through 16 directories kept open (a quarter of 64), the rest by path"
    "${MR[@]}" encode $(for id in "${ids[@]}"; do echo "$id:0:10"; done) >"$T/mr5.in"
    "${CURL[@]}" -o "$T/mr5.out" -X POST --data-binary @"$T/mr5.in" "$U5/blobs/multi"
    is "$("${MR[@]}" decode <"$T/mr5.out" | grep -c ' ok 10 ')" 40 "... and a multi-read of all 40 serves each"
    stop_node "$P5"
    is "$STOP_RC" 0 "low-descriptor node stopped"
else
    ok 0 "low-descriptor node started"; ok 0 "-"; ok 0 "-"; ok 0 "-"
fi
BIN=$REALBIN

# ---------------------------------------------------------------- full disk
if mkdir -p "$T/small-fs" && mount -t tmpfs -o size=2m tmpfs "$T/small-fs" 2>/dev/null; then
    MOUNTS+=("$T/small-fs")
    D2=$T/small-fs/d
    if start_fresh d2 "$D2"; then
        P2=$NODE_PID
        U2=$NODE_URL
        "${CURL[@]}" -D "$T/h" -o /dev/null -X PUT --data-binary @"$T/a" "$U2/blobs/$A"
        is "$(grep -c ' 507 ' "$T/h")/$(header X-Plinth-Error "$T/h")" 1/disk_full \
           "3 MiB into 2 MiB tmpfs -> 507 disk_full (Content-Length)"
        is "$(status -X PUT -H 'Transfer-Encoding: chunked' --data-binary @"$T/a" "$U2/blobs/$A")" 507 \
           "3 MiB chunked into 2 MiB tmpfs -> 507 (while writing)"
        status -X PUT --data-binary @"$T/m" "$U2/blobs/$B" >/dev/null
        is "$(status -X PUT -H 'Transfer-Encoding: chunked' --data-binary @"$T/m" "$U2/blobs/$C")" 507 \
           "second 1.5 MiB chunked -> 507 (ENOSPC or reservation)"
        is "$(find "$D2/tmp" -type f | wc -l)" 0 "full disk: nothing left in tmp/"
        ok "$([ ! -e "$(path_of "$D2" "$A")" ] && [ ! -e "$(path_of "$D2" "$C")" ] && echo 1)" \
           "full disk: no partial blob under its final name"
        is "$(status -X PUT --data-binary @"$T/small" "$U2/blobs/$E")" 201 "a small blob still fits"
        stop_node "$P2"
        is "$STOP_RC" 0 "tmpfs node stopped"
    else
        ok 0 "tmpfs node starts"
    fi
    umount "$T/small-fs" && MOUNTS=()
else
    skip "tmpfs mount not permitted (needs root)"
fi

# capacity_bytes: a hard cap independent of the filesystem
D3=$T/d3
if start_fresh d3 "$D3" "capacity_bytes: 2M" "block_size: 64K"; then
    P3=$NODE_PID
    U3=$NODE_URL
    is "$(status -X PUT --data-binary @"$T/a" "$U3/blobs/$A")" 507 "capacity 2M: 3 MiB put -> 507"
    is "$(status -X PUT --data-binary @"$T/m" "$U3/blobs/$B")" 201 "capacity 2M: 1.5 MB put -> 201"
    J=$("${CURL[@]}" -H 'Accept: application/json' "$U3/health")
    ok "$(echo "$J" | grep -q '"disk_total_bytes":2097152,' && echo 1)" "capacity reported as disk total"
    stop_node "$P3"
    is "$STOP_RC" 0 "capacity node stopped"
else
    ok 0 "capacity node starts"
fi

echo "1..$N"
if [ "$FAILED" != 0 ]; then
    echo "# $FAILED check(s) failed; last log lines:"
    tail -n 20 "$T"/*.log | sed 's/^/# /'
    exit 1
fi
exit 0
