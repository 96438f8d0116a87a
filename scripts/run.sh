#!/usr/bin/env bash
# Starts everything on one machine: a private Redis (AOF on) under ./data/redis unless
# EARSHOT_REDIS_URL is set, then `earshot serve` (embedded NATS + gateway + transcriber +
# billing) with the browser demo on. Ctrl-C stops everything it started.
# The admin commands run from the same directory find both: serve writes its embedded
# NATS URL to $DATA/nats.url, this script the Redis URL to $DATA/redis.url (both 0600,
# removed at exit), so `earshot tenants create T` and `earshot keys create --tenant T`
# need no --redis or --nats.
# `scripts/run.sh models` only prints the models it would serve (comma-separated; empty:
# the server's default) and exits: `make bench` measures the knee of each.
set -euo pipefail
# On an x86 CPU with AVX2, tiny.en's 8-bit copy decodes faster within a WER point: about a
# third without AVX-512; with it about 6 % when whisper.cpp is built for AVX-512 (the
# default, WHISPER_CPU=auto) and its live decodes about 15 % in an AVX2 build
# (WHISPER_CPU=portable) (BENCHMARKS.md, Density, "q8_0 on an AVX2-only CPU", "q8_0 the
# default on AVX-512 too" and "An AVX-512 build since llamafile"): serve it beside
# tiny.en and make it the default, unless the models were chosen (EARSHOT_MODELS,
# EARSHOT_DEFAULT_MODEL) or the GPU is asked for. Clients naming tiny.en still get float16.
# choose_models exports EARSHOT_MODELS and EARSHOT_DEFAULT_MODEL when it makes that choice,
# and sets gain to what the 8-bit copy gains on this CPU ("" when it does not).
choose_models() {
  gain=""
  local cpuinfo="${EARSHOT_CPUINFO:-/proc/cpuinfo}"
  local q8="${EARSHOT_MODEL_DIR:-$HOME/.cache/earshot/models}/ggml-tiny.en-q8_0.bin"
  if [ -z "${EARSHOT_MODELS:-}${EARSHOT_DEFAULT_MODEL:-}" ] && [ -z "${EARSHOT_GPU:-}" ] && [ -r "$cpuinfo" ] &&
    grep -qw avx2 "$cpuinfo" && [ -f "$q8" ]; then
    export EARSHOT_MODELS="tiny.en-q8_0,tiny.en" EARSHOT_DEFAULT_MODEL="tiny.en-q8_0"
    gain="about a third faster (AVX2 without AVX-512)"
    if grep -qw avx512f "$cpuinfo"; then
      gain="about 6 % faster (AVX-512, whisper.cpp built for it)"
      [ "${WHISPER_CPU:-auto}" = portable ] &&
        gain="about 15 % faster in live streams (AVX-512, whisper.cpp built for AVX2 only; pre-recorded audio no faster)"
    fi
  fi
  true
}
if [ "${1:-}" = models ]; then
  choose_models
  echo "${EARSHOT_MODELS:-${EARSHOT_DEFAULT_MODEL:-}}"
  exit 0
fi
BIN="${EARSHOT_BIN:-bin/earshot}"
DATA="${EARSHOT_DATA_DIR:-data}"
# Loopback unless told otherwise: EARSHOT_LISTEN=:8080 make run serves other machines too.
LISTEN="${EARSHOT_LISTEN:-127.0.0.1:8080}"
redis_pid=""
cleanup() {
  rm -f "$DATA/redis.url"
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
  true
}
trap cleanup EXIT
if [ -z "${EARSHOT_REDIS_URL:-}" ]; then
  port="${REDIS_PORT:-6380}"
  mkdir -p "$DATA/redis"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$(cd "$DATA/redis" && pwd)" \
    --appendonly yes --appendfsync everysec --save "" --logfile redis.log &
  redis_pid=$!
  for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$port" ping >/dev/null || { echo "run.sh: redis-server did not start; see $DATA/redis/redis.log" >&2; exit 1; }
  export EARSHOT_REDIS_URL="redis://127.0.0.1:$port/0"
  echo "redis: $EARSHOT_REDIS_URL (AOF in $DATA/redis)"
fi
choose_models
if [ -n "$gain" ]; then
  echo "models: tiny.en-q8_0 (default) and tiny.en: on this CPU the 8-bit copy decodes $gain, within a WER point (BENCHMARKS.md, Density); EARSHOT_MODELS=tiny.en EARSHOT_DEFAULT_MODEL=tiny.en make run serves float16 alone"
fi
export EARSHOT_DATA_DIR="$DATA"
(umask 077 && mkdir -p "$DATA")
rm -f "$DATA/redis.url" # a fresh file, never written through one another user left
(umask 077 && printf '%s\n' "$EARSHOT_REDIS_URL" >"$DATA/redis.url")
"$BIN" serve --listen "$LISTEN" --demo &
serve_pid=$!
trap 'kill -TERM $serve_pid 2>/dev/null; wait $serve_pid; cleanup' INT TERM
wait $serve_pid
