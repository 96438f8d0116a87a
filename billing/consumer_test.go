package billing

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testutil"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

var fastCfg = ConsumerConfig{AckWait: time.Second, FetchWait: 200 * time.Millisecond, RetryMin: 20 * time.Millisecond,
	RetryMax: 300 * time.Millisecond, Batch: 16, MaxAckPending: 64}

func publishRaw(t *testing.T, js jetstream.JetStream, subj string, ev bus.UsageEvent, opts ...jetstream.PublishOpt) {
	t.Helper()
	b, _ := json.Marshal(ev)
	if _, err := js.Publish(context.Background(), subj, b, opts...); err != nil {
		t.Fatal(err)
	}
}

// Every event is published twice with its id (JetStream drops the copy) and once more
// without one (a re-publish after the duplicate window): billing counts each once.
// Then the whole stream is replayed into a fresh durable: totals do not move.
func TestExactlyOnceUnderDuplicatesAndReplay(t *testing.T) {
	s, _ := newStore(t, testPlans(t))
	js := newJS(t)
	ctx := context.Background()
	if _, err := s.CreateTenant(ctx, "acme", "payg"); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC()
	var want int64
	for i := range 50 {
		ev := usage("acme", "tiny.en", "sess-1", "", int64(i)*2000, 2000, at, i == 49)
		want += ev.DurationMs
		publishRaw(t, js, bus.UsageSubject("acme"), ev, jetstream.WithMsgID(ev.ID))
		publishRaw(t, js, bus.UsageSubject("acme"), ev, jetstream.WithMsgID(ev.ID))
		publishRaw(t, js, bus.UsageSubject("acme"), ev)
	}
	reg := prometheus.NewRegistry()
	runConsumer(t, js, s, reg, fastCfg)
	waitDrained(t, js, "billing", 20*time.Second)
	month := at.Format("2006-01")
	if got := monthTotal(t, s, "acme", month); got != want {
		t.Fatalf("billed %d ms, published %d ms", got, want)
	}
	if a, d := counter(t, reg, "earshot_billing_events_applied_total"), counter(t, reg, "earshot_billing_events_duplicate_total"); a != 50 || d != 50 {
		t.Fatalf("applied %v duplicates %v, want 50 and 50", a, d)
	}
	before, _ := s.Get(ctx, "acme")

	cfg := fastCfg
	cfg.Durable = "billing-replay"
	reg2 := prometheus.NewRegistry()
	runConsumer(t, js, s, reg2, cfg)
	waitDrained(t, js, "billing-replay", 20*time.Second)
	if got := monthTotal(t, s, "acme", month); got != want {
		t.Fatalf("after replay billed %d ms, want %d", got, want)
	}
	after, _ := s.Get(ctx, "acme")
	if after.BalanceU != before.BalanceU || counter(t, reg2, "earshot_billing_events_duplicate_total") != 100 {
		t.Fatalf("replay changed the balance %d → %d or did not see 100 duplicates", before.BalanceU, after.BalanceU)
	}
}

// A crash after the script ran but before the ack: the redelivered event is a duplicate
// and is acked.
func TestCrashBetweenWriteAndAck(t *testing.T) {
	s, _ := newStore(t, testPlans(t))
	js := newJS(t)
	ev := usage("acme", "tiny.en", "s", "", 0, 2000, time.Now(), true)
	if _, err := s.Apply(context.Background(), ev, time.Now()); err != nil { // the write that happened
		t.Fatal(err)
	}
	publishRaw(t, js, bus.UsageSubject("acme"), ev, jetstream.WithMsgID(ev.ID)) // the redelivery
	reg := prometheus.NewRegistry()
	runConsumer(t, js, s, reg, fastCfg)
	waitDrained(t, js, "billing", 10*time.Second)
	if got := monthTotal(t, s, "acme", time.Now().UTC().Format("2006-01")); got != 2000 {
		t.Fatalf("billed %d ms, want 2000", got)
	}
	if counter(t, reg, "earshot_billing_events_duplicate_total") != 1 {
		t.Fatal("redelivery not counted as a duplicate")
	}
}

