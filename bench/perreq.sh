#!/usr/bin/env bash
# Deterministic per-request costs of casgi and its peers: user-space instructions (callgrind) and
# system calls (strace -c -f) per request, over one connection.
#
#   bench/perreq.sh            (bench/compare.sh runs it too, after the throughput loads)
#
# Each figure is a marginal: the server is started under the tool, sent N1 requests, stopped;
# then again with N2 requests; cost per request = (total(N2) - total(N1)) / (N2 - N1), so
# start-up, the first connection and shutdown cancel out. Loads, all through h2load -c1:
#   ka      HTTP/1.1 keep-alive, one request at a time     (h2load --h1 -m1)
#   pipe16  HTTP/1.1, 16 requests in flight, pipelined     (h2load --h1 -m16)
#   h2c     HTTP/2 prior knowledge, 16 concurrent streams  (h2load -m16), where the server has it
#           (uvicorn has none; any other server that does not answer h2c is reported as failed)
#   close   HTTP/1.1 Connection: close, a new connection per request, one after another
#           (bench/close_client.py): the accept and close path
# nginx runs as a single process (master_process off) so the worker is the process measured.
# The callgrind profiles stay in BENCH_OUT/callgrind/SERVER-LOAD-N.out (one per process, .PID
# appended, if the server ran more than one), for callgrind_annotate, or for bench/cgdiff.py,
# which gives the marginal instructions per request of each function from the N1 and N2 ones.
#
# Environment (defaults in brackets):
#   BENCH_N1 / BENCH_N2                 request counts [2000 / 4000]
#   BENCH_N1_UVICORN / BENCH_N2_UVICORN the same for uvicorn under callgrind [1000 / 2000]:
#                                       CPython runs about 50x slower there
#   BENCH_SERVERS [casgi nginx h2o uvicorn]   BENCH_PERREQ_LOADS [ka pipe16 h2c close]
#   BENCH_TOOLS   [callgrind strace]          BENCH_OUT [build/bench/results]
#   BENCH_ONLY    h2: BENCH_PERREQ_LOADS=h2c, BENCH_SERVERS="casgi nginx h2o" and
#                 BENCH_OUT=build/bench/results-h2 unless set (as for bench/compare.sh --only h2)
set -euo pipefail
# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh"
trap 'bench_log "failed at line $LINENO: $BASH_COMMAND"' ERR

BENCH_N1=${BENCH_N1:-2000}
BENCH_N2=${BENCH_N2:-4000}
BENCH_N1_UVICORN=${BENCH_N1_UVICORN:-1000}
BENCH_N2_UVICORN=${BENCH_N2_UVICORN:-2000}
BENCH_PERREQ_LOADS=${BENCH_PERREQ_LOADS:-ka pipe16 h2c close}
BENCH_TOOLS=${BENCH_TOOLS:-callgrind strace}
BENCH_OUT=${BENCH_OUT:-$BENCH_BUILD/results}
BENCH_REPORT=${BENCH_REPORT:-1}

bench_init
if [ -z "${BENCH_NO_BUILD:-}" ]; then
    [ "${BENCH_INSTALL:-1}" = 0 ] || bench_install_deps
    bench_build_casgi
