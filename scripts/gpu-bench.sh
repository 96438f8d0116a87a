#!/usr/bin/env bash
# GPU load benchmark (issue 12): N = 1, 8, 32, 64, 128, 256 concurrent real-time streams of
# recorded speech per model, stopping at the knee (partial or final p95 > 2 s, a stream behind
# real time by more than 2 s, or errors), on a transcriber worker that decodes with
# whisper.cpp's CUDA backend. Writes, per model, bench.json + bench.md + latency.svg +
# cpu.svg (partial/word/final latency, WER, RTF, GPU util and memory from nvidia-smi, CPU
# and RSS) and a summary gpu-bench.md to $OUT. Then it measures whether a batched encoder
# would pay on this GPU (issue 23: TestMeasureEncoderBatching, transcriber/whispercpp/
# batch_test.go: one encoder graph of n·c frames against n of c, per model swept) →
# encoder-batching.log and a table in gpu-bench.md.
#
#   scripts/gpu-bench.sh prep     # HERE (Go, internet): build bin/gpu-bench/ to carry
#   scripts/gpu-bench.sh          # ON THE GPU HOST: nvcc, cmake, ninja; no Go, no internet
#   GPU=none scripts/gpu-bench.sh # CPU, tiny.en, N = 1, 2: the same path end to end (CI)
#
# The GPU host has no Go and no Redis, so the benchmark runs `earshot bench --engine
# --worker-model`: an embedded NATS server, one transcriber worker (the production
# transcriber.Worker and Pool) and the gateway's ingest.Client in one process. Sessions
# go over real NATS exactly as from a gateway; the WebSocket edge and billing are not in
# the loop (the CPU `make bench` covers them), so "billed" is n/a. Models have random
# weights (`earshot models synth`): latency and GPU load are real, WER is meaningless.
#
# prep builds whisper.cpp 1.9.1 as CPU *shared* libraries, links bin/gpu-bench/earshot and
# the whispercpp package's test binary (whispercpp.test, for the batching measurement)
# against them (libwhisper.so.1, libggml*.so), and packs the trimmed whisper.cpp sources,
# the Silero VAD and the speech test data beside it (about 40 MB: carry "bin/gpu-bench").
# On the GPU host this script compiles the same sources with GGML_CUDA for sm_90
# (CUDA_ARCH=90-real; `GPU=cuda scripts/whisper.sh`) and runs the binary with
# LD_LIBRARY_PATH on the CUDA libraries, which export the same symbols.
#
# Environment: OUT (default bench/out/gpu), DURATION (audio per stream per level, 12s),
# STREAMS (override every model's levels), MODELS (default "large-v3-turbo small tiny.en";
# GPU=none: "tiny.en"), SLOTS (concurrent decodes, default 8 on GPU), BUDGET_S (stop
# starting models after this many seconds, default 420), BATCH (the batching measurement:
# default 1 on the GPU, 0 with GPU=none, where 1 runs it with go test on the CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
GPU="${GPU:-cuda}"
PREP="$ROOT/bin/gpu-bench"
WORK="$ROOT/bin/gpu-bench-work"
OUT="${OUT:-$ROOT/bench/out/gpu}"
DURATION="${DURATION:-12s}"
BUDGET_S="${BUDGET_S:-420}"
START=$(date +%s)
WVER=1.9.1
log() { echo ">> $(date +%T) $*" >&2; }

