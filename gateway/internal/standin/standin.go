// Package standin is the one stand-in transcription backend of the gateway's tests:
// gateway's own tests use it directly, everyone else through gatewaytest.Backend
// (package gateway cannot import gatewaytest in its own tests).
package standin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
)

// Backend is a deterministic stand-in for the NATS transcriber: it "recognises" one
// word per 0.5 s of audio per channel ("w1", "w2", ...), sends a partial per word, a
// final with speech_final after every second word, a final with from_finalize on
// Finalize, and ResultClosed after FlagEnd. Turn-taking sessions get turn events too.
// Set the fields before the first Open (or under Lock).
type Backend struct {
	sync.Mutex
	// OpenErr, if set, is what Open returns.
	OpenErr error
	// MaxStreams, if > 0, is how many streams may be open at once: Open beyond it
	// returns an error wrapping bus.ErrNoCapacity.
	MaxStreams int
	// Flood is how many results to emit at once on the first audio (slow consumers).
	Flood int
	// FailWith makes every stream answer audio with a ResultError of this code.
	FailWith bus.ErrorCode
	// FailFirstAt makes the first stream fail with OVERLOADED once it has this many
	// samples on a channel.
	FailFirstAt int
	// KeepAudio keeps every sample sent (Stream.Audio).
	KeepAudio bool
	// EndDelay holds back what FlagEnd produces (the last final and ResultClosed) this
	// long: a worker still decoding the finals of a stream that has ended.
	EndDelay time.Duration

	opened  []bus.SessionRequest
	streams []*Stream
}

// Open opens a stand-in stream, or fails as the fields say.
func (b *Backend) Open(ctx context.Context, req bus.SessionRequest) (*Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.Lock()
	defer b.Unlock()
	if b.OpenErr != nil {
		return nil, b.OpenErr
	}
	if b.MaxStreams > 0 && b.liveLocked() >= b.MaxStreams {
		return nil, fmt.Errorf("%w for model %s (stand-in)", bus.ErrNoCapacity, req.Model)
	}
	st := &Stream{req: req, out: make(chan bus.Result, 64), done: make(chan struct{}),
		samples: map[int]int{}, pending: map[int][]string{}, flood: b.Flood, failWith: b.FailWith,
		keep: b.KeepAudio, audio: map[int][]int16{}, endDelay: b.EndDelay}
	if len(b.streams) == 0 {
		st.failAt = b.FailFirstAt
	}
	b.opened = append(b.opened, req)
	b.streams = append(b.streams, st)
	return st, nil
}

// Opened lists the requests of every stream opened so far.
func (b *Backend) Opened() []bus.SessionRequest {
	b.Lock()
	defer b.Unlock()
	return append([]bus.SessionRequest(nil), b.opened...)
}

// Streams lists every stream opened so far.
func (b *Backend) Streams() []*Stream {
	b.Lock()
	defer b.Unlock()
	return append([]*Stream(nil), b.streams...)
}

// Live is the number of streams not closed yet.
func (b *Backend) Live() int {
	b.Lock()
	defer b.Unlock()
	return b.liveLocked()
}

func (b *Backend) liveLocked() int {
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

// Stream is one stand-in stream (gateway.Stream and gateway.TurnConfigurer).
type Stream struct {
	req      bus.SessionRequest
	out      chan bus.Result
	done     chan struct{}
	once     sync.Once
	mu       sync.Mutex
	seq      uint64
	samples  map[int]int
	pending  map[int][]string
	flood    int
	failWith bus.ErrorCode
	failAt   int
	keep     bool
	audio    map[int][]int16
	endDelay time.Duration
	// turn-taking sessions: the current turn's index and the Configure calls
	turnIndex  int
	configured []bus.TurnOptions
}

// SamplesPerWord is how much audio makes a stand-in word: half a second.
const SamplesPerWord = bus.SampleRate / 2

func (s *Stream) emit(r bus.Result) {
	s.seq++
	r.Seq, r.Session = s.seq, s.req.Session
	select {
	case s.out <- r:
	case <-s.done:
	}
}

// Send takes audio of channel ch and emits what it "recognised".
func (s *Stream) Send(pcm []int16, ch int, flags bus.ChunkFlag) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return errors.New("stand-in stream closed")
	default:
	}
	if s.keep {
		s.audio[ch] = append(s.audio[ch], pcm...)
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
	before := s.samples[ch] / SamplesPerWord
	s.samples[ch] += len(pcm)
	after := s.samples[ch] / SamplesPerWord
	for i := before; i < after; i++ {
		if ch < len(s.req.Committed) && uint64(i*SamplesPerWord+SamplesPerWord*2/5) < s.req.Committed[ch] {
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
	if flags&bus.FlagEnd != 0 && s.endDelay > 0 {
		go func() {
			select {
			case <-time.After(s.endDelay):
			case <-s.done:
				return
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			s.end(ch, flags)
		}()
		return nil
	}
	s.end(ch, flags)
	return nil
}

// end emits what Finalize or End produce on ch; s.mu is held.
func (s *Stream) end(ch int, flags bus.ChunkFlag) {
	if flags&(bus.FlagFinalize|bus.FlagEnd) != 0 {
		open := len(s.pending[ch]) > 0
		if open || flags&bus.FlagFinalize != 0 {
			r := s.result(bus.ResultFinal, ch, s.samples[ch]/SamplesPerWord)
			r.FromFinalize = flags&bus.FlagFinalize != 0
			s.emit(r)
			if open {
				trigger := bus.TriggerClose
				if flags&bus.FlagFinalize != 0 {
					trigger = bus.TriggerManual
				}
				s.turn(bus.TurnEnd, ch, s.samples[ch]/SamplesPerWord, trigger)
			}
			s.pending[ch] = nil
		}
		if flags&bus.FlagEnd != 0 {
			s.emit(bus.Result{Type: bus.ResultClosed, Channel: ch})
		}
	}
}

// result covers the pending words of ch, the last of which is word n (1-based).
func (s *Stream) result(t bus.ResultType, ch, n int) bus.Result {
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
func (s *Stream) turns() *bus.TurnOptions { return s.req.Options.Turns }

// turn emits a turn event over the pending words of ch (turn-taking sessions only),
// as the worker does: StartOfTurn with the first word, an Update per word, an
// EndOfTurn after the final that closes the turn (EagerEndOfTurn first with eager on).
func (s *Stream) turn(event string, ch, n int, trigger string) {
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
func (s *Stream) Configure(t bus.TurnOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.req.Options.Turns == nil {
		return errors.New("not a turn-taking session")
	}
	s.req.Options.Turns = &t
	s.configured = append(s.configured, t)
	return nil
}

// Configures lists the knobs Configure was given.
func (s *Stream) Configures() []bus.TurnOptions {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]bus.TurnOptions(nil), s.configured...)
}

// Audio is what was sent on channel ch (with Backend.KeepAudio).
func (s *Stream) Audio(ch int) []int16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int16(nil), s.audio[ch]...)
}

// Samples is how many samples channel ch has received.
func (s *Stream) Samples(ch int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples[ch]
}

// Request is the request the stream was opened with.
func (s *Stream) Request() bus.SessionRequest { return s.req }

// Results is the stream's one results channel, closed after Close.
func (s *Stream) Results() <-chan bus.Result { return s.out }

// Close ends the stream: a Send in flight returns, later ones fail, and Results is
// closed. Idempotent.
func (s *Stream) Close() {
	s.once.Do(func() {
		close(s.done)
		s.mu.Lock() // a Send in flight is done (its emits give up on done)
		close(s.out)
		s.mu.Unlock()
	})
}
