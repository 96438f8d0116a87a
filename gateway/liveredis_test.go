package gateway

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// Two guards on one real Redis act as two gateways: the tenant's limit holds across
// them, a released lease frees its slot at once, and a lease whose holder stops
// renewing it (a crashed gateway) frees its slot after the TTL.
func TestRedisLiveGuardAcrossGateways(t *testing.T) {
	rdb := testutil.StartRedis(t).Client()
	ctx := context.Background()
	const ttl = 800 * time.Millisecond
	a, b := NewRedisLiveGuard(rdb, 2, ttl, nil), NewRedisLiveGuard(rdb, 2, ttl, nil)
	info := func(s string) SessionInfo { return SessionInfo{Tenant: "acme", Session: bus.SessionID(s)} }
	relA1, err := a.Acquire(ctx, info("a1"))
	if err != nil {
		t.Fatal(err)
	}
	relA2, err := a.Acquire(ctx, info("a2"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Acquire(ctx, info("b1")); !errors.Is(err, ErrTooManyStreams) {
		t.Fatalf("third stream on the other gateway: %v, want ErrTooManyStreams", err)
	}
	// Another tenant is not affected.
	relO, err := b.Acquire(ctx, SessionInfo{Tenant: "other", Session: "o1"})
	if err != nil {
		t.Fatal(err)
	}
	relO()
	// Held streams outlive the TTL: their leases are renewed.
	time.Sleep(3 * ttl)
	if _, err := b.Acquire(ctx, info("b1")); !errors.Is(err, ErrTooManyStreams) {
		t.Fatalf("after %v the renewed leases must still count: %v", 3*ttl, err)
	}
	relA1()
	relA1() // a second release is harmless
	relB1, err := b.Acquire(ctx, info("b1"))
	if err != nil {
		t.Fatalf("after a release: %v", err)
	}
	defer relB1()
	// A gateway that crashes: its renewals stop and it never releases (here its Redis
	// client is closed under it).
	crashed := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr})
	c := NewRedisLiveGuard(crashed, 2, ttl, nil)
	relA2()
	if _, err := c.Acquire(ctx, info("c1")); err != nil {
		t.Fatal(err)
	}
	crashed.Close() // no more renewals, no release
	start := time.Now()
	testutil.Eventually(t, 5*ttl, "the crashed gateway's slot free", func() bool {
		rel, err := b.Acquire(ctx, info("b2"))
		if err == nil {
			rel()
			return true
		}
		return false
	})
	if d := time.Since(start); d > 2*ttl {
		t.Fatalf("the slot came free after %v, want within the TTL %v", d, ttl)
	}
}
