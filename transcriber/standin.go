package transcriber

import (
	"fmt"
	"strings"
	"sync"

	"github.com/earshot-dev/earshot/internal/bus"
)

// StandIn is a SessionFactory that recognises nothing: a stand-in engine for transport
// and scale benchmarks (`earshot transcriber --engine standin`). Each session turns its
// audio into placeholder words at real-time pace, one word per standInWord of audio, a
// partial every standInPartial and a final every standInFinal (and on Finalize/End),
// with word times and EndSample on the stream's clock, so that everything around the
// decoder (bus, gateways, billing, the client protocol) carries a realistic load.
// Safe for concurrent use.
type StandIn struct {
	models []string
	max    int
	mu     sync.Mutex
	live   map[string]int
}

const (
	standInWord    = bus.SampleRate * 2 / 5 // 0.4 s per word
	standInPartial = bus.SampleRate / 2     // a partial every 0.5 s of audio
	standInFinal   = bus.SampleRate * 3     // a final every 3 s of audio
)

// NewStandIn serves models with at most maxSessions sessions each.
func NewStandIn(models []string, maxSessions int) *StandIn {
	return &StandIn{models: models, max: max(1, maxSessions), live: map[string]int{}}
}

// Models lists the model names the stand-in answers to.
func (f *StandIn) Models() []string { return f.models }

// Capacity reports the free sessions of model.
func (f *StandIn) Capacity(model string) bus.Capacity {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.models {
		if m == model {
			return bus.Capacity{Slots: f.max, Free: max(0, f.max-f.live[model])}
		}
	}
	return bus.Capacity{}
}

// Open starts a stand-in session.
func (f *StandIn) Open(req bus.SessionRequest, emit Emitter) (Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	known := false
	for _, m := range f.models {
		known = known || m == req.Model
	}
	if !known {
		return nil, fmt.Errorf("%w: %s", ErrUnknownModel, req.Model)
	}
	if f.live[req.Model] >= f.max {
		return nil, bus.ErrNoCapacity
	}
	f.live[req.Model]++
	chans := max(1, req.Channels)
	return &standInSession{f: f, model: req.Model, emit: emit, pos: make([]uint64, chans), uttStart: make([]uint64, chans),
		lastPartial: make([]uint64, chans)}, nil
}

type standInSession struct {
	f           *StandIn
	model       string
	emit        Emitter
	mu          sync.Mutex
	closed      bool
	pos         []uint64 // per channel: stream position after the last chunk
	uttStart    []uint64
	lastPartial []uint64
}

func (s *standInSession) Write(c *bus.AudioChunk) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	ch := c.Channel
	if ch < 0 || ch >= len(s.pos) {
		return fmt.Errorf("stand-in: channel %d of %d", ch, len(s.pos))
	}
	if len(c.PCM) > 0 {
		if s.pos[ch] < c.StartSample || s.pos[ch] == 0 {
			s.pos[ch] = c.StartSample
			if s.uttStart[ch] == 0 {
				s.uttStart[ch], s.lastPartial[ch] = c.StartSample, c.StartSample
			}
		}
		s.pos[ch] = c.EndSample()
	}
	end := s.pos[ch]
	switch {
	case c.Flags&(bus.FlagFinalize|bus.FlagEnd) != 0 || end-s.uttStart[ch] >= standInFinal:
		if end > s.uttStart[ch] {
			r := s.result(bus.ResultFinal, ch, end)
			r.FromFinalize, r.SpeechFinal = c.Flags&bus.FlagFinalize != 0, true
			r.EndSample, r.AudioSeq = end, c.Seq
			s.emit(r)
		}
		s.uttStart[ch], s.lastPartial[ch] = end, end
	case end-s.lastPartial[ch] >= standInPartial:
		r := s.result(bus.ResultPartial, ch, end)
		r.AudioSeq = c.Seq
		s.emit(r)
		s.lastPartial[ch] = end
	}
	if c.Flags&bus.FlagEnd != 0 {
		s.emit(bus.Result{Type: bus.ResultClosed, Channel: ch, AudioSeq: c.Seq})
	}
	return nil
}

// result covers the current utterance of ch up to end with placeholder words.
func (s *standInSession) result(t bus.ResultType, ch int, end uint64) bus.Result {
	start := s.uttStart[ch]
	var words []bus.Word
	var text []string
	for w := start; w+standInWord <= end; w += standInWord {
		name := fmt.Sprintf("w%d", w/standInWord)
		words = append(words, bus.Word{Word: name, Punctuated: name, Start: sec(w), End: sec(w + standInWord*3/4), Confidence: 1})
		text = append(text, name)
	}
	return bus.Result{Type: t, Channel: ch, Start: sec(start), Duration: sec(end - start),
		Text: strings.Join(text, " "), Words: words, Confidence: 1}
}

func (s *standInSession) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.f.mu.Lock()
	s.f.live[s.model]--
	s.f.mu.Unlock()
}