fi
mkdir -p "$BENCH_OUT"
[ -f "$BENCH_OUT/versions.tsv" ] || bench_versions >"$BENCH_OUT/versions.tsv"
[ -f "$BENCH_OUT/meta.tsv" ] || {
    printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    bench_machine
} >"$BENCH_OUT/meta.tsv"
CSV=$BENCH_OUT/perreq.csv
mkdir -p "$BENCH_OUT/callgrind"
rm -f "$BENCH_OUT"/callgrind/*.out "$BENCH_OUT"/callgrind/*.out.*
printf 'server,load,tool,n1,n2,total1,total2,per_request,note\n' >"$CSV"

# measure SERVER LOAD TOOL N: starts SERVER under TOOL, sends N requests, stops it cleanly and
# sets MEASURE_TOTAL to the tool's total (instructions or system calls). Returns 1, with
# MEASURE_NOTE set, if any step failed. Not to be run in a subshell: the server is our child.
measure() {
    local s=$1 load=$2 tool=$3 n=$4 dir client=() wrapper=() out total port
    dir=$(mktemp -d "$BENCH_TMP/$s-$load-$tool-$n.XXXXXX")
    MEASURE_NOTE=""
    MEASURE_TOTAL=""
    case $tool in
    callgrind)
        wrapper=(valgrind --tool=callgrind --vgdb=no "--callgrind-out-file=$dir/callgrind.out.%p")
        [ "$s" = nginx ] && wrapper+=(--trace-children=yes)
        ;;
    strace) wrapper=(strace -f -c -o "$dir/strace.txt") ;;
    esac
    if ! BENCH_START_TIMEOUT=120 bench_start "$s" trace "${wrapper[@]}"; then
        MEASURE_NOTE="not started under $tool: $SRV_NOTE"
        return 1
    fi
    port=$SRV_PORT
    case $load in
    ka) client=(h2load --h1 -m1 -n "$n" -c 1 -t 1 "http://127.0.0.1:$port/") ;;
    pipe16) client=(h2load --h1 -m16 -n "$n" -c 1 -t 1 "http://127.0.0.1:$port/") ;;
    h2c) client=(h2load -m16 -n "$n" -c 1 -t 1 "http://127.0.0.1:$SRV_H2C_PORT/") ;;
    close) client=("$BENCH_PYTHON" "$BENCH_DIR/close_client.py" "$port" "$n") ;;
    esac
    out=$dir/h2load.out
    taskset -c "$BENCH_CLIENT_CPU" "${client[@]}" >"$out" 2>&1 || true
    if ! grep -q " $n succeeded," "$out"; then
        MEASURE_NOTE="h2load: $(grep -E '^requests:' "$out" || tail -n 1 "$out")"
        bench_stop "$SRV_PID" "$SRV_STOP_SIG" 60 || true
        return 1
    fi
    if ! bench_stop "$SRV_PID" "$SRV_STOP_SIG" 60; then
        MEASURE_NOTE="did not exit on SIG$SRV_STOP_SIG, no totals"
        return 1
    fi
    case $tool in
    callgrind) # one file per process; "totals:" is the sum over all threads of that process
        total=$(cat "$dir"/callgrind.out.* 2>/dev/null |
            awk '/^totals:/ {t += $2; f = 1} END { if (f) print t }') ;;
    strace) # the last line: "100.00  seconds  usecs/call  calls  [errors]  total"
        total=$(awk '$NF == "total" {print $4}' "$dir/strace.txt" 2>/dev/null) ;;
    esac
    if [ -z "$total" ]; then
        MEASURE_NOTE="$tool wrote no totals: $(tail -n 2 "$SRV_LOG" | tr '\n' ' ')"
        return 1
    fi
    MEASURE_TOTAL=$total
    if [ "$tool" = callgrind ]; then
        local profiles=("$dir"/callgrind.out.*) f
        if [ ${#profiles[@]} -eq 1 ]; then
            cp "${profiles[0]}" "$BENCH_OUT/callgrind/$s-$load-$n.out"
        else
            for f in "${profiles[@]}"; do cp "$f" "$BENCH_OUT/callgrind/$s-$load-$n.out.${f##*.}"; done
        fi
    fi
}

declare -A H2C H2C_WHY
for s in $BENCH_SERVERS; do
    # A plain start first: is the server there at all, and does it speak h2c?
    if ! bench_start "$s" trace; then
        bench_log "$s NOT STARTED: $SRV_NOTE"
        printf '%s,,,,,,,,"not started: %s"\n' "$s" "${SRV_NOTE//\"/\'}" >>"$CSV"
        continue
    fi
    H2C[$s]=0
    bench_h2c_check "$s" "$SRV_H2C_PORT" && H2C[$s]=1
    H2C_WHY[$s]=$SRV_H2C_NOTE
    bench_stop "$SRV_PID" "$SRV_STOP_SIG" 30 || true
    for load in $BENCH_PERREQ_LOADS; do
        if [ "$load" = h2c ] && [ "${H2C[$s]}" = 0 ]; then
            bench_log "$s h2c: ${H2C_WHY[$s]}"
            printf '%s,%s,,,,,,,"%s"\n' "$s" "$load" "${H2C_WHY[$s]//\"/\'}" >>"$CSV"
            continue
        fi
        for tool in $BENCH_TOOLS; do
            bench_marginal "$s" "$load" "$tool" "$CSV" request || true
        done
    done
done

if [ "$BENCH_REPORT" != 0 ]; then
    "$BENCH_PYTHON" "$BENCH_DIR/report.py" --out "$BENCH_OUT" --perreq-only
fi
