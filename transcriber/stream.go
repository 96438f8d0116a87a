package transcriber

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
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
	tail         uint64 // audio after the speech end in a final's window: pad, or turnTail in a turn session
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
		s.tail = turnTail
		s.req.Options.InterimResults = true // Update events carry the partials
	case ms > 0:
		s.endpoint = max(uint64(ms)*bus.SamplesPerMs, samples(cfg.MinEndpoint))
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

// stream is the policy state of one channel. Every field is guarded by sess.mu.
type stream struct {
	committed uint64 // after a failover: words before it were delivered (bus.SessionRequest.Committed)
	sess      *session
	ch        int
	vad       VAD
	ep        endpointer

	buf         []float32 // audio from bufStart to end()
	bufStart    uint64
	settledSent uint64 // EndSample of the last ResultSettled
	started     bool
	audioSeq    uint64 // last chunk seq written
	sentNs      int64
	recvNs      int64

	// The open utterance.
	uttOpen       bool
	uttID         uint64
	uttStart      uint64
	agree         agreement
	lastText      string
	speechInWin   bool   // speech arrived since the last partial decode was prepared
	decodedEnd    uint64 // window end of the last prepared partial decode
	lastDone      time.Time
	pending       []*finalSeg // finals in order; pending[0] may be decoding
	queued        bool
	decoding      bool
	decodingFinal bool
	abortPartial  context.CancelFunc // cancels the in-flight partial decode
	abortSpec     context.CancelFunc // cancels the in-flight speculative final

	// The newest partial hypothesis of the open utterance (guarded words) and the end of
	// its window: a final can reuse it when it already covers all the speech.
	lastHyp      []string
	lastHypTimes []wordTime
	lastHypEnd   uint64
	lastHypConf  float64
	lastHypSkip  int

	// Window trimming (see retrim): the open utterance's decodes start at winFrom (0: at
	// uttStart − Pad) and have its first winSkip committed words in their prompt.
	winFrom  uint64
	winSkip  int
	vadProbs []float32 // the VAD's speech probability of each window of the buffer, from vadAt
	vadAt    uint64

	// The speculative final: once the VAD reports Pad of silence after speech (the
	// start of the endpoint hangover), the window the final would decode, [uttStart −
	// Pad, speechEnd + Pad), is decoded at once with a final's priority. If the silence
	// holds until the endpoint, that result is the final (same window, same prompt: the
	// same decode); if speech resumes, it is an ordinary partial of the utterance.
	specUtt   uint64 // uttID of the last speculative decode prepared (0: none)
	specEnd   uint64 // its speech end
	specDone  bool   // its result is in specWords
	specWords []string
	specTimes []wordTime
	specConf  float64
	specFrom  uint64 // the window trimming it was decoded with
	specSkip  int

	// The language detected for utterance langUtt (language=multi), and its probability.
	lang    string
	langP   float32
	langUtt uint64

	turn *turnState // turn-taking (turn.go); nil unless the session has Turns

	modelTimes  bool     // a decode of this stream got word times from the model: finals should too
	history     []string // words of earlier finals: the decode prompt
	lastWordEnd float64
	ueSent      bool
}

// finalSeg is an utterance waiting for its final decode.
type finalSeg struct {
	start, speechEnd, end uint64
	uttID                 uint64 // the utterance's id while it was open
	speechFinal           bool
	fromFinalize          bool
	empty                 bool // nothing to decode: answer a Finalize with an empty final
	agree                 agreement
	audioSeq              uint64
	reuse                 []string // a partial hypothesis that covered all the speech
	reuseTimes            []wordTime
	reuseConf             float64
	reuseSkip             int // the window trimming reuse was decoded with
	reused                bool
	from                  uint64 // window trimming of the utterance when it was cut (stream.winFrom)
	skip                  int
	lang                  string // detected language (language=multi) and its probability
	langP                 float32
	turnEnd               string // its final ends the turn: bus.Trigger* (turn sessions)
}

const (
	maxHistoryWords  = 150
	minDecodeSamples = bus.SampleRate // windows are zero-padded to 1 s (whisper's short-input traps)
)

func sec(sample uint64) float64 { return float64(sample) / bus.SampleRate }

func (st *stream) end() uint64 { return st.bufStart + uint64(len(st.buf)) }

