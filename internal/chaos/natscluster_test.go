package chaos

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// newNATSCluster is newCluster on a cluster of n nats-server nodes (routes between all,
// JetStream on each), with every JetStream asset at n replicas (--js-replicas).
func newNATSCluster(t *testing.T, nodes, transcribers int, gatewayFlags ...string) *cluster {
	t.Helper()
	testdata.Require(t)
	c := &cluster{t: t, modelDir: requireModel(t), gwFlags: gatewayFlags, replicas: nodes}
	c.redis = testutil.StartRedis(t)
	c.bin = testutil.Binary(t)
	c.gwPort, c.opsPort = testutil.FreePort(t), testutil.FreePort(t)
	c.dataDir = t.TempDir()
	for range nodes {
		c.nodePorts = append(c.nodePorts, testutil.FreePort(t))
		c.routePorts = append(c.routePorts, testutil.FreePort(t))
		c.nodeDirs = append(c.nodeDirs, t.TempDir())
	}
	c.nodes = make([]*testutil.Proc, nodes)
	for i := range nodes {
		c.startNode(i)
	}
	for i := range nodes {
		c.nodes[i].WaitOutput("Server is ready", 20*time.Second)
	}
	c.waitJetStream()
	c.startBilling()
	for i := range transcribers {
		c.startTranscriber(i)
	}
	c.startGateway()
	return c
}

// startNode starts (or restarts) node i of the NATS cluster.
func (c *cluster) startNode(i int) {
	c.t.Helper()
	var routes []string
	for j, p := range c.routePorts {
		if j != i {
			routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(p))
		}
	}
	uid := -1
	if c.nodeUID > 0 {
		uid = c.nodeUID + i
	}
	c.nodes[i] = testutil.StartAs(c.t, fmt.Sprintf("nats-%d", i), uid, natsServer(c.t), nil,
		"-a", "127.0.0.1", "-p", strconv.Itoa(c.nodePorts[i]), "-n", fmt.Sprintf("n%d", i),
		"-js", "-sd", c.nodeDirs[i], "--cluster_name", "earshot",
		"-cluster", "nats://127.0.0.1:"+strconv.Itoa(c.routePorts[i]), "-routes", strings.Join(routes, ","))
}

// jetStream is a JetStream client on the cluster, closed with the test.
func (c *cluster) jetStream() jetstream.JetStream {
	c.t.Helper()
	nc, err := nats.Connect(c.natsURL())
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	return js
}

// waitJetStream waits until the cluster can place a stream of c.replicas replicas (its
// meta leader is elected and every node is a peer), so that the services' start-up
// creation of their streams does not race the election.
func (c *cluster) waitJetStream() {
	c.t.Helper()
	js := c.jetStream()
	testutil.Eventually(c.t, 30*time.Second, "JetStream ready on the cluster", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "PROBE", Subjects: []string{"probe"},
			Replicas: c.replicas, Storage: jetstream.MemoryStorage}); err != nil {
			return false
		}
		_ = js.DeleteStream(ctx, "PROBE")
		return true
	})
}

// nodeOf is the index of the NATS node process pid is connected to, or -1: the node
// whose client port one of pid's established TCP connections goes to.
func (c *cluster) nodeOf(pid int) int {
	inodes := map[string]bool{}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 || f[3] != "01" || !inodes[f[9]] { // 01: ESTABLISHED
			continue
		}
		_, hexPort, _ := strings.Cut(f[2], ":")
		port, err := strconv.ParseInt(hexPort, 16, 32)
		if err != nil {
			continue
		}
		for i, p := range c.nodePorts {
			if int(port) == p {
				return i
			}
		}
	}
	return -1
}

// TestNATSNodeLossInCluster (the CI form of make cluster-chaos): three nats-server nodes
// (JetStream R3 for usage, jobs, retention), two gateways, one transcriber, billing. JFK
// is streamed undisturbed, then on both gateways at once while the NATS node gateway 1
// is connected to is killed (SIGKILL) 4 s in. Both streams go on without a
// client-visible error and lose no word (chunks and results lost in transit are asked
// for again), billing counts every accepted millisecond once (the usage stream keeps its
// quorum), and the R3 streams still have a leader.
func TestNATSNodeLossInCluster(t *testing.T) {
	c := newNATSCluster(t, 3, 1, "--max-streams-per-tenant", "4")
	ws2 := c.startSecondGateway()
	token := c.token()
	nc, err := nats.Connect(c.natsURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	st, err := js.Stream(ctx, bus.UsageStream)
	if err != nil {
		t.Fatal(err)
	}
	if r := st.CachedInfo().Config.Replicas; r != 3 {
		t.Fatalf("usage stream has %d replicas, want 3 (--js-replicas)", r)
	}
	base := baseline(t, c, token)
	pcm, ref := jfk(t)
	killed := -1
	other := make(chan outcome, 1)
	go func() { other <- stream(t, ws2, token, pcm, ref, true) }()
	o := stream(t, c.wsURL(), token, pcm, ref, true, hook{4 * time.Second, func(string) {
		if killed = c.nodeOf(c.gateway.Pid()); killed >= 0 {
			c.nodes[killed].Kill()
		}
	}})
	t.Logf("NATS node n%d (the gateway's) killed at 4 s: %v; undisturbed: WER %.1f%%", killed, o, 100*base.WER)
	if killed < 0 {
		t.Fatal("could not tell which NATS node the gateway was connected to")
	}
	o2 := <-other
	t.Logf("the stream on gateway 2 meanwhile: %v", o2)
	for _, x := range []outcome{o, o2} {
		if len(x.Errors) > 0 {
			t.Errorf("the streams should survive the loss of a NATS node without an error: %q", x.Errors)
		}
		if x.WordsLost > base.WordsLost {
			t.Errorf("%d reference words lost across the node loss (undisturbed: %d): %v", x.WordsLost, base.WordsLost, x)
		}
	}
	if n := len(o.FinalAt); n == 0 || o.FinalAt[n-1] < 4*time.Second {
		t.Errorf("no final after the node was killed at 4 s: finals at %v", o.FinalAt)
	}
	checkBilled(t, c, token, base.AcceptedMs+o.AcceptedMs+o2.AcceptedMs)
	testutil.Eventually(t, 15*time.Second, "the usage stream led by a live node", func() bool {
		info, err := st.Info(ctx)
		return err == nil && info.Cluster != nil && info.Cluster.Leader != "" && info.Cluster.Leader != fmt.Sprintf("n%d", killed)
	})
	// New streams work on the two nodes left.
	after := stream(t, c.wsURL(), token, pcm, ref, false)
	t.Logf("stream after the node loss: %v", after)
	if len(after.Errors) > 0 || after.WER > base.WER+werSlack {
		t.Errorf("stream after the node loss: %v", after)
	}
}
