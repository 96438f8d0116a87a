package billing

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultMeterEvery is the audio covered by one usage event when NewMeter gets 0.
const DefaultMeterEvery = 2000 * time.Millisecond

// meterQueue bounds the events waiting for JetStream per meter. When it is full, Add
// does not cut a new event: the audio stays pending and goes out with the next event,
// which is larger. Nothing is dropped and Add never blocks.
const meterQueue = 16

// Meter counts the audio accepted on one session track and publishes it as usage
// events of `every` ms each (the last, Final, carries the remainder). Add and Total are
// safe for concurrent use and never block; one goroutine per meter publishes, in order,
// retrying with backoff until JetStream acks. Close must be called once at the end.
type Meter struct {
	js    jetstream.JetStream
	tmpl  bus.UsageEvent
	base  int64 // stream time of this meter's first ms (non-zero on a resumed stream)
	every int64
	subj  string

	mu      sync.Mutex
	total   int64         // ms accepted
	cut     int64         // ms handed to the publisher
	acked   int64         // ms acknowledged by JetStream
	ackedCh chan struct{} // closed and replaced at each ack (Flush waits on it)
	closed  bool

	onAck func(ackedMs int64) // called by the publisher after each ack (OnAck)

	queue  chan bus.UsageEvent
	done   chan struct{}
	cancel context.CancelFunc
	ctx    context.Context
}

// NewMeter starts a meter for tmpl's tenant, key, model, session, call and track.
// tmpl.StartMs is the stream time of the first accepted ms: 0 for a new stream, the
// resume offset for a stream continued after a reconnect. Event ids are made from
// tmpl.Conn (or Session when Conn is empty), so two connections never share one. tmpl's ID,
// DurationMs, Final and At are filled per event.
func NewMeter(js jetstream.JetStream, tmpl bus.UsageEvent, every time.Duration) (*Meter, error) {
	if every <= 0 {
		every = DefaultMeterEvery
	}
	probe := tmpl
	probe.ID, probe.DurationMs, probe.Final = "probe", 0, false
	if err := ValidateEvent(probe); err != nil {
		return nil, fmt.Errorf("meter template: %w", err)
	}
	e := every.Milliseconds()
	if e < 1 || e > MaxEventMs {
		return nil, fmt.Errorf("%w: meter increment %v", ErrBadEvent, every)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Meter{js: js, tmpl: tmpl, base: tmpl.StartMs, every: e, subj: bus.UsageSubject(tmpl.Tenant),
		ackedCh: make(chan struct{}),
		queue:   make(chan bus.UsageEvent, meterQueue), done: make(chan struct{}), ctx: ctx, cancel: cancel}
	go m.publishLoop()
	return m, nil
}

// Add records ms of accepted audio. It never blocks: full increments are queued for
// publishing; if the queue is full they wait and are coalesced into a later event.
func (m *Meter) Add(ms int64) {
	if ms <= 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.total += ms
	unsent := m.total - m.cut
	if unsent < m.every {
		return
	}
	d := min(unsent/m.every*m.every, MaxEventMs/m.every*m.every)
	select {
	case m.queue <- m.event(m.cut, d, false):
		m.cut += d
	default: // publisher behind: keep the audio pending, the next event carries it
	}
}

// event builds the event for [start, start+d) of this meter's audio; the caller
// holds m.mu.
func (m *Meter) event(start, d int64, final bool) bus.UsageEvent {
	ev := m.tmpl
	ev.StartMs, ev.DurationMs, ev.Final = m.base+start, d, final
	by := ev.Conn
	if by == "" {
		by = ev.Session
	}
	ev.ID = bus.UsageEventID(by, ev.Track, ev.StartMs, d)
	ev.At = time.Now().UTC()
	return ev
}

// Flush publishes the audio accepted so far that no event carries yet, and waits
// until JetStream acknowledged every event up to it or ctx ends. The gateway calls it
// before it sends a final, so that the audio under every delivered final is billed
// even if the gateway dies right after: a client that reconnects resends only the
// audio after its last final.
func (m *Meter) Flush(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	if d := min(m.total-m.cut, MaxEventMs); d > 0 {
		select {
		case m.queue <- m.event(m.cut, d, false):
			m.cut += d
		default: // publisher behind: wait for what is queued; the rest goes out later
		}
	}
	target := m.cut
	for m.acked < target {
		ch := m.ackedCh
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-m.done:
			return ErrMeterClosed
		}
		m.mu.Lock()
	}
	m.mu.Unlock()
	return nil
}

// OnAck sets f to be called, from the publishing goroutine, with the meter's
// acknowledged total after each event JetStream acknowledged (the resume record marks
// what is billed with it). Set it before the first Add; f must not block for long.
func (m *Meter) OnAck(f func(ackedMs int64)) {
	m.mu.Lock()
	m.onAck = f
	m.mu.Unlock()
}

// Total is the audio accepted so far: published plus pending.
func (m *Meter) Total() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.total
}

// Acked is the audio JetStream has acknowledged so far.
func (m *Meter) Acked() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.acked
}

// Close publishes the remainder as the Final event (also when it is 0 ms, marking the
// end of the stream) and waits until every event is acked or ctx ends. On ctx end the
// error wraps ErrUnpublished and says how many ms were not acknowledged.
func (m *Meter) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrMeterClosed
	}
	m.closed = true
	var finals []bus.UsageEvent
	for m.total-m.cut > MaxEventMs { // only after a very long publisher stall
		d := MaxEventMs / m.every * m.every
		finals = append(finals, m.event(m.cut, d, false))
		m.cut += d
	}
	finals = append(finals, m.event(m.cut, m.total-m.cut, true))
	m.cut = m.total
	m.mu.Unlock()

	err := func() error {
		for _, ev := range finals {
			select {
			case m.queue <- ev:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		close(m.queue)
		select {
		case <-m.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}()
	m.cancel()
	if err != nil {
		<-m.done
		m.mu.Lock()
		lost := m.total - m.acked
		m.mu.Unlock()
		if lost > 0 {
			return fmt.Errorf("%w: %d ms of session %s: %v", ErrUnpublished, lost, m.tmpl.Session, err)
		}
	}
	return nil
}

func (m *Meter) publishLoop() {
	defer close(m.done)
	for {
		select {
		case ev, ok := <-m.queue:
			if !ok {
				return
			}
			if m.publish(ev) != nil {
				return // cancelled by Close after its deadline
			}
			m.mu.Lock()
			m.acked += ev.DurationMs
			acked, onAck := m.acked, m.onAck
			close(m.ackedCh)
			m.ackedCh = make(chan struct{})
			m.mu.Unlock()
			if onAck != nil {
				onAck(acked)
			}
		case <-m.ctx.Done():
			return
		}
	}
}

// publish sends ev until JetStream acks it (a duplicate ack counts) or the meter is
// cancelled, backing off from 50 ms to 2 s between tries.
func (m *Meter) publish(ev bus.UsageEvent) error {
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	backoff := 50 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(m.ctx, 5*time.Second)
		_, err := m.js.Publish(ctx, m.subj, data, jetstream.WithMsgID(ev.ID))
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-m.ctx.Done():
			return m.ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}