func (st *stream) write(c *bus.AudioChunk, now time.Time) error {
	s := st.sess
	if !st.started {
		st.started = true
		st.bufStart = c.StartSample
		st.ep = newEndpointer(st.vad.WindowSamples(), c.StartSample, max(s.hangover, 1))
		if s.turnOn() {
			st.ep.minSpeech = turnMinSpeech
		}
		st.decodedEnd = c.StartSample
	}
	st.audioSeq, st.sentNs, st.recvNs = c.Seq, c.SentNs, now.UnixNano()
	pcm := c.PCM
	switch end := st.end(); {
	case c.StartSample < end: // replayed overlap
		skip := end - c.StartSample
		if skip >= uint64(len(pcm)) {
			pcm = nil
		} else {
			pcm = pcm[skip:]
		}
	case c.StartSample > end: // lost audio: keep the timeline with silence
		gap := c.StartSample - end
		if gap > s.maxBuffer {
			return fmt.Errorf("session %s chunk %d: gap of %d samples", s.req.Session, c.Seq, gap)
		}
		st.buf = append(st.buf, make([]float32, gap)...)
	}
	from := len(st.buf)
	for _, v := range pcm {
		st.buf = append(st.buf, float32(v)/32768)
	}
	if held := uint64(len(st.buf)); held > s.maxBuffer {
		err := fmt.Errorf("session %s: %.1f s of audio not yet transcribed: %w", s.req.Session, sec(held), ErrOverloaded)
		s.fail(st, bus.CodeOverloaded, err)
		return err
	}
	probs, err := st.vad.Process(st.buf[from:])
	if err != nil {
		err = fmt.Errorf("session %s: vad: %w", s.req.Session, err)
		s.fail(st, bus.CodeInternal, err)
		return err
	}
	for _, p := range probs {
		if len(st.vadProbs) == 0 {
			st.vadAt = st.ep.pos
		}
		st.vadProbs = append(st.vadProbs, p)
		switch st.ep.push(p) {
		case evSpeechStart:
			if !st.uttOpen {
				st.open(st.ep.speechStart)
				if s.req.Options.VADEvents {
					s.send(st, bus.Result{Type: bus.ResultSpeechStarted, Start: sec(st.ep.speechStart)})
				}
				if s.turnOn() {
					st.turnSpeechStart(st.ep.speechStart)
				}
			}
		case evSpeechEnd:
			if st.uttOpen && s.endpoint > 0 {
				st.cut(st.ep.pos, st.ep.speechEnd, true, false)
			}
		}
		if st.ep.inSpeech {
			st.speechInWin = true
		}
	}
	if st.specDue() {
		// The partial in flight covers less than the speculative final will, and a
		// speculative final in flight for this utterance is for an earlier speech end
		// (one for a cut utterance is its final: it is left alone).
		if st.abortPartial != nil {
			st.abortPartial()
			st.abortPartial = nil
		}
		if st.abortSpec != nil && st.specUtt == st.uttID {
			st.abortSpec()
			st.abortSpec = nil
		}
	}
	if st.uttOpen && st.end()-st.uttStart+s.pad >= s.maxSegment {
		st.cut(st.end(), st.end(), false, false)
		if st.ep.inSpeech {
			st.open(st.end())
		}
	}
	if s.turnOn() {
		st.turnTick()
	}
	st.utteranceEnd()
	st.trim()
	return nil
}

// open starts an utterance at sample at.
func (st *stream) open(at uint64) {
	st.uttOpen, st.uttStart = true, at
	st.uttID++
	st.agree, st.lastText, st.lastHyp = agreement{}, "", nil
	st.decodedEnd, st.speechInWin = at, true
	st.ueSent = false
	st.winFrom, st.winSkip = 0, 0
}

