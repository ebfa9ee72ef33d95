#!/usr/bin/env bash
# Deterministic per-message costs of WebSocket echo: user-space instructions (callgrind) and
# system calls (strace -c -f) per echoed message, the WebSocket counterpart of bench/perreq.sh.
#
#   bench/ws_perreq.sh
#
# The echo server (bench/common.sh, mode "ws") is started under the tool, bench/ws_load echoes a
# fixed number of binary messages over 64 connections, one in flight each (-c 64 -m N), and the
# server is stopped cleanly; this for N1 and N2 messages, and the figure is the marginal
# (total(N2) - total(N1)) / (N2 - N1), so start-up, the handshakes and the closes cancel out.
# Loads: ws64 and ws4k (64-byte and 4 KiB messages). Besides the total, the strace figure is
# broken down per system call, where an extra call per message shows at once. The profiles stay
# in BENCH_OUT/callgrind/SERVER-LOAD-N.out and BENCH_OUT/strace/SERVER-LOAD-N.txt, for
# bench/cgdiff.py:
#
#   bench/cgdiff.py build/bench/results/callgrind/casgi-ws64-{5000,10000}.out
#
# Environment (defaults in brackets):
#   BENCH_N1 / BENCH_N2                 message counts [5000 / 10000]
#   BENCH_N1_UVICORN / BENCH_N2_UVICORN the same for uvicorn under callgrind [500 / 1000]:
#                                       CPython runs about 50x slower there
#   BENCH_WS_SERVERS      [casgi]; uvicorn also works (slowly under callgrind)
#   BENCH_WS_LOADS        [ws64 ws4k]        BENCH_TOOLS [callgrind strace]
#   BENCH_OUT             [build/bench/results]   BENCH_NO_BUILD: use the build as it is
# bench/compare.sh runs it after bench/perreq.sh, with the servers and loads it measured.
set -euo pipefail
# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh"
trap 'bench_log "failed at line $LINENO: $BASH_COMMAND"' ERR

BENCH_N1=${BENCH_N1:-5000}
BENCH_N2=${BENCH_N2:-10000}
BENCH_N1_UVICORN=${BENCH_N1_UVICORN:-500}
BENCH_N2_UVICORN=${BENCH_N2_UVICORN:-1000}
BENCH_WS_SERVERS=${BENCH_WS_SERVERS:-casgi}
BENCH_WS_LOADS=${BENCH_WS_LOADS:-ws64 ws4k}
BENCH_TOOLS=${BENCH_TOOLS:-callgrind strace}
BENCH_OUT=${BENCH_OUT:-$BENCH_BUILD/results}

bench_init
[ -n "${BENCH_NO_BUILD:-}" ] || bench_build_casgi ws
mkdir -p "$BENCH_OUT/callgrind" "$BENCH_OUT/strace"
CSV=$BENCH_OUT/ws_perreq.csv
printf 'server,load,tool,n1,n2,total1,total2,per_message,note\n' >"$CSV"

# measure SERVER LOAD TOOL N: as perreq.sh's, with N messages through bench/ws_load; sets
# MEASURE_TOTAL, or MEASURE_NOTE and returns 1. The tool's output is kept as
# BENCH_OUT/TOOL/SERVER-LOAD-N.*. Not to be run in a subshell: the server is our child.
measure() {
    local s=$1 load=$2 tool=$3 n=$4 dir wrapper=() out total keep size
    dir=$(mktemp -d "$BENCH_TMP/$s-$load-$tool-$n.XXXXXX")
    keep=$BENCH_OUT/$tool/$s-$load-$n
    MEASURE_NOTE=""
    MEASURE_TOTAL=""
    case $load in
    ws64) size=64 ;;
    ws4k) size=4096 ;;
    *) bench_die "unknown load $load" ;;
    esac
    case $tool in
    callgrind) wrapper=(valgrind --tool=callgrind --vgdb=no "--callgrind-out-file=$dir/cg.out") ;;
    strace) wrapper=(strace -f -c -o "$dir/strace.txt") ;;
    esac
    if ! BENCH_START_TIMEOUT=120 bench_start "$s" ws "${wrapper[@]}"; then
        MEASURE_NOTE="not started under $tool: $SRV_NOTE"
        return 1
    fi
    out=$dir/ws_load.out
    taskset -c "$BENCH_CLIENT_CPU" "$BENCH_BUILD/bench/ws_load" -c 64 -s "$size" -m "$n" \
        -u "ws://127.0.0.1:$SRV_PORT/" >"$out" 2>&1 || true
    if ! grep -q "^messages: $n echoed" "$out" || ! grep -q '^errors: 0$' "$out"; then
        MEASURE_NOTE="ws_load: $(grep -E '^(messages|errors|ws_load: conn)' "$out" | tr '\n' ' ')"
        bench_stop "$SRV_PID" "$SRV_STOP_SIG" 60 || true
        return 1
    fi
    if ! bench_stop "$SRV_PID" "$SRV_STOP_SIG" 60; then
        MEASURE_NOTE="did not exit on SIG$SRV_STOP_SIG, no totals"
        return 1
    fi
    case $tool in
    callgrind)
        total=$(awk '/^totals:/ {print $2}' "$dir/cg.out" 2>/dev/null)
        cp "$dir/cg.out" "$keep.out" 2>/dev/null || true
        ;;
    strace)
        total=$(awk '$NF == "total" {print $4}' "$dir/strace.txt" 2>/dev/null)
        cp "$dir/strace.txt" "$keep.txt" 2>/dev/null || true
        ;;
    esac
    if [ -z "$total" ]; then
        MEASURE_NOTE="$tool wrote no totals: $(tail -n 2 "$SRV_LOG" | tr '\n' ' ')"
        return 1
    fi
    MEASURE_TOTAL=$total
}

# The marginal calls per message of each system call, from two strace -c summaries.
syscalls_per_message() {
    awk -v n1="$3" -v n2="$4" '
        $1 ~ /^[0-9.]+$/ && $NF != "total" {
            if (FILENAME == ARGV[1]) a[$NF] += $4; else b[$NF] += $4 # $4: calls
        }
        END {
            for (k in b) d[k] = (b[k] - a[k]) / (n2 - n1)
            for (k in a) if (!(k in b)) d[k] = -a[k] / (n2 - n1)
            for (k in d) if (d[k] >= 0.005 || d[k] <= -0.005) printf "%s %.2f\n", k, d[k]
        }' "$1" "$2" | sort -k2,2nr | awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2} END {print ""}'
}

for s in $BENCH_WS_SERVERS; do
    for load in $BENCH_WS_LOADS; do
        for tool in $BENCH_TOOLS; do
            bench_marginal "$s" "$load" "$tool" "$CSV" message || continue
            if [ "$tool" = strace ]; then
                bench_log "    $(syscalls_per_message "$BENCH_OUT/strace/$s-$load-$MARGINAL_N1.txt" \
                    "$BENCH_OUT/strace/$s-$load-$MARGINAL_N2.txt" "$MARGINAL_N1" "$MARGINAL_N2")"
            fi
        done
    done
done
