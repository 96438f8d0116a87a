package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/internal/bus"
)

// standInBackend is a deterministic stand-in for the NATS transcriber, for gateway
// tests only: it "recognises" one word per 0.5 s of audio per channel ("w1", "w2",
// ...), sends a partial per word, a final with speech_final after every second word,
// a final with from_finalize on Finalize, and ResultClosed after FlagEnd.
type standInBackend struct {
	mu       sync.Mutex
	openErr  error
	flood    int // results to emit at once on the first audio (slow-consumer tests)
	failWith bus.ErrorCode
	// failFirstAt makes the first stream fail with OVERLOADED once it has this many samples.
	failFirstAt int
	opened      []bus.SessionRequest
	streams     []*standInStream
}

func (b *standInBackend) Open(ctx context.Context, req bus.SessionRequest) (Stream, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.openErr != nil {
		return nil, b.openErr
	}
	st := &standInStream{req: req, out: make(chan bus.Result, 64), done: make(chan struct{}),
		samples: map[int]int{}, pending: map[int][]string{}, flood: b.flood, failWith: b.failWith}
	if len(b.streams) == 0 {
		st.failAt = b.failFirstAt
	}
	b.opened = append(b.opened, req)
	b.streams = append(b.streams, st)
	return st, nil
}

func (b *standInBackend) liveStreams() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, s := range b.streams {
		select {
		case <-s.done:
		default:
			n++
		}
	}
	return n
}

type standInStream struct {
	req      bus.SessionRequest
	out      chan bus.Result
	done     chan struct{}
	once     sync.Once
	mu       sync.Mutex
	seq      uint64
	samples  map[int]int
	words    int
	pending  map[int][]string
	flood    int
	failWith bus.ErrorCode
	failAt   int
	// turn-taking sessions: the current turn's index and the Configure calls
	turnIndex  int
	configured []bus.TurnOptions
}

const samplesPerWord = bus.SampleRate / 2

func (s *standInStream) emit(r bus.Result) {
	s.seq++
	r.Seq, r.Session = s.seq, s.req.Session
	select {
	case s.out <- r:
	case <-s.done:
	}
}

func (s *standInStream) Send(pcm []int16, ch int, flags bus.ChunkFlag) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return errors.New("stand-in stream closed")
	default:
	}
	if s.failWith != "" && len(pcm) > 0 {
		s.emit(bus.Result{Type: bus.ResultError, Code: s.failWith, Message: "stand-in failure"})
		return nil
	}
	if s.failAt > 0 && s.samples[ch]+len(pcm) >= s.failAt {
		s.failAt = 0
		s.emit(bus.Result{Type: bus.ResultError, Code: bus.CodeOverloaded, Message: "stand-in worker lost"})
		return nil
	}
	for ; s.flood > 0; s.flood-- {
		s.emit(bus.Result{Type: bus.ResultPartial, Text: strings.Repeat("flood ", 2000)})
	}
	before := s.samples[ch] / samplesPerWord
	s.samples[ch] += len(pcm)
	after := s.samples[ch] / samplesPerWord
	for i := before; i < after; i++ {
		if ch < len(s.req.Committed) && uint64(i*samplesPerWord+samplesPerWord*2/5) < s.req.Committed[ch] {
			continue // run-up of a resumed connection: its words were delivered (as the worker does)
		}
		s.pending[ch] = append(s.pending[ch], fmt.Sprintf("w%d", i+1))
		if i == 0 && s.req.Options.VADEvents {
			s.emit(bus.Result{Type: bus.ResultSpeechStarted, Channel: ch, Start: 0.1})
		}
		if len(s.pending[ch]) == 1 {
			s.turn(bus.TurnStart, ch, i+1, "")
		}
		s.emit(s.result(bus.ResultPartial, ch, i+1))
		s.turn(bus.TurnUpdate, ch, i+1, "")
		if len(s.pending[ch]) == 2 {
			if s.turns() != nil && s.turns().EagerEOTThreshold > 0 {
				s.turn(bus.TurnEager, ch, i+1, "")
			}
			r := s.result(bus.ResultFinal, ch, i+1)
			r.SpeechFinal = true
			s.emit(r)
			s.turn(bus.TurnEnd, ch, i+1, bus.TriggerModel)
			s.pending[ch] = nil
			if s.req.Options.UtteranceEndMs > 0 {
				s.emit(bus.Result{Type: bus.ResultUtteranceEnd, Channel: ch, LastWordEnd: float64(i+1) / 2})
			}
		}
	}
	if flags&(bus.FlagFinalize|bus.FlagEnd) != 0 {
		open := len(s.pending[ch]) > 0
		if open || flags&bus.FlagFinalize != 0 {
			r := s.result(bus.ResultFinal, ch, s.samples[ch]/samplesPerWord)
			r.FromFinalize = flags&bus.FlagFinalize != 0
			s.emit(r)
			if open {
				trigger := bus.TriggerClose
				if flags&bus.FlagFinalize != 0 {
					trigger = bus.TriggerManual
				}
				s.turn(bus.TurnEnd, ch, s.samples[ch]/samplesPerWord, trigger)
			}
			s.pending[ch] = nil
		}
		if flags&bus.FlagEnd != 0 {
			s.emit(bus.Result{Type: bus.ResultClosed, Channel: ch})
		}
	}
	return nil
}

