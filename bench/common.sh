# shellcheck shell=bash disable=SC2034 # SRV_* and BENCH_* are read by the scripts that source this
# Shared by bench/compare.sh and bench/perreq.sh (sourced, not run): installing the tools,
# building casgi, starting and stopping the four servers, and reading their CPU time.
#
# Every server answers GET / on 127.0.0.1 with the same 13 bytes "Hello, World!" as text/plain:
#   casgi    apps/hello.so through the full app API (--no-access-log)
#   nginx    1 worker, `return 200 "Hello, World!"`, default_type text/plain, access_log off;
#            HTTP/1.1 on one port and h2c (prior knowledge) on a second, because nginx 1.22 speaks
#            only HTTP/2 on a cleartext `listen ... http2` socket
#   h2o      num-threads 1, file.dir of a directory holding index.txt (13 bytes), no access log
#   uvicorn  a 6-line ASGI app, --loop uvloop --http httptools --workers 1 --no-access-log
# For the WebSocket loads (mode "ws") casgi and uvicorn run a second time, as echo servers:
#   casgi    apps/ws_echo.so (--no-access-log)
#   uvicorn  a 15-line ASGI echo app, --ws websockets (and the HTTP options above)
# both with their default WebSocket settings (permessage-deflate negotiated when offered, a
# keepalive ping every 20 s); nginx and h2o have no WebSocket echo and are not started for them.
# Configurations are generated into a private temporary directory that is removed on exit.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_ROOT=$(cd "$BENCH_DIR/.." && pwd)
BENCH_BUILD=${BENCH_BUILD:-$BENCH_ROOT/build/bench}
# BENCH_ONLY=h2 (or compare.sh --only h2): the HTTP/2 part alone, to iterate on it quickly: the
# two h2c loads and the h2c per-request counts, against the servers that speak h2c, with its own
# results directory and docs/ left alone. Whatever the caller set explicitly still wins.
case ${BENCH_ONLY:-} in
"") ;;
h2)
    BENCH_SERVERS=${BENCH_SERVERS:-casgi nginx h2o}
    BENCH_LOADS=${BENCH_LOADS:-h2c h2c1x100}
    BENCH_PERREQ_LOADS=${BENCH_PERREQ_LOADS:-h2c}
    BENCH_DOCS=${BENCH_DOCS:-0}
    BENCH_OUT=${BENCH_OUT:-$BENCH_BUILD/results-h2}
    ;;
*)
    printf 'bench: error: unknown BENCH_ONLY=%s (known: h2)\n' "$BENCH_ONLY" >&2
    exit 2
    ;;
esac
BENCH_SERVERS=${BENCH_SERVERS:-casgi nginx h2o uvicorn}
BENCH_SERVER_CPU=${BENCH_SERVER_CPU:-0}
BENCH_CLIENT_CPU=${BENCH_CLIENT_CPU:-1}
BENCH_START_TIMEOUT=${BENCH_START_TIMEOUT:-60}
BENCH_PYTHON=/usr/bin/python3 # Debian's, which has uvicorn; not whatever python3 is first in PATH

# Debian package -> a command or Python module that shows it is installed.
BENCH_PACKAGES=(
    nginx-light h2o python3-uvicorn python3-uvloop python3-httptools python3-websockets
    wrk nghttp2-client valgrind strace gnuplot-nox curl procps util-linux
)

BENCH_PIDS=() # every process we started, stopped by bench_cleanup
BENCH_TMP=""

bench_log() { printf 'bench: %s\n' "$*" >&2; }
bench_die() {
    bench_log "error: $*"
    exit 1
}

