package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/earshot-dev/earshot/internal/bus"
)

// standInHolder is a deterministic stand-in for billing's Redis holds (unit tests of
// Budget only; the real one is tested in billing and end to end in internal/chaos): one
// connection, a pool of left ms, and a switch that makes the store unreachable.
type standInHolder struct {
	mu       sync.Mutex
	left     int64 // what the tenant has left beyond this connection's grant
	limit    int64
	down     bool
	calls    int
	released int64
}

func (h *standInHolder) Check(context.Context, bus.TenantID, string) error { return nil }

func (h *standInHolder) Hold(_ context.Context, _ SessionInfo, _ string, billable, want int64) (int64, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	if h.down {
		return billable, false, errors.New("redis: connection refused")
	}
	h.left += h.limit - billable // what the connection did not use goes back
	give := min(want, h.left)
	h.left -= give
	h.limit = billable + give
	if give <= 0 {
		return h.limit, false, fmt.Errorf("%w: nothing left", ErrNoBalance)
	}
	return h.limit, false, nil
}

func (h *standInHolder) ReleaseHold(_ context.Context, _ SessionInfo, _ string, billable int64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.released = billable
	return nil
}

// A connection sending 100 ms frames on a share of 12.3 s stops at the last whole frame
// that fits (12.3 s), not a frame past it, asking the store about every 7 s, not per
// frame; a store that cannot be asked lets the stream go on (Redis restart) and the
// budget asks again later; a refusal at the start is an error.
func TestBudgetStopsWithinTheShare(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	h := &standInHolder{left: 12_300}
	b, err := OpenBudget(context.Background(), h, SessionInfo{Session: "s"}, log)
	if err != nil || b == nil {
		t.Fatalf("open: %v", err)
	}
	var sent int64
	for b.Allow(context.Background(), sent) == nil {
		sent += 100
		if sent > 60_000 {
			t.Fatal("never refused")
		}
	}
	if sent != 12_300 || h.calls > 4 {
		t.Fatalf("sent %d ms on a share of 12300 ms after %d calls to the store", sent, h.calls)
	}
	b.Release(sent)
	if h.released != 12_300 {
		t.Fatalf("released at %d", h.released)
	}

	h = &standInHolder{left: 1_000_000}
	b, _ = OpenBudget(context.Background(), h, SessionInfo{Session: "s"}, log)
	h.down = true
	for sent = 0; sent < 30_000; sent += 100 {
		if err := b.Allow(context.Background(), sent); err != nil {
			t.Fatalf("store away at %d ms: %v (the stream should go on)", sent, err)
		}
	}
	h.down = false
	before := h.calls
	for ; sent < 60_000; sent += 100 {
		_ = b.Allow(context.Background(), sent)
	}
	if h.calls == before {
		t.Fatal("the budget never asked the store again after it came back")
	}

	if _, err := OpenBudget(context.Background(), &standInHolder{}, SessionInfo{Session: "s"}, log); !errors.Is(err, ErrNoBalance) {
		t.Fatalf("open with nothing left: %v", err)
	}
	if b, err := OpenBudget(context.Background(), quotaOnly{}, SessionInfo{Session: "s"}, log); b != nil || err != nil {
		t.Fatalf("a Quota that cannot hold: %v %v", b, err)
	}
}

type quotaOnly struct{}

func (quotaOnly) Check(context.Context, bus.TenantID, string) error { return nil }
