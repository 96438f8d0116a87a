package twilio

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/internal/bus"
)

// standInBackend is a deterministic stand-in for the NATS transcriber, for protocol
// tests only: per track it "recognises" one word per 0.5 s of audio ("w1", "w2", ...),
// sending a partial then a final for each, and ResultClosed after FlagEnd. It keeps
// every sample it was sent.
type standInBackend struct {
	mu      sync.Mutex
	streams []*standInStream
}

func (b *standInBackend) Open(_ context.Context, req bus.SessionRequest) (gateway.Stream, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := &standInStream{req: req, out: make(chan bus.Result, 1024)}
	b.streams = append(b.streams, s)
	return s, nil
}

func (b *standInBackend) all() []*standInStream {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*standInStream(nil), b.streams...)
}

type standInStream struct {
	req bus.SessionRequest

	mu     sync.Mutex
	pcm    []int16
	words  int
	ended  bool
	closed bool
	out    chan bus.Result
}

func (s *standInStream) Send(pcm []int16, _ int, flags bus.ChunkFlag) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.ended {
		return fmt.Errorf("stand-in: send after end")
	}
	s.pcm = append(s.pcm, pcm...)
	for len(s.pcm) >= (s.words+1)*8000 {
		s.words++
		start := float64(s.words-1) * 0.5
		w := fmt.Sprintf("w%d", s.words)
		s.out <- bus.Result{Type: bus.ResultPartial, Session: s.req.Session, Start: start, Duration: 0.5, Text: w}
		s.out <- bus.Result{Type: bus.ResultFinal, Session: s.req.Session, Start: start, Duration: 0.5, Text: w}
	}
	if flags&bus.FlagEnd != 0 {
		s.ended = true
		s.out <- bus.Result{Type: bus.ResultClosed, Session: s.req.Session}
	}
	return nil
}

func (s *standInStream) Results() <-chan bus.Result { return s.out }

func (s *standInStream) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.out)
	}
}

func (s *standInStream) samples() []int16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int16(nil), s.pcm...)
}

// recMetering records what every track of every call was billed.
type recMetering struct {
	mu     sync.Mutex
	meters map[string]*recMeter // "call/track"
}

type recMeter struct {
	mu     sync.Mutex
	ms     int64
	closed bool
	sess   bus.SessionID
	tenant bus.TenantID
}

func (m *recMeter) Add(ms int64) { m.mu.Lock(); m.ms += ms; m.mu.Unlock() }
func (m *recMeter) Close(context.Context) error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	return nil
}

func (r *recMetering) Start(_ context.Context, tenant bus.TenantID, _ string, s bus.SessionID, call, track string) (gateway.Meter, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.meters == nil {
		r.meters = map[string]*recMeter{}
	}
	m := &recMeter{sess: s, tenant: tenant}
	r.meters[call+"/"+track] = m
	return m, nil
}

// billed returns the ms billed to call/track and whether its meter was closed.
func (r *recMetering) billed(call, track string) (int64, bool) {
	r.mu.Lock()
	m := r.meters[call+"/"+track]
	r.mu.Unlock()
	if m == nil {
		return -1, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ms, m.closed
}

// mapTenants is a stand-in TenantResolver.
type mapTenants map[string]bus.TenantID

func (m mapTenants) Resolve(_ context.Context, secret string) (bus.TenantID, error) {
	if t, ok := m[secret]; ok {
		return t, nil
	}
	return "", ErrSecretNotFound
}

// fixedWebhook is a stand-in Webhooks returning one URL for every tenant.
type fixedWebhook struct{ url, secret string }

func (f fixedWebhook) WebhookFor(context.Context, bus.TenantID) (string, string, error) {
	return f.url, f.secret, nil
}

// receiver is a real HTTP webhook receiver: it verifies every signature, fails the
// first `fail` requests with 500, and records accepted events in arrival order.
type receiver struct {
	t      testing.TB
	secret string
	srv    *httptest.Server

	mu       sync.Mutex
	fail     int
	attempts []time.Time
	events   []CallEvent
	badSig   int
}

func newReceiver(t testing.TB, secret string, fail int) *receiver {
	r := &receiver{t: t, secret: secret, fail: fail}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts = append(r.attempts, time.Now())
	if err := VerifyWebhook(r.secret, req.Header.Get(SignatureHeader), body, time.Minute, time.Now()); err != nil {
		r.badSig++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if r.fail > 0 {
		r.fail--
		http.Error(w, "try later", http.StatusInternalServerError)
		return
	}
	var ev CallEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		r.t.Errorf("webhook body is not a CallEvent: %v", err)
	}
	r.events = append(r.events, ev)
}

func (r *receiver) got() []CallEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]CallEvent(nil), r.events...)
}

func (r *receiver) summary() *CallEvent {
	for _, e := range r.got() {
		if e.Type == TypeSummary {
			return &e
		}
	}
	return nil
}