# bench_marginal SERVER LOAD TOOL CSV UNIT: runs the calling script's measure() (which sets
# MEASURE_TOTAL, or MEASURE_NOTE and returns 1) at BENCH_N1 and BENCH_N2 (BENCH_N1_UVICORN and
# BENCH_N2_UVICORN for uvicorn under callgrind), appends the marginal (total(N2) - total(N1)) /
# (N2 - N1) to CSV as "server,load,tool,n1,n2,total1,total2,figure,note" and logs it "per UNIT".
# Sets MARGINAL_N1 and MARGINAL_N2. Returns 1, after a row and a line saying so, if either failed.
bench_marginal() {
    local s=$1 load=$2 tool=$3 csv=$4 unit=$5 v1="" v2="" t0=$SECONDS per
    MARGINAL_N1=$BENCH_N1 MARGINAL_N2=$BENCH_N2
    if [ "$s" = uvicorn ] && [ "$tool" = callgrind ]; then
        MARGINAL_N1=$BENCH_N1_UVICORN MARGINAL_N2=$BENCH_N2_UVICORN
    fi
    local n1=$MARGINAL_N1 n2=$MARGINAL_N2
    measure "$s" "$load" "$tool" "$n1" && v1=$MEASURE_TOTAL &&
        measure "$s" "$load" "$tool" "$n2" && v2=$MEASURE_TOTAL
    if [ -z "$v2" ]; then
        bench_log "$s $load $tool: FAILED: $MEASURE_NOTE"
        printf '%s,%s,%s,%s,%s,,,,"failed: %s"\n' "$s" "$load" "$tool" "$n1" "$n2" \
            "${MEASURE_NOTE//\"/\'}" >>"$csv"
        return 1
    fi
    per=$(awk -v a="$v1" -v b="$v2" -v n1="$n1" -v n2="$n2" \
        'BEGIN { printf "%.3f", (b - a) / (n2 - n1) }')
    printf '%s,%s,%s,%s,%s,%s,%s,%s,""\n' "$s" "$load" "$tool" "$n1" "$n2" "$v1" "$v2" "$per" \
        >>"$csv"
    bench_log "$(printf '%-8s %-6s %-9s N=%s/%s: %s -> %s = %s per %s (%ss)' \
        "$s" "$load" "$tool" "$n1" "$n2" "$v1" "$v2" "$per" "$unit" $((SECONDS - t0)))"
}

# Makes the private temporary directory and arranges for everything to be cleaned up on exit.
# Readable by all: nginx and h2o started as root drop their workers to `nobody`.
bench_init() {
    BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/casgi-bench.XXXXXX")
    chmod 755 "$BENCH_TMP"
    trap bench_cleanup EXIT
    trap 'bench_log "interrupted"; exit 130' INT TERM
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
    if [ "$(nproc)" -lt 2 ]; then
        bench_log "warning: one CPU only; server and load generator share it"
        BENCH_CLIENT_CPU=$BENCH_SERVER_CPU
    fi
}

bench_cleanup() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do
        bench_stop "$pid" TERM 5 >/dev/null 2>&1 || true
    done
    [ -n "$BENCH_TMP" ] && rm -rf "$BENCH_TMP"
}

# Installs the Debian packages above that are missing (with sudo when not root), and casgi's own
# build dependencies through scripts/deps.sh when it is there.
bench_install_deps() {
    local p missing=() sudo=()
    if [ -x "$BENCH_ROOT/scripts/deps.sh" ]; then
        "$BENCH_ROOT/scripts/deps.sh" || bench_die "scripts/deps.sh failed"
    fi
    for p in "${BENCH_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -ne 0 ] && sudo=(sudo)
    bench_log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq || bench_die "apt-get update failed"
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
        bench_die "apt-get install ${missing[*]} failed"
}

