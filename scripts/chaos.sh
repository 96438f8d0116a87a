#!/usr/bin/env bash
# Fault-injection suite (internal/chaos): a real nats-server (built from the module
# graph), a real Redis, separate earshot gateway / transcriber / billing processes, live
# streams through the public WebSocket API while processes are killed and restarted.
#
#   scripts/chaos.sh          # the whole suite (about 3 minutes on 2 cores)
#   scripts/chaos.sh short    # the CI form: TestShortFailover (about 35 s)
#
# Needs redis-server, the tiny.en model (make model) and the shared test data. The
# results (WER, words lost, ms billed vs accepted, goroutines) are in the -v log;
# RELIABILITY.md explains them.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/whisper.sh env)"
run=()
if [ "${1:-}" = short ]; then run=(-run Short); else export EARSHOT_CHAOS=full; fi
exec go test -count=1 -v -timeout 20m "${run[@]}" ./internal/chaos/
