package testutil

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisCluster is a real Redis Cluster on this machine: redis-server processes in
// cluster mode, joined by `redis-cli --cluster create`. Nodes fail over by themselves
// (node timeout 1 s).
type RedisCluster struct {
	Nodes []*Redis
	t     testing.TB
}

// StartRedisCluster starts masters × (1 + replicas) nodes (masters ≥ 3, as Redis
// Cluster needs) and waits until every slot is served and every replica is linked.
// Without redis-server or redis-cli it skips the test, except in CI where it fails.
func StartRedisCluster(t testing.TB, masters, replicas int) *RedisCluster {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	cli, cerr := exec.LookPath("redis-cli")
	if err != nil || cerr != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server/redis-cli not found: CI must install them (apt-get install redis-server)")
		}
		t.Skip("SKIPPING: redis-server or redis-cli not found; install them (apt-get install redis-server) to run this test")
	}
	rc := &RedisCluster{t: t}
	for range masters * (1 + replicas) {
		r := &Redis{Dir: t.TempDir(), t: t}
		t.Cleanup(r.Stop) // also when it cannot start: a server still starting is stopped
		r.startOnFreePorts(bin, func() {
			_ = os.Remove(filepath.Join(r.Dir, "nodes.conf")) // a node that failed to bind may have written it
			r.args = []string{"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(FreePort(t)),
				"--cluster-config-file", filepath.Join(r.Dir, "nodes.conf"), "--cluster-node-timeout", "1000"}
		})
		rc.Nodes = append(rc.Nodes, r)
	}
	args := append([]string{"--cluster", "create"}, rc.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	rc.WaitHealthy(20 * time.Second)
	return rc
}

// Addrs are the nodes' host:port addresses (the services' --redis-cluster seeds).
func (rc *RedisCluster) Addrs() []string {
	a := make([]string, len(rc.Nodes))
	for i, n := range rc.Nodes {
		a[i] = n.Addr
	}
	return a
}

// Client is a cluster client closed when the test ends.
func (rc *RedisCluster) Client() *redis.ClusterClient {
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: rc.Addrs()})
	rc.t.Cleanup(func() { c.Close() })
	return c
}

// WaitHealthy waits until every running node reports cluster_state:ok and every
// running replica's link to its master is up.
func (rc *RedisCluster) WaitHealthy(timeout time.Duration) {
	rc.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		bad := ""
		for _, n := range rc.Nodes {
			if n.cmd == nil {
				continue
			}
			c := redis.NewClient(&redis.Options{Addr: n.Addr})
			info, err := c.ClusterInfo(context.Background()).Result()
			repl, _ := c.Info(context.Background(), "replication").Result()
			c.Close()
			switch {
			case err != nil || !strings.Contains(info, "cluster_state:ok"):
				bad = n.Addr + ": " + info
			case strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up"):
				bad = n.Addr + ": replica not linked: " + repl
			}
		}
		if bad == "" {
			return
		}
		if time.Now().After(deadline) {
			rc.t.Fatalf("Redis Cluster not healthy after %v: %s", timeout, bad)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// MasterOf is the node that now serves key's slot as master (asked afresh, so it is
// right after a failover once the cluster has settled).
func (rc *RedisCluster) MasterOf(key string) *Redis {
	rc.t.Helper()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: rc.running()})
	defer c.Close()
	m, err := c.MasterForKey(context.Background(), key)
	if err != nil {
		rc.t.Fatalf("master of %q: %v", key, err)
	}
	for _, n := range rc.Nodes {
		if n.Addr == m.Options().Addr {
			return n
		}
	}
	rc.t.Fatalf("master of %q is %s, not a node of this cluster", key, m.Options().Addr)
	return nil
}

func (rc *RedisCluster) running() []string {
	var a []string
	for _, n := range rc.Nodes {
		if n.cmd != nil {
			a = append(a, n.Addr)
		}
	}
	return a
}

// ReplicasOf are the running nodes that replicate master.
func (rc *RedisCluster) ReplicasOf(master *Redis) []*Redis {
	rc.t.Helper()
	c := redis.NewClient(&redis.Options{Addr: master.Addr})
	defer c.Close()
	info, err := c.Info(context.Background(), "replication").Result()
	if err != nil {
		rc.t.Fatalf("replication info of %s: %v", master.Addr, err)
	}
	var out []*Redis
	for _, line := range strings.Split(info, "\n") {
		// slave0:ip=127.0.0.1,port=6391,state=online,offset=…,lag=0
		if !strings.HasPrefix(line, "slave") || !strings.Contains(line, "port=") {
			continue
		}
		port := strings.SplitN(strings.SplitN(line, "port=", 2)[1], ",", 2)[0]
		for _, n := range rc.Nodes {
			if n.cmd != nil && strconv.Itoa(n.Port) == port {
				out = append(out, n)
			}
		}
	}
	return out
}