# Release build of the runner and the hello app only, so a test that does not compile yet
# cannot stop a benchmark; then, with "ws" as argument, of the WebSocket echo app and load
# client (bench/ws_load), whose failure only leaves the WebSocket loads out ("not built").
bench_build_casgi() {
    bench_log "building casgi (Release) in $BENCH_BUILD"
    mkdir -p "$BENCH_BUILD" # and its parent, where the build log goes
    if ! cmake -S "$BENCH_ROOT" -B "$BENCH_BUILD" -DCMAKE_BUILD_TYPE=Release \
        -DCASGI_BUILD_TESTS=OFF -DCASGI_BUILD_BENCH=ON >"$BENCH_BUILD.log" 2>&1 ||
        ! cmake --build "$BENCH_BUILD" -j"$(nproc)" --target casgi_runner hello \
            >>"$BENCH_BUILD.log" 2>&1; then
        tail -n 30 "$BENCH_BUILD.log" >&2
        bench_die "casgi build failed (log: $BENCH_BUILD.log)"
    fi
    if [ "${1:-}" = ws ] && ! cmake --build "$BENCH_BUILD" -j"$(nproc)" --target ws_echo ws_load \
        >>"$BENCH_BUILD.log" 2>&1; then
        tail -n 15 "$BENCH_BUILD.log" >&2
        bench_log "ws_echo.so or bench/ws_load did not build (log: $BENCH_BUILD.log); the" \
            "WebSocket loads are left out"
    fi
}

bench_free_port() {
    "$BENCH_PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# One line per server and tool: what ran, for docs/benchmarks.md.
bench_versions() {
    local v
    v=$(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null) &&
        { git -C "$BENCH_ROOT" diff --quiet HEAD -- src include apps 2>/dev/null || v+=", modified"; }
    printf 'casgi\t%s\n' "$("$BENCH_BUILD/apps/casgi" --version 2>&1 | head -n 1)${v:+ (commit $v)}"
    printf 'nginx\t%s\n' "$(nginx -v 2>&1 | sed 's/^nginx version: //')"
    printf 'h2o\t%s\n' "$(h2o -v 2>&1 | head -n 1 | sed 's/ version / /')"
    v=$("$BENCH_PYTHON" -c 'import uvicorn, uvloop, httptools, sys
try:
    import websockets
    ws = ", websockets %s" % websockets.__version__
except ImportError:
    ws = ""
print("uvicorn %s (uvloop %s, httptools %s%s, Python %s)" % (uvicorn.__version__,
      uvloop.__version__, httptools.__version__, ws, sys.version.split()[0]))' 2>&1)
    printf 'uvicorn\t%s\n' "$v"
    printf 'wrk\t%s\n' "$(wrk -v 2>&1 | head -n 1 | awk '{print $1, $2}')"
    printf 'h2load\t%s\n' "$(h2load --version 2>&1 | head -n 1)"
    printf 'valgrind\t%s\n' "$(valgrind --version 2>&1)"
    printf 'strace\t%s\n' "$(strace -V 2>&1 | head -n 1 | sed 's/ -- version / /')"
    printf 'kernel\t%s\n' "$(uname -r)"
}

# bench_server_cmd NAME DIR PORT H2C_PORT MODE
# Writes NAME's configuration into DIR and sets BENCH_CMD (the command line) and BENCH_STOP_SIG
# (the signal that makes it exit cleanly, which callgrind and strace need to write their
# totals). MODE "trace" runs nginx as one process (master_process off) for callgrind and strace;
# MODE "ws" runs casgi and uvicorn as WebSocket echo servers.
bench_server_cmd() {
    local name=$1 dir=$2 port=$3 h2c_port=$4 mode=$5 master=on
    [ "$mode" = trace ] && master=off
    if [ "$mode" = ws ]; then
        bench_ws_server_cmd "$name" "$dir" "$port"
        return
    fi
    case $name in
    casgi)
        BENCH_CMD=("$BENCH_BUILD/apps/casgi" "$BENCH_BUILD/apps/hello.so" --host 127.0.0.1
            --port "$port" --no-access-log --log-level warning)
        BENCH_STOP_SIG=INT
        ;;
    nginx)
        mkdir -p "$dir/nginx"
        cat >"$dir/nginx/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile 65536;
daemon off;
master_process $master;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 20000; }
http {
    access_log off;
    default_type text/plain;
    keepalive_requests 100000000;
    client_body_temp_path $dir/nginx/body;
    proxy_temp_path $dir/nginx/proxy;
    fastcgi_temp_path $dir/nginx/fastcgi;
    uwsgi_temp_path $dir/nginx/uwsgi;
    scgi_temp_path $dir/nginx/scgi;
    server {
        listen 127.0.0.1:$port;
        listen 127.0.0.1:$h2c_port http2;
        location / { return 200 "Hello, World!"; }
    }
}
EOF
        BENCH_CMD=(nginx -p "$dir/nginx" -e "$dir/nginx/error.log" -c "$dir/nginx/nginx.conf")
        BENCH_STOP_SIG=QUIT
        ;;
    h2o)
        mkdir -p "$dir/h2o/www"
        : >"$dir/h2o/h2o.conf"
        printf 'Hello, World!' >"$dir/h2o/www/index.txt"
        # As root, h2o switches to `nobody` after start-up unless told otherwise, and callgrind
        # could then no longer write the file it opened before the switch.
        [ "$(id -u)" -eq 0 ] && echo "user: root" >>"$dir/h2o/h2o.conf"
        cat >>"$dir/h2o/h2o.conf" <<EOF