// result covers the pending words of ch, the last of which is word n (1-based).
func (s *standInStream) result(t bus.ResultType, ch, n int) bus.Result {
	ws := s.pending[ch]
	words := make([]bus.Word, len(ws))
	first := n - len(ws)
	for i, w := range ws {
		st := float64(first+i) / 2
		words[i] = bus.Word{Word: w, Start: st, End: st + 0.4, Confidence: 0.9, Punctuated: strings.ToUpper(w[:1]) + w[1:]}
	}
	start := float64(first) / 2
	return bus.Result{Type: t, Channel: ch, Start: start, Duration: float64(n)/2 - start,
		Text: strings.Join(ws, " "), Words: words, Confidence: 0.9, ChunkSentNs: 1}
}

// turns are the session's end-of-turn knobs (nil: not a turn-taking session).
func (s *standInStream) turns() *bus.TurnOptions { return s.req.Options.Turns }

// turn emits a turn event over the pending words of ch (turn-taking sessions only),
// as the worker does: StartOfTurn with the first word, an Update per word, an
// EndOfTurn after the final that closes the turn (EagerEndOfTurn first with eager on).
func (s *standInStream) turn(event string, ch, n int, trigger string) {
	if s.turns() == nil {
		return
	}
	r := s.result(bus.ResultTurn, ch, n)
	r.Event, r.TurnIndex, r.Trigger, r.Language = event, s.turnIndex, trigger, "en"
	r.EOTConfidence = 0.2
	if event == bus.TurnEnd || event == bus.TurnEager {
		r.EOTConfidence = 0.85
	}
	s.emit(r)
	if event == bus.TurnEnd {
		s.turnIndex++
	}
}

// Configure records new end-of-turn knobs (gateway.TurnConfigurer).
func (s *standInStream) Configure(t bus.TurnOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.req.Options.Turns == nil {
		return errors.New("not a turn-taking session")
	}
	s.req.Options.Turns = &t
	s.configured = append(s.configured, t)
	return nil
}

func (s *standInStream) configures() []bus.TurnOptions {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]bus.TurnOptions(nil), s.configured...)
}

func (s *standInStream) Results() <-chan bus.Result { return s.out }

func (s *standInStream) Close() { s.once.Do(func() { close(s.done) }) }

// standInCatalog is a fixed two-model catalog.
type standInCatalog struct{}

