#!/usr/bin/env bash
# Brings up a multi-node Earshot on this machine's loopback, every part a real process:
#   3 nats-server nodes in one cluster (JetStream, R3 assets), built from the module graph;
#   Redis: a master, 2 replicas and 3 Sentinels (redis-server --sentinel), or with
#   REDIS=cluster a Redis Cluster of 3 masters with 2 replicas each (--redis-cluster);
#   2 gateways (:8081 and :8082, demo on), 2 transcribers, 2 billing consumers,
#   haproxy on :8080 in front of the gateways when it is installed.
# Everything lives under $CLUSTER_DIR (default data/cluster); Ctrl-C stops it all.
# Kill any one part (kill -9 PID from the table) and the streams go on: see RELIABILITY.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${EARSHOT_BIN:-bin/earshot}"
DIR="${CLUSTER_DIR:-data/cluster}"
NATS_BIN="$DIR/nats-server"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
pids=()
names=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM
start() { # name logfile command...
  local name=$1 log=$2
  shift 2
  "$@" >"$log" 2>&1 &
  pids+=($!)
  names+=("$name")
}
wait_for() { # what logfile pattern seconds
  for _ in $(seq 1 $(($4 * 10))); do
    grep -q "$3" "$2" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "cluster.sh: $1 did not come up; see $2" >&2
  exit 1
}

[ -x "$NATS_BIN" ] || { echo ">> building nats-server"; go build -o "$NATS_BIN" github.com/nats-io/nats-server/v2; }

echo ">> NATS: 3 nodes"
seeds=()
for i in 0 1 2; do
  port=$((4222 + i)) route=$((6222 + i))
  routes=""
  for j in 0 1 2; do [ "$j" = "$i" ] || routes+="${routes:+,}nats://127.0.0.1:$((6222 + j))"; done
  mkdir -p "$DIR/nats-$i"
  start "nats n$i" "$DIR/nats-$i.log" "$NATS_BIN" -a 127.0.0.1 -p "$port" -m $((8222 + i)) -n "n$i" -js -sd "$DIR/nats-$i" \
    --cluster_name earshot -cluster "nats://127.0.0.1:$route" -routes "$routes"
  seeds+=("nats://127.0.0.1:$port")
done
for i in 0 1 2; do wait_for "nats n$i" "$DIR/nats-$i.log" "Server is ready" 20; done
NATS_URL=$(IFS=,; echo "${seeds[*]}")

if [ "${REDIS:-sentinel}" = cluster ]; then
  # Two replicas per master: after a failover the promoted master still has one, so
  # billing's WAIT 1 (every ledger write on a replica before its event is acked) goes on.
  echo ">> Redis Cluster: 3 masters, 2 replicas each"
  nodes=()
  for i in $(seq 0 8); do
    port=$((6390 + i))
    mkdir -p "$DIR/redis-$i"
    rm -f "$DIR/redis-$i/nodes.conf" "$DIR/redis-$i"/appendonly*
    rm -rf "$DIR/redis-$i/appendonlydir"
    start "redis :$port" "$DIR/redis-$i.log" redis-server --port "$port" --bind 127.0.0.1 --dir "$DIR/redis-$i" \
      --appendonly yes --appendfsync everysec --save "" --cluster-enabled yes --cluster-port $((16390 + i)) \
      --cluster-config-file nodes.conf --cluster-node-timeout 2000
    nodes+=("127.0.0.1:$port")
  done
  for i in $(seq 0 8); do
    for _ in $(seq 1 50); do redis-cli -p $((6390 + i)) ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 2 --cluster-yes >"$DIR/redis-cluster-create.log" 2>&1 ||
    { echo "cluster.sh: redis-cli --cluster create failed; see $DIR/redis-cluster-create.log" >&2; exit 1; }
  for _ in $(seq 1 100); do redis-cli -p 6390 cluster info | grep -q cluster_state:ok && break; sleep 0.1; done
  export EARSHOT_REDIS_URL="redis://127.0.0.1:6390/0"
  EARSHOT_REDIS_CLUSTER=$(IFS=,; echo "${nodes[*]}")
  export EARSHOT_REDIS_CLUSTER
  REDIS_SAID="Redis Cluster ${EARSHOT_REDIS_CLUSTER}"