num-threads: 1
max-connections: 20000
error-log: $dir/h2o/error.log
listen:
  host: 127.0.0.1
  port: $port
hosts:
  default:
    paths:
      /:
        file.dir: $dir/h2o/www
        file.index: [ 'index.txt' ]
EOF
        chmod -R a+rX "$dir/h2o"
        BENCH_CMD=(h2o -c "$dir/h2o/h2o.conf")
        BENCH_STOP_SIG=TERM
        ;;
    uvicorn)
        mkdir -p "$dir/uvicorn"
        cat >"$dir/uvicorn/bench_hello.py" <<'EOF'
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]})
    await send({"type": "http.response.body", "body": b"Hello, World!"})
EOF
        BENCH_CMD=("$BENCH_PYTHON" -m uvicorn --app-dir "$dir/uvicorn" bench_hello:app
            --host 127.0.0.1 --port "$port" --loop uvloop --http httptools --workers 1
            --no-access-log --lifespan off --log-level warning)
        BENCH_STOP_SIG=INT
        ;;
    *) bench_die "unknown server $name" ;;
    esac
}

# The WebSocket echo servers (bench_server_cmd NAME DIR PORT - ws).
bench_ws_server_cmd() {
    local name=$1 dir=$2 port=$3
    case $name in
    casgi)
        BENCH_CMD=("$BENCH_BUILD/apps/casgi" "$BENCH_BUILD/apps/ws_echo.so" --host 127.0.0.1
            --port "$port" --no-access-log --log-level warning)
        BENCH_STOP_SIG=INT
        ;;
    uvicorn)
        mkdir -p "$dir/uvicorn"
        cat >"$dir/uvicorn/bench_ws_echo.py" <<'EOF'
async def app(scope, receive, send):
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return  # websocket.disconnect
            if message.get("bytes") is not None:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
            else:
                await send({"type": "websocket.send", "text": message["text"]})
    elif scope["type"] == "http":
        await send({"type": "http.response.start", "status": 404,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"9")]})
        await send({"type": "http.response.body", "body": b"Not Found"})
EOF
        BENCH_CMD=("$BENCH_PYTHON" -m uvicorn --app-dir "$dir/uvicorn" bench_ws_echo:app
            --host 127.0.0.1 --port "$port" --loop uvloop --http httptools --ws websockets
            --workers 1 --no-access-log --lifespan off --log-level warning)
        BENCH_STOP_SIG=INT
        ;;
    *) bench_die "no WebSocket echo server for $name" ;;
    esac
}

