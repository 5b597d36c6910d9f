#!/usr/bin/env bash
# datanode-crash.sh -- every acknowledged put survives kill -9 of the node.
#
# For group_commit false and true: start one data node on 127.0.0.1 under
# a private mktemp dir, run build/plinth-dnput (8 threads, 4 KiB blobs,
# every 201 appended to a file) against it, kill -9 the node mid-load,
# restart it on the same data_dir and GET every acknowledged blob back,
# byte for byte (plinth-dnput --verify). Then a second load on the
# restarted node, a clean stop, and the same check. Prints TAP; exits
# non-zero if a check fails. Every process started is stopped by pid, the
# temp dir removed; every wait is bounded.
#
#   usage: bash t/datanode-crash.sh      (from the repository root)

set -u

BIN=${PLINTH_DATANODE:-${PLINTH_BUILD:-build}/plinth-datanode}
PUT=${PLINTH_DNPUT:-${PLINTH_BUILD:-build}/plinth-dnput}
T=$(mktemp -d /tmp/plinth-dn-crash.XXXXXX)
NODE_PID=
LOAD_PID=
N=0
FAILED=0

cleanup() {
    [ -n "$LOAD_PID" ] && kill "$LOAD_PID" 2>/dev/null && wait "$LOAD_PID" 2>/dev/null
    [ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

ok() {      # ok <0|1> <description>
    N=$((N + 1))
    if [ "$1" = 1 ]; then
        echo "ok $N - $2"
    else
        echo "not ok $N - $2"
        FAILED=1
    fi
}

if [ ! -x "$BIN" ] || [ ! -x "$PUT" ]; then
    echo "1..0 # skip $BIN or $PUT not built (make datanode bench-tools)"
    exit 0
fi

(umask 077; od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$T/secret")
# a port nothing listens on, in 61000-64999: above the kernel's ephemeral
# range (32768-60999) and the harness's ports (20000-60000), so that no
# cluster of another test run takes it while this node is down between a
# kill -9 and its restart; bounded, 50 tries
for _ in $(seq 1 50); do
    PORT=$((61000 + (RANDOM * 7 + $$) % 4000))
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || break
done

# start_node <conf>: start, wait (at most 60 s: start-up opens every blob) for /health
start_node() {
    local i
    "$BIN" -c "$1" 2>>"$T/node.log" &
    NODE_PID=$!
    for i in $(seq 1 600); do
        if curl -s --noproxy '*' --max-time 2 -o /dev/null \
                -w '%{http_code}' "http://127.0.0.1:$PORT/health" \
                | grep -q 200; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

echo "1..10"
for gc in false true; do
    D=$T/d-$gc
    C=$T/$gc.yaml
    A=$T/acked-$gc
    printf 'node_id: 1\nlisten: 127.0.0.1:%s\ndata_dir: %s\ncluster_secret_file: %s\nlog_level: warn\ngroup_commit: %s\n' \
        "$PORT" "$D" "$T/secret" "$gc" >"$C"
    : >"$A"

    start_node "$C"
    ok "$([ -n "$NODE_PID" ] && kill -0 "$NODE_PID" 2>/dev/null && echo 1)" \
       "group_commit $gc: node up"

    "$PUT" --url "http://127.0.0.1:$PORT" --secret-file "$T/secret" \
        --threads 8 --duration 8 --acked "$A" >"$T/load.out" 2>&1 &
    LOAD_PID=$!
    sleep 2.5
    kill -9 "$NODE_PID"
    wait "$NODE_PID" 2>/dev/null
    NODE_PID=
    wait "$LOAD_PID"
    LOAD_PID=
    n=$(wc -l <"$A")
    ok "$([ "$n" -gt 50 ] && echo 1)" \
       "group_commit $gc: $n puts acknowledged before kill -9"

    start_node "$C"
    "$PUT" --url "http://127.0.0.1:$PORT" --secret-file "$T/secret" \
        --verify "$A" >"$T/verify.out" 2>"$T/verify.err"
    rc=$?
    ok "$([ $rc = 0 ] && echo 1)" \
       "group_commit $gc: after kill -9 and restart every acknowledged blob is whole ($(cat "$T/verify.out"))"
    [ $rc = 0 ] || head -5 "$T/verify.err" | sed 's/^/# /'

    "$PUT" --url "http://127.0.0.1:$PORT" --secret-file "$T/secret" \
        --threads 8 --duration 2 --acked "$A" >"$T/load.out" 2>&1
    ok "$(grep -q '"errors":0' "$T/load.out" && echo 1)" \
       "group_commit $gc: a second load on the restarted node has no errors"
    kill "$NODE_PID"
    wait "$NODE_PID" 2>/dev/null
    NODE_PID=
    start_node "$C"
    "$PUT" --url "http://127.0.0.1:$PORT" --secret-file "$T/secret" \
        --verify "$A" >"$T/verify.out" 2>"$T/verify.err"
    ok "$([ $? = 0 ] && echo 1)" \
       "group_commit $gc: after a clean restart all $(wc -l <"$A") blobs are whole"
    kill "$NODE_PID"
    wait "$NODE_PID" 2>/dev/null
    NODE_PID=
done

exit $FAILED
