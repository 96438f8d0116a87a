package billing

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
)

// A gateway crashed after billing [0, 6000) of a stream; the client reconnected and
// resent from 4000 (its last final), and the new gateway metered [4000, 9500). Billed
// is the union, 9500 ms, whatever order the events are applied in; a second track of
// the same session is separate; the balance is debited for 9500 ms once.
func TestResumedStreamBilledOnce(t *testing.T) {
	ctx := context.Background()
	at := time.Now().UTC()
	month := at.Format("2006-01")
	events := []bus.UsageEvent{
		usage("acme", "tiny.en", "s1", "", 0, 2000, at, false),
		usage("acme", "tiny.en", "s1", "", 2000, 2000, at, false),
		usage("acme", "tiny.en", "s1", "", 4000, 2000, at, false), // the old gateway's last
		usage("acme", "tiny.en", "s1", "", 4000, 2000, at, false), // a redelivery of it
		usage("acme", "tiny.en", "s1", "", 4000, 1300, at, false), // the new gateway's first (flushed at a final)
		usage("acme", "tiny.en", "s1", "", 5300, 2000, at, false),
		usage("acme", "tiny.en", "s1", "", 7300, 2200, at, true),
		usage("acme", "tiny.en", "s1", "inbound", 0, 2000, at, true),
	}
	for round := range 6 {
		s, _ := newStore(t, testPlans(t))
		if _, err := s.CreateTenant(ctx, "acme", "payg"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TopUp(ctx, "acme", 1_000_000); err != nil {
			t.Fatal(err)
		}
		before, _ := s.Get(ctx, "acme")
		order := rand.Perm(len(events))
		if round == 0 {
			order = []int{0, 1, 2, 3, 4, 5, 6, 7}
		}
		for _, i := range order {
			if _, err := s.Apply(ctx, events[i], at); err != nil {
				t.Fatal(err)
			}
		}
		if got := monthTotal(t, s, "acme", month); got != 9500+2000 {
			t.Fatalf("order %v: billed %d ms, want 11500 (9500 resumed + 2000 other track)", order, got)
		}
		if got, _ := s.SessionMs(ctx, "acme", "s1"); got != 11500 {
			t.Fatalf("order %v: session billed %d ms", order, got)
		}
		after, _ := s.Get(ctx, "acme")
		if round == 0 {
			t.Logf("balance %d → %d", before.BalanceU, after.BalanceU)
		}
		// Debits are per stream field (model|session|track): compare with a fresh ledger
		// billed 9500 + 2000 ms without any overlap.
		s2, _ := newStore(t, testPlans(t))
		if _, err := s2.CreateTenant(ctx, "acme", "payg"); err != nil {
			t.Fatal(err)
		}
		if _, err := s2.TopUp(ctx, "acme", 1_000_000); err != nil {
			t.Fatal(err)
		}
		for _, ev := range []bus.UsageEvent{
			usage("acme", "tiny.en", "s1", "", 0, 9500, at, true),
			usage("acme", "tiny.en", "s1", "inbound", 0, 2000, at, true),
		} {
			if _, err := s2.Apply(ctx, ev, at); err != nil {
				t.Fatal(err)
			}
		}
		plain, _ := s2.Get(ctx, "acme")
		if after.BalanceU != plain.BalanceU {
			t.Fatalf("order %v: balance %d after the resumed stream, %d for the same audio billed plainly", order, after.BalanceU, plain.BalanceU)
		}
	}
}

// Resending more than ResumeCreditMs of already billed audio does not make it free:
// the overlap beyond the credit is billed.
func TestResumeCreditIsCapped(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, testPlans(t))
	if _, err := s.CreateTenant(ctx, "acme", "payg"); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC()
	const hour = int64(3_600_000)
	for _, ev := range []bus.UsageEvent{
		usage("acme", "tiny.en", "s1", "", 0, hour-1000, at, false),
		usage("acme", "tiny.en", "s1", "", 0, hour, at, true), // "resumed" from 0
	} {
		if _, err := s.Apply(ctx, ev, at); err != nil {
			t.Fatal(err)
		}
	}
	// The second event overlaps the first for almost an hour: only ResumeCreditMs of
	// that is not billed again.
	if got, want := monthTotal(t, s, "acme", at.Format("2006-01")), 2*hour-1000-ResumeCreditMs; got != want {
		t.Fatalf("billed %d ms, want %d (both events less the %d ms resume credit)", got, want, ResumeCreditMs)
	}
}
