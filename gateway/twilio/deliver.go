package twilio

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/netguard"
)

// Publisher publishes one message (*nats.Conn satisfies it). Safe for concurrent use.
type Publisher interface {
	Publish(subject string, data []byte) error
}

// DeliveryOptions tune webhook delivery. Zero values take the defaults.
type DeliveryOptions struct {
	// MaxAttempts is how often one event is tried before it goes to the dead-letter
	// subject. Default 5.
	MaxAttempts int
	// Backoff is the wait after the first failure; it doubles per attempt up to
	// MaxBackoff, with up to 10% jitter. Defaults 250 ms and 5 s.
	Backoff, MaxBackoff time.Duration
	// Queue bounds the events of one call waiting for the webhook. A partial or
	// turn.update that finds it full is dropped, on NATS too (counted in the summary);
	// other events wait. Default 256.
	Queue int
	// Client sends the POSTs. Default: a netguard client with a 10 s timeout: the
	// tenant's URL may not reach an internal address, and redirects are not followed
	// (a receiver that redirects has not accepted the event).
	Client *http.Client
	// AllowLoopback lets the default client reach loopback webhooks: tests only.
	AllowLoopback bool
}

func (o *DeliveryOptions) defaults() {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = 250 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	if o.Queue <= 0 {
		o.Queue = 256
	}
	if o.Client == nil {
		o.Client = netguard.Guard{AllowLoopback: o.AllowLoopback}.Client(10*time.Second, nil)
	}
}

// delivery sends one call's events in order: to NATS as they are enqueued (a slow or
// failing webhook does not hold up the NATS subscriber, who may be a voice agent
// waiting for a barge_in), and to the webhook from one goroutine, with retries. The
// next POST waits until the current event is delivered or dead-lettered, so the
// receiver sees a call's events in Seq order.
type delivery struct {
	opts   DeliveryOptions
	pub    Publisher // nil: no NATS
	log    *slog.Logger
	tenant bus.TenantID
	call   string
	url    string
	secret string

	q    chan queued
	done chan struct{}

	mu      sync.Mutex
	seq     uint64
	closed  bool
	dropped int
}

func newDelivery(opts DeliveryOptions, pub Publisher, log *slog.Logger, tenant bus.TenantID, call, url, secret string) *delivery {
	opts.defaults()
	return &delivery{opts: opts, pub: pub, log: log, tenant: tenant, call: call, url: url, secret: secret,
		q: make(chan queued, opts.Queue), done: make(chan struct{})}
}

// queued is an event waiting for the webhook, and its JSON.
type queued struct {
	ev   *CallEvent
	body []byte
}

// enqueue numbers ev, publishes it on NATS and queues it for the webhook. A partial or
// turn.update is dropped (from both) when the queue is full; anything else waits for
// room. Safe for concurrent use; the order of enqueue calls is the delivery order.
func (d *delivery) enqueue(ev *CallEvent) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrQueueClosed
	}
	// Only enqueue adds to q, under mu: room seen here is still there below.
	if (ev.Type == TypePartial || ev.Type == TypeTurnUpdate) && d.url != "" && len(d.q) == cap(d.q) {
		d.dropped++
		return nil
	}
	ev.Tenant = d.tenant
	ev.Seq = d.seq + 1
	d.seq++
	body, err := json.Marshal(ev)
	if err != nil {
		d.log.Error("marshal call event", "err", err)
		return nil
	}
	if d.pub != nil {
		if err := d.pub.Publish(bus.CallSubject(d.tenant, d.call), body); err != nil {
			d.log.Warn("publish call event to NATS", "seq", ev.Seq, "err", err)
		}
	}
	if d.url != "" {
		d.q <- queued{ev, body}
	}
	return nil
}

func (d *delivery) droppedPartials() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dropped
}

// close ends the queue; run returns once everything queued is delivered.
func (d *delivery) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		d.closed = true
		close(d.q)
	}
}

// run delivers until the queue is closed and empty. When ctx ends, events still to be
// delivered are tried once more at most and then dead-lettered.
func (d *delivery) run(ctx context.Context) {
	defer close(d.done)
	for q := range d.q {
		attempts, err := d.post(ctx, q.ev, q.body)
		if err != nil {
			d.deadLetter(q.ev, attempts, err)
		}
	}
}

// post tries the webhook up to MaxAttempts times with exponential backoff. A 4xx
// other than 408 and 429 is final: retrying the same body cannot help.
func (d *delivery) post(ctx context.Context, ev *CallEvent, body []byte) (int, error) {
	wait := d.opts.Backoff
	var last error
	for attempt := 1; attempt <= d.opts.MaxAttempts; attempt++ {
		retry, err := d.postOnce(ctx, ev, body)
		if err == nil {
			return attempt, nil
		}
		last = err
		d.log.Debug("webhook attempt failed", "seq", ev.Seq, "attempt", attempt, "err", err)
		if !retry || attempt == d.opts.MaxAttempts || ctx.Err() != nil {
			return attempt, last
		}
		jitter := time.Duration(rand.Int64N(int64(wait)/10 + 1))
		select {
		case <-time.After(wait + jitter):
		case <-ctx.Done():
			return attempt, fmt.Errorf("%w (gave up: %v)", last, ctx.Err())
		}
		wait = min(2*wait, d.opts.MaxBackoff)
	}
	return d.opts.MaxAttempts, last
}

func (d *delivery) postOnce(ctx context.Context, ev *CallEvent, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, SignWebhook(d.secret, time.Now(), body))
	req.Header.Set("X-Earshot-Event", ev.Type)
	req.Header.Set("X-Earshot-Delivery", d.call+":"+strconv.FormatUint(ev.Seq, 10))
	resp, err := d.opts.Client.Do(req)
	if err != nil {
		return true, fmt.Errorf("webhook POST: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("webhook answered %s", resp.Status)
	default:
		return false, fmt.Errorf("webhook answered %s", resp.Status)
	}
}

func (d *delivery) deadLetter(ev *CallEvent, attempts int, cause error) {
	d.log.Warn("webhook delivery failed; dead-lettering", "seq", ev.Seq, "type", ev.Type, "attempts", attempts, "err", cause)
	if d.pub == nil {
		return
	}
	b, err := json.Marshal(DeadLetter{Tenant: d.tenant, CallSID: d.call, URL: d.url, Attempts: attempts,
		LastError: cause.Error(), Event: ev})
	if err == nil {
		err = d.pub.Publish(bus.CallDeadLetterSubject(d.tenant), b)
	}
	if err != nil {
		d.log.Error("dead-letter publish failed: event lost", "seq", ev.Seq, "err", err)
	}
}
