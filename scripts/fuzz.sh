#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME (default 20s) each, one at a time.
# New crashers land in the package's testdata/fuzz/FuzzXxx/ and make `make test` fail
# until fixed, as go test replays that corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-20s}"
eval "$(scripts/whisper.sh env)"
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo ">> $pkg $target ($t)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$t" -parallel 2 "$pkg"
  done
done
