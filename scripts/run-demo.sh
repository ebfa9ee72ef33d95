#!/usr/bin/env bash
# Builds casgi (Release) and serves the chat demo (apps/chat: rooms over WebSocket) on
# http://127.0.0.1:8000 until Ctrl-C; open it in two browser tabs.
# Extra arguments go to the runner, e.g. scripts/run-demo.sh --port 9000 --log-level debug
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc 2>/dev/null || echo 2)"
exec build/release/apps/casgi build/release/apps/chat.so --host 127.0.0.1 --port 8000 "$@"
