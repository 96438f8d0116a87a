#!/usr/bin/env bash
# The scale simulation (issue 19; `make bench-sim`): the topology of `make cluster` (3 NATS
# nodes, Redis + replicas + Sentinels, 2 billing consumers, 2 gateways behind haproxy)
# with STAND-IN transcribers (`--engine standin`: no whisper, placeholder words at
# real-time pace), and `earshot bench` streaming real speech at N = $STREAMS concurrent
# real-time streams. Per level it records, beside the bench's own report (latency from
# audio sent to result received, gateway CPU and RSS): NATS messages/s (all nodes,
# /varz), Redis commands/s (master), and the billing consumer's pending events (/jsz).
# Output: bench/out/sim/sim.md. Needs haproxy (apt-get install haproxy).
set -euo pipefail
cd "$(dirname "$0")/.."
STREAMS="${STREAMS:-250 500 1000}"
DUR="${DUR:-40s}"
OUT="${OUT:-bench/out/sim}"
export CLUSTER_DIR="${CLUSTER_DIR:-data/sim}"
export EARSHOT_ENGINE=standin EARSHOT_MAX_SESSIONS=5000 EARSHOT_MAX_STREAMS_PER_TENANT=5000
command -v haproxy >/dev/null || { echo "sim.sh: needs haproxy (apt-get install haproxy)" >&2; exit 1; }
mkdir -p "$OUT" "$CLUSTER_DIR"
rm -rf "${CLUSTER_DIR:?}"/*
scripts/cluster.sh >"$OUT/cluster.log" 2>&1 &
cpid=$!
trap 'kill $cpid 2>/dev/null; wait $cpid 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do grep -q "Earshot cluster up" "$OUT/cluster.log" && break; sleep 0.5; done
grep -q "Earshot cluster up" "$OUT/cluster.log" || { echo "sim.sh: cluster did not come up; see $OUT/cluster.log" >&2; exit 1; }
export EARSHOT_REDIS_URL=redis://127.0.0.1:6390/0
bin/earshot tenants create sim --plan team >/dev/null 2>&1 || true
KEY=$(bin/earshot keys create --tenant sim | awk '/^secret:/{print $2}')
gwpids=$(awk '/^gateway [01] /{print $3}' "$OUT/cluster.log" | paste -sd, -)
natsmsgs() { local s=0; for p in 8222 8223 8224; do s=$((s + $(curl -s "http://127.0.0.1:$p/varz" | python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["in_msgs"]+v["out_msgs"])'))); done; echo $s; }
rediscmds() { redis-cli -p 6390 info stats | awk -F: '/total_commands_processed/{print $2+0}'; }
pending() { for p in 8222 8223 8224; do curl -s "http://127.0.0.1:$p/jsz?consumers=1&acc=\$G" ; done | python3 -c '
import json,sys
best=0
for line in sys.stdin.read().replace("}{","}\n{").splitlines():
    try: d=json.loads(line)
    except Exception: continue
    for a in d.get("account_details",[]):
        for s in a.get("stream_detail",[]):
            for c in s.get("consumer_detail",[]) or []:
                if c.get("name")=="billing": best=max(best,c.get("num_pending",0)+c.get("num_ack_pending",0))
print(best)'; }
{
  echo "# Scale simulation, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, stand-in transcribers"
  echo
  echo "| streams | NATS msgs/s (3 nodes, in+out) | Redis cmds/s | billing pending at end | bench |"
  echo "|---|---|---|---|---|"
} >"$OUT/sim.md"
for n in $STREAMS; do
  echo ">> $n streams"
  m0=$(natsmsgs); r0=$(rediscmds); t0=$(date +%s.%N)
  bin/earshot bench --url ws://127.0.0.1:8080/v1/listen --key "$KEY" --streams "$n" --duration "$DUR" \
    --pids "$gwpids" --knee 60s --out "$OUT/n$n" >"$OUT/n$n.log" 2>&1 || echo "sim.sh: bench at $n streams failed; see $OUT/n$n.log" >&2
  m1=$(natsmsgs); r1=$(rediscmds); t1=$(date +%s.%N); p=$(pending)
  rate() { python3 -c "print(round(($2-$1)/($t1-$t0)))"; }
  echo "| $n | $(rate "$m0" "$m1") | $(rate "$r0" "$r1") | $p | $OUT/n$n/bench.md |" >>"$OUT/sim.md"
done
cat "$OUT/sim.md"