# bench_start NAME MODE [WRAPPER...]
# Starts NAME on free ports, pinned to BENCH_SERVER_CPU, under WRAPPER (valgrind, strace) if
# given, and waits until GET / answers the expected 13 bytes. On success sets SRV_PID (the
# process we started: the wrapper if any), SRV_PORT, SRV_H2C_PORT (where to try h2c, with
# bench_h2c_check), SRV_LOG and SRV_STOP_SIG, and returns 0. Otherwise stops what it started,
# sets SRV_NOTE to the reason and returns 1. In MODE "ws" the server is an echo server
# (bench_ws_server_cmd), and it is ready once bench/ws_load gets one message echoed through a
# WebSocket.
bench_start() {
    local name=$1 mode=$2 dir deadline body
    shift 2
    SRV_NOTE=""
    SRV_PID=""
    case $name in
    casgi) [ -x "$BENCH_BUILD/apps/casgi" ] || { SRV_NOTE="not built"; return 1; } ;;
    nginx | h2o) command -v "$name" >/dev/null || { SRV_NOTE="$name not installed"; return 1; } ;;
    uvicorn) "$BENCH_PYTHON" -c 'import uvicorn, uvloop, httptools' 2>/dev/null ||
        { SRV_NOTE="uvicorn, uvloop or httptools not installed"; return 1; } ;;
    esac
    if [ "$mode" = ws ]; then
        case $name in
        casgi | uvicorn) ;;
        *) SRV_NOTE="no WebSocket echo server configured"; return 1 ;;
        esac
        [ -x "$BENCH_BUILD/bench/ws_load" ] || { SRV_NOTE="bench/ws_load not built"; return 1; }
        [ "$name" != casgi ] || [ -f "$BENCH_BUILD/apps/ws_echo.so" ] ||
            { SRV_NOTE="ws_echo.so not built"; return 1; }
        [ "$name" != uvicorn ] || "$BENCH_PYTHON" -c 'import websockets' 2>/dev/null ||
            { SRV_NOTE="python3-websockets not installed"; return 1; }
    fi
    SRV_PORT=$(bench_free_port)
    SRV_H2C_PORT=$SRV_PORT
    [ "$name" = nginx ] && SRV_H2C_PORT=$(bench_free_port)
    dir=$(mktemp -d "$BENCH_TMP/$name.XXXXXX")
    chmod 755 "$dir"
    bench_server_cmd "$name" "$dir" "$SRV_PORT" "$SRV_H2C_PORT" "$mode"
    SRV_STOP_SIG=$BENCH_STOP_SIG
    SRV_LOG=$dir/server.log
    taskset -c "$BENCH_SERVER_CPU" "$@" "${BENCH_CMD[@]}" >"$SRV_LOG" 2>&1 &
    SRV_PID=$!
    BENCH_PIDS+=("$SRV_PID")
    deadline=$((SECONDS + BENCH_START_TIMEOUT))
    while :; do
        if ! bench_alive "$SRV_PID"; then
            SRV_NOTE="exited at start-up: $(bench_log_tail "$SRV_LOG" "$dir")"
            wait "$SRV_PID" 2>/dev/null || true
            return 1
        fi
        if [ "$mode" = ws ]; then
            # Ready once one message comes back; one that never does is caught by the deadline.
            "$BENCH_BUILD/bench/ws_load" -c 1 -s 16 -m 1 -u "ws://127.0.0.1:$SRV_PORT/" \
                >"$dir/ready.out" 2>&1 && return 0
            if [ $SECONDS -ge $deadline ]; then
                SRV_NOTE="no WebSocket echo on port $SRV_PORT after ${BENCH_START_TIMEOUT}s: "
                SRV_NOTE+=$(tail -n 1 "$dir/ready.out" | head -c 200)
                bench_stop "$SRV_PID" KILL 2
                return 1
            fi
            sleep 0.2
            continue
        fi
        body=$(curl -s -m 2 -w '\n%{http_code} %{content_type}' "http://127.0.0.1:$SRV_PORT/" 2>/dev/null) &&
            break
        if [ $SECONDS -ge $deadline ]; then
            SRV_NOTE="no answer on port $SRV_PORT after ${BENCH_START_TIMEOUT}s"
            bench_stop "$SRV_PID" KILL 2
            return 1
        fi
        sleep 0.2
    done
    if [ "$body" != $'Hello, World!\n200 text/plain' ]; then
        SRV_NOTE="wrong answer to GET /: $(printf '%s' "$body" | tr '\n' ' ' | head -c 200)"
        bench_stop "$SRV_PID" "$SRV_STOP_SIG" 10
        return 1
    fi
    return 0
}

