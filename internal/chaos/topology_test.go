package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// topology is the multi-node Earshot of `make cluster`, as processes on loopback: 3
// nats-server nodes (JetStream R3), Redis master + 2 replicas + Sentinel, 2 billing
// consumers, 2 transcribers, 2 gateways behind a TCP load balancer.
type topology struct {
	*cluster
	gateways  [2]*testutil.Proc
	gwPorts   [2]int
	billings  [2]*testutil.Proc
	lb        *tcpBalancer
	sentinel  string
	replicaOf []*testutil.Redis
}

func newTopology(t *testing.T) *topology {
	t.Helper()
	testdata.Require(t)
	c := &cluster{t: t, modelDir: requireModel(t), replicas: 3}
	c.redis = testutil.StartRedis(t)
	tp := &topology{cluster: c}
	tp.replicaOf = []*testutil.Redis{testutil.StartReplica(t, c.redis), testutil.StartReplica(t, c.redis)}
	tp.sentinel = testutil.StartSentinel(t, c.redis, "earshot")
	c.extraEnv = []string{"EARSHOT_REDIS_SENTINELS=" + tp.sentinel, "EARSHOT_REDIS_MASTER=earshot",
		"EARSHOT_MAX_SESSIONS=6"}
	c.bin = testutil.Binary(t)
	c.dataDir = t.TempDir()
	for range 3 {
		c.nodePorts = append(c.nodePorts, testutil.FreePort(t))
		c.routePorts = append(c.routePorts, testutil.FreePort(t))
		c.nodeDirs = append(c.nodeDirs, t.TempDir())
	}
	if ok, why := canPartition(); ok {
		c.partitionable()
	} else {
		t.Logf("no network partition round: %s", why)
	}
	c.nodes = make([]*testutil.Proc, 3)
	for i := range 3 {
		c.startNode(i)
	}
	for i := range 3 {
		c.nodes[i].WaitOutput("Server is ready", 20*time.Second)
	}
	c.waitJetStream()
	for i := range 2 {
		tp.startBilling(i)
		c.startTranscriber(i)
		tp.gwPorts[i] = testutil.FreePort(t)
		tp.startGateway(i)
	}
	tp.lb = startBalancer(t, tp.gwPorts[:])
	// Clients and the usage queries go through the balancer, as in a deployment.
	_, lbPort, _ := net.SplitHostPort(tp.lb.addr)
	c.gwPort, _ = strconv.Atoi(lbPort)
	c.gateway = tp.gateways[0]
	return tp
}

func (tp *topology) startBilling(i int) {
	tp.t.Helper()
	tp.billings[i] = testutil.Start(tp.t, fmt.Sprintf("billing-%d", i), tp.bin, tp.env(), "billing")
	tp.billings[i].WaitOutput("billing consumer running", 30*time.Second)
}

func (tp *topology) startGateway(i int) {
	tp.t.Helper()
	tp.gateways[i] = testutil.Start(tp.t, fmt.Sprintf("gateway-%d", i), tp.bin, tp.env(), "gateway",
		"--listen", "127.0.0.1:"+strconv.Itoa(tp.gwPorts[i]), "--token-ttl", "10m",
		"--ops-listen", "127.0.0.1:"+strconv.Itoa(testutil.FreePort(tp.t)))
	tp.gateways[i].WaitOutput("msg=serving", 30*time.Second)
}

func (tp *topology) lbURL() string { return tp.wsURL() }

// tcpBalancer is a stand-in for the WebSocket load balancer of a deployment (haproxy,
// nginx): round robin over the gateways, skipping one that refuses the connection.
type tcpBalancer struct {
	addr  string
	ports []int
	mu    sync.Mutex
	next  int
}

func startBalancer(t *testing.T, ports []int) *tcpBalancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	b := &tcpBalancer{addr: ln.Addr().String(), ports: ports}
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			go b.serve(in)
		}
	}()
	return b
}

func (b *tcpBalancer) serve(in net.Conn) {
	defer in.Close()
	b.mu.Lock()
	first := b.next
	b.next = (b.next + 1) % len(b.ports)
	b.mu.Unlock()
	var out net.Conn
	for k := range b.ports {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(b.ports[(first+k)%len(b.ports)]), time.Second)
		if err == nil {
			out = c
			break
		}
	}
	if out == nil {
		return
	}
	defer out.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
	go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
	<-done
}

