package billing

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// The ledger never credits overlaps: two connections of one stream whose events cover
// the same stream time are each billed in full (what a resume is not billed for, the
// gateway leaves out of its events). Before, a resumed connection's events could share
// ids with the first connection's and be dropped as duplicates, and up to 150 s of
// overlap per stream was free: both made resuming a way to get audio for nothing.
func TestLedgerBillsOverlappingConnections(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, testPlans(t))
	if _, err := s.CreateTenant(ctx, "acme", "payg"); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC()
	first := usage("acme", "tiny.en", "s1", "", 0, 8000, at, true)
	again := first
	again.Conn = "c2"
	again.ID = bus.UsageEventID("c2", "", 0, 8000)
	for _, ev := range []bus.UsageEvent{first, first, again} {
		if _, err := s.Apply(ctx, ev, at); err != nil {
			t.Fatal(err)
		}
	}
	if got := monthTotal(t, s, "acme", at.Format("2006-01")); got != 16000 {
		t.Fatalf("billed %d ms, want 16000 (two connections of 8000 ms, the redelivery once)", got)
	}
}

func newResumes(t *testing.T) (*Resumes, *testutil.Redis) {
	t.Helper()
	r := testutil.StartRedis(t)
	return NewResumes(r.Client(), 0), r
}

// A connection billed up to 6000 ms with its last final at 4000 ms drops; the resume
// from 4000 gets [4000, 6000) free and nothing else; a second resume of the same stream
// finds that credit spent; another tenant, or an unknown stream, cannot resume.
func TestResumeCreditIsWhatWasPaidWithoutAFinal(t *testing.T) {
	ctx := context.Background()
	r, _ := newResumes(t)
	if err := r.Begin(ctx, "acme", "s1"); err != nil {
		t.Fatal(err)
	}
	if err := r.Mark(ctx, "acme", "s1", "s1", 6000, 4000); err != nil {
		t.Fatal(err)
	}
	c, err := r.Claim(ctx, "acme", "s1", "c2", 4000, 0)
	if err != nil || c != (Credit{4000, 6000}) {
		t.Fatalf("claim: %+v, %v; want [4000, 6000)", c, err)
	}
	// The old connection's late marks no longer count.
	if err := r.Mark(ctx, "acme", "s1", "s1", 9000, 4000); err != nil {
		t.Fatal(err)
	}
	if c, err := r.Claim(ctx, "acme", "s1", "c3", 4000, 0); err != nil || c.Ms() != 0 {
		t.Fatalf("second claim of the same audio: %+v, %v; want no credit", c, err)
	}
	// c3 now owns the stream; it paid [6000, 7500) and got no final: a resume from 0 may
	// only have that.
	if err := r.Mark(ctx, "acme", "s1", "c3", 7500, 4000); err != nil {
		t.Fatal(err)
	}
	if c, err := r.Claim(ctx, "acme", "s1", "c4", 0, 0); err != nil || c != (Credit{6000, 7500}) {
		t.Fatalf("claim from 0: %+v, %v; want [6000, 7500)", c, err)
	}
	for _, tc := range []struct {
		tenant bus.TenantID
		stream bus.SessionID
	}{{"other", "s1"}, {"acme", "nope"}} {
		if _, err := r.Claim(ctx, tc.tenant, tc.stream, "c9", 0, 0); !errors.Is(err, ErrNoResume) {
			t.Fatalf("claim of %s by %s: %v, want ErrNoResume", tc.stream, tc.tenant, err)
		}
	}
}

// Concurrent claims of one stream: exactly one gets the credit.
func TestResumeClaimIsAtomic(t *testing.T) {
	ctx := context.Background()
	r, _ := newResumes(t)
	if err := r.Begin(ctx, "acme", "s1"); err != nil {
		t.Fatal(err)
	}
	if err := r.Mark(ctx, "acme", "s1", "s1", 10000, 2000); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var total int64
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := r.Claim(ctx, "acme", "s1", bus.SessionID("c"+string(rune('a'+i))), 0, 0)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			total += c.Ms()
			mu.Unlock()
		}()
	}
	wg.Wait()
	if total != 8000 {
		t.Fatalf("20 concurrent claims got %d ms of credit in all, want 8000", total)
	}
}

// The record expires the window after its last mark.
func TestResumeWindow(t *testing.T) {
	ctx := context.Background()
	tr := testutil.StartRedis(t)
	r := NewResumes(tr.Client(), 300*time.Millisecond)
	if err := r.Begin(ctx, "acme", "s1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond)
	if _, err := r.Claim(ctx, "acme", "s1", "c2", 0, 0); !errors.Is(err, ErrNoResume) {
		t.Fatalf("claim after the window: %v, want ErrNoResume", err)
	}
}

// A resume whose first 500 ms are run-up before the last final's end (resume_runup_ms)
// gets them credited with the unfinalised audio after it; run-up that does not reach
// the final's end, or a resume without run-up from before it, gets nothing for it.
func TestResumeRunUpCredited(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		offset, runUp int64
		want          Credit
	}{
		{3500, 500, Credit{3500, 6000}}, // run-up reaches f = 4000
		{3500, 0, Credit{4000, 6000}},   // no run-up declared: billed again
		{3000, 500, Credit{4000, 6000}}, // run-up ends before f: [3000, 4000) is new audio
	} {
		r, _ := newResumes(t)
		if err := r.Begin(ctx, "acme", "s1"); err != nil {
			t.Fatal(err)
		}
		if err := r.Mark(ctx, "acme", "s1", "s1", 6000, 4000); err != nil {
			t.Fatal(err)
		}
		if c, err := r.Claim(ctx, "acme", "s1", "c2", tc.offset, tc.runUp); err != nil || c != tc.want {
			t.Fatalf("offset %d run-up %d: %+v, %v; want %+v", tc.offset, tc.runUp, c, err, tc.want)
		}
	}
}
