#!/usr/bin/env bash
# Builds whisper.cpp 1.9.1 from the C/C++ sources bundled in the npm package
# nodejs-whisper@0.3.1 into a per-user cache outside the checkout, and prints
# the environment cgo needs. Reuses a finished build.
#
#   scripts/whisper.sh            # CPU, static libraries (the default)
#   GPU=cuda scripts/whisper.sh   # CUDA backend (needs nvcc), shared libraries
#   scripts/whisper.sh env        # print CGO_* exports for the current build
#   SANITIZE=address scripts/whisper.sh   # CPU with AddressSanitizer (scripts/whisper-asan.sh)
#   WHISPER_CPU=portable scripts/whisper.sh   # x86: AVX2 only, for binaries run on other machines
#
# Cache layout: $EARSHOT_CACHE/whisper.cpp-1.9.1/{src,build-cpu,build-cuda,build-cpu-address}
#
# The sources get our patches in scripts/whisper-patches (each says what and why) before
# the build; src/.earshot-patches records which. When the patches change, the sources
# are fetched and built again.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PATCHES=("$HERE"/whisper-patches/*.patch)
PATCH_ID=$(cat "${PATCHES[@]}" | sha256sum | cut -c1-16)

NPM_PKG="nodejs-whisper@0.3.1"
# sha512 integrity npm records for the tarball (npm view nodejs-whisper@0.3.1 dist.integrity).
NPM_INTEGRITY="sha512-ceoilUVraRuR5FnNyXpGQT2auAR48Oc3AQBEmkXnVpSn9iN6yVRzQBFCqVTGWbk6Wdi95NhvwXNzFvuR7erLWw=="
NPM_SHA256="92041caf2b26c74b7f489fedf37bd093f216eebd61df512045ec2d19d0531d37"
WVER="1.9.1"

GPU="${GPU:-none}"
CACHE="${EARSHOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/earshot}"
ROOT="$CACHE/whisper.cpp-$WVER"
SRC="$ROOT/src"
SANITIZE="${SANITIZE:-}"
WHISPER_CPU="${WHISPER_CPU:-auto}"
case "$WHISPER_CPU" in
  auto|portable) ;;
  *) echo "whisper.sh: WHISPER_CPU=$WHISPER_CPU is not known; use WHISPER_CPU=auto (this machine's instructions) or WHISPER_CPU=portable (AVX2 only)" >&2; exit 2 ;;
esac
case "$SANITIZE" in
  ''|address) ;;
  *) echo "whisper.sh: SANITIZE=$SANITIZE is not known; use SANITIZE=address or leave it empty" >&2; exit 2 ;;
esac
case "$GPU" in
  none|cpu) BUILD="$ROOT/build-cpu${SANITIZE:+-$SANITIZE}" ;;
  cuda)     BUILD="$ROOT/build-cuda" ;;
  *) echo "whisper.sh: GPU=$GPU is not known; use GPU=none or GPU=cuda" >&2; exit 2 ;;
esac

print_env() {
  local libs="-L$BUILD/src -L$BUILD/ggml/src"
  if [ "$GPU" = cuda ]; then
    # Shared libraries: whisper.cpp's CMake puts them in build/bin.
    libs="-L$BUILD/bin $libs -L$BUILD/ggml/src/ggml-cuda -Wl,-rpath,$BUILD/bin -Wl,-rpath,$BUILD/src -Wl,-rpath,$BUILD/ggml/src"
  fi
  # The build's id in CGO_CFLAGS: go's build cache keys cgo packages on their flags, not on
  # the static libraries they link, so a whisper.cpp rebuilt with other patches or options
  # would otherwise be linked into nothing until the Go sources changed.
  local id; id="$PATCH_ID-$(cat "$BUILD/.done" 2>/dev/null || echo unbuilt)"
  echo "export CGO_ENABLED=1"
  echo "export CGO_CFLAGS='-I$SRC/include -I$SRC/ggml/include -DEARSHOT_WHISPER_BUILD=$id'"
  echo "export CGO_CXXFLAGS='-I$SRC/include -I$SRC/ggml/include'"
  echo "export CGO_LDFLAGS='$libs'"
  echo "export C_INCLUDE_PATH='$SRC/include:$SRC/ggml/include'"
  echo "export LIBRARY_PATH='$BUILD/src:$BUILD/ggml/src'"
}

if [ "${1:-}" = env ]; then print_env; exit 0; fi

apply_patches() { # DIR
  local p
  for p in "${PATCHES[@]}"; do
    if command -v patch >/dev/null; then
      patch -d "$1" -p1 --forward --batch --quiet < "$p" >&2
    else # git apply as a plain patch tool: the ceiling keeps it from finding a repository above
      (cd "$1" && GIT_CEILING_DIRECTORIES="$(dirname "$1")" git apply -p1 "$p")
    fi || { echo "whisper.sh: patch $(basename "$p") does not apply to whisper.cpp $WVER" >&2; exit 1; }
  done
  echo "$PATCH_ID" > "$1/.earshot-patches"
}

