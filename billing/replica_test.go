package billing

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// With a replica wait, Apply returns only once the write is on a replica, and refuses
// (ErrNotReplicated: the event is not acked and comes again) when no replica takes it.
func TestApplyWaitsForAReplica(t *testing.T) {
	master := testutil.StartRedis(t)
	replica := testutil.StartReplica(t, master)
	s := NewStore(master.Client(), nil, nil)
	s.SetReplicaWait(1, 500*time.Millisecond)
	ctx := context.Background()
	if _, err := s.CreateTenant(ctx, "acme", "team"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if out, err := s.Apply(ctx, usage("acme", "tiny.en", "r1", "", 0, 2000, now, false), now); err != nil || out != Applied {
		t.Fatalf("with a replica: %v %v", out, err)
	}
	// The write is on the replica when Apply returns.
	if n, err := replica.Client().Exists(ctx, usageKey("acme", "ev", bus.UsageEventID("r1", "", 0, 2000))).Result(); err != nil || n != 1 {
		t.Fatalf("event key on the replica: %d, %v", n, err)
	}
	replica.Kill()
	start := time.Now()
	_, err := s.Apply(ctx, usage("acme", "tiny.en", "r1", "", 2000, 2000, now, false), now)
	if !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("with no replica: %v, want ErrNotReplicated", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the refusal took %v (wait 500 ms)", d)
	}
}
