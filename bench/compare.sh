#!/usr/bin/env bash
# casgi against nginx, h2o and uvicorn on this machine, in one command:
#
#   bench/compare.sh
#   bench/compare.sh --only h2       (the HTTP/2 part alone: BENCH_ONLY=h2, see below)
#
# Installs what is missing (Debian packages), builds casgi in Release into build/bench, starts the
# four servers on 127.0.0.1 pinned to CPU 0, drives them from CPU 1, and prints req/s (median of
# the runs), p99 latency, errors, the CPU shares of the server and of the client (and of other
# processes on those two CPUs, which mark a run as not to be trusted) and req/s per server core,
# then casgi's ratio to each peer; the same for WebSocket echo (messages/s, bench/ws_load) against uvicorn
# with websockets; the server memory per idle connection (bench/idle.py, bench/ws_idle.py); then
# the per-request instruction and system-call counts (bench/perreq.sh) and the same per echoed
# WebSocket message (bench/ws_perreq.sh); and writes docs/benchmarks.md and
# docs/benchmarks.png. See bench/README.md.
#
# Environment (defaults in brackets):
#   BENCH_DURATION   seconds per run [5]             BENCH_RUNS     runs per load [3]
#   BENCH_SERVERS    [casgi nginx h2o uvicorn]
#   BENCH_LOADS      [idle wsidle ka64 ka256 pipe16 close h2c h2c1x100 ws64 ws4k]
#   BENCH_IDLE_CONNS idle keep-alive connections for the memory figure [10000]
#   BENCH_WSIDLE_CONNS idle WebSockets for the memory figures [BENCH_IDLE_CONNS]
#   BENCH_PERREQ     0 skips bench/perreq.sh and bench/ws_perreq.sh [1]
#   BENCH_DOCS       0 leaves docs/ alone [1]
#   BENCH_OUT        where the raw results go [build/bench/results]
#   BENCH_SERVER_CPU / BENCH_CLIENT_CPU [0 / 1]      BENCH_INSTALL  0 skips apt-get [1]
#   BENCH_ONLY       h2: only the h2c loads and h2c per-request counts, against casgi, nginx and
#                    h2o, into build/bench/results-h2, docs/ untouched (any of the above that is
#                    set explicitly still wins) [unset: everything]
# and those of bench/perreq.sh and bench/ws_perreq.sh (BENCH_N1, BENCH_N2, ...; each has its own
# defaults).
set -euo pipefail
while [ $# -gt 0 ]; do
    case $1 in
    --only) [ $# -ge 2 ] || { echo "bench/compare.sh: --only needs an argument (h2)" >&2; exit 2; }
        export BENCH_ONLY=$2
        shift 2 ;;
    --only=*) export BENCH_ONLY=${1#--only=}; shift ;;
    *) echo "bench/compare.sh: unknown argument $1 (usage: bench/compare.sh [--only h2])" >&2
        exit 2 ;;
    esac
done
# The command line that reproduces this run, for docs/benchmarks.md: the BENCH_ variables the
# caller set, then the script.
reproduce=""
for v in $(compgen -e | grep '^BENCH_' | sort); do reproduce+="$v=$(printf '%q' "${!v}") "; done
reproduce+="bench/compare.sh"
# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh"
trap 'bench_log "failed at line $LINENO: $BASH_COMMAND"' ERR

BENCH_DURATION=${BENCH_DURATION:-5}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_LOADS=${BENCH_LOADS:-idle wsidle ka64 ka256 pipe16 close h2c h2c1x100 ws64 ws4k}
BENCH_IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
BENCH_WSIDLE_CONNS=${BENCH_WSIDLE_CONNS:-$BENCH_IDLE_CONNS}
BENCH_PERREQ=${BENCH_PERREQ:-1}
BENCH_DOCS=${BENCH_DOCS:-1}
BENCH_INSTALL=${BENCH_INSTALL:-1}
BENCH_OUT=${BENCH_OUT:-$BENCH_BUILD/results}
CLK_TCK=$(getconf CLK_TCK)

# The WebSocket loads, and the servers that have a WebSocket echo (bench_ws_server_cmd).
has_load() { [[ " $BENCH_LOADS " == *" $1 "* ]]; }
WS_LOADS=""
for load in ws64 ws4k; do
    if has_load "$load"; then WS_LOADS+=" $load"; fi
