#!/usr/bin/env bash
# Runs the whisper.cpp binding's tests with whisper.cpp and ggml built with
# AddressSanitizer (go test -asan), so that a read or write outside an allocation in the
# C/C++ code stops the test with a report instead of corrupting memory or faulting only
# now and then. Found: the DTW token-time walk read past the segments (whisper patch 0006).
#
#   scripts/whisper-asan.sh                  # every test of the package (make asan)
#   scripts/whisper-asan.sh -run 'TestX'     # other go test arguments
#
# The sanitized build lives beside the normal one ($EARSHOT_CACHE/whisper.cpp-1.9.1/
# build-cpu-address); the first run builds it (about 5 minutes on 2 cores).
# Not part of make test: ASan makes whisper several times slower.
set -euo pipefail
cd "$(dirname "$0")/.."
SANITIZE=address scripts/whisper.sh
eval "$(SANITIZE=address scripts/whisper.sh env)"
export OMP_WAIT_POLICY=PASSIVE
# Go's own allocator is not ASan's; leaks are not this check's business (the model stays
# loaded for the test binary's life on purpose).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0:halt_on_error=1}"
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(-run .)
echo ">> go test -asan ./transcriber/whispercpp/ ${args[*]}" >&2
go test -asan -count=1 -timeout 30m "${args[@]}" ./transcriber/whispercpp/
