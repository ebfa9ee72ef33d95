#!/usr/bin/env bash
# Installs the Debian 12 packages casgi needs to build, test and run its demo: only the missing
# ones, with sudo when not root. Safe to run again; prints nothing when all are present.
set -euo pipefail

packages=(
  # build
  gcc make cmake pkg-config
  libuv1-dev libcmocka-dev node-llhttp libnghttp2-dev libwslay-dev libssl-dev zlib1g-dev
  # demo apps
  libjansson-dev
  # test peers
  curl python3 python3-websockets python3-h2 nghttp2-client wrk procps
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
