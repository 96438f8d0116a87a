package chaos

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// A network partition on one machine: each NATS node runs as a user id of its own
// (cluster.nodeUID), and cutOff drops, with iptables, every packet of every TCP
// connection that node's process has sent on: its routes to the other nodes and its
// clients' connections, in both directions. The node keeps running and keeps its state,
// as a node behind a failed switch does; its peers and clients hear silence.

// partitionUID is the first of the user ids the nodes run as when partitions can be made.
const partitionUID = 61000

// canPartition says whether this process can make partitions: root, with iptables and
// its owner and connmark matches.
func canPartition() (bool, string) {
	if os.Geteuid() != 0 {
		return false, "not root"
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		return false, "no iptables (apt-get install iptables)"
	}
	if out, err := exec.Command("iptables", "-L", "OUTPUT", "-n").CombinedOutput(); err != nil {
		return false, "iptables: " + strings.TrimSpace(string(out))
	}
	return true, ""
}

// partitionable makes the nodes of c run as user ids of their own, in directories
// those users own (the nats-server binary readable by all). Call before the nodes start.
func (c *cluster) partitionable() {
	c.t.Helper()
	c.nodeUID = partitionUID
	bin := natsServer(c.t)
	if err := os.Chmod(strings.TrimSuffix(bin, "/nats-server"), 0o755); err != nil {
		c.t.Fatal(err)
	}
	for i := range c.nodeDirs {
		dir, err := os.MkdirTemp("", "earshot-chaos-node-")
		if err != nil {
			c.t.Fatal(err)
		}
		c.t.Cleanup(func() { _ = os.RemoveAll(dir) })
		if err := os.Chown(dir, c.nodeUID+i, c.nodeUID+i); err != nil {
			c.t.Fatal(err)
		}
		c.nodeDirs[i] = dir
	}
}

// cutOff partitions node k (started by a partitionable cluster) from everything and
// returns the function that heals it; healing twice, or at the test's end, is harmless.
func (c *cluster) cutOff(k int) func() {
	c.t.Helper()
	uid := strconv.Itoa(c.nodeUID + k)
	chain := "EARSHOT_CUT_" + uid
	ipt := func(t *testing.T, args ...string) {
		if out, err := exec.Command("iptables", args...).CombinedOutput(); err != nil && t != nil {
			t.Fatalf("iptables %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ipt(c.t, "-N", chain)
	// The mark rides on the connection (conntrack), so the peers' packets to the node
	// are dropped as well as the node's own.
	ipt(c.t, "-A", chain, "-m", "owner", "--uid-owner", uid, "-j", "CONNMARK", "--set-mark", uid)
	ipt(c.t, "-A", chain, "-m", "connmark", "--mark", uid, "-j", "DROP")
	ipt(c.t, "-I", "OUTPUT", "1", "-j", chain)
	var once sync.Once
	heal := func() {
		once.Do(func() {
			// The DROP rule's packet count: proof that the node was cut off.
			out, _ := exec.Command("iptables", "-L", chain, "-v", "-n", "-x").CombinedOutput()
			for _, line := range strings.Split(string(out), "\n") {
				if f := strings.Fields(line); len(f) > 2 && f[2] == "DROP" {
					c.t.Logf("partition of n%d healed: %s packets (%s bytes) dropped", k, f[0], f[1])
				}
			}
			ipt(nil, "-D", "OUTPUT", "-j", chain)
			ipt(nil, "-F", chain)
			ipt(nil, "-X", chain)
		})
	}
	c.t.Cleanup(heal)
	return heal
}