if [ "${1:-}" = prep ]; then
  command -v go >/dev/null || { echo "gpu-bench.sh prep needs Go" >&2; exit 1; }
  eval "$(scripts/whisper.sh env)" # fetches the sources once (npm) and builds the static CPU libs
  CACHE="${EARSHOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/earshot}"
  SRC="$CACHE/whisper.cpp-$WVER/src"
  SH="$CACHE/whisper.cpp-$WVER/build-shared"
  if [ ! -f "$SH/.done" ]; then
    log "building whisper.cpp $WVER CPU shared libraries in $SH"
    cmake -S "$SRC" -B "$SH" -DCMAKE_BUILD_TYPE=Release -DWHISPER_BUILD_EXAMPLES=OFF -DWHISPER_BUILD_TESTS=OFF \
      -DWHISPER_BUILD_SERVER=OFF -DGGML_NATIVE=OFF -DGGML_OPENMP=ON -DGGML_LLAMAFILE=ON -DBUILD_SHARED_LIBS=ON >&2
    cmake --build "$SH" -j "$(nproc)" --target whisper >&2
    touch "$SH/.done"
  fi
  rm -rf "$PREP"; mkdir -p "$PREP/models" "$PREP/testdata/speech"
  log "linking bin/gpu-bench/earshot against the shared libraries"
  # whisper.cpp puts shared libraries in build/bin; only that directory is searched, so
  # the static CPU libraries cannot be picked instead.
  CGO_ENABLED=1 CGO_CFLAGS="-I$SRC/include -I$SRC/ggml/include" CGO_CXXFLAGS="-I$SRC/include -I$SRC/ggml/include" \
    CGO_LDFLAGS="-L$SH/bin" LIBRARY_PATH="$SH/bin" C_INCLUDE_PATH="$SRC/include:$SRC/ggml/include" \
    go build -trimpath -ldflags "-s -w" -o "$PREP/earshot" ./cmd/earshot
  # The GPU host has no Go: the batching measurement travels as a test binary.
  CGO_ENABLED=1 CGO_CFLAGS="-I$SRC/include -I$SRC/ggml/include" CGO_CXXFLAGS="-I$SRC/include -I$SRC/ggml/include" \
    CGO_LDFLAGS="-L$SH/bin" LIBRARY_PATH="$SH/bin" C_INCLUDE_PATH="$SRC/include:$SRC/ggml/include" \
    go test -c -trimpath -ldflags "-s -w" -o "$PREP/whispercpp.test" ./transcriber/whispercpp/
  tar czf "$PREP/whisper-src.tgz" -C "$SRC" --exclude=./examples --exclude=./models --exclude=./tests \
    --exclude=./bindings --exclude=./samples --exclude=./media .
  MD="${EARSHOT_MODEL_DIR:-$HOME/.cache/earshot/models}"
  cp "$MD/ggml-silero-v6.2.0.bin" "$PREP/models/"
  TD="${EARSHOT_TESTDATA:-$ROOT/../shared/testdata}"
  cp "$TD/speech/manifest.tsv" "$PREP/testdata/speech/"
  # longform_dev.wav is not in the manifest; the batching measurement cuts its windows
  # from it (2.5 MB).
  cp -r "$TD/speech/wav16k" "$PREP/testdata/speech/"
  for b in earshot whispercpp.test; do
    if ! ldd "$PREP/$b" | grep -q 'libwhisper.so'; then
      echo "gpu-bench.sh prep: $PREP/$b is not linked against libwhisper.so" >&2; exit 1
    fi
  done
  # A CPU smoke test of the packed binaries on their CPU shared libraries.
  LD_LIBRARY_PATH="$SH/bin" "$PREP/earshot" version
  LD_LIBRARY_PATH="$SH/bin" "$PREP/whispercpp.test" -test.list '^TestMeasureEncoderBatching$' | grep TestMeasureEncoderBatching >/dev/null
  du -sh "$PREP" >&2
  log "carry bin/gpu-bench to the GPU host and run scripts/gpu-bench.sh there"
  exit 0
fi