# The last lines a failed server wrote, on one line.
bench_log_tail() {
    local log=$1 dir=$2
    cat "$log" "$dir"/*/error.log 2>/dev/null | grep -v '^\s*$' | tail -n 3 | tr '\n' ' ' |
        head -c 300
}

# Alive and not a zombie (a child that exited stays visible to kill -0 until it is waited for).
bench_alive() {
    local state
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

bench_descendants() {
    local child
    for child in $(pgrep -P "$1" 2>/dev/null); do
        echo "$child"
        bench_descendants "$child"
    done
}

# bench_stop PID SIGNAL TIMEOUT
# Sends SIGNAL to the server we started as PID (to strace's child when PID is strace, so that
# strace survives to print its summary), waits up to TIMEOUT seconds for PID to exit, then kills
# PID and whatever it started. Returns 0 if it exited on SIGNAL alone.
bench_stop() {
    local pid=$1 sig=$2 timeout=$3 deadline target rc=0 all
    bench_alive "$pid" || {
        wait "$pid" 2>/dev/null || true
        return 0
    }
    all=$(bench_descendants "$pid")
    target=$pid
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = strace ]; then
        target=$(pgrep -P "$pid" | head -n 1)
        [ -n "$target" ] || target=$pid
    fi
    kill -s "$sig" "$target" 2>/dev/null || true
    deadline=$((SECONDS + timeout))
    while bench_alive "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    if bench_alive "$pid"; then
        bench_log "pid $pid did not exit on SIG$sig within ${timeout}s; killing it"
        # shellcheck disable=SC2086 # $all is a list of pids
        kill -s KILL "$pid" $all 2>/dev/null || true
        rc=1
    fi
    wait "$pid" 2>/dev/null || true
    # A worker left behind by a master that was killed.
    for target in $all; do bench_alive "$target" && kill -s KILL "$target" 2>/dev/null; done
    return $rc
}

# CPU time (user + system, in clock ticks) of PID and all its descendants and threads.
bench_cpu_ticks() {
    local p total=0 t
    for p in "$1" $(bench_descendants "$1"); do
        t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
        total=$((total + ${t:-0}))
    done
    echo "$total"
}

# bench_h2c_check NAME PORT: whether NAME answers GET / over h2c with prior knowledge on PORT
# with the same 13 bytes as over HTTP/1.1. Returns 0 if it does; otherwise sets SRV_H2C_NOTE to
# "n/a: no h2c" for uvicorn, which has no HTTP/2, or, for a server that should answer (every
# other one), to what went wrong, and returns 1.
bench_h2c_check() {
    local name=$1 port=$2 body
    SRV_H2C_NOTE=""
    body=$(curl -sS -m 5 --http2-prior-knowledge "http://127.0.0.1:$port/" \
        -w '\n%{http_code} %{content_type} HTTP/%{http_version}' 2>&1) || true
    [ "$body" = $'Hello, World!\n200 text/plain HTTP/2' ] && return 0
    if [ "$name" = uvicorn ]; then
        SRV_H2C_NOTE="n/a: no h2c"
    else
        SRV_H2C_NOTE="no h2c answer on port $port: "
        SRV_H2C_NOTE+=$(printf '%s' "$body" | tr '\n' ' ' | head -c 150)
    fi
    return 1
}

# Machine facts for the report.
bench_machine() {
    printf 'nproc\t%s\n' "$(nproc)"
    printf 'cpu\t%s\n' "$(grep -m1 '^model name' /proc/cpuinfo | sed 's/.*: //')"
    printf 'memory\t%s\n' "$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    printf 'os\t%s\n' "$(. /etc/os-release && echo "$PRETTY_NAME")"
    printf 'load\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
}