else
  echo ">> Redis: master, 2 replicas, 3 sentinels"
  for i in 0 1 2; do
    port=$((6390 + i))
    mkdir -p "$DIR/redis-$i"
    args=(--port "$port" --bind 127.0.0.1 --dir "$DIR/redis-$i" --appendonly yes --appendfsync everysec --save "")
    [ "$i" = 0 ] || args+=(--replicaof 127.0.0.1 6390)
    start "redis :$port" "$DIR/redis-$i.log" redis-server "${args[@]}"
  done
  for _ in $(seq 1 50); do redis-cli -p 6390 ping >/dev/null 2>&1 && break; sleep 0.1; done
  sentinels=()
  for i in 0 1 2; do
    port=$((26390 + i))
    printf 'port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor earshot 127.0.0.1 6390 2\nsentinel down-after-milliseconds earshot 2000\nsentinel failover-timeout earshot 10000\n' \
      "$port" "$DIR" >"$DIR/sentinel-$i.conf"
    start "sentinel :$port" "$DIR/sentinel-$i.log" redis-server "$DIR/sentinel-$i.conf" --sentinel
    sentinels+=("127.0.0.1:$port")
  done
  sleep 1
  export EARSHOT_REDIS_URL="redis://127.0.0.1:6390/0" EARSHOT_REDIS_MASTER=earshot
  EARSHOT_REDIS_SENTINELS=$(IFS=,; echo "${sentinels[*]}")
  export EARSHOT_REDIS_SENTINELS
  REDIS_SAID="Redis via Sentinel ${EARSHOT_REDIS_SENTINELS}"
fi

export EARSHOT_NATS_URL="$NATS_URL" EARSHOT_JS_REPLICAS=3

echo ">> Earshot: 2 billing, 2 transcribers, 2 gateways"
# One at a time: services that create the same R3 stream at the same moment on a new
# cluster each wait out a timeout before their retry finds it made (they get there).
for i in 0 1; do
  start "billing $i" "$DIR/billing-$i.log" "$BIN" billing --data-dir "$DIR/svc-b$i" --ops-listen "127.0.0.1:$((9093 + i))"
  wait_for "billing $i" "$DIR/billing-$i.log" "billing consumer running" 90
done
for i in 0 1; do
  start "transcriber $i" "$DIR/transcriber-$i.log" "$BIN" transcriber --worker-id "w$i" --threads 1 --slots 1 \
    --ops-listen "127.0.0.1:$((9095 + i))"
done
for i in 0 1; do wait_for "transcriber $i" "$DIR/transcriber-$i.log" "worker serving" 120; done
for i in 0 1; do
  start "gateway $i" "$DIR/gateway-$i.log" "$BIN" gateway --listen "127.0.0.1:$((8081 + i))" --demo \
    --ops-listen "127.0.0.1:$((9091 + i))" --data-dir "$DIR/svc-g$i"
  wait_for "gateway $i" "$DIR/gateway-$i.log" "msg=serving" 90
done

# The WebSocket load balancer in front of the gateways: haproxy when installed (apt-get
# install haproxy), health-checked on each gateway's /readyz (a draining gateway leaves
# the rotation before it closes its streams).
LB=""
if command -v haproxy >/dev/null; then
  cat >"$DIR/haproxy.cfg" <<CFG
global
  maxconn 8000
defaults
  mode http
  timeout connect 2s
  timeout client 1h
  timeout server 1h
  timeout tunnel 1h
frontend earshot
  bind 127.0.0.1:8080
  default_backend gateways
backend gateways
  balance leastconn
  option httpchk GET /readyz
  server g0 127.0.0.1:8081 check port 9091 inter 1s fall 2 rise 2
  server g1 127.0.0.1:8082 check port 9092 inter 1s fall 2 rise 2
CFG
  start "haproxy :8080" "$DIR/haproxy.log" haproxy -db -f "$DIR/haproxy.cfg"
  LB="http://127.0.0.1:8080/ (haproxy over both gateways), "
else
  echo "cluster.sh: haproxy not installed (apt-get install haproxy): no load balancer; use a gateway directly" >&2
fi

echo
printf '%-16s %s\n' PART PID
for k in "${!pids[@]}"; do printf '%-16s %s\n' "${names[$k]}" "${pids[$k]}"; done
echo "logs: $DIR/*.log"
echo
echo "Earshot cluster up: ${LB}http://127.0.0.1:8081/ and http://127.0.0.1:8082/ (demo), NATS $NATS_URL,"
echo "${REDIS_SAID}. Ctrl-C stops everything."
# A part that dies (kill -9 PID to try the failovers) leaves the rest running.
while [ -n "$(jobs -rp)" ]; do
  wait -n || true
  echo "cluster.sh: a part exited (see the table above and its log in $DIR); the rest go on" >&2
done