// cut closes the open utterance at end (speech up to speechEnd) and queues its final.
func (st *stream) cut(end, speechEnd uint64, speechFinal, fromFinalize bool) {
	seg := &finalSeg{
		start: st.uttStart, speechEnd: speechEnd, end: end, uttID: st.uttID,
		speechFinal: speechFinal, fromFinalize: fromFinalize,
		agree: st.agree, audioSeq: st.audioSeq, from: st.winFrom, skip: st.winSkip,
	}
	if st.langUtt == st.uttID {
		seg.lang, seg.langP = st.lang, st.langP
	}
	switch {
	case st.specUtt == st.uttID && st.specEnd == speechEnd && st.specDone && st.specWindowMatches(end, speechEnd) &&
		st.specFrom == st.winFrom && st.specSkip == st.winSkip:
		seg.reuse, seg.reuseTimes, seg.reuseConf, seg.reuseSkip, seg.reused = st.specWords, st.specTimes, st.specConf, st.specSkip, true
	case len(st.lastHyp) > 0 && st.lastHypEnd >= min(end, speechEnd+st.sess.tail) && st.agree.settled() &&
		(!st.modelTimes || allModelTimes(st.lastHypTimes)):
		seg.reuse, seg.reuseTimes, seg.reuseConf, seg.reuseSkip, seg.reused = st.lastHyp, st.lastHypTimes, st.lastHypConf, st.lastHypSkip, true
	}
	// A speculative decode of this very window still in flight becomes the final when it
	// completes (complete matches it to pending by uttID and speech end); it is not aborted.
	st.pending = append(st.pending, seg)
	st.uttOpen = false
	st.uttID++
	st.agree, st.lastText, st.lastHyp = agreement{}, "", nil
	st.winFrom, st.winSkip = 0, 0
	if st.abortPartial != nil { // its result would be stale; free the slot for the final
		st.abortPartial()
		st.abortPartial = nil
	}
	if st.abortSpec != nil && st.specUtt == seg.uttID && st.specEnd != speechEnd {
		st.abortSpec() // a speculative final for an earlier speech end of this utterance
		st.abortSpec = nil
	}
}

// finalize handles Finalize and End: the open utterance becomes a final now. A
// Finalize with nothing open is answered with an empty FromFinalize final (in order).
func (st *stream) finalize(fromFinalize bool) {
	if !st.started {
		return
	}
	if st.turn != nil && st.turnFinalize(fromFinalize) {
		return
	}
	inSpeech := st.ep.inSpeech
	switch {
	case st.uttOpen:
		speechEnd := st.end()
		if !inSpeech && st.ep.speechEnd > st.uttStart {
			speechEnd = st.ep.speechEnd // the trailing silence is not decoded
		}
		st.cut(st.end(), speechEnd, false, fromFinalize)
		if inSpeech && !st.sess.ending {
			st.open(st.end())
		}
	case fromFinalize:
		st.pending = append(st.pending, &finalSeg{start: st.end(), speechEnd: st.end(), end: st.end(),
			fromFinalize: true, empty: true, audioSeq: st.audioSeq})
	}
}

// drain emits the finals at the head of pending that need no decode: empty Finalize
// answers, and utterances whose newest partial decode already covered all their speech
// (its window reached the VAD speech end + Pad, so a second decode would see the same
// audio plus silence; this saves a whole decode on the endpointing path, where the
// latency budget is tightest).
func (st *stream) drain() {
	for len(st.pending) > 0 && !st.decodingFinal {
		seg := st.pending[0]
		switch {
		case seg.empty:
			st.pending = st.pending[1:]
			st.sess.send(st, bus.Result{Type: bus.ResultFinal, Start: sec(seg.start), FromFinalize: true,
				EndSample: seg.end, AudioSeq: seg.audioSeq})
		case seg.reused:
			if !st.emitFinal(seg.reuse, seg.reuseTimes, seg.reuseConf, seg.reuseSkip) {
				return // decoded again, untrimmed
			}
		default:
			return
		}
	}
}

// utteranceEnd emits ResultUtteranceEnd once UtteranceEndMs of silence follows the
// last word of a final and nothing is open or pending.
func (st *stream) utteranceEnd() {
	s := st.sess
	if s.utteranceEnd == 0 || st.ueSent || st.lastWordEnd == 0 || st.uttOpen || st.ep.inSpeech || len(st.pending) > 0 {
		return
	}
	if sec(st.end())-st.lastWordEnd < sec(s.utteranceEnd) {
		return
	}
	st.ueSent = true
	s.send(st, bus.Result{Type: bus.ResultUtteranceEnd, Start: st.lastWordEnd, LastWordEnd: st.lastWordEnd})
}

// settleEvery is how often (in samples of audio with nothing open) a stream sends
// ResultSettled: well under the gateway's 120 s replay limit.
const settleEvery = 10 * bus.SampleRate