mkdir -p "$OUT" "$WORK/models"
case "$GPU" in
  cuda)
    [ -x "$PREP/earshot" ] || { echo "no $PREP/earshot: run 'scripts/gpu-bench.sh prep' (make gpu-bench-prep) where Go is, and carry bin/gpu-bench" >&2; exit 1; }
    BIN="$PREP/earshot"
    export EARSHOT_CACHE="$WORK/cache"
    SRC="$EARSHOT_CACHE/whisper.cpp-$WVER/src"
    if [ ! -f "$SRC/include/whisper.h" ]; then
      mkdir -p "$SRC"; tar xzf "$PREP/whisper-src.tgz" -C "$SRC"
    fi
    log "building whisper.cpp $WVER with CUDA (${CUDA_ARCH:-90-real})"
    GPU=cuda scripts/whisper.sh >/dev/null
    B="$EARSHOT_CACHE/whisper.cpp-$WVER/build-cuda"
    # whisper.cpp writes its shared libraries to build/bin (libwhisper.so.1, libggml*.so).
    export LD_LIBRARY_PATH="$B/bin:$B/src:$B/ggml/src${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    ldd "$BIN" | grep -q 'libggml-cuda' || ldd "$B/bin/libggml.so" 2>/dev/null | grep -q 'libggml-cuda' ||
      { echo "the CUDA build in $B has no libggml-cuda.so: check the whisper.cpp build log" >&2; exit 1; }
    VAD="$PREP/models/ggml-silero-v6.2.0.bin"
    MANIFEST="${MANIFEST:-$PREP/testdata/speech/manifest.tsv}"
    MODELS="${MODELS:-large-v3-turbo small tiny.en}"
    SLOTS="${SLOTS:-8}"
    THREADS=1
    GPUFLAGS=(--gpu-decode --gpu)
    BATCH="${BATCH:-1}"
    TESTDATA="$PREP/testdata"
    nvidia-smi -L > "$OUT/gpu.txt" 2>&1 || true
    nvidia-smi --query-gpu=name,memory.total,compute_cap,driver_version --format=csv >> "$OUT/gpu.txt" 2>&1 || true
    ;;
  none|cpu)
    BIN="${EARSHOT_BIN:-$ROOT/bin/earshot}"
    [ -x "$BIN" ] || { echo "no $BIN: make build" >&2; exit 1; }
    MD="${EARSHOT_MODEL_DIR:-$HOME/.cache/earshot/models}"
    VAD="$MD/ggml-silero-v6.2.0.bin"
    TD="${EARSHOT_TESTDATA:-$ROOT/../shared/testdata}"
    MANIFEST="${MANIFEST:-$TD/speech/manifest.tsv}"
    MODELS="${MODELS:-tiny.en}"
    SLOTS="${SLOTS:-1}"
    THREADS=2
    GPUFLAGS=()
    BATCH="${BATCH:-0}"
    TESTDATA="$TD"
    echo "CPU: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)" > "$OUT/gpu.txt"
    ;;
  *) echo "gpu-bench.sh: GPU=$GPU is not known; use GPU=cuda or GPU=none" >&2; exit 2 ;;
esac
[ -f "$VAD" ] || { echo "no Silero VAD at $VAD" >&2; exit 1; }
[ -f "$MANIFEST" ] || { echo "no speech manifest at $MANIFEST (set MANIFEST or EARSHOT_TESTDATA)" >&2; exit 1; }

levels() { # the sweep of one model
  if [ -n "${STREAMS:-}" ]; then echo "$STREAMS"; return; fi
  if [ "$GPU" != cuda ]; then echo 1,2; return; fi
  case "$1" in
    large-v3-turbo) echo 1,8,32,64,128,256 ;;
    small) echo 1,32,128,256 ;;
    *) echo 1,64,256 ;;
  esac
}

{
  echo "# GPU benchmark ($GPU)"
  echo
  echo '```'; cat "$OUT/gpu.txt"; echo '```'
  echo
  echo "Random-weight models (earshot models synth): latency, RTF and GPU load are real; WER is not meaningful."
  echo "Worker: $SLOTS decode slots × $THREADS threads; $DURATION of audio per stream per level."
} > "$OUT/gpu-bench.md"