done
WS_SERVERS=()
for s in $BENCH_SERVERS; do
    case $s in casgi | uvicorn) WS_SERVERS+=("$s") ;; esac
done

bench_init
[ "$BENCH_INSTALL" = 0 ] || bench_install_deps
if [ -n "$WS_LOADS" ] || has_load wsidle; then bench_build_casgi ws; else bench_build_casgi; fi
mkdir -p "$BENCH_OUT"
rm -f "$BENCH_OUT"/*.csv "$BENCH_OUT"/*.tsv "$BENCH_OUT"/*.dat

started_at=$(date -u '+%Y-%m-%d %H:%M UTC')
{
    printf 'date\t%s\n' "$started_at"
    printf 'duration\t%s\n' "$BENCH_DURATION"
    printf 'runs\t%s\n' "$BENCH_RUNS"
    printf 'server_cpu\t%s\n' "$BENCH_SERVER_CPU"
    printf 'client_cpu\t%s\n' "$BENCH_CLIENT_CPU"
    bench_machine
} >"$BENCH_OUT/meta.tsv"
bench_versions >"$BENCH_OUT/versions.tsv"

# All servers run side by side for the whole comparison (idle ones cost nothing) and the runs
# interleave them: run 1 of a load goes through every server, then run 2, and so on. Drift on a
# shared machine then spreads over all servers instead of landing on whichever ran last.
declare -A PID PORT H2C_PORT H2C_NOTE STOP
printf 'server\tstate\tnote\n' >"$BENCH_OUT/status.tsv"
started=()
for s in $BENCH_SERVERS; do
    if bench_start "$s" throughput; then
        PID[$s]=$SRV_PID
        PORT[$s]=$SRV_PORT
        STOP[$s]=$SRV_STOP_SIG
        H2C_PORT[$s]=""
        H2C_NOTE[$s]=""
        if bench_h2c_check "$s" "$SRV_H2C_PORT"; then
            H2C_PORT[$s]=$SRV_H2C_PORT
        else
            H2C_NOTE[$s]=$SRV_H2C_NOTE
        fi
        started+=("$s")
        printf '%s\tstarted\tpid %s, port %s%s\n' "$s" "$SRV_PID" "$SRV_PORT" \
            "$([ -n "${H2C_PORT[$s]}" ] && echo ", h2c on $SRV_H2C_PORT" || echo ", no h2c")" \
            >>"$BENCH_OUT/status.tsv"
        bench_log "$s started (pid $SRV_PID, port $SRV_PORT, h2c: ${H2C_PORT[$s]:-${H2C_NOTE[$s]}})"
    else
        printf '%s\tnot started\t%s\n' "$s" "$SRV_NOTE" >>"$BENCH_OUT/status.tsv"
        bench_log "$s NOT STARTED: $SRV_NOTE"
    fi
done
# The WebSocket echo servers, under the keys casgi-ws and uvicorn-ws, for the ws64/ws4k loads.
declare -A WS_NOTE
ws_started=()
if [ -n "$WS_LOADS" ]; then
    for s in "${WS_SERVERS[@]}"; do
        if bench_start "$s" ws; then
            PID[$s-ws]=$SRV_PID
            PORT[$s-ws]=$SRV_PORT
            STOP[$s-ws]=$SRV_STOP_SIG
            ws_started+=("$s")
            printf '%s-ws\tstarted\tWebSocket echo, pid %s, port %s\n' "$s" "$SRV_PID" "$SRV_PORT" \
                >>"$BENCH_OUT/status.tsv"
            bench_log "$s WebSocket echo started (pid $SRV_PID, port $SRV_PORT)"
        else
            WS_NOTE[$s]=$SRV_NOTE
            printf '%s-ws\tnot started\t%s\n' "$s" "$SRV_NOTE" >>"$BENCH_OUT/status.tsv"
            bench_log "$s WebSocket echo NOT STARTED: $SRV_NOTE"
        fi
    done
fi
[ ${#started[@]} -gt 0 ] || [ ${#ws_started[@]} -gt 0 ] || bench_die "no server started"

# wrk's duration unit: "1.23ms" -> milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}

# CHILD_CPU: CPU seconds (user + system) of the processes this shell has waited for so far; the
# difference over a client run is the load generator's CPU time. Not to be called in a subshell,
# whose `times` knows none of its parent's children.
children_cpu() {
    times >"$BENCH_TMP/times"
    CHILD_CPU=$(awk 'NR == 2 { t = 0
        for (i = 1; i <= 2; i++) { split($i, p, "m"); t += p[1] * 60 + p[2] } print t }' \
        "$BENCH_TMP/times")
}

# User + nice + system ticks of the two pinned CPUs together (/proc/stat), to tell how much of
# them processes other than the server and the client took during a run: on a shared machine a
# test suite or another benchmark running beside this one shows up there, not in req/s.
pinned_ticks() {
    awk -v a="cpu$BENCH_SERVER_CPU" -v b="cpu$BENCH_CLIENT_CPU" \
        '$1 == a || ($1 == b && a != b) { t += $2 + $3 + $4 } END { print t }' /proc/stat
}

# run_load SERVER LOAD RUN [KEY]: one client run against the server started under KEY (default
# SERVER; casgi-ws for the WebSocket echo); appends a line to throughput.csv.
run_load() {
    local s=$1 load=$2 run=$3 key=${4:-$1} url out t0 t1 c0 c1 rps p99 mean="" err share note=""
    local rc=0 wrk_args=() h2_args=() ws_size="" k0 client p0 p1 other
    url="http://127.0.0.1:${PORT[$key]}/"
    out=$BENCH_TMP/$s-$load-$run.out
    c0=$(bench_cpu_ticks "${PID[$key]}")
    p0=$(pinned_ticks)
    t0=$(date +%s%N)
    case $load in
    ka64) wrk_args=(-t1 -c64) ;;
    ka256) wrk_args=(-t1 -c256) ;;
    pipe16) wrk_args=(-t1 -c64 -s "$BENCH_DIR/pipeline.lua") ;;
    close) wrk_args=(-t1 -c64 -H 'Connection: close') ;;
    h2c) h2_args=(-c64 -m16) ;;
    h2c1x100) h2_args=(-c1 -m100) ;;
    ws64) ws_size=64 ;;
    ws4k) ws_size=4096 ;;
    *) bench_die "unknown load $load" ;;
    esac
    children_cpu
    k0=$CHILD_CPU
    if [ -n "$ws_size" ]; then
        taskset -c "$BENCH_CLIENT_CPU" "$BENCH_BUILD/bench/ws_load" -c 64 -s "$ws_size" \
            -d "$BENCH_DURATION" -u "ws://127.0.0.1:${PORT[$key]}/" >"$out" 2>&1 || rc=$?
    elif [ ${#h2_args[@]} -gt 0 ]; then
        # No --log-file (the only way to percentiles): writing a line per request costs h2load
        # about a third of its throughput against h2o, and -c64 -m16 then measures the client.
        taskset -c "$BENCH_CLIENT_CPU" h2load -t1 "${h2_args[@]}" -D "$BENCH_DURATION" \
            "http://127.0.0.1:${H2C_PORT[$s]}/" >"$out" 2>&1 || rc=$?
    elif [ "$load" = pipe16 ]; then
        taskset -c "$BENCH_CLIENT_CPU" wrk "${wrk_args[@]}" -d "${BENCH_DURATION}s" --latency \
            "$url" -- 16 >"$out" 2>&1 || rc=$?
    else
        taskset -c "$BENCH_CLIENT_CPU" wrk "${wrk_args[@]}" -d "${BENCH_DURATION}s" --latency \
            "$url" >"$out" 2>&1 || rc=$?
    fi
    children_cpu
    t1=$(date +%s%N)
    p1=$(pinned_ticks)
    c1=$(bench_cpu_ticks "${PID[$key]}")
    share=$(awk -v c="$((c1 - c0))" -v hz="$CLK_TCK" -v ns="$((t1 - t0))" \
        'BEGIN { printf "%.3f", (c / hz) / (ns / 1e9) }')
    client=$(awk -v c0="$k0" -v c1="$CHILD_CPU" -v ns="$((t1 - t0))" \
        'BEGIN { printf "%.3f", (c1 - c0) / (ns / 1e9) }')
    # What the pinned CPUs ran besides the server and the client, in cores (0 to 2).
    other=$(awk -v p="$((p1 - p0))" -v c="$((c1 - c0))" -v k0="$k0" -v k1="$CHILD_CPU" \
        -v hz="$CLK_TCK" -v ns="$((t1 - t0))" \
        'BEGIN { o = ((p - c) / hz - (k1 - k0)) / (ns / 1e9); printf "%.3f", o < 0 ? 0 : o }')
    if [ -n "$ws_size" ]; then
        # messages: N echoed in S s, R msg/s
        # latency: mean A ms, p50 B ms, p99 C ms, max D ms
        rps=$(awk '/^messages:/ {print $(NF - 1)}' "$out")
        mean=$(awk '/^latency: mean/ {print $3}' "$out")
        p99=$(awk '/^latency: mean/ {print $9}' "$out")
        err=$(awk '/^errors:/ {print $2}' "$out")
        err=${err:-0}
    elif [ ${#h2_args[@]} -gt 0 ]; then
        rps=$(awk '/^finished in/ {print $4}' "$out")
        # requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout
        # status codes: N 2xx, N 3xx, N 4xx, N 5xx
        err=$(awk '/^requests:/ {e += $10} /^status codes:/ {e += $5 + $7 + $9} END {print e + 0}' "$out")
        # h2load gives min, max, mean and sd per request, no percentiles:
        #                      min         max         mean         sd        +/- sd
        # time for request:      287us     57.34ms     22.62ms      7.70ms    70.17%
        mean=$(awk '/^time for request:/ {print $6; exit}' "$out")
        [ -n "$mean" ] && mean=$(to_ms "$mean")
        p99=""
    else
        rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
        p99=$(awk '/^ +99%/ {print $2; exit}' "$out")
        [ -n "$p99" ] && p99=$(to_ms "$p99")
        mean=$(awk '/^ +Latency +[0-9]/ {print $2; exit}' "$out")
        [ -n "$mean" ] && mean=$(to_ms "$mean")
        # When pipelining, wrk's percentiles are unusable (they read 0: the rank is taken over
        # more samples than its histogram holds), and it times a batch of 16, not a request;
        # keep only the mean, per batch.
        [ "$load" = pipe16 ] && p99=""
        err=$(awk '/Socket errors:/ {gsub(",", ""); e += $4 + $6 + $8 + $10}
                   /Non-2xx or 3xx responses:/ {e += $5} END {print e + 0}' "$out")
    fi
    if [ -z "$rps" ] || [ "$rc" -ne 0 ]; then
        note="client failed (exit $rc): $(tail -n 2 "$out" | tr '\n' ' ' | head -c 200)"
        bench_log "$s $load run $run: $note"
    fi
    bench_alive "${PID[$key]}" || note="server died during the run${note:+; $note}"
    printf '%s,%s,%s,%s,%s,%s,%s,%s,"%s",%s,%s\n' "$s" "$load" "$run" "${rps:-}" "${p99:-}" \
        "$mean" "$err" "$share" "${note//\"/\'}" "$client" "$other" >>"$BENCH_OUT/throughput.csv"
    bench_log "$(printf '%-8s %-6s run %s: %10s %s  p99 %8s ms  errors %s  CPU: server %s, %s' \
        "$s" "$load" "$run" "${rps:--}" "$([ -n "$ws_size" ] && echo msg/s || echo req/s)" \
        "${p99:-${mean:+mean $mean}}" "$err" "$share" "client $client, others $other")"
}

# Memory first, on servers that have only answered the start-up check: RSS growth per idle
# keep-alive connection with BENCH_IDLE_CONNS of them open (bench/idle.py).
printf 'server,connections,rss_before_kib,rss_after_kib,open,bytes_per_connection,note\n' \
    >"$BENCH_OUT/idle.csv"
if [[ " $BENCH_LOADS " == *" idle "* ]]; then
    for s in "${started[@]}"; do
        out=$BENCH_TMP/$s-idle.out
        if taskset -c "$BENCH_CLIENT_CPU" "$BENCH_PYTHON" "$BENCH_DIR/idle.py" "${PORT[$s]}" \
            "${PID[$s]}" "$BENCH_IDLE_CONNS" >"$out" 2>&1; then
            IFS=$'\t' read -r before after open per <"$out"
            printf '%s,%s,%s,%s,%s,%s,""\n' "$s" "$BENCH_IDLE_CONNS" "$before" "$after" "$open" \
                "$per" >>"$BENCH_OUT/idle.csv"
            bench_log "$(printf '%-8s idle: %s connections open, RSS %s -> %s KiB: %s bytes each' \
                "$s" "$open" "$before" "$after" "$per")"
        else
            note=$(tail -n 2 "$out" | tr '\n' ' ' | head -c 200)
            printf '%s,%s,,,,,"failed: %s"\n' "$s" "$BENCH_IDLE_CONNS" "${note//\"/\'}" \
                >>"$BENCH_OUT/idle.csv"
            bench_log "$s idle: FAILED: $note"
        fi
        sleep 1 # let the server close the 10,000 connections
    done
fi

# The same for idle WebSockets (bench/ws_idle.py): each has done its handshake and echoed one
# 128-byte message. Once without extensions, once with permessage-deflate offered (both servers
# accept it by default), each on a freshly started echo server so that neither figure inherits
# the other's freed memory.
printf 'server,mode,connections,rss_before_kib,rss_after_kib,open,deflate_accepted,bytes_per_connection,note\n' \
    >"$BENCH_OUT/wsidle.csv"
if has_load wsidle; then
    for s in "${WS_SERVERS[@]}"; do
        for mode in plain deflate; do
            if ! bench_start "$s" ws; then
                printf '%s,%s,%s,,,,,,"not started: %s"\n' "$s" "$mode" "$BENCH_WSIDLE_CONNS" \
                    "${SRV_NOTE//\"/\'}" >>"$BENCH_OUT/wsidle.csv"
                bench_log "$s WebSocket echo NOT STARTED: $SRV_NOTE"
                continue
            fi
            out=$BENCH_TMP/$s-wsidle-$mode.out
            args=("$SRV_PORT" "$SRV_PID" "$BENCH_WSIDLE_CONNS")
            [ "$mode" = deflate ] && args+=(--deflate)
            if taskset -c "$BENCH_CLIENT_CPU" "$BENCH_PYTHON" "$BENCH_DIR/ws_idle.py" "${args[@]}" \
                >"$out" 2>&1; then
                IFS=$'\t' read -r before after open per deflated <"$out"
                note=$(sed -n '2p' "$out" | head -c 200)
                printf '%s,%s,%s,%s,%s,%s,%s,%s,"%s"\n' "$s" "$mode" "$BENCH_WSIDLE_CONNS" "$before" \
                    "$after" "$open" "$deflated" "$per" "${note//\"/\'}" >>"$BENCH_OUT/wsidle.csv"
                bench_log "$(printf '%-8s wsidle %-7s: %s WebSockets open (deflate on %s), RSS %s -> %s KiB: %s bytes each' \
                    "$s" "$mode" "$open" "$deflated" "$before" "$after" "$per")"
            else
                note=$(tail -n 2 "$out" | tr '\n' ' ' | head -c 200)
                printf '%s,%s,%s,,,,,,"failed: %s"\n' "$s" "$mode" "$BENCH_WSIDLE_CONNS" \
                    "${note//\"/\'}" >>"$BENCH_OUT/wsidle.csv"
                bench_log "$s wsidle $mode: FAILED: $note"
            fi
            bench_stop "$SRV_PID" "$SRV_STOP_SIG" 15 || bench_log "$s (WebSocket echo) had to be killed"
        done
    done
fi

total_runs=0
for load in $BENCH_LOADS; do
    case $load in
    idle | wsidle) ;;
    ws64 | ws4k) total_runs=$((total_runs + BENCH_RUNS * ${#ws_started[@]})) ;;
    *) total_runs=$((total_runs + BENCH_RUNS * ${#started[@]})) ;;
    esac
done
loads=" $BENCH_LOADS "
loads=${loads// idle / }
loads=${loads// wsidle / }
bench_log "loads:${loads% }; $BENCH_RUNS runs of ${BENCH_DURATION}s each (about $((total_runs * (BENCH_DURATION + 1)))s)"
# Last, because only the rows of a run that took place have them: client_cpu_share, the load
# generator's CPU time over the wall time of the run (near 1: the figure measures the client),
# and other_cpu, what other processes took of the two pinned CPUs meanwhile, in cores.
printf 'server,load,run,rps,p99_ms,mean_ms,errors,cpu_share,note,client_cpu_share,other_cpu\n' \
    >"$BENCH_OUT/throughput.csv"
for load in $BENCH_LOADS; do
    case $load in idle | wsidle) continue ;; esac
    if [ "$load" = ws64 ] || [ "$load" = ws4k ]; then
        # WebSocket echo: casgi and uvicorn (their echo servers); the others have none.
        for s in $BENCH_SERVERS; do
            if [ "$s" != casgi ] && [ "$s" != uvicorn ]; then
                printf '%s,%s,,,,,,,"n/a: no WebSocket echo"\n' "$s" "$load" >>"$BENCH_OUT/throughput.csv"
            elif [ -n "${WS_NOTE[$s]:-}" ]; then
                printf '%s,%s,,,,,,,"not started: %s"\n' "$s" "$load" "${WS_NOTE[$s]//\"/\'}" \
                    >>"$BENCH_OUT/throughput.csv"
            fi
        done
        for run in $(seq "$BENCH_RUNS"); do
            for s in "${ws_started[@]}"; do
                if ! bench_alive "${PID[$s-ws]}"; then
                    printf '%s,%s,%s,,,,,,"server not running"\n' "$s" "$load" "$run" \
                        >>"$BENCH_OUT/throughput.csv"
                    continue
                fi
                run_load "$s" "$load" "$run" "$s-ws"
                sleep 0.5
            done
        done
        continue
    fi
    for run in $(seq "$BENCH_RUNS"); do
        for s in "${started[@]}"; do
            if ! bench_alive "${PID[$s]}"; then
                printf '%s,%s,%s,,,,,,"server not running"\n' "$s" "$load" "$run" \
                    >>"$BENCH_OUT/throughput.csv"
                continue
            fi
            if [[ $load == h2c* ]] && [ -z "${H2C_PORT[$s]}" ]; then
                [ "$run" = 1 ] && printf '%s,%s,,,,,,,"%s"\n' "$s" "$load" \
                    "${H2C_NOTE[$s]//\"/\'}" >>"$BENCH_OUT/throughput.csv"
                continue
            fi
            run_load "$s" "$load" "$run"
            sleep 0.5 # let TIME_WAIT and the last writes settle
        done
    done
done

for s in "${started[@]}"; do
    bench_stop "${PID[$s]}" "${STOP[$s]}" 15 || bench_log "$s had to be killed"
done
for s in "${ws_started[@]}"; do
    bench_stop "${PID[$s-ws]}" "${STOP[$s-ws]}" 15 || bench_log "$s (WebSocket echo) had to be killed"
done

if [ "$BENCH_PERREQ" != 0 ]; then
    BENCH_OUT=$BENCH_OUT BENCH_INSTALL=0 BENCH_NO_BUILD=1 BENCH_SERVERS=$BENCH_SERVERS \
        BENCH_REPORT=0 "$BENCH_DIR/perreq.sh" ||
        bench_log "bench/perreq.sh failed; the report has no per-request figures"
    # The same per echoed WebSocket message, for the echo servers and loads measured above.
    if [ -n "$WS_LOADS" ] && [ ${#WS_SERVERS[@]} -gt 0 ]; then
        if [ -f "$BENCH_BUILD/apps/ws_echo.so" ] && [ -x "$BENCH_BUILD/bench/ws_load" ]; then
            BENCH_OUT=$BENCH_OUT BENCH_NO_BUILD=1 BENCH_WS_SERVERS="${WS_SERVERS[*]}" \
                BENCH_WS_LOADS=${WS_LOADS# } "$BENCH_DIR/ws_perreq.sh" ||
                bench_log "bench/ws_perreq.sh failed; the report has no per-message" \
                    "WebSocket figures"
        else
            bench_log "ws_echo.so or bench/ws_load not built: no per-message WebSocket figures"
        fi
    fi
fi

report_args=(--out "$BENCH_OUT" --command "$reproduce")
if [ "$BENCH_DOCS" != 0 ]; then
    report_args+=(--docs "$BENCH_ROOT/docs/benchmarks.md" --png "$BENCH_ROOT/docs/benchmarks.png")
fi
"$BENCH_PYTHON" "$BENCH_DIR/report.py" "${report_args[@]}"
