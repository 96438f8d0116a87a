package billing

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/prometheus/client_golang/prometheus"
)

// Three live streams of one tenant, as if on three gateways, share a balance worth 10 s:
// each sends 250 ms at a time and asks for 2 s more whenever it has less than 500 ms
// left. Together they send exactly the 10 s the balance covers (not 3 × 10 s, and not
// the 30 s a recheck interval would let through), the ledger debits all of it, the
// balance ends at zero, and the next stream is refused at once.
func TestHoldsShareTheBalanceAcrossStreams(t *testing.T) {
	s, _ := newStore(t, testPlans(t))
	js := newJS(t)
	ctx := context.Background()
	if _, err := s.CreateTenant(ctx, "live", "live"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TopUp(ctx, "live", 1); err != nil { // 1 cent at 360 cents/h = 10 s
		t.Fatal(err)
	}
	runConsumer(t, js, s, prometheus.NewRegistry(), fastCfg)
	q := NewQuota(s)

	var wg sync.WaitGroup
	sent := make([]int64, 3)
	errs := make([]error, 3)
	for i := range sent {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sid := bus.SessionID(fmt.Sprintf("live-%d", i))
			m, err := NewMeter(js, bus.UsageEvent{Tenant: "live", Model: "tiny.en", Session: sid}, 0)
			if err != nil {
				errs[i] = err
				return
			}
			defer m.Close(ctx)
			member := string(sid) + "/gw"
			var grant int64
			for {
				if grant-sent[i] < 500 {
					g, unl, err := q.Hold(ctx, "live", "tiny.en", sid, member, sent[i], 2000)
					if unl {
						errs[i] = errors.New("a prepaid tenant reported unlimited")
						return
					}
					if err != nil && !errors.Is(err, ErrNoBalance) {
						errs[i] = err
						return
					}
					grant = g
				}
				if sent[i] >= grant {
					errs[i] = q.Release(ctx, "live", sid, member, sent[i])
					return
				}
				n := min(250, grant-sent[i])
				m.Add(n)
				sent[i] += n
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	var total int64
	for i, err := range errs {
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		total += sent[i]
	}
	if total != 10000 {
		t.Fatalf("the three streams sent %v = %d ms; the balance covers 10000 ms", sent, total)
	}
	waitDrained(t, js, "billing", 10*time.Second)
	tn, _ := s.Get(ctx, "live")
	if tn.BalanceU != 0 {
		t.Fatalf("balance %d u after 10 s streamed, want 0", tn.BalanceU)
	}
	if _, _, err := q.Hold(ctx, "live", "tiny.en", "live-9", "live-9/gw", 0, 2000); !errors.Is(err, ErrNoBalance) {
		t.Fatalf("a fourth stream after the balance was used: %v", err)
	}
	t.Logf("streams sent %v ms", sent)
}

// What a stream holds is not handed to another until it expires (its gateway died) or
// the stream ends and billing has its audio; a monthly plan with overage holds nothing.
func TestHoldLifecycle(t *testing.T) {
	s, _ := newStore(t, testPlans(t))
	ctx := context.Background()
	if _, err := s.CreateTenant(ctx, "live", "live"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TopUp(ctx, "live", 1); err != nil { // 10 s
		t.Fatal(err)
	}
	q := NewQuota(s)
	q.SetHoldTTL(600 * time.Millisecond)
	hold := func(sid bus.SessionID, sent, want int64) (int64, error) {
		g, _, err := q.Hold(ctx, "live", "tiny.en", sid, string(sid)+"/gw", sent, want)
		return g, err
	}
	if g, err := hold("a", 0, 8000); err != nil || g != 8000 {
		t.Fatalf("first hold %d %v, want 8000", g, err)
	}
	if g, err := hold("b", 0, 8000); err != nil || g != 2000 {
		t.Fatalf("second hold %d %v, want the 2000 left", g, err)
	}
	if g, err := hold("c", 0, 8000); !errors.Is(err, ErrNoBalance) || g != 0 {
		t.Fatalf("third hold %d %v, want refused", g, err)
	}
	// a ends after 3 s, not yet billed: its 3 s stay held, its other 5 s are free.
	if err := q.Release(ctx, "live", "a", "a/gw", 3000); err != nil {
		t.Fatal(err)
	}
	if g, err := hold("c", 0, 8000); err != nil || g != 5000 {
		t.Fatalf("after a ended unbilled at 3 s: %d %v, want 5000", g, err)
	}
	// b's and c's gateway dies: their holds expire; a's does too (billing never came).
	time.Sleep(700 * time.Millisecond)
	if g, err := hold("d", 0, 20000); err != nil || g != 10000 {
		t.Fatalf("after the holds expired: %d %v, want the whole 10000", g, err)
	}
	if _, err := s.CreateTenant(ctx, "pro", "monthly"); err != nil {
		t.Fatal(err)
	}
	if _, unl, err := q.Hold(ctx, "pro", "tiny.en", "p", "p/gw", 0, 1000); err != nil || !unl {
		t.Fatalf("monthly plan with overage: unlimited %v %v", unl, err)
	}
}
