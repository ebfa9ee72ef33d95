#!/usr/bin/env bash
# End-to-end browser test of the chat demo: installs what it needs if missing (Debian's chromium,
# Node.js and npm; playwright-core from package-lock.json), then runs chat.test.mjs with node's
# built-in test runner. playwright-core downloads no browser: the test drives /usr/bin/chromium.
#
# Environment: CASGI_RUNNER, CASGI_CHAT (default build/release/apps/{casgi,chat.so}), see
# chat.test.mjs for the rest.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "run.sh: installing ${need[*]}" >&2
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=120 update -q >/dev/null
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=120 install -y -q "${need[@]}" >/dev/null
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "run.sh: warning: node $(node --version) is older than playwright-core wants (>= 20)" >&2
fi

cd "$here"
if [ ! -f node_modules/playwright-core/package.json ]; then
  npm ci --no-audit --no-fund
fi

# The test bounds itself (< 60 s); this is the backstop if node itself hangs.
exec timeout -k 10 120 node --test --test-reporter=spec chat.test.mjs
