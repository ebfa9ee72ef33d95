#!/usr/bin/env bash
# Builds casgi with -Werror under AddressSanitizer + UndefinedBehaviorSanitizer, runs every test
# (unit and integration) through ctest, then builds everything in Release so the benchmark build
# cannot rot. Installs missing Debian packages first.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh

jobs=$(nproc 2>/dev/null || echo 2)

cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DCASGI_WERROR=ON \
      -DCASGI_SANITIZE="address;undefined" >/dev/null
cmake --build build/asan -j "$jobs"
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
  ctest --test-dir build/asan --output-on-failure -j "$jobs" --timeout 300

cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DCASGI_WERROR=ON >/dev/null
cmake --build build/release -j "$jobs"
echo "release build: ok"
