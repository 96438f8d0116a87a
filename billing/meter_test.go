package billing

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testutil"
	"github.com/nats-io/nats.go/jetstream"
)

// While JetStream has no USAGE stream the meter cannot publish: Add must not block, its
// queue fills and later audio is coalesced into larger events. Once the stream exists
// every ms arrives, in events that tile [0, total) with deterministic ids.
func TestMeterNeverBlocksAndLosesNothing(t *testing.T) {
	nc := testutil.Connect(t, testutil.NATS(t))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMeter(js, bus.UsageEvent{Tenant: "acme", Model: "tiny.en", Session: "s1", Track: "inbound"}, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 5000 { // 50 increments per queue slot: far more than the queue holds
		m.Add(37)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Add blocked: 5000 calls took %v", d)
	}
	if m.Total() != 5000*37 || m.Acked() != 0 {
		t.Fatalf("total %d acked %d", m.Total(), m.Acked())
	}
	if _, err := EnsureStream(context.Background(), js, 1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if m.Acked() != m.Total() {
		t.Fatalf("acked %d of %d", m.Acked(), m.Total())
	}
	oc, err := js.OrderedConsumer(ctx, bus.UsageStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var next int64
	var n int
	for next < m.Total() || n == 0 {
		msg, err := oc.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			t.Fatalf("after %d events covering %d ms: %v", n, next, err)
		}
		var ev bus.UsageEvent
		if err := json.Unmarshal(msg.Data(), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.StartMs != next || ev.ID != bus.UsageEventID("s1", "inbound", ev.StartMs, ev.DurationMs) || ev.DurationMs > MaxEventMs {
			t.Fatalf("event %d %+v does not continue at %d", n, ev, next)
		}
		next += ev.DurationMs
		n++
		if ev.Final != (next == m.Total()) {
			t.Fatalf("event %d final=%v at %d of %d", n, ev.Final, next, m.Total())
		}
	}
	if n > meterQueue+2 {
		t.Fatalf("%d events: coalescing did not happen", n)
	}
	t.Logf("%d ms in %d events", next, n)
	if m.Close(ctx) != ErrMeterClosed {
		t.Fatal("second Close")
	}
}

// Flush publishes what Add kept pending (less than one increment) and returns only once
// JetStream has it; a meter of a resumed stream numbers its events from the resume offset.
func TestMeterFlushAndResumeOffset(t *testing.T) {
	js := newJS(t)
	m, err := NewMeter(js, bus.UsageEvent{Tenant: "acme", Model: "tiny.en", Session: "s2", StartMs: 7250}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	m.Add(1200) // under one 2 s increment: nothing published yet
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if m.Acked() != 1200 {
		t.Fatalf("after Flush acked %d of 1200 ms", m.Acked())
	}
	m.Add(2500)
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Flush(ctx); err != nil {
		t.Fatalf("Flush after Close: %v", err)
	}
	oc, err := js.OrderedConsumer(ctx, bus.UsageStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for next := int64(7250); next < 7250+3700; {
		msg, err := oc.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			t.Fatalf("events %v: %v", got, err)
		}
		var ev bus.UsageEvent
		if err := json.Unmarshal(msg.Data(), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.StartMs != next {
			t.Fatalf("event %+v does not continue at %d (events so far %v)", ev, next, got)
		}
		next += ev.DurationMs
		got = append(got, ev.ID)
	}
	want := []string{"s2:0:7250:8450", "s2:0:8450:10450", "s2:0:10450:10950"}
	if len(got) != len(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events %v, want %v", got, want)
		}
	}
}