// fault is one thing that goes wrong 4 s into a round of streams.
type fault struct {
	name   string
	inject func(session string) string // returns what exactly was done
	heal   func()                      // after the round: bring the part back
	// idle is how long the fault left no capacity at all (every transcriber behind a
	// frozen node): the 5 s recovery target counts from when capacity is back.
	idle time.Duration
}

type roundResult struct {
	name       string
	did        string
	outs       []outcome
	sentMs     int64
	billedMs   int64
	wordsLost  int
	meanWER    float64
	recovery   time.Duration
	idle       time.Duration // fault.idle
	errors     []string
	reconnects int
}

const faultAt = 4 * time.Second

// round streams JFK on n streams at once through the load balancer (staggered by
// 250 ms), runs f.inject 4 s into the first, and measures what the clients saw and
// what was billed.
func (tp *topology) round(token string, n int, f *fault) roundResult {
	t := tp.t
	pcm, ref := jfk(t)
	tp.waitWorkersIdle()
	before, err := tp.billedMs(token)
	if err != nil {
		t.Fatalf("billed before %s: %v", f.name, err)
	}
	res := roundResult{name: f.name, outs: make([]outcome, n)}
	var injected time.Duration
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 250 * time.Millisecond)
			var hooks []hook
			if i == 0 && f.inject != nil {
				hooks = append(hooks, hook{faultAt, func(session string) {
					injected = time.Since(t0)
					res.did = f.inject(session)
				}})
			}
			c, err := dialStream(tp.lbURL(), token, true)
			if err != nil {
				res.outs[i].Errors = append(res.outs[i].Errors, "dial: "+err.Error())
				return
			}
			res.outs[i] = streamOn(c, pcm, ref, true, hooks...)
			res.outs[i].SentMs = int64(len(pcm)) / 32
		}()
	}
	wg.Wait()
	for i, o := range res.outs {
		res.sentMs += o.SentMs
		res.wordsLost += o.WordsLost
		res.meanWER += o.WER / float64(n)
		res.errors = append(res.errors, o.Errors...)
		if o.Reconnected {
			res.reconnects++
		}
		if f.inject == nil {
			continue
		}
		// Recovery: how long after the fault the stream's next result came, less the
		// stream's usual spacing of results is not subtracted (an upper bound).
		at := injected - time.Duration(i)*250*time.Millisecond
		for _, r := range o.ResultAt {
			if r > at {
				res.recovery = max(res.recovery, r-at)
				break
			}
		}
	}
	res.billedMs = tp.waitBilled(token, before+res.sentMs, 30*time.Second) - before
	if f.heal != nil {
		f.heal()
	}
	return res
}

// waitWorkersIdle waits until every transcriber's heartbeat shows all its sessions
// free: a killed gateway's orphaned sessions end on the workers' idle timeout (10 s),
// and a round should not start on capacity the last fault still holds.
func (tp *topology) waitWorkersIdle() {
	tp.t.Helper()
	nc, err := nats.Connect(tp.natsURL())
	if err != nil {
		tp.t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync(bus.HeartbeatWildcard)
	if err != nil {
		tp.t.Fatal(err)
	}
	idle := map[bus.WorkerID]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for len(idle) < len(tp.transcriber) || slices.Contains(slices.Collect(maps.Values(idle)), false) {
		m, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			tp.t.Fatalf("workers not idle within 30 s: %v (idle: %v)", err, idle)
		}
		var hb bus.Heartbeat
		if json.Unmarshal(m.Data, &hb) != nil {
			continue
		}
		c := hb.Models["tiny.en"]
		idle[hb.Worker] = c.Slots > 0 && c.Free == c.Slots
	}
}

// natsNodeOf is the node gateway i is connected to (waits for it to be known).
func (tp *topology) natsNodeOf(i int) int { return tp.waitNodeOf(tp.gateways[i].Pid()) }

// waitNodeOf is nodeOf, asked again for up to 5 s (a client between two nodes, or not
// yet in the nodes' connection lists); -1 if no node lists pid.
func (tp *topology) waitNodeOf(pid int) int {
	for range 50 {
		if k := tp.nodeOf(pid); k >= 0 {
			return k
		}
		time.Sleep(100 * time.Millisecond)
	}
	return -1
}