fetch_sources() {
  if [ -f "$SRC/include/whisper.h" ]; then
    [ "$(cat "$SRC/.earshot-patches" 2>/dev/null)" = "$PATCH_ID" ] && return 0
    echo ">> whisper.cpp patches changed: fetching and building whisper.cpp $WVER again" >&2
    rm -rf "$SRC" "$ROOT"/build-*
  fi
  command -v npm >/dev/null || { echo "whisper.sh: npm is needed to fetch the whisper.cpp sources (apt-get install npm)" >&2; exit 1; }
  local tmp; tmp=$(mktemp -d)
  echo ">> fetching $NPM_PKG (whisper.cpp $WVER sources) with npm pack" >&2
  (cd "$tmp" && npm pack --silent "$NPM_PKG" >/dev/null)
  local tgz; tgz=$(ls "$tmp"/*.tgz)
  local got; got=$(sha256sum "$tgz" | cut -d' ' -f1)
  if [ "$got" != "$NPM_SHA256" ]; then
    echo "whisper.sh: $NPM_PKG tarball sha256 is $got, expected $NPM_SHA256 ($NPM_INTEGRITY); refusing to build" >&2
    exit 1
  fi
  tar -xzf "$tgz" -C "$tmp"
  mkdir -p "$ROOT"
  rm -rf "$SRC.tmp"; mv "$tmp/package/cpp/whisper.cpp" "$SRC.tmp"
  apply_patches "$SRC.tmp"
  mv "$SRC.tmp" "$SRC"
  rm -rf "$tmp"
}

# x86 instruction sets beyond AVX2 that ggml's CPU code is compiled for (WHISPER_CPU=auto,
# the default): those of the machine building it. With llamafile's matrix products, on a
# 2-vCPU AVX-512 Xeon, AVX-512 took about a fifth off offline decoding (tiny.en and its
# q8_0), a quarter off a float16 model's 10 s live window (tiny.en, base) and a tenth off a
# turn's q8_0 final (BENCHMARKS.md, Density: An AVX-512 build since llamafile). A binary
# so built refuses to load a model on a CPU without them (transcriber/whispercpp names what
# is missing), so a build meant for other machines (deploy/Dockerfile) sets
# WHISPER_CPU=portable: AVX2, FMA and F16C, one build for any x86-64 CPU that has AVX2.
cpu_args() {
  [ "$WHISPER_CPU" = auto ] && [ "$(uname -m)" = x86_64 ] && [ -r /proc/cpuinfo ] || return 0
  local flags; flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  has() { local f; for f in "$@"; do [[ "$flags" == *" $f "* ]] || return 1; done; }
  if has avx512f avx512cd avx512vl avx512dq avx512bw; then
    args+=(-DGGML_AVX512=ON)
    if has avx512vbmi; then args+=(-DGGML_AVX512_VBMI=ON); fi
    if has avx512_vnni; then args+=(-DGGML_AVX512_VNNI=ON); fi
    if has avx512_bf16; then args+=(-DGGML_AVX512_BF16=ON); fi
  fi
  if has avx_vnni; then args+=(-DGGML_AVX_VNNI=ON); fi
  return 0
}

build() {
  command -v cmake >/dev/null || { echo "whisper.sh: cmake is needed (apt-get install cmake)" >&2; exit 1; }
  # GGML_LLAMAFILE: ggml's tiled matrix products (llamafile's sgemm) for float16 and q8_0
  # weights. Off by default in whisper.cpp's ggml; on, the encoder took 25-33 % less time on
  # 2 CPU threads (tiny.en and base; BENCHMARKS.md, Density: llamafile's matrix products).
  local args=(-DCMAKE_BUILD_TYPE=Release -DWHISPER_BUILD_EXAMPLES=OFF -DWHISPER_BUILD_TESTS=OFF
    -DWHISPER_BUILD_SERVER=OFF -DGGML_NATIVE=OFF -DGGML_OPENMP=ON -DGGML_LLAMAFILE=ON)
  if [ "$GPU" = cuda ]; then
    command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || { echo "whisper.sh: GPU=cuda needs nvcc (CUDA toolkit) on PATH" >&2; exit 1; }
    args+=(-DBUILD_SHARED_LIBS=ON -DGGML_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCH:-90-real}")
    command -v ninja >/dev/null && args+=(-G Ninja)
  else
    args+=(-DBUILD_SHARED_LIBS=OFF)
    cpu_args
  fi
  if [ "$SANITIZE" = address ]; then
    [ "$GPU" = cuda ] && { echo "whisper.sh: SANITIZE=address is for the CPU build" >&2; exit 2; }
    args+=("-DCMAKE_C_FLAGS=-fsanitize=address -fno-omit-frame-pointer -g"
      "-DCMAKE_CXX_FLAGS=-fsanitize=address -fno-omit-frame-pointer -g")
  fi
  # .done records the configuration it was built with: a build made with other options
  # (an older checkout of this script) is configured and built again.
  local build_id; build_id=$(printf '%s\n' "${args[@]}" | sha256sum | cut -c1-16)
  if [ -f "$BUILD/.done" ]; then
    [ "$(cat "$BUILD/.done")" = "$build_id" ] && return 0
    echo ">> whisper.cpp build options changed: building $BUILD again" >&2
    rm -rf "$BUILD"
  fi
  echo ">> building whisper.cpp $WVER ($GPU${WHISPER_CPU:+, WHISPER_CPU=$WHISPER_CPU}) in $BUILD: ${args[*]}" >&2
  cmake -S "$SRC" -B "$BUILD" "${args[@]}" >&2
  cmake --build "$BUILD" -j "$(nproc)" --target whisper >&2
  echo "$build_id" > "$BUILD/.done"
}

fetch_sources
build
print_env