// trim drops audio no decode can need any more, a second at a time.
func (st *stream) trim() {
	s := st.sess
	keep := st.end()
	if len(st.pending) > 0 {
		keep = min(keep, st.pending[0].start)
	}
	if st.uttOpen {
		keep = min(keep, st.uttStart)
	}
	if st.ep.cand {
		keep = min(keep, st.ep.candStart)
	}
	if t := st.turn; t != nil && t.phase != turnIdle { // the end-of-turn model hears the turn's last 8 s
		keep = min(keep, max(t.start, st.end()-min(st.end(), turnAudio)))
	}
	// VAD-detected speech starts up to minSpeech + a window before it is declared.
	keep = min(keep, st.end()-min(st.end(), st.ep.minSpeech+st.ep.win))
	if keep < s.pad {
		return
	}
	keep -= s.pad
	if keep <= st.bufStart || keep-st.bufStart < bus.SampleRate {
		return
	}
	n := keep - st.bufStart
	st.buf = append(st.buf[:0], st.buf[n:]...)
	st.bufStart = keep
	// With nothing open, no final will ever cover the audio before keep: say so every
	// settleEvery, so that the gateway can drop it from its replay buffer.
	if !st.uttOpen && len(st.pending) == 0 && keep >= st.settledSent+settleEvery {
		st.settledSent = keep
		s.send(st, bus.Result{Type: bus.ResultSettled, EndSample: keep})
	}
	if win := st.ep.win; win > 0 && keep > st.vadAt {
		k := min(uint64(len(st.vadProbs)), (keep-st.vadAt)/win)
		st.vadProbs = append(st.vadProbs[:0], st.vadProbs[k:]...)
		st.vadAt += k * win
	}
}

// partialDue reports whether the open utterance should get a partial decode.
func (st *stream) partialDue(now time.Time, checkTime bool) bool {
	s := st.sess
	if !s.req.Options.InterimResults || !st.uttOpen || !st.speechInWin {
		return false
	}
	if st.specPhase() {
		return false // the speculative final decodes the utterance now
	}
	if st.end()-st.decodedEnd < s.step {
		return false
	}
	return !checkTime || now.Sub(st.lastDone) >= s.pool.cfg.Step
}

// inPause reports whether the open utterance is in silence after speech that has not yet
// lasted the endpoint hangover.
func (st *stream) inPause() bool {
	return st.uttOpen && st.ep.inSpeech && st.ep.silence > 0
}

// specPhase reports whether Pad of silence has followed the open utterance's speech
// (and the endpoint hangover has not ended it yet): the time of its speculative final.
func (st *stream) specPhase() bool {
	s := st.sess
	return s.endpoint > 0 && s.tail <= s.hangover && st.inPause() &&
		st.ep.speechEnd > st.uttStart && st.end() >= st.ep.speechEnd+s.tail
}

// specDue reports whether the speculative final of the open utterance should be decoded
// now: it is time (specPhase) and this speech end was not decoded yet.
func (st *stream) specDue() bool {
	return st.specPhase() && !(st.specUtt == st.uttID && st.specEnd == st.ep.speechEnd)
}

// specWindowMatches reports whether a final cut at end with speech up to speechEnd
// decodes the speculative window [uttStart − Pad, speechEnd + Pad).
func (st *stream) specWindowMatches(end, speechEnd uint64) bool {
	return end >= speechEnd+st.sess.tail
}

// schedule queues the stream when a final or a partial is due. Callers hold sess.mu.
func (st *stream) schedule(now time.Time) {
	s := st.sess
	if s.closed || s.failed || st.decoding {
		return
	}
	final := len(st.pending) > 0 || st.specDue()
	if final || st.partialDue(now, true) {
		st.queued = true
		s.pool.sched.push(st, final, st.lastDone, now)
	}
}

// job is one decode prepared from a stream's state.
type job struct {
	ctx         context.Context // the session's, or a partial's or speculative final's own (cancellable)
	final       bool
	spec        bool // a speculative final (see stream.specUtt)
	uttID       uint64
	seg         *finalSeg
	samples     []float32
	winStart    uint64
	winEnd      uint64
	speechStart uint64
	speechEnd   uint64
	from        uint64 // where the words of the window start: speechStart, or the trimmed window's start
	skip        int    // committed words before the window (in the prompt)
	prompt      string
	wordTimes   bool   // ask the model for word times (see wordTimesFrom)
	language    string // whisper's code to decode in; "" with language=multi: detect it
}