// healNode restarts node k and waits until the usage stream has all 3 replicas current.
func (tp *topology) healNode(k int) {
	tp.t.Helper()
	tp.startNode(k)
	tp.nodes[k].WaitOutput("Server is ready", 20*time.Second)
	tp.waitReplicasCurrent()
}

func (tp *topology) waitReplicasCurrent() {
	tp.t.Helper()
	js := tp.jetStream()
	testutil.Eventually(tp.t, 60*time.Second, "the usage stream's 3 replicas current", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, bus.UsageStream)
		if err != nil {
			return false
		}
		info, err := st.Info(ctx)
		if err != nil || info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
			return false
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current || r.Offline {
				return false
			}
		}
		return true
	})
}

// TestClusterChaos is `make cluster-chaos`: the whole multi-node topology, six live
// real-time streams of real speech through two gateways behind a load balancer, and
// one fault per round 4 s in: kill -9 of a NATS node, of the Redis master (Sentinel
// promotes a replica), of a gateway (clients resume through the balancer on the other),
// of the transcriber serving a stream, of a billing consumer; then a NATS node frozen
// for 8 s (SIGSTOP: its routes and clients hear nothing, until SIGCONT), and, where the
// test runs as root with iptables, a NATS node cut off from every peer and client for
// 8 s while it keeps running (a real partition: cutOff). Per fault: words lost against the undisturbed round, mean WER, billed
// vs sent ms, and the longest wait for a stream's next result after the fault.
func TestClusterChaos(t *testing.T) {
	if m := os.Getenv("EARSHOT_CHAOS"); m != "cluster" && m != "full" {
		t.Skip("multi-node chaos suite: make cluster-chaos (EARSHOT_CHAOS=cluster)")
	}
	tp := newTopology(t)
	token := tp.token()
	const streams = 6
	base := tp.round(token, streams, &fault{name: "undisturbed"})
	var killedNode, frozenNode int
	var txFrozen *fault
	faults := []*fault{
		{name: "NATS node kill -9 (gateway 1's)", inject: func(string) string {
			killedNode = tp.natsNodeOf(0)
			tp.nodes[killedNode].Kill()
			return fmt.Sprintf("killed n%d", killedNode)
		}, heal: func() { tp.healNode(killedNode) }},
		{name: "Redis master kill -9", inject: func(string) string {
			tp.redis.Kill()
			return "killed the master; Sentinel promotes a replica"
		}, heal: func() {
			sc := redis.NewSentinelClient(&redis.Options{Addr: tp.sentinel})
			defer sc.Close()
			testutil.Eventually(t, 20*time.Second, "Sentinel naming a new master", func() bool {
				addr, err := sc.GetMasterAddrByName(context.Background(), "earshot").Result()
				return err == nil && len(addr) == 2 && addr[0]+":"+addr[1] != tp.redis.Addr
			})
		}},
		{name: "gateway kill -9", inject: func(string) string {
			tp.gateways[0].Kill()
			return "killed gateway 1; its clients resume through the balancer"
		}, heal: func() { tp.startGateway(0) }},
		{name: "transcriber kill -9", inject: func(session string) string {
			k := tp.serving(session)
			if k < 0 {
				return "could not tell which transcriber served the stream"
			}
			tp.transcriber[k].Kill()
			return fmt.Sprintf("killed transcriber %d", k)
		}, heal: func() {
			for i, p := range tp.transcriber {
				if p.Exited() {
					tp.startTranscriber(i)
				}
			}
		}},
		{name: "billing consumer kill -9", inject: func(string) string {
			tp.billings[0].Kill()
			return "killed billing consumer 1"
		}, heal: func() { tp.startBilling(0) }},
		{name: "NATS node frozen 8 s (partition)", inject: func(string) string {
			frozenNode = tp.natsNodeOf(1)
			pid := tp.nodes[frozenNode].Pid()
			_ = syscall.Kill(pid, syscall.SIGSTOP)
			time.AfterFunc(8*time.Second, func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
			return fmt.Sprintf("SIGSTOP n%d (gateway 2's) for 8 s", frozenNode)
		}, heal: func() { tp.waitReplicasCurrent() }},
		// Gap 9: the frozen node carries the transcriber of a stream, so its gateways see
		// the worker go silent and fail its sessions over while it may come back.
		{name: "NATS node frozen 8 s (a transcriber's)", inject: func(session string) string {
			k := tp.serving(session)
			if k < 0 {
				return "could not tell which transcriber served the stream"
			}
			node := tp.waitNodeOf(tp.transcriber[k].Pid())
			if node < 0 {
				return fmt.Sprintf("could not tell transcriber %d's NATS node", k)
			}
			all := true // every transcriber's client on that node: no capacity anywhere
			for _, p := range tp.transcriber {
				all = all && tp.nodeOf(p.Pid()) == node
			}
			pid := tp.nodes[node].Pid()
			_ = syscall.Kill(pid, syscall.SIGSTOP)
			time.AfterFunc(8*time.Second, func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
			if all {
				txFrozen.idle = 8 * time.Second
				return fmt.Sprintf("SIGSTOP n%d (transcriber %d's, and every other's: no capacity) for 8 s", node, k)
			}
			return fmt.Sprintf("SIGSTOP n%d (transcriber %d's) for 8 s", node, k)
		}, heal: func() { tp.waitReplicasCurrent() }},
	}
	txFrozen = faults[len(faults)-1]
	if tp.nodeUID > 0 {
		var cutNode int
		faults = append(faults, &fault{name: "NATS node partitioned 8 s (iptables)", inject: func(string) string {
			cutNode = tp.natsNodeOf(1)
			time.AfterFunc(8*time.Second, tp.cutOff(cutNode))
			return fmt.Sprintf("n%d (gateway 2's) cut off from its peers and clients for 8 s, still running", cutNode)
		}, heal: func() { tp.waitReplicasCurrent() }})
	}
	results := []roundResult{base}
	for _, f := range faults {
		if only := os.Getenv("EARSHOT_CHAOS_ONLY"); only != "" && !strings.Contains(f.name, only) {
			continue
		}
		r := tp.round(token, streams, f)
		r.idle = f.idle
		for i, o := range r.outs {
			if o.WordsLost > 0 || len(o.Errors) > 0 {
				t.Logf("%s, stream %d: %v", f.name, i, o)
			}
		}
		t.Logf("%s (%s): %d words lost, mean WER %.1f%%, billed %d of %d ms sent, recovery %v, %d reconnects, errors %q",
			r.name, r.did, r.wordsLost, 100*r.meanWER, r.billedMs, r.sentMs, r.recovery.Round(10*time.Millisecond), r.reconnects, r.errors)
		results = append(results, r)
	}
	report := chaosTable(results)
	t.Log("\n" + report)
	if out := os.Getenv("EARSHOT_CHAOS_REPORT"); out != "" {
		_ = os.MkdirAll(filepath.Dir(out), 0o755)
		_ = os.WriteFile(out, []byte(report), 0o644)
	}
	for _, r := range results {
		if len(r.errors) > 0 {
			t.Errorf("%s: client-visible errors %q", r.name, r.errors)
		}
		if r.billedMs != r.sentMs {
			t.Errorf("%s: billed %d ms of %d ms sent", r.name, r.billedMs, r.sentMs)
		}
		if r.wordsLost > base.wordsLost {
			t.Errorf("%s: %d reference words lost (undisturbed: %d)", r.name, r.wordsLost, base.wordsLost)
		}
		if r.meanWER > base.meanWER+0.005 {
			t.Errorf("%s: mean WER %.1f%% vs %.1f%% undisturbed", r.name, 100*r.meanWER, 100*base.meanWER)
		}
		if r.recovery > 5*time.Second+r.idle {
			t.Errorf("%s: a stream waited %v for its next result after the fault (target 5 s after capacity is back; none for %v)", r.name, r.recovery, r.idle)
		}
	}
}

func chaosTable(rs []roundResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| fault (4 s into 6 real-time JFK streams, 2 gateways) | what | words lost | mean WER | billed / sent ms | next result after the fault (max) | reconnects | errors |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		rec := "—"
		if r.name != "undisturbed" {
			rec = r.recovery.Round(10 * time.Millisecond).String()
		}
		errs := slices.Compact(slices.Sorted(slices.Values(r.errors)))
		fmt.Fprintf(&b, "| %s | %s | %d | %.1f %% | %d / %d | %s | %d | %d %q |\n", r.name, r.did, r.wordsLost, 100*r.meanWER,
			r.billedMs, r.sentMs, rec, r.reconnects, len(r.errors), errs)
	}
	return b.String()
}