var standInModels = []Model{
	{Name: "tiny.en", Version: "2024-01-01", Arch: "whisper", UUID: "uuid-tiny", Card: map[string]string{"name": "tiny.en"}},
	{Name: "base.en", Version: "2024-01-01", Arch: "whisper", UUID: "uuid-base", Card: map[string]string{"name": "base.en"}},
}

func (standInCatalog) Lookup(name string) (Model, bool) {
	for _, m := range standInModels {
		if m.Name == name {
			return m, true
		}
	}
	return Model{}, false
}

func (standInCatalog) List() []Model { return standInModels }

// standInQuota refuses what its fields say.
type standInQuota struct {
	mu      sync.Mutex
	err     error
	notPlan map[string]bool
}

func (q *standInQuota) Check(_ context.Context, _ bus.TenantID, model string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.notPlan[model] {
		return fmt.Errorf("plan: %w", ErrModelNotInPlan)
	}
	return q.err
}

func (q *standInQuota) set(err error) { q.mu.Lock(); q.err = err; q.mu.Unlock() }

// standInMetering records the milliseconds metered per session.
type standInMetering struct {
	mu      sync.Mutex
	ms      map[bus.SessionID]int64
	closed  map[bus.SessionID]bool
	infos   map[bus.SessionID]SessionInfo
	flushes map[bus.SessionID]int
	settled map[bus.SessionID]bool
	settle  time.Duration // how long a Settle takes
}

type standInMeter struct {
	m  *standInMetering
	id bus.SessionID
}

func (m *standInMetering) Start(_ context.Context, s SessionInfo) (Meter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ms == nil {
		m.ms, m.closed = map[bus.SessionID]int64{}, map[bus.SessionID]bool{}
		m.infos, m.flushes = map[bus.SessionID]SessionInfo{}, map[bus.SessionID]int{}
		m.settled = map[bus.SessionID]bool{}
	}
	m.infos[s.Session] = s
	return standInMeter{m, s.Session}, nil
}

func (m standInMeter) Flush(context.Context) error {
	m.m.mu.Lock()
	m.m.flushes[m.id]++
	m.m.mu.Unlock()
	return nil
}

func (m standInMeter) Settle(context.Context) error {
	m.m.mu.Lock()
	d := m.m.settle
	m.m.mu.Unlock()
	time.Sleep(d)
	m.m.mu.Lock()
	m.m.settled[m.id] = true
	m.m.mu.Unlock()
	return nil
}

func (m *standInMetering) isSettled(id bus.SessionID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.settled[id]
}

func (m standInMeter) Add(ms int64) { m.m.mu.Lock(); m.m.ms[m.id] += ms; m.m.mu.Unlock() }
func (m standInMeter) Close(context.Context) error {
	m.m.mu.Lock()
	m.m.closed[m.id] = true
	m.m.mu.Unlock()
	return nil
}

// ingestPipelines adapts the real ingest package to PipelineFactory (the lead's
// production adapter looks the same).
func ingestPipelines(f AudioFormat) (AudioPipeline, error) {
	enc, err := ingest.ParseEncoding(f.Encoding)
	if err != nil {
		return nil, &wire.ParamError{Param: "encoding", Reason: err.Error()}
	}
	format := ingest.Format{Encoding: enc, SampleRate: f.SampleRate, Channels: f.Channels}
	if format.SampleRate == 0 && (enc == ingest.Mulaw || enc == ingest.Alaw) {
		format.SampleRate = ingest.G711Rate
	}
	mode := ingest.ModeDownmix
	if f.Multichannel {
		mode = ingest.ModePerChannel
	}
	p, err := ingest.NewPipeline(format, mode)
	switch {
	case errors.Is(err, ingest.ErrSampleRate):
		return nil, &wire.ParamError{Param: "sample_rate", Reason: err.Error()}
	case errors.Is(err, ingest.ErrChannels):
		return nil, &wire.ParamError{Param: "channels", Reason: err.Error()}
	case err != nil:
		return nil, &wire.ParamError{Param: "encoding", Reason: err.Error()}
	}
	return p, nil
}