// prepare builds the stream's next decode (a final first), or false if none is due.
func (st *stream) prepare() (job, bool) {
	s := st.sess
	s.mu.Lock()
	defer s.mu.Unlock()
	st.queued = false
	if s.closed || s.failed || st.decoding {
		return job{}, false
	}
	st.drain()
	var j job
	var committed []string
	switch {
	case len(st.pending) > 0:
		seg := st.pending[0]
		j = job{final: true, seg: seg, speechStart: seg.start, speechEnd: seg.speechEnd}
		j.winStart = seg.start - min(seg.start, s.pad)
		j.winEnd = min(seg.end, seg.speechEnd+s.tail)
		j.trim(seg.from, seg.skip)
		committed = seg.agree.committed
		st.decodingFinal = true
	case st.specDue():
		j = job{spec: true, uttID: st.uttID, speechStart: st.uttStart, speechEnd: st.ep.speechEnd}
		j.winStart = st.uttStart - min(st.uttStart, s.pad)
		j.winEnd = st.ep.speechEnd + s.tail
		j.trim(st.winFrom, st.winSkip)
		committed = st.agree.committed
		st.specUtt, st.specEnd, st.specDone, st.specWords, st.specTimes = st.uttID, st.ep.speechEnd, false, nil, nil
		st.specFrom, st.specSkip = st.winFrom, st.winSkip
		st.decodedEnd, st.speechInWin = st.end(), false
		j.ctx, st.abortSpec = context.WithCancel(s.ctx)
	case st.partialDue(time.Time{}, false):
		j = job{uttID: st.uttID, speechStart: st.uttStart, speechEnd: st.end()}
		j.winStart = st.uttStart - min(st.uttStart, s.pad)
		j.winEnd = st.end()
		j.trim(st.winFrom, st.winSkip)
		committed = st.agree.committed
		st.decodedEnd, st.speechInWin = st.end(), st.ep.inSpeech
		j.ctx, st.abortPartial = context.WithCancel(s.ctx)
	default:
		return job{}, false
	}
	j.winStart = max(j.winStart, st.bufStart)
	j.winEnd = max(j.winEnd, j.winStart)
	n := max(int(j.winEnd-j.winStart), minDecodeSamples)
	j.samples = make([]float32, n)
	copy(j.samples, st.buf[j.winStart-st.bufStart:j.winEnd-st.bufStart])
	prompt := st.history
	if j.skip > 0 {
		prompt = append(append([]string(nil), st.history...), committed[:j.skip]...)
	}
	j.prompt = joinUnits(prompt)
	// Word times on finals, and on the partials a final may reuse or keep words from:
	// long windows (see wordTimesFrom) and windows that end in a pause.
	j.wordTimes = j.final || j.spec || j.winEnd-j.winStart >= wordTimesFrom || !st.ep.inSpeech
	if j.ctx == nil {
		j.ctx = s.ctx
	}
	j.language = s.lang.Code
	if s.lang.Detect {
		j.language = "" // detect: finals over the whole utterance, partials until one is sure
		if !j.final && !j.spec && st.langUtt == st.uttID {
			j.language = st.lang
		}
	}
	st.decoding = true
	return j, true
}

// trim applies the utterance's window trimming (stream.winFrom, winSkip) to the job.
func (j *job) trim(from uint64, skip int) {
	j.from = j.speechStart
	if skip > 0 && from > j.winStart {
		j.winStart, j.from, j.skip = from, from, skip
	}
}

// complete applies a finished decode and queues the stream again if more is due.
func (st *stream) complete(j job, hyp Hypothesis, err error) {
	s := st.sess
	now := s.pool.cfg.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st.decoding, st.lastDone = false, now
	if j.final {
		st.decodingFinal = false
	} else {
		for _, f := range []*context.CancelFunc{&st.abortPartial, &st.abortSpec} {
			if *f != nil { // releases the job's context
				(*f)()
				*f = nil
			}
		}
	}
	if s.closed || s.failed {
		return
	}
	if err != nil {
		if s.pool.ctx.Err() != nil {
			return // the pool is closing
		}
		if !j.final && j.ctx.Err() != nil { // aborted by a cut: go on with the final
			st.drain()
			s.maybeClosed()
			st.schedule(now)
			return
		}
		s.fail(st, bus.CodeInternal, fmt.Errorf("session %s: decode: %w", s.req.Session, err))
		return
	}
	speech := sec(j.speechEnd - min(j.speechEnd, j.from))
	text, why := guardText(hyp, speech)
	if why != guardNone {
		s.log.Debug("hypothesis guarded", "reason", why, "text", hyp.Text, "final", j.final)
	}
	st.noteLanguage(j, hyp)
	text = s.script(hyp.Language, text)
	words := units(text)
	times := j.times(words, hyp, func(u string) string { return s.script(hyp.Language, u) })
	st.modelTimes = st.modelTimes || (len(times) > 0 && allModelTimes(times))
	switch {
	case j.final:
		st.emitFinal(words, times, confidence(hyp), j.skip)
	case j.spec:
		st.completeSpec(j, words, times, hyp)
	default:
		st.emitPartial(j, words, times, hyp)
	}
	st.drain()
	s.maybeClosed()
	st.utteranceEnd()
	st.trim()
	st.schedule(now)
}

