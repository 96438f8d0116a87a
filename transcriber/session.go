package transcriber

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/lang"
)

// session is one live stream on the pool: one independent stream per channel, one lock
// for all of them, and one result sequence. Results are emitted with s.mu held, so
// they are ordered and none follows Close.
type session struct {
	pool  *Pool
	req   bus.SessionRequest
	model string
	emit  Emitter
	log   *slog.Logger
	ctx   context.Context // cancelled by Close: aborts in-flight decodes
	stop  context.CancelFunc

	endpoint     uint64 // samples of silence that end an utterance; 0 = no VAD finals
	hangover     uint64 // samples of silence that end speech for the decode gate
	utteranceEnd uint64 // samples; 0 = no ResultUtteranceEnd
	step         uint64 // samples
	pad          uint64
	tail         uint64 // audio after the speech end in a final's window: pad, or specEarly in a turn session
	maxSegment   uint64
	maxBuffer    uint64

	keyterms keyterms         // set by Pool.Open
	lang     lang.Spec        // set by Pool.Open
	turns    *bus.TurnOptions // turn-taking (turn.go); nil: an ordinary stream

	mu         sync.Mutex
	streams    []*stream
	seq        uint64
	closed     bool // Close called
	failed     bool // an error result was sent; the session decodes no more
	ending     bool // an End chunk arrived
	closedSent bool
}

func newSession(p *Pool, req bus.SessionRequest, emit Emitter) (*session, error) {
	cfg := &p.cfg
	samples := func(d time.Duration) uint64 { return uint64(d.Milliseconds()) * bus.SamplesPerMs }
	s := &session{
		pool:         p,
		req:          req,
		model:        req.Model,
		emit:         emit,
		log:          cfg.Log.With("session", req.Session),
		step:         samples(cfg.Step),
		pad:          samples(cfg.Pad),
		maxSegment:   samples(cfg.MaxSegment),
		maxBuffer:    samples(cfg.MaxBuffer),
		endpoint:     samples(cfg.EndpointSilence),
		hangover:     samples(cfg.EndpointSilence),
		utteranceEnd: uint64(max(0, req.Options.UtteranceEndMs)) * bus.SamplesPerMs,
	}
	s.tail = s.pad
	switch ms := req.Options.EndpointingMs; {
	case req.Options.Turns != nil:
		o, err := CheckTurnOptions(*req.Options.Turns)
		if err != nil {
			return nil, err
		}
		// Utterances end at the server's endpointing, as on /v1/listen (whisper
		// transcribes a pause-free window best); the turn spans them (turn.go).
		s.turns = &o
		s.tail = specEarly
		s.req.Options.InterimResults = true // Update events carry the partials
	case ms > 0:
		s.endpoint = samples(endpointSilence(ms, cfg.EndpointSilence, cfg.MinEndpoint))
		s.hangover = s.endpoint
	case ms < 0:
		s.endpoint = 0
	}
	s.ctx, s.stop = context.WithCancel(context.Background())
	channels := max(1, req.Channels)
	for ch := 0; ch < channels; ch++ {
		v, err := cfg.NewVAD()
		if err != nil {
			s.closeVADs()
			s.stop()
			return nil, fmt.Errorf("open session %s: vad: %w", req.Session, err)
		}
		st := &stream{sess: s, ch: ch, vad: v}
		if s.turns != nil {
			st.turn = &turnState{}
		}
		st.history = lastWords(units(req.Prompt), maxHistoryWords)
		if ch < len(req.Committed) {
			st.committed = req.Committed[ch]
		}
		s.streams = append(s.streams, st)
	}
	return s, nil
}

func (s *session) closeVADs() {
	for _, st := range s.streams {
		if err := st.vad.Close(); err != nil {
			s.log.Warn("close vad", "err", err)
		}
	}
}

// Write buffers one chunk, runs the VAD over it and queues the stream for a decode
// when one is due. It never waits for a decode.
func (s *session) Write(c *bus.AudioChunk) error {
	now := s.pool.cfg.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed || s.ending:
		return fmt.Errorf("session %s chunk %d: %w", s.req.Session, c.Seq, ErrClosed)
	case s.failed:
		return fmt.Errorf("session %s chunk %d: %w", s.req.Session, c.Seq, ErrOverloaded)
	case c.Channel < 0 || c.Channel >= len(s.streams):
		return fmt.Errorf("session %s chunk %d: channel %d of %d", s.req.Session, c.Seq, c.Channel, len(s.streams))
	}
	if err := s.streams[c.Channel].write(c, now); err != nil {
		return err
	}
	if c.Flags&(bus.FlagFinalize|bus.FlagEnd) != 0 {
		s.ending = c.Flags&bus.FlagEnd != 0
		for _, st := range s.streams {
			st.finalize(c.Flags&bus.FlagFinalize != 0)
		}
	}
	for _, st := range s.streams {
		st.drain()
		st.schedule(now)
	}
	s.maybeClosed()
	return nil
}

// Close stops the session: an in-flight decode is aborted, nothing is emitted once
// Close returns, and the session's place in Capacity is freed.
func (s *session) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.stop()
	for _, st := range s.streams {
		s.pool.sched.remove(st)
	}
	s.closeVADs()
	s.mu.Unlock()
	s.pool.release(s.model)
}

// fail ends the session with an error result. Callers hold s.mu.
func (s *session) fail(st *stream, code bus.ErrorCode, err error) {
	if s.failed || s.closed {
		return
	}
	s.log.Warn("session failed", "code", code, "err", err)
	s.send(st, bus.Result{Type: bus.ResultError, Code: code, Message: err.Error()})
	s.failed = true
	for _, x := range s.streams {
		s.pool.sched.remove(x)
	}
}

// maybeClosed sends ResultClosed once an End chunk's finals are all out.
func (s *session) maybeClosed() {
	if !s.ending || s.closedSent || s.closed || s.failed {
		return
	}
	for _, st := range s.streams {
		if len(st.pending) > 0 {
			return
		}
	}
	s.closedSent = true
	// One ResultClosed per channel (the gateway's contract); the session ends with the
	// last of them.
	for _, st := range s.streams {
		s.send(st, bus.Result{Type: bus.ResultClosed, Start: sec(st.end()), EndSample: st.end()})
	}
}

// send stamps and emits r. Callers hold s.mu.
func (s *session) send(st *stream, r bus.Result) {
	if s.closed {
		return
	}
	s.seq++
	r.Session, r.Worker, r.Seq, r.Channel = s.req.Session, s.pool.cfg.Worker, s.seq, st.ch
	if r.AudioSeq == 0 {
		r.AudioSeq = st.audioSeq
	}
	r.ChunkSentNs, r.WorkerRecvNs = st.sentNs, st.recvNs
	r.WorkerSentNs = time.Now().UnixNano()
	s.emit(r)
}
