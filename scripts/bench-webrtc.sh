#!/usr/bin/env bash
# Does the browser's audio processing cost accuracy? Streams English clips of the
# speech manifest through the web SDK's real capture path (headless Chromium, fake
# microphone, getUserMedia with each combination of echoCancellation / noiseSuppression /
# autoGainControl, the capture worklet) to a real `bin/earshot serve` (Redis and
# model on this machine), and the same 16 kHz samples from Node without a browser as
# the baseline; then word error rates per configuration (internal/wer).
# Output: bench/out/webrtc/{results.json,report.md,wav/}.
# Env: RUNS (default 3), CONFIGS, CLIPS (see web/sdk/scripts/bench-webrtc.mjs),
# EARSHOT_TESTDATA (default ../shared/testdata), EARSHOT_BIN, CHROMIUM, MODEL (tiny.en).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin=${EARSHOT_BIN:-$root/bin/earshot}
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
export OUT=${OUT:-$root/bench/out/webrtc}
export EARSHOT_TESTDATA=${EARSHOT_TESTDATA:-$root/../shared/testdata}

die() { echo "bench-webrtc: $*" >&2; exit 1; }

[[ -x $bin ]] || die "$bin not found: run 'make build model' (or set EARSHOT_BIN)"
[[ -f $EARSHOT_TESTDATA/speech/manifest.tsv ]] || die "no speech manifest under $EARSHOT_TESTDATA (set EARSHOT_TESTDATA)"
command -v node >/dev/null && command -v redis-server >/dev/null || die "node and redis-server are needed: run 'make deps'"
if [[ ! -x $CHROMIUM ]]; then
  echo "bench-webrtc: installing chromium" >&2
  sudo=; [[ $(id -u) == 0 ]] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null \
    || die "could not install chromium"
fi
if [[ ! -d web/sdk/node_modules/playwright-core || ! -d web/sdk/node_modules/ws ]]; then
  (cd web/sdk && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci in web/sdk failed"
fi
# The browser loads the SDK and the worklet that bin/earshot embeds.
if newer=$(find web/static -type f -newer "$bin" -print -quit) && [[ -n $newer ]]; then
  echo "bench-webrtc: WARNING: $newer is newer than $bin; the browser gets the embedded copy (make build)" >&2
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

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >"$tmp/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.05; done
redis-cli -p "$rport" ping >/dev/null 2>&1 || { cat "$tmp/redis.log" >&2; die "redis-server did not start"; }
export EARSHOT_REDIS_URL=redis://127.0.0.1:$rport/0
export EARSHOT_DATA_DIR=$tmp/data

port=$(free_port)
"$bin" serve --listen "127.0.0.1:$port" >"$tmp/earshot.log" 2>&1 &
pids+=($!)
export EARSHOT_URL=http://127.0.0.1:$port
for i in $(seq 900); do
  curl -fsS "$EARSHOT_URL/readyz" >/dev/null 2>&1 && break
  kill -0 "${pids[-1]}" 2>/dev/null || { cat "$tmp/earshot.log" >&2; die "earshot serve exited"; }
  (( i == 900 )) && { tail -50 "$tmp/earshot.log" >&2; die "earshot serve not ready after 180 s"; }
  sleep 0.2
done
"$bin" tenants create acme --plan team >/dev/null
EARSHOT_API_KEY=$("$bin" keys create --tenant acme | sed -n 's/.*secret: *\([^ ]*\).*/\1/p')
[[ -n $EARSHOT_API_KEY ]] || die "earshot keys create printed no secret"
export EARSHOT_API_KEY

mkdir -p "$OUT"
if ! node web/sdk/scripts/bench-webrtc.mjs; then
  tail -40 "$tmp/earshot.log" >&2
  die "the benchmark failed"
fi
go run ./bench/webrtcwer "$OUT/results.json" >"$OUT/report.md"
cat "$OUT/report.md"
echo "bench-webrtc: report in $OUT/report.md"