// minLanguageP is the probability at which a partial's detection settles the language
// of the rest of the utterance's partials; below it the next partial detects again (the
// first partials hear half a second of speech).
const minLanguageP = 0.8

// noteLanguage records the language a decode detected: for the final it decoded, or
// for the open utterance (its later partials decode in it).
func (st *stream) noteLanguage(j job, hyp Hypothesis) {
	if hyp.LanguageP == 0 {
		return
	}
	switch {
	case j.final:
		j.seg.lang, j.seg.langP = hyp.Language, hyp.LanguageP
	case j.spec && len(st.pending) > 0 && st.pending[0].uttID == j.uttID:
		st.pending[0].lang, st.pending[0].langP = hyp.Language, hyp.LanguageP
	case j.uttID == st.uttID && st.uttOpen && hyp.LanguageP >= minLanguageP:
		st.lang, st.langP, st.langUtt = hyp.Language, hyp.LanguageP, j.uttID
	}
}

// completeSpec applies a speculative final: the final of its utterance if that was cut
// at the same speech end meanwhile, else kept for the cut and shown as a partial.
func (st *stream) completeSpec(j job, words []string, times []wordTime, hyp Hypothesis) {
	conf := confidence(hyp)
	if len(st.pending) > 0 {
		if seg := st.pending[0]; seg.uttID == j.uttID && seg.speechEnd == j.speechEnd && seg.start == j.speechStart &&
			!seg.reused && st.specWindowMatches(seg.end, seg.speechEnd) && seg.skip == j.skip && (j.skip == 0 || seg.from == j.from) {
			seg.reuse, seg.reuseTimes, seg.reuseConf, seg.reuseSkip, seg.reused = words, times, conf, j.skip, true
		}
		return
	}
	if j.uttID != st.uttID || !st.uttOpen {
		return
	}
	st.specDone, st.specWords, st.specTimes, st.specConf = true, words, times, conf
	if st.turn != nil {
		st.tryEager()
	}
	if st.sess.req.Options.InterimResults {
		st.emitPartial(j, words, times, hyp)
	}
}

func (st *stream) emitPartial(j job, words []string, times []wordTime, hyp Hypothesis) {
	if j.uttID != st.uttID || !st.uttOpen {
		return // the utterance was cut while this decode ran; its final follows
	}
	tail := st.agree.update(words, times, wordEnds(words, j.from, j.winEnd), j.skip, commitable(words, j.from, j.winEnd, commitLag))
	st.sess.log.Debug("partial", "start", sec(j.speechStart), "from", sec(j.from), "win_end", sec(j.winEnd), "spec", j.spec,
		"committed", strings.Join(st.agree.committed, " "), "decoded", strings.Join(words, " "))
	conf := confidence(hyp)
	st.lastHyp, st.lastHypTimes, st.lastHypEnd, st.lastHypConf, st.lastHypSkip = words, times, j.winEnd, conf, j.skip
	if !j.spec { // a speculative final's window must stay the final's
		st.retrim()
	}
	all := append(append([]string(nil), st.agree.committed...), tail...)
	allTimes := append(append([]wordTime(nil), st.agree.times...), times[len(times)-len(tail):]...)
	all, allTimes = st.dropCommitted(all, allTimes, st.uttStart, j.winEnd)
	text := joinUnits(all)
	if text == "" || text == st.lastText {
		return
	}
	st.lastText = text
	ws := st.placeWords(all, allTimes, st.uttStart, j.winEnd, conf)
	st.turnPartial(all, ws)
	r := bus.Result{
		Type: bus.ResultPartial, Start: sec(st.uttStart), Duration: sec(j.winEnd - st.uttStart),
		Text: text, Words: ws, Confidence: utteranceConfidence(ws),
		StableWords: st.agree.stable(), Language: cmp.Or(hyp.Language, st.sess.lang.Code),
	}
	// The decode's language: detected now (a multi stream's partial not yet sure of
	// it), or the one the utterance settled on.
	switch {
	case hyp.LanguageP > 0:
		r.LanguageConfidence = float64(hyp.LanguageP)
	case st.langUtt == st.uttID:
		r.LanguageConfidence = float64(st.langP)
	}
	st.sess.send(st, r)
}

