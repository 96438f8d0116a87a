#!/usr/bin/env bash
# Smoke test of the earshot image in deploy/compose.yaml's topology where there is no compose
# tool and no NATS/Redis/haproxy images (what deploy/README.md "What was run here" ran):
# 3 NATS nodes (JetStream, R3) and Redis + replica + 3 Sentinels as host processes on
# loopback, earshot billing x2, transcriber x2 and gateway x2 as podman containers on the
# host network with compose.yaml's settings, haproxy with deploy/haproxy.cfg's backend.
# It streams a WAV through haproxy, stops a transcriber mid-stream (SIGTERM drain), prints
# the tenant's invoice, then stops everything with SIGTERM and reports each exit status.
#
#   deploy/podman-smoke.sh [IMAGE] [WAV]      (needs podman, redis-server, haproxy, go)
#
# PODMAN overrides the podman command: in a container without systemd and with cgroup v1,
# PODMAN="podman --runtime runc --cgroup-manager=cgroupfs" and ULIMITS (default
# "--ulimit nofile=4096:4096 --ulimit nproc=4096:4096") get past crun's setrlimit errors.
set -uo pipefail
cd "$(dirname "$0")/.."
IMG="${1:-localhost/earshot:dev}"
WAV="$(realpath "${2:-$HOME/.cache/earshot/whisper.cpp-1.9.1/src/bindings/go/samples/jfk.wav}")"
P="${PODMAN:-podman}"
read -r -a U <<<"${ULIMITS:---ulimit nofile=4096:4096 --ulimit nproc=4096:4096}"
D="${SMOKE_DIR:-data/podman-smoke}"
rm -rf "$D"; mkdir -p "$D"; D="$(cd "$D" && pwd)"
NATS_BIN="$D/nats-server"
go build -o "$NATS_BIN" github.com/nats-io/nats-server/v2 || exit 1
pids=() ctrs=()
cleanup() {
  for c in "${ctrs[@]}"; do
    $P stop -t 75 "$c" >/dev/null 2>&1
    echo "$c exit=$($P inspect "$c" --format '{{.State.ExitCode}}' 2>/dev/null)"
    $P rm "$c" >/dev/null 2>&1
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
}
trap cleanup EXIT
bg() { local log=$1; shift; "$@" >"$D/$log" 2>&1 & pids+=($!); }
for i in 0 1 2; do
  routes=""; for j in 0 1 2; do [ $j = $i ] || routes+="${routes:+,}nats://127.0.0.1:$((16222 + j))"; done
  bg nats-$i.log "$NATS_BIN" -a 127.0.0.1 -p $((14222 + i)) -m $((18222 + i)) -n n$i -js -sd "$D/nats-$i" \
    --cluster_name earshot -cluster nats://127.0.0.1:$((16222 + i)) -routes "$routes"
done
mkdir -p "$D/r0" "$D/r1"
bg redis-0.log redis-server --port 16390 --bind 127.0.0.1 --dir "$D/r0" --appendonly yes --save ""
bg redis-1.log redis-server --port 16391 --bind 127.0.0.1 --dir "$D/r1" --appendonly yes --save "" --replicaof 127.0.0.1 16390
sleep 1
for i in 0 1 2; do
  printf 'port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor earshot 127.0.0.1 16390 2\nsentinel down-after-milliseconds earshot 2000\nsentinel failover-timeout earshot 10000\n' \
    $((26490 + i)) "$D" >"$D/sentinel-$i.conf"
  bg sentinel-$i.log redis-server "$D/sentinel-$i.conf" --sentinel
done
for i in 0 1 2; do for _ in $(seq 50); do curl -fs "http://127.0.0.1:$((18222 + i))/healthz?js-enabled-only=true" >/dev/null && break; sleep 0.2; done; done

ENV=(-e EARSHOT_NATS_URL=nats://127.0.0.1:14222,nats://127.0.0.1:14223,nats://127.0.0.1:14224 -e EARSHOT_JS_REPLICAS=3
  -e EARSHOT_REDIS_URL=redis://127.0.0.1:16390/0 -e EARSHOT_REDIS_SENTINELS=127.0.0.1:26490,127.0.0.1:26491,127.0.0.1:26492
  -e EARSHOT_REDIS_MASTER=earshot -e EARSHOT_DRAIN_TIMEOUT=60s -e EARSHOT_LOG_FORMAT=json
  -e EARSHOT_TOKEN_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')")
# On the host network each container needs its own ops port (the image's HEALTHCHECK
# assumes 9090, so it is not what decides readiness here).
run() { local name=$1 ops=$2; shift 2
  $P run -d --name "$name" --network host "${U[@]}" "${ENV[@]}" -e EARSHOT_OPS_LISTEN=127.0.0.1:$ops "$IMG" "$@" >/dev/null && ctrs=("$name" "${ctrs[@]}"); }
ready() { for _ in $(seq 120); do curl -fs "http://127.0.0.1:$1/readyz" >/dev/null && return 0; sleep 1; done; echo "smoke: :$1 not ready" >&2; exit 1; }
run es-billing-0 19093 billing; ready 19093
run es-billing-1 19094 billing; ready 19094
run es-transcriber-0 19095 transcriber --worker-id w0 --threads 1 --slots 1
run es-transcriber-1 19096 transcriber --worker-id w1 --threads 1 --slots 1
ready 19095; ready 19096
run es-gateway-0 19091 gateway --listen 127.0.0.1:18081 --demo
run es-gateway-1 19092 gateway --listen 127.0.0.1:18082 --demo
ready 19091; ready 19092
sed -e 's/^  bind :8080/  bind 127.0.0.1:18080/' -e '/^resolvers docker/,/hold other/d' \
  -e 's/ resolvers docker init-addr last,libc,none//' \
  -e 's/server gateway-0 gateway-0:8080/server gateway-0 127.0.0.1:18081/' \
  -e 's/server gateway-1 gateway-1:8080/server gateway-1 127.0.0.1:18082/' deploy/haproxy.cfg >"$D/haproxy.cfg"
haproxy -c -q -f "$D/haproxy.cfg" || exit 1
bg haproxy.log haproxy -db -f "$D/haproxy.cfg"
for _ in $(seq 30); do curl -fs http://127.0.0.1:18080/readyz >/dev/null && break; sleep 1; done

stream() { $P run --rm "${U[@]}" --network host -v "$WAV:/in/audio.wav:ro" "$IMG" stream "$@" --url ws://127.0.0.1:18080/v1/listen /in/audio.wav 2>&1 | tr '\r' '\n' | sed 's/\x1b\[K//g' | grep -v '^$' | tail -n 1; }
echo "== stream through haproxy (fast):"; stream --fast
echo "== stream in real time, SIGTERM the transcriber serving it after 4 s:"
stream >"$D/drain-stream.txt" &
sp=$!
sleep 4
for t in 0 1; do
  if curl -s "http://127.0.0.1:$((19095 + t))/metrics" | grep -q '^earshot_worker_sessions_live{model="tiny.en"} 1'; then
    $P stop -t 75 es-transcriber-$t >/dev/null 2>&1
    echo "   stopped es-transcriber-$t: exit=$($P inspect es-transcriber-$t --format '{{.State.ExitCode}}')"
  fi
done
wait $sp; echo "   transcript: $(cat "$D/drain-stream.txt")"
echo "== invoice:"
$P run --rm "${U[@]}" --network host "$IMG" billing report --tenant demo --month "$(date -u +%Y-%m)" --redis redis://127.0.0.1:16390/0
echo "== stopping (SIGTERM, 75 s grace):"
