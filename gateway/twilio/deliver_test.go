package twilio

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testutil"
)

func finalEvent(text string) *CallEvent {
	return &CallEvent{Type: TypeFinal, CallSID: "CA1", Speaker: "caller", Text: text, IsFinal: true}
}

// TestWebhookRetriesWithBackoffThenDelivers: a receiver that fails 3 times gets the
// event on the 4th attempt, the waits between attempts doubling.
func TestWebhookRetriesWithBackoffThenDelivers(t *testing.T) {
	rcv := newReceiver(t, "s3cret", 3)
	d := newDelivery(DeliveryOptions{AllowLoopback: true, Backoff: 40 * time.Millisecond}, nil, slog.New(slog.DiscardHandler), "acme", "CA1", rcv.srv.URL, "s3cret")
	go d.run(context.Background())
	if err := d.enqueue(finalEvent("hello")); err != nil {
		t.Fatal(err)
	}
	d.close()
	<-d.done
	if got := rcv.got(); len(got) != 1 || got[0].Text != "hello" || got[0].Seq != 1 || got[0].Tenant != "acme" {
		t.Fatalf("received %+v", got)
	}
	a := rcv.attempts
	if len(a) != 4 {
		t.Fatalf("%d attempts, want 4", len(a))
	}
	for i, min := range []time.Duration{40, 80, 160} {
		if gap := a[i+1].Sub(a[i]); gap < min*time.Millisecond || gap > (2*min+100)*time.Millisecond {
			t.Errorf("wait before attempt %d: %v, want about %dms", i+2, gap, min)
		}
	}
}

// TestWebhookDeadLetterAfterMaxAttemptsKeepsOrder: with a receiver that is down for
// the first event's 5 attempts, that event goes to the NATS dead-letter subject (real
// embedded NATS) and the following events still arrive in order.
func TestWebhookDeadLetterAfterMaxAttemptsKeepsOrder(t *testing.T) {
	nc := testutil.Connect(t, testutil.NATS(t))
	dead, err := nc.SubscribeSync(bus.CallDeadLetterSubject("acme"))
	if err != nil {
		t.Fatal(err)
	}
	all, err := nc.SubscribeSync(bus.CallSubject("acme", "CA1"))
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	rcv := newReceiver(t, "s3cret", 5)
	d := newDelivery(DeliveryOptions{AllowLoopback: true, Backoff: time.Millisecond}, nc, slog.New(slog.DiscardHandler), "acme", "CA1", rcv.srv.URL, "s3cret")
	go d.run(context.Background())
	for _, w := range []string{"one", "two", "three", "four"} {
		if err := d.enqueue(finalEvent(w)); err != nil {
			t.Fatal(err)
		}
	}
	d.close()
	<-d.done
	m, err := dead.NextMsg(2 * time.Second)
	if err != nil {
		t.Fatalf("no dead letter: %v", err)
	}
	var dl DeadLetter
	if err := json.Unmarshal(m.Data, &dl); err != nil || dl.Attempts != 5 || dl.Event.Text != "one" || dl.Event.Seq != 1 {
		t.Fatalf("dead letter %+v (%v)", dl, err)
	}
	got := rcv.got()
	if len(got) != 3 || got[0].Text != "two" || got[1].Text != "three" || got[2].Text != "four" {
		t.Fatalf("webhook got %+v", got)
	}
	for i := 1; i <= 4; i++ { // NATS gets every event, in order
		m, err := all.NextMsg(time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var ev CallEvent
		if json.Unmarshal(m.Data, &ev) != nil || ev.Seq != uint64(i) {
			t.Fatalf("NATS event %d: %s", i, m.Data)
		}
	}
}

func TestWebhookClientErrorIsNotRetried(t *testing.T) {
	calls := 0
	srv := newReceiver(t, "right", 0) // verifies with "right"; we sign with "wrong" → 401
	d := newDelivery(DeliveryOptions{AllowLoopback: true, Backoff: time.Millisecond}, nil, slog.New(slog.DiscardHandler), "acme", "CA1", srv.srv.URL, "wrong")
	go d.run(context.Background())
	_ = d.enqueue(finalEvent("x"))
	d.close()
	<-d.done
	calls = len(srv.attempts)
	if calls != 1 || srv.badSig != 1 {
		t.Fatalf("%d attempts, %d bad signatures; a 401 must not be retried", calls, srv.badSig)
	}
}

func TestPartialsAreDroppedWhenTheQueueIsFullFinalsAreNot(t *testing.T) {
	block := make(chan struct{})
	srv := newReceiver(t, "s", 0)
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block; srv.serve(w, r) })
	srv.srv.Config.Handler = slow
	d := newDelivery(DeliveryOptions{AllowLoopback: true, Queue: 2}, nil, slog.New(slog.DiscardHandler), "acme", "CA1", srv.srv.URL, "s")
	go d.run(context.Background())
	_ = d.enqueue(finalEvent("f1")) // taken by run, blocked in POST
	time.Sleep(50 * time.Millisecond)
	for i := 0; i < 5; i++ {
		_ = d.enqueue(&CallEvent{Type: TypePartial, Text: "p"})
	}
	go func() { time.Sleep(50 * time.Millisecond); close(block) }()
	_ = d.enqueue(finalEvent("f2")) // waits for room
	d.close()
	<-d.done
	got := srv.got()
	if len(got) != 4 || got[0].Text != "f1" || got[3].Text != "f2" || d.droppedPartials() != 3 {
		t.Fatalf("got %d events (last %+v), dropped %d", len(got), got[len(got)-1], d.droppedPartials())
	}
	for i, e := range got {
		if e.Seq != uint64(i+1) {
			t.Fatalf("seq %d at %d: dropped partials must not leave gaps", e.Seq, i)
		}
	}
}

// TestNATSIsNotHeldBackByASlowWebhook: while the webhook hangs on the first event, the
// following ones are already on NATS, in order (a voice agent there gets its barge_in).
func TestNATSIsNotHeldBackByASlowWebhook(t *testing.T) {
	block := make(chan struct{})
	srv := newReceiver(t, "s", 0)
	srv.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block; srv.serve(w, r) })
	pub := &recPublisher{}
	d := newDelivery(DeliveryOptions{AllowLoopback: true}, pub, slog.New(slog.DiscardHandler), "acme", "CA1", srv.srv.URL, "s")
	go d.run(context.Background())
	for _, typ := range []string{TypeFinal, TypeTurnStart, TypeBargeIn} {
		_ = d.enqueue(&CallEvent{Type: typ})
	}
	testutil.Eventually(t, 2*time.Second, "events on NATS", func() bool {
		pub.mu.Lock()
		defer pub.mu.Unlock()
		return len(pub.evs) == 3 && pub.evs[2].Type == TypeBargeIn && pub.evs[2].Seq == 3
	})
	if got := srv.got(); len(got) != 0 {
		t.Fatalf("webhook got %d events while blocked", len(got))
	}
	close(block)
	d.close()
	<-d.done
	if got := srv.got(); len(got) != 3 || got[2].Type != TypeBargeIn {
		t.Fatalf("webhook got %+v", got)
	}
}
