#!/usr/bin/env bash
# Browser end-to-end test of the demo page: starts Redis (unless EARSHOT_REDIS_URL)
# and `bin/earshot serve --demo` on free ports, then drives headless Chromium with a
# fake microphone playing the JFK clip (web/sdk/test/browser/demo.e2e.mjs), then a
# Mandarin clip through the WAV file input with the multilingual base model, which the
# server loads beside tiny.en (a missing base fails under CI=true, else that case is
# skipped with a warning: `make model MODEL=base` installs it).
# Env: EARSHOT_BIN (default bin/earshot), ARTIFACTS (screenshot dir, default
# web/sdk/test-artifacts), CHROMIUM (default /usr/bin/chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin=${EARSHOT_BIN:-$root/bin/earshot}
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
export ARTIFACTS=${ARTIFACTS:-web/sdk/test-artifacts}

die() { echo "browser-test: $*" >&2; exit 1; }

[[ -x $bin ]] || die "$bin not found: run 'make build' (or set EARSHOT_BIN)"
if [[ ! -x $CHROMIUM ]]; then
  echo "browser-test: installing chromium" >&2
  sudo=; [[ $(id -u) == 0 ]] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null \
    || die "could not install chromium"
fi
if [[ ! -d web/sdk/node_modules/playwright-core || ! -d web/sdk/node_modules/ws ]]; then
  (cd web/sdk && npm ci --no-audit --no-fund) || die "npm ci in web/sdk failed"
fi

free_port() { node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

if [[ -z ${EARSHOT_REDIS_URL:-} ]]; then
  rport=$(free_port)
  redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >"$tmp/redis.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.05; done
  redis-cli -p "$rport" ping >/dev/null 2>&1 || { cat "$tmp/redis.log" >&2; die "redis-server did not start"; }
  export EARSHOT_REDIS_URL=redis://127.0.0.1:$rport/0
fi

models=tiny.en
if "$bin" models path base >/dev/null 2>&1; then
  models=tiny.en,base
elif [[ ${CI:-} == true ]]; then
  die "model base is missing (the Mandarin case needs it): run 'make model MODEL=base'"
else
  echo "browser-test: WARNING: model base is missing, the Mandarin case will be SKIPPED (run 'make model MODEL=base')" >&2
fi

port=$(free_port)
EARSHOT_DATA_DIR=${EARSHOT_DATA_DIR:-$tmp/data} "$bin" serve --listen "127.0.0.1:$port" --demo --models "$models" >"$tmp/earshot.log" 2>&1 &
pids+=($!)
export EARSHOT_URL=http://127.0.0.1:$port
for i in $(seq 900); do
  curl -fsS "$EARSHOT_URL/readyz" >/dev/null 2>&1 && break
  kill -0 "${pids[-1]}" 2>/dev/null || { cat "$tmp/earshot.log" >&2; die "earshot serve exited"; }
  (( i == 900 )) && { tail -50 "$tmp/earshot.log" >&2; die "earshot serve not ready after 180 s"; }
  sleep 0.2
done

if ! node web/sdk/test/browser/demo.e2e.mjs; then
  echo "---- earshot serve log (tail) ----" >&2
  tail -40 "$tmp/earshot.log" >&2
  exit 1
fi