// Meters publish while the consumer is cancelled at random points and restarted, and
// Redis restarts once in the middle: billed ms per tenant equal the published ms exactly.
func TestKillAndRestartWhileEventsFlow(t *testing.T) {
	s, r := newStore(t, testPlans(t))
	js := newJS(t)
	ctx := context.Background()
	tenants := []bus.TenantID{"acme", "globex", "initech"}
	for _, tn := range tenants {
		if _, err := s.CreateTenant(ctx, tn, "payg"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TopUp(ctx, tn, 1_000_000); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	var wg sync.WaitGroup
	var mu sync.Mutex
	published := make([]int64, len(tenants))
	debitU := make([]int64, len(tenants)) // payg bills each stream per started second
	for i, tn := range tenants {
		for j := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(i), uint64(j)))
				m, err := NewMeter(js, bus.UsageEvent{Tenant: tn, Model: "tiny.en", Session: bus.NewSessionID(), Track: "in"}, 100*time.Millisecond)
				if err != nil {
					t.Error(err)
					return
				}
				for range 600 {
					m.Add(rng.Int64N(200) + 1)
					time.Sleep(2 * time.Millisecond)
				}
				cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				defer cancel()
				if err := m.Close(cctx); err != nil {
					t.Error(err)
				}
				mu.Lock()
				published[i] += m.Total()
				debitU[i] += billableMs(m.Total(), 1000, 0) * 1000
				mu.Unlock()
			}()
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	rng := rand.New(rand.NewPCG(7, 7))
	restarts, redisRestarted := 0, false
	start := time.Now()
loop:
	for {
		stop := runConsumer(t, js, s, reg, fastCfg)
		time.Sleep(time.Duration(20+rng.IntN(150)) * time.Millisecond)
		if !redisRestarted && time.Since(start) > 300*time.Millisecond {
			r.Restart()
			redisRestarted = true
		}
		stop()
		restarts++
		select {
		case <-done:
			break loop
		default:
		}
	}
	runConsumer(t, js, s, reg, fastCfg)
	waitDrained(t, js, "billing", 30*time.Second)
	month := time.Now().UTC().Format("2006-01")
	for i, tn := range tenants {
		got := monthTotal(t, s, tn, month)
		if got != published[i] {
			t.Errorf("tenant %s billed %d ms, published %d ms", tn, got, published[i])
		}
		tr, _ := s.Get(ctx, tn)
		if spent := 1_000_000*int64(UnitsPerMinor) - tr.BalanceU; spent != debitU[i] {
			t.Errorf("tenant %s debited %d u, want %d u", tn, spent, debitU[i])
		}
	}
	t.Logf("consumer restarts %d, redis restarted %v, applied %v, duplicates %v, errors %v", restarts, redisRestarted,
		counter(t, reg, "earshot_billing_events_applied_total"), counter(t, reg, "earshot_billing_events_duplicate_total"),
		counter(t, reg, "earshot_billing_errors_total"))
	if restarts < 3 || !redisRestarted {
		t.Fatalf("only %d restarts", restarts)
	}
}

// Bad events go to the dead-letter subject and are acked; usage for a tenant with no
// record is counted and flagged.
func TestDeadLetterAndUnknownTenant(t *testing.T) {
	s, _ := newStore(t, testPlans(t))
	js := newJS(t)
	ctx := context.Background()
	now := time.Now()
	neg := usage("acme", "tiny.en", "s1", "", 0, -500, now, false)
	huge := usage("acme", "tiny.en", "s1", "", 0, MaxEventMs+1, now, false)
	spoof := usage("globex", "tiny.en", "s2", "", 0, 2000, now, false) // on acme's subject
	publishRaw(t, js, bus.UsageSubject("acme"), neg)
	publishRaw(t, js, bus.UsageSubject("acme"), huge)
	publishRaw(t, js, bus.UsageSubject("acme"), spoof)
	if _, err := js.Publish(ctx, bus.UsageSubject("acme"), []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	publishRaw(t, js, bus.UsageSubject("ghost"), usage("ghost", "tiny.en", "s3", "", 0, 1500, now, true))

	reg := prometheus.NewRegistry()
	runConsumer(t, js, s, reg, fastCfg)
	waitDrained(t, js, "billing", 10*time.Second)
	if d := counter(t, reg, "earshot_billing_events_dead_letter_total"); d != 4 {
		t.Fatalf("dead letters %v, want 4", d)
	}
	month := now.UTC().Format("2006-01")
	if a, g := monthTotal(t, s, "acme", month), monthTotal(t, s, "globex", month); a != 0 || g != 0 {
		t.Fatalf("rejected events were billed: acme %d globex %d", a, g)
	}
	if n, err := s.UnknownMs(ctx, "ghost"); err != nil || n != 1500 || monthTotal(t, s, "ghost", month) != 1500 {
		t.Fatalf("unknown tenant: flagged %d ms (%v)", n, err)
	}
	// The dead letters are kept in the stream with their reason.
	sub, err := js.OrderedConsumer(ctx, bus.UsageStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.UsageDeadLetterSubject}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := sub.Fetch(4, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for m := range batch.Messages() {
		reasons = append(reasons, m.Headers().Get("Earshot-Reason"))
	}
	if len(reasons) != 4 {
		t.Fatalf("dead letters in stream: %q", reasons)
	}
	for i, want := range []string{"negative duration_ms -500", "over the 3600000 ms limit", "published on earshot.usage.acme", "json"} {
		if !strings.Contains(reasons[i], want) {
			t.Errorf("reason %d = %q, want it to mention %q", i, reasons[i], want)
		}
	}
}

// Redis down: events are not acked but retried with backoff; once Redis is back every
// one is applied exactly once.
func TestRedisDownNothingDropped(t *testing.T) {
	s, r := newStore(t, testPlans(t))
	js := newJS(t)
	reg := prometheus.NewRegistry()
	runConsumer(t, js, s, reg, fastCfg)
	r.Stop()
	now := time.Now()
	for i := range 20 {
		ev := usage("acme", "tiny.en", "s", "", int64(i)*2000, 2000, now, false)
		publishRaw(t, js, bus.UsageSubject("acme"), ev, jetstream.WithMsgID(ev.ID))
	}
	testutil.Eventually(t, 10*time.Second, "apply errors while Redis is down", func() bool {
		return counter(t, reg, "earshot_billing_errors_total") >= 2
	})
	r.Restart() // Stop was done: this starts it again on the same port and data
	waitDrained(t, js, "billing", 20*time.Second)
	if got := monthTotal(t, s, "acme", now.UTC().Format("2006-01")); got != 40000 {
		t.Fatalf("billed %d ms after Redis came back, want 40000", got)
	}
}
