package chaos

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// TestRedisMasterLossWithSentinel: Redis as a master, two replicas and a Sentinel; every
// service follows the master through Sentinel (--redis-sentinels, --redis-master) and
// billing acks a usage event only once its ledger write is on the replica (WAIT 1).
// JFK is streamed undisturbed, then again while the master is killed (SIGKILL) 4 s in:
// Sentinel promotes the replica, the stream goes on without an error, and every
// accepted millisecond is billed exactly once (nothing acked on the old master is lost,
// nothing is applied twice).
func TestRedisMasterLossWithSentinel(t *testing.T) {
	testdata.Require(t)
	c := &cluster{t: t, modelDir: requireModel(t)}
	c.redis = testutil.StartRedis(t)
	// Two replicas: after the failover one is left to take the WAIT (with a single
	// replica, billing would pause, losing nothing, until a replica is back).
	testutil.StartReplica(t, c.redis)
	testutil.StartReplica(t, c.redis)
	sentinel := testutil.StartSentinel(t, c.redis, "earshot")
	c.extraEnv = []string{"EARSHOT_REDIS_SENTINELS=" + sentinel, "EARSHOT_REDIS_MASTER=earshot"}
	c.start(1)
	token := c.token()
	base := baseline(t, c, token)
	pcm, ref := jfk(t)
	o := stream(t, c.wsURL(), token, pcm, ref, true, hook{4 * time.Second, func(string) { c.redis.Kill() }})
	t.Logf("Redis master killed at 4 s: %v; undisturbed: WER %.1f%%", o, 100*base.WER)
	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinel})
	defer sc.Close()
	testutil.Eventually(t, 20*time.Second, "Sentinel promoting the replica", func() bool {
		addr, err := sc.GetMasterAddrByName(context.Background(), "earshot").Result()
		return err == nil && len(addr) == 2 && addr[0]+":"+addr[1] != c.redis.Addr
	})
	checkSurvived(t, "the loss of the Redis master", o, base)
	checkBilled(t, c, token, base.AcceptedMs+o.AcceptedMs)
}