// emitFinal emits the final of pending[0] from the words of its decode (made after the
// first skip committed words). A decode of a trimmed window in which the last committed
// words cannot be found cannot be joined to them without losing or repeating words: the
// final is then decoded again over the whole utterance, and emitFinal reports false.
func (st *stream) emitFinal(words []string, times []wordTime, conf float64, skip int) bool {
	seg := st.pending[0]
	all, allTimes, ok := seg.agree.finish(words, times, skip)
	if !ok && skip > 0 {
		st.sess.log.Debug("trimmed final does not align: decoding the whole utterance", "start", sec(seg.start),
			"committed", strings.Join(seg.agree.committed, " "), "decoded", strings.Join(words, " "))
		seg.from, seg.skip = 0, 0
		seg.reuse, seg.reuseTimes, seg.reused = nil, nil, false
		return false
	}
	st.pending = st.pending[1:]
	all, allTimes = st.dropCommitted(all, allTimes, seg.start, seg.speechEnd)
	if seg.end > st.committed {
		st.committed = 0 // past the failover's resume point
	}
	st.sess.log.Debug("final", "start", sec(seg.start), "speech_end", sec(seg.speechEnd), "reused", seg.reused,
		"committed", strings.Join(seg.agree.committed, " "), "decoded", strings.Join(words, " "))
	if len(all) == 0 && !seg.fromFinalize {
		if st.turn != nil {
			st.turnFinal(seg, nil, nil)
		}
		return true
	}
	ws := st.placeWords(all, allTimes, seg.start, seg.speechEnd, conf)
	if len(ws) > 0 {
		st.lastWordEnd = ws[len(ws)-1].End
		st.ueSent = false
	}
	st.history = lastWords(append(st.history, all...), maxHistoryWords)
	st.sess.send(st, bus.Result{
		Type: bus.ResultFinal, Start: sec(seg.start), Duration: sec(seg.end - seg.start),
		Text: joinUnits(all), Words: ws, Confidence: utteranceConfidence(ws),
		SpeechFinal: seg.speechFinal, FromFinalize: seg.fromFinalize,
		EndSample: seg.end, AudioSeq: seg.audioSeq,
		Language: cmp.Or(seg.lang, st.sess.lang.Code), LanguageConfidence: float64(seg.langP),
	})
	if st.turn != nil {
		st.turnFinal(seg, all, ws)
	}
	return true
}

// dropCommitted removes the leading words whose middle lies before st.committed: after
// a failover the replay starts up to half a second before the last delivered final's
// end (run-up for the first new word), and what the decoder hears there again was
// delivered already. Times from the model where known, else spread over [from, to).
func (st *stream) dropCommitted(words []string, times []wordTime, from, to uint64) ([]string, []wordTime) {
	if st.committed == 0 || len(words) == 0 || from >= st.committed {
		return words, times
	}
	ends := wordEnds(words, from, to)
	k := 0
	for k < len(words) {
		s, e := from, ends[k]
		if k > 0 {
			s = ends[k-1]
		}
		if k < len(times) && times[k].model {
			s, e = times[k].start, times[k].end
		}
		if (s+e)/2 >= st.committed {
			break
		}
		k++
	}
	if k == 0 {
		return words, times
	}
	st.sess.log.Debug("dropped words replayed before the resume point", "words", strings.Join(words[:k], " "), "committed", sec(st.committed))
	return words[k:], times[min(k, len(times)):]
}

