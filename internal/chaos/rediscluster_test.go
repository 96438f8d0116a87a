package chaos

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/config"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// TestRedisClusterMasterLoss: Redis as a Redis Cluster (3 masters, 2 replicas each);
// every service reaches it with --redis-cluster, and billing acks a usage event only
// once its ledger write is on a replica of the tenant's master (WAIT 1 on that node).
// JFK is streamed undisturbed, then again while the master serving the tenant's slot
// is killed (SIGKILL) 4 s in: the cluster promotes a replica, the stream goes on
// without an error, and every accepted millisecond is billed exactly once. The tenant
// and its key are made with the admin commands, as an operator would (they read
// EARSHOT_REDIS_CLUSTER like the services).
func TestRedisClusterMasterLoss(t *testing.T) {
	testdata.Require(t)
	rc := testutil.StartRedisCluster(t, 3, 2)
	c := &cluster{t: t, modelDir: requireModel(t), rdb: rc.Client()}
	c.redis = rc.Nodes[0] // its URL gives the services no more than credentials
	c.extraEnv = []string{"EARSHOT_REDIS_CLUSTER=" + strings.Join(rc.Addrs(), ",")}
	c.start(1)
	token := c.tokenViaCLI()
	base := baseline(t, c, token)
	// Every key of tenant "chaos" lives on the slot of its tag.
	victim := rc.MasterOf("tenant:{chaos}")
	pcm, ref := jfk(t)
	// A client built as the services build theirs writes to the tenant's slot every
	// 50 ms from the kill on: the first write that lands is the recovery time.
	probe := config.Common{RedisURL: c.redis.URL(), RedisCluster: rc.Addrs()}
	prdb, err := probe.RedisClient()
	if err != nil {
		t.Fatal(err)
	}
	defer prdb.Close()
	var killedAt time.Time
	recovered := make(chan time.Duration, 1)
	kill := func(string) {
		victim.Kill()
		killedAt = time.Now()
		go func() {
			for time.Since(killedAt) < 30*time.Second {
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				err := prdb.Set(ctx, "probe:{chaos}", killedAt.String(), 0).Err()
				cancel()
				if err == nil {
					recovered <- time.Since(killedAt)
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
			close(recovered)
		}()
	}
	o := stream(t, c.wsURL(), token, pcm, ref, true, hook{4 * time.Second, kill})
	t.Logf("Redis Cluster master %s of the tenant's slot killed at 4 s: %v; undisturbed: WER %.1f%%", victim.Addr, o, 100*base.WER)
	rc.WaitHealthy(20 * time.Second)
	if now := rc.MasterOf("tenant:{chaos}"); now == victim {
		t.Fatalf("the tenant's slot is still on the killed master %s", victim.Addr)
	} else {
		t.Logf("replica %s serves the slot (checked %v after the kill)", now.Addr, time.Since(killedAt).Round(100*time.Millisecond))
	}
	if d, ok := <-recovered; !ok {
		t.Errorf("the tenant's slot took no write within 30 s of its master's kill")
	} else {
		t.Logf("the tenant's slot took writes again %v after its master's kill", d.Round(10*time.Millisecond))
		if d > 5*time.Second {
			t.Errorf("recovery took %v, want within 5 s", d)
		}
	}
	checkSurvived(t, "the loss of a Redis Cluster master", o, base)
	checkBilled(t, c, token, base.AcceptedMs+o.AcceptedMs)
}

// tokenViaCLI creates tenant "chaos" (team plan) and an API key with `earshot tenants`
// and `earshot keys` in the services' environment, and returns the key.
func (c *cluster) tokenViaCLI() string {
	c.t.Helper()
	run := func(args ...string) string {
		cmd := exec.Command(c.bin, args...)
		cmd.Env = append(os.Environ(), c.env()...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			c.t.Fatalf("earshot %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("tenants", "create", "chaos", "--plan", "team")
	for _, line := range strings.Split(run("keys", "create", "--tenant", "chaos"), "\n") {
		if secret, ok := strings.CutPrefix(line, "secret: "); ok {
			return strings.TrimSpace(secret)
		}
	}
	c.t.Fatal("earshot keys create printed no secret")
	return ""
}