for m in $MODELS; do
  if [ $(( $(date +%s) - START )) -gt "$BUDGET_S" ]; then
    log "time budget of ${BUDGET_S}s spent: skipping $m"; echo -e "\n## $m\n\nskipped: time budget spent" >> "$OUT/gpu-bench.md"; continue
  fi
  f="$WORK/models/ggml-$m.bin"
  [ -f "$f" ] || "$BIN" models synth --dims "$m" --out "$f" >&2
  cp -f "$VAD" "$WORK/models/"
  lv=$(levels "$m"); max=${lv##*,}
  log "model $m: streams $lv"
  rc=0
  "$BIN" bench --engine --worker-model "$f" --vad "$VAD" --slots "$SLOTS" --threads "$THREADS" \
    --max-sessions "$max" --streams "$lv" --duration "$DURATION" --knee 2s --knee-final 2s --manifest "$MANIFEST" \
    --out "$OUT/$m" "${GPUFLAGS[@]}" > "$OUT/$m.md" 2> "$OUT/$m.log" || rc=$?
  { echo; echo "## $m"; echo; if [ $rc -eq 0 ]; then cat "$OUT/$m.md"; else echo "failed (exit $rc): see $m.log"; tail -5 "$OUT/$m.log"; fi; } >> "$OUT/gpu-bench.md"
  [ $rc -eq 0 ] || { log "bench of $m failed (exit $rc)"; tail -20 "$OUT/$m.log" >&2; exit $rc; }
done
# Batched encoder (issue 23): would encoding several streams' windows in one graph pay on
# this GPU? TestMeasureEncoderBatching times one window of n·c encoder frames against n of
# c, on the models swept above (random weights: one decoded token, so the encoder's time
# is the real one). EARSHOT_BATCH_GPU=1 puts the weights on the GPU (use_gpu) in the CUDA
# build; whisper.cpp says on stderr which backend it took ("using CUDA0 backend").
if [ "$BATCH" = 1 ]; then
  have=()
  for m in $MODELS; do [ -f "$WORK/models/ggml-$m.bin" ] && have+=("$m"); done
  batch_models=$(IFS=,; echo "${have[*]}")
  log "encoder batching: $batch_models"
  benv=(EARSHOT_BENCH_BATCH=1 EARSHOT_BATCH_MODELS="$batch_models" EARSHOT_MODEL_DIR="$WORK/models" EARSHOT_TESTDATA="$TESTDATA")
  rc=0
  if [ -z "$batch_models" ]; then
    rc=1; echo "no model was synthesised above" > "$OUT/encoder-batching.log"
  elif [ "$GPU" = cuda ]; then
    [ -x "$PREP/whispercpp.test" ] || { echo "no $PREP/whispercpp.test: run 'scripts/gpu-bench.sh prep' again" >&2; exit 1; }
    env "${benv[@]}" EARSHOT_BATCH_GPU=1 "$PREP/whispercpp.test" -test.run '^TestMeasureEncoderBatching$' -test.v \
      -test.timeout 10m > "$OUT/encoder-batching.log" 2>&1 || rc=$?
    grep -q 'CUDA' "$OUT/encoder-batching.log" ||
      log "encoder batching: whisper.cpp did not report a CUDA backend: the figures may be the CPU's (see encoder-batching.log)"
  else
    (eval "$(GPU=none scripts/whisper.sh env)" && env "${benv[@]}" EARSHOT_BATCH_GPU=0 go test -count=1 -run '^TestMeasureEncoderBatching$' -v \
      -timeout 10m ./transcriber/whispercpp/) > "$OUT/encoder-batching.log" 2>&1 || rc=$?
  fi
  {
    echo; echo "## Encoder batching (TestMeasureEncoderBatching)"; echo
    if [ $rc -eq 0 ]; then sed -n 's/^ *batch_test\.go:[0-9]*: //p' "$OUT/encoder-batching.log"
    else echo "failed (exit $rc): see encoder-batching.log"; tail -5 "$OUT/encoder-batching.log"; fi
  } >> "$OUT/gpu-bench.md"
  [ $rc -eq 0 ] || { log "encoder batching failed (exit $rc)"; tail -20 "$OUT/encoder-batching.log" >&2; exit $rc; }
fi
log "done in $(( $(date +%s) - START ))s: $OUT/gpu-bench.md"