// spreadWords gives words times by linear interpolation over the speech span [from, to)
// in proportion to their length in characters (+1 for the gap). The decode runs with
// single_segment and no timestamps, so whisper gives no token times; interpolation is
// exact at the utterance edges (VAD) and typically within a few hundred ms inside.
func spreadWords(words []string, from, to uint64, conf float64) []bus.Word {
	if len(words) == 0 {
		return nil
	}
	total := 0
	for _, w := range words {
		total += len([]rune(w)) + 1
	}
	t0, span := sec(from), sec(to-min(to, from))
	out := make([]bus.Word, len(words))
	acc := 0
	for i, w := range words {
		start := t0 + span*float64(acc)/float64(total)
		acc += len([]rune(w)) + 1
		end := t0 + span*float64(acc-1)/float64(total)
		out[i] = bus.Word{Word: normWord(w), Punctuated: w, Start: start, End: end, Confidence: conf}
	}
	return out
}

// wordEnds is the estimated end sample of each word (spreadWords over [from, to)).
func wordEnds(words []string, from, to uint64) []uint64 {
	ws := spreadWords(words, from, to, 0)
	out := make([]uint64, len(ws))
	for i, w := range ws {
		out[i] = uint64(math.Round(w.End * bus.SampleRate))
	}
	return out
}

// Window trimming. A long utterance's window would grow with it: a 10 s window takes
// about 1 s to decode on 2 CPU threads, which every partial and the final wait for. The
// audio well before the last committed word need not be decoded again: once the last
// committed word is estimated to end trimMinStep + trimMargin after the window's start,
// the window moves to the quietest VAD window of the trimSearch before a point trimMargin
// ahead of that word's end, and the committed words estimated to end before the new
// start join the prompt. The window still begins with the last committed words, which
// continuation aligns (whisper_streaming trims its buffer at committed text in the same
// spirit; it cuts at segment ends, 15 s).
const (
	trimMargin  = bus.SampleRate     // 1 s
	trimSearch  = bus.SampleRate / 2 // 0.5 s
	trimMinStep = 3 * bus.SampleRate / 2
)

// retrim moves the open utterance's window start after a partial committed words.
func (st *stream) retrim() {
	a := &st.agree
	n := len(a.ends)
	if n == 0 || a.ends[n-1] < trimMargin {
		return
	}
	target := a.ends[n-1] - trimMargin
	from := max(st.uttStart-min(st.uttStart, st.sess.pad), st.winFrom)
	if target < from+trimMinStep {
		return
	}
	cut := st.quietest(target-min(target, trimSearch), target)
	skip := 0
	for skip < n && a.ends[skip] <= cut {
		skip++
	}
	if skip == 0 || cut <= from {
		return
	}
	st.winFrom, st.winSkip = cut, skip
	st.sess.log.Debug("window trimmed", "utterance_start", sec(st.uttStart), "from", sec(cut), "prompt_words", skip,
		"committed", n)
}

// quietest returns the start of the buffered VAD window with the lowest speech
// probability inside [a, b), or b when none is buffered there.
func (st *stream) quietest(a, b uint64) uint64 {
	best, bestP := b, float32(2)
	for i, p := range st.vadProbs {
		at := st.vadAt + uint64(i)*st.ep.win
		if at >= a && at+st.ep.win <= b && p < bestP {
			best, bestP = at, p
		}
	}
	return best
}

// commitLag is how much audio must follow a word (by spreadWords' estimate) before the
// agreement may commit it.
// Measured by TestAgreeCommitSim (deterministic replay of the partial decodes of
// longform_dev at every cadence of 1–4 steps): final WER 2.72 % with no lag, 2.66 % at
// 0.5 s, 2.49 % at 1.5 s, 2.14 % at 2 s, 1.73 % committing nothing (= offline). Words
// committed from short windows (an utterance's first words, a word at the window end)
// are what whisper revises most when it sees more audio, and the final must keep them.
const commitLag = 2 * bus.SampleRate

// commitable is the number of leading words whose estimated end (spreadWords over
// [from, to)) lies at least lag before to.
func commitable(words []string, from, to, lag uint64) int {
	ws := spreadWords(words, from, to, 0)
	limit := sec(to) - sec(lag)
	n := 0
	for n < len(ws) && ws[n].End <= limit {
		n++
	}
	return n
}

// confidence maps whisper's mean token log-probability to [0, 1].
func confidence(h Hypothesis) float64 {
	if h.AvgLogprob == 0 && len(h.Tokens) == 0 {
		return 0
	}
	return math.Max(0, math.Min(1, math.Exp(h.AvgLogprob)))
}

func lastWords(w []string, n int) []string {
	if len(w) > n {
		return append([]string(nil), w[len(w)-n:]...)
	}
	return w
}
