package twilio

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/internal/bus"
)

// standInBackend is a deterministic stand-in for the NATS transcriber, for protocol
// tests only: per track it "recognises" one word per 0.5 s of audio ("w1", "w2", ...),
// sending a partial then a final for each, and ResultClosed after FlagEnd. It keeps
// every sample it was sent. A turn session (Options.Turns) gets the stand-in turn
// engine of standInTurns instead.
type standInBackend struct {
	mu      sync.Mutex
	streams []*standInStream
}

func (b *standInBackend) Open(_ context.Context, req bus.SessionRequest) (gateway.Stream, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := &standInStream{req: req, out: make(chan bus.Result, 1024)}
	if req.Options.Turns != nil {
		s.turns = &standInTurns{eager: req.Options.Turns.EagerEOTThreshold > 0}
	}
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
	turns  *standInTurns // turn sessions only
}

func (s *standInStream) Send(pcm []int16, _ int, flags bus.ChunkFlag) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.ended {
		return fmt.Errorf("stand-in: send after end")
	}
	s.pcm = append(s.pcm, pcm...)
	if s.turns != nil {
		s.turns.feed(s, flags&bus.FlagEnd != 0)
	}
	for s.turns == nil && len(s.pcm) >= (s.words+1)*8000 {
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

// standInTurns is a deterministic stand-in for the worker's turn engine
// (transcriber/turn.go), for the bridge's turn-taking tests only. It cuts the audio into
// 20 ms blocks; a block is speech when a sample's magnitude exceeds 1000. Five speech
// blocks in a row open a turn (StartOfTurn, SpeechAt = the first one's start: it comes
// 100 ms after the onset, as the real one's within about 150 ms); an Update every 12
// blocks of the turn; after 10 silent blocks an EagerEndOfTurn (with
// eager_eot_threshold; speech again after it: TurnResumed); after 30 silent blocks (the
// VAD-only 600 ms) a final, then EndOfTurn (trigger model, p 0.9, SpeechAt = the speech
// end). The turn's transcript is one word per 25 speech blocks (at least one),
// "t<turn>w<k>". FlagEnd inside a turn: a final and EndOfTurn with trigger close.
type standInTurns struct {
	eager bool

	pos    uint64 // samples cut into blocks so far
	run    int    // speech blocks in a row, before a turn opens
	onset  uint64
	open   bool
	index  int
	start  uint64 // the open turn's speech onset
	speech int    // its speech blocks
	silent int    // silent blocks since its last speech
	end    uint64 // its speech end
	eagerd bool   // EagerEndOfTurn sent in this pause
	blocks int    // blocks since the turn opened (Update cadence)
}

const standInBlock = 320

func (tt *standInTurns) feed(s *standInStream, end bool) {
	for tt.pos+standInBlock <= uint64(len(s.pcm)) {
		speech := false
		for _, v := range s.pcm[tt.pos : tt.pos+standInBlock] {
			if v > 1000 || v < -1000 {
				speech = true
				break
			}
		}
		at := tt.pos
		tt.pos += standInBlock
		tt.block(s, at, speech)
	}
	if end && tt.open {
		tt.finish(s, bus.TriggerClose)
	}
}

func (tt *standInTurns) block(s *standInStream, at uint64, speech bool) {
	if !tt.open {
		if !speech {
			tt.run = 0
			return
		}
		if tt.run == 0 {
			tt.onset = at
		}
		if tt.run++; tt.run == 5 {
			*tt = standInTurns{eager: tt.eager, pos: tt.pos, index: tt.index, open: true, start: tt.onset, speech: 5, end: tt.pos}
			tt.send(s, bus.TurnStart, "", 0, tt.start, "")
		}
		return
	}
	tt.blocks++
	if speech {
		if tt.eagerd {
			tt.eagerd = false
			tt.send(s, bus.TurnResumed, "", 0, tt.pos, "")
		}
		tt.speech++
		tt.silent = 0
		tt.end = tt.pos
	} else {
		tt.silent++
	}
	if tt.blocks%12 == 0 && !tt.eagerd {
		text := tt.text()
		s.out <- bus.Result{Type: bus.ResultPartial, Session: s.req.Session, Start: samplesToSec(tt.start), Duration: samplesToSec(tt.pos - tt.start), Text: text}
		tt.send(s, bus.TurnUpdate, text, 0.1, 0, "")
	}
	if tt.silent == 10 && tt.eager {
		tt.eagerd = true
		tt.send(s, bus.TurnEager, tt.text(), 0.6, tt.end, "")
	}
	if tt.silent == 30 {
		tt.finish(s, bus.TriggerModel)
	}
}

func (tt *standInTurns) text() string {
	var ws []string
	for k := 1; k <= max(1, tt.speech/25); k++ {
		ws = append(ws, fmt.Sprintf("t%dw%d", tt.index, k))
	}
	return strings.Join(ws, " ")
}

func (tt *standInTurns) words() []bus.Word {
	var out []bus.Word
	for i, w := range strings.Fields(tt.text()) {
		st := samplesToSec(tt.start) + 0.5*float64(i)
		out = append(out, bus.Word{Word: w, Punctuated: w, Start: st, End: st + 0.4, Confidence: 0.9})
	}
	return out
}

func (tt *standInTurns) finish(s *standInStream, trigger string) {
	text := tt.text()
	s.out <- bus.Result{Type: bus.ResultFinal, Session: s.req.Session, Start: samplesToSec(tt.start),
		Duration: samplesToSec(tt.end - tt.start), Text: text, Words: tt.words()}
	tt.send(s, bus.TurnEnd, text, 0.9, tt.end, trigger)
	*tt = standInTurns{eager: tt.eager, pos: tt.pos, index: tt.index + 1}
}

func (tt *standInTurns) send(s *standInStream, event, text string, p float64, speechAt uint64, trigger string) {
	r := bus.Result{Type: bus.ResultTurn, Session: s.req.Session, Event: event, TurnIndex: tt.index,
		Start: samplesToSec(tt.start), Duration: samplesToSec(tt.pos - tt.start), Text: text,
		EOTConfidence: p, SpeechAt: speechAt, Trigger: trigger}
	if text != "" {
		r.Words = tt.words()
	}
	s.out <- r
}
