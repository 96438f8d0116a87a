package gateway

import (
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/earshot-dev/earshot/internal/testutil"
)

// Two limiters on one real Redis act as two gateways: failures on one block the
// address on the other, the bucket refills on Redis's clock, and when Redis goes away
// each gateway's own counts still block.
func TestRedisLimiterAcrossGateways(t *testing.T) {
	r := testutil.StartRedis(t)
	a := newRedisLimiter(r.Client(), "authfail:", 3, 2, slog.New(slog.DiscardHandler))
	bc := redis.NewClient(&redis.Options{Addr: r.Client().Options().Addr})
	b := newRedisLimiter(bc, "authfail:", 3, 2, slog.New(slog.DiscardHandler))
	const addr = "203.0.113.7"
	for i := 0; i < 3; i++ {
		if b.Blocked(addr) {
			t.Fatalf("blocked after %d failures, burst 3", i)
		}
		a.Fail(addr)
	}
	if !b.Blocked(addr) {
		t.Fatal("3 failures on gateway a do not block the address on gateway b")
	}
	if d := b.RetryAfter(addr); d <= 0 || d > 600*time.Millisecond {
		t.Fatalf("RetryAfter %v, want about 0.5 s at 2 tokens/s", d)
	}
	if b.Blocked("198.51.100.1") {
		t.Fatal("another address is blocked")
	}
	testutil.Eventually(t, 2*time.Second, "a token refilled", func() bool { return !b.Blocked(addr) })
	// Redis gone: gateway a's own counts still block the address it saw failing.
	for i := 0; i < 3; i++ {
		a.Fail(addr)
	}
	r.Client().Close()
	a.rdb = redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	if !a.Blocked(addr) {
		t.Fatal("with Redis unreachable the local counts do not block")
	}
}
