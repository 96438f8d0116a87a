package transcriber

import (
	"fmt"
	"math"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
)

// Turn-taking (bus.StreamOptions.Turns; GET /v2/listen, Deepgram Flux's protocol).
//
// A turn session keeps the utterance machinery of an ordinary stream: utterances end at
// the server's endpointing (600 ms of silence), as on /v1/listen, because whisper
// transcribes a window without long pauses best. A turn spans utterances. Differences:
// an utterance opens after turnMinSpeech of speech (StartOfTurn must come within about
// 150 ms of the speech onset: barge-in), and the speculative final starts after
// specEarly of silence (one Silero window) instead of Pad, and keeps that much silence
// after the speech end in its window; a decode's prompt is the open turn's own earlier
// text, not the stream's (stream.promptHistory). Once the speaker has been silent for
// turnTail, the end-of-turn model (TurnModel: Smart Turn v3.2 in production) hears the
// turn's last 8 s, once per pause: Smart Turn is trained on speech followed by a short
// silence, and asked again as the silence grows it says "finished" more and more often,
// mid-sentence too (measured: BENCHMARKS.md, Turn-taking; PoolConfig.TurnRecheck asks
// again). A pause that passed eager_eot_threshold is the exception: the agent was told
// "probably done", so the model is asked again every TurnEagerRecheck (250 ms) until
// eot_threshold, speech or eot_timeout_ms (on the turn set: 7 of 8 turn ends found
// instead of 5, the same 4 false ends).
// Its probability decides:
//
//   - ≥ eager_eot_threshold (when set): EagerEndOfTurn, once the transcript the turn will
//     end with is known (the speculative final of the open utterance, or the finals),
//     carrying that transcript;
//   - ≥ eot_threshold: the open utterance is cut at the speech end and EndOfTurn follows
//     its final (which reuses the speculative decode, so it costs no extra wait);
//   - speech again after an EagerEndOfTurn: TurnResumed.
//
// eot_timeout_ms of silence ends a turn whatever the model says; ForceEndTurn (a Finalize
// chunk) and the stream's end end it too.
//
// Flux's rules hold by construction (TestTurnPropertyRandomPauses checks them): an
// EagerEndOfTurn has a non-empty transcript; TurnResumed only follows one; EndOfTurn
// repeats the last EagerEndOfTurn's transcript, and when the final came out different
// (it cannot when the speculative decode is reused, but a re-decode could differ), a
// TurnResumed and a new EagerEndOfTurn with the final transcript come first; turn_index
// goes up after each EndOfTurn, and a StartOfTurn of the next turn waits for it.

// TurnModel estimates the probability that a speaker has finished their turn from the
// audio that ends now (16 kHz mono, the turn's last seconds). Safe for concurrent use.
// transcriber/smartturn implements it.
type TurnModel interface {
	Predict(pcm []float32) (float32, error)
}

const (
	turnMinSpeech = 96 * bus.SamplesPerMs // three Silero windows of speech open a turn
	turnTail      = 96 * bus.SamplesPerMs // silence after speech before the model is asked
	// specEarly is the first silent Silero window after speech: where a turn session's
	// speculative final always starts, and the silence its window keeps, so the decode
	// runs while the model waits for turnTail and thinks, and EndOfTurn is not a whole
	// decode after the model's decision (EndOfTurn p50 463–528 → 381–385 ms;
	// BENCHMARKS.md, Turn-taking); on /v1/listen, where one starts when it would be late
	// (stream.specLead).
	specEarly     = 32 * bus.SamplesPerMs
	turnUpdate    = 250 * bus.SamplesPerMs // Update cadence (Flux: about every 0.25 s of audio)
	turnResumeMin = 64 * bus.SamplesPerMs  // speech after an EagerEndOfTurn that resumes the turn
	turnAudio     = 8 * bus.SampleRate     // what the model hears at most (Smart Turn's window)
	// DefaultTurnSilence is the VAD-only end of turn (no TurnModel): the pause after
	// which the turn ends, Earshot's endpointing default. It is the baseline the model
	// is measured against (BENCHMARKS.md, Turn-taking).
	DefaultTurnSilence = 600 * time.Millisecond
	// DefaultTurnEagerRecheck is PoolConfig.TurnEagerRecheck's default: Flux's Update
	// cadence.
	DefaultTurnEagerRecheck = 250 * time.Millisecond
)

// CheckTurnOptions validates the knobs (bus.TurnOptions.Check), filling defaults for
// zero values; errors are *OptionError naming the parameter.
func CheckTurnOptions(o bus.TurnOptions) (bus.TurnOptions, error) {
	if o.EOTThreshold == 0 {
		o.EOTThreshold = bus.DefaultEOTThreshold
	}
	if o.EOTTimeoutMs == 0 {
		o.EOTTimeoutMs = bus.DefaultEOTTimeoutMs
	}
	if param, reason := o.Check(); param != "" {
		return o, &OptionError{param, reason}
	}
	return o, nil
}

type turnPhase uint8

const (
	turnIdle     turnPhase = iota // between turns
	turnOngoing                   // StartOfTurn sent
	turnAwaiting                  // EagerEndOfTurn sent
	turnEnding                    // the end is decided; EndOfTurn follows the turn's last final
)

// turnState is one stream's turn. Guarded by sess.mu.
type turnState struct {
	phase turnPhase
	index int
	start uint64 // where the turn's speech started

	units []string   // the turn's transcript from its finals so far
	words []bus.Word // and their words
	// The newest partial of the open utterance (units and words), for Update.
	partUnits  []string
	partWords  []bus.Word
	nextUpdate uint64 // stream position of the next Update

	lastSpeech uint64 // where the turn's speech last ended (the VAD's speech end)
	endAt      uint64 // stream position where the end was decided (0: not yet)

	p         float32 // the model's latest probability in this pause (0 while speaking)
	checking  bool    // a model call is in flight
	checkEnd  uint64  // the speech end of the pause it was asked about
	nextCheck uint64  // stream position at which the model runs again in this pause
	wantEager uint64  // speech end whose pause passed eager_eot_threshold (0: none)
	eagerEnd  uint64  // speech end of the EagerEndOfTurn sent
	eagerText string  // its transcript
	// eagerEarly says that transcript ended with the open utterance's newest partial:
	// the speculative final was not decoded yet when the model decided.
	eagerEarly bool

	startPending bool   // speech of the next turn began while this one was ending
	pendingAt    uint64 // where
	pendingEnd   bool   // and that turn's end is decided too (the stream ended)
}

// turnOn reports whether the session is a turn session.
func (s *session) turnOn() bool { return s.turns != nil }

// turnSpeechStart is the endpointer's speech start in a turn session.
func (st *stream) turnSpeechStart(at uint64) {
	t := st.turn
	switch t.phase {
	case turnIdle:
		st.startTurn(at)
	case turnEnding:
		t.startPending, t.pendingAt = true, at
	}
}

func (st *stream) startTurn(at uint64) {
	t := st.turn
	*t = turnState{index: t.index, phase: turnOngoing, start: at, lastSpeech: st.ep.speechEnd, nextUpdate: st.end() + turnUpdate}
	st.sendTurn(bus.TurnStart, nil, "", 0, at)
}

// sendTurn emits a turn event. Callers hold sess.mu.
func (st *stream) sendTurn(event string, words []bus.Word, text string, p float32, speechAt uint64) {
	t := st.turn
	end := st.end()
	if t.endAt != 0 {
		end = t.endAt
	}
	st.sess.send(st, bus.Result{
		Type: bus.ResultTurn, Event: event, TurnIndex: t.index,
		Start: sec(t.start), Duration: sec(end - min(end, t.start)),
		Text: text, Words: words, Confidence: utteranceConfidence(words),
		EOTConfidence: float64(p), SpeechAt: speechAt, Language: st.sess.lang.Code,
	})
}

// speaking reports whether the VAD hears speech now (not a pause, not a candidate).
func (st *stream) speaking() bool { return st.ep.inSpeech && st.ep.silence == 0 }

// open reports whether a turn is going on whose end is not decided.
func (t *turnState) open() bool { return t.phase == turnOngoing || t.phase == turnAwaiting }

// turnTick runs after each chunk's VAD windows: TurnResumed, Update, the timeout, the
// model's next call. Callers hold sess.mu.
func (st *stream) turnTick() {
	s, t := st.sess, st.turn
	if !t.open() {
		return
	}
	if st.ep.speechEnd > t.lastSpeech { // the speaker went on (in this chunk: it may also hold a pause)
		t.lastSpeech, t.p = st.ep.speechEnd, 0
		if t.wantEager != 0 && t.lastSpeech > t.wantEager {
			t.wantEager = 0
		}
		if t.phase == turnAwaiting && t.lastSpeech >= t.eagerEnd+turnResumeMin {
			t.phase, t.eagerText = turnOngoing, ""
			st.sendTurn(bus.TurnResumed, nil, "", 0, t.lastSpeech)
			t.nextUpdate = st.end() + turnUpdate
		}
	}
	if t.phase == turnOngoing && st.end() >= t.nextUpdate {
		t.nextUpdate = st.end() + turnUpdate
		units := append(append([]string(nil), t.units...), t.partUnits...)
		words := append(append([]bus.Word(nil), t.words...), t.partWords...)
		st.sendTurn(bus.TurnUpdate, words, joinUnits(units), t.p, 0)
	}
	if !st.speaking() && st.end()-min(st.end(), t.lastSpeech) >= uint64(s.turns.EOTTimeoutMs)*bus.SamplesPerMs {
		st.endTurn(bus.TriggerTimeout)
		return
	}
	st.turnCheck()
}

// inTurnPause reports whether the turn's speaker has been silent for turnTail.
func (st *stream) inTurnPause() bool {
	t := st.turn
	return t.open() && !st.speaking() && !st.ep.cand && st.end() >= t.lastSpeech+turnTail && t.lastSpeech > t.start
}

// turnCheck starts the model on the current pause when due.
func (st *stream) turnCheck() {
	s, t := st.sess, st.turn
	if !st.inTurnPause() || t.checking {
		return
	}
	if t.checkEnd != t.lastSpeech {
		t.checkEnd, t.nextCheck, t.p = t.lastSpeech, st.end(), 0
	}
	if st.end() < t.nextCheck {
		return
	}
	t.nextCheck = math.MaxUint64 // once per pause
	if r := s.pool.cfg.TurnRecheck; r > 0 {
		t.nextCheck = st.end() + uint64(r.Milliseconds())*bus.SamplesPerMs
	}
	m := s.pool.cfg.TurnModel
	speechEnd := t.lastSpeech
	if m == nil { // VAD only: the turn ends after TurnSilence of silence
		p := float32(0)
		if st.end()-speechEnd >= uint64(s.pool.cfg.TurnSilence.Milliseconds())*bus.SamplesPerMs {
			p = 1
		}
		t.nextCheck = st.end() + 1 // again on the next chunk
		st.turnDecide(speechEnd, p)
		return
	}
	from := max(st.bufStart, st.end()-min(st.end(), turnAudio), t.start-min(t.start, s.pad))
	pcm := append([]float32(nil), st.buf[from-st.bufStart:]...)
	t.checking = true
	s.pool.turnCalls.Add(1)
	s.pool.turnInFlight.Add(1)
	go func() {
		defer s.pool.turnInFlight.Add(-1)
		s.pool.turnCall(1)
		p, err := m.Predict(pcm)
		s.pool.turnCall(-1)
		s.mu.Lock()
		defer s.mu.Unlock()
		t.checking = false
		if s.closed || s.failed {
			return
		}
		if err != nil {
			s.fail(st, bus.CodeInternal, fmt.Errorf("session %s: end-of-turn model: %w", s.req.Session, err))
			return
		}
		st.turnDecide(speechEnd, p)
		st.drain()
		s.maybeClosed()
		st.schedule(s.pool.cfg.now())
	}()
}

// turnDecide applies the model's probability for the pause after speechEnd.
func (st *stream) turnDecide(speechEnd uint64, p float32) {
	s, t := st.sess, st.turn
	if !st.inTurnPause() || t.lastSpeech != speechEnd {
		st.turnCheck() // stale: the speaker went on (or the turn ended); maybe the next pause
		return
	}
	t.p = p
	s.log.Debug("end of turn", "speech_end", sec(speechEnd), "silence_ms", (st.end()-speechEnd)/bus.SamplesPerMs, "p", p)
	o := s.turns
	if o.EOTThreshold < bus.MaxEOTThreshold && float64(p) >= o.EOTThreshold {
		if o.EagerEOTThreshold > 0 && t.phase == turnOngoing {
			// With the final already decoded the agent hears of the end now, not once
			// the cut utterance's final is emitted (and with eagerFromPartial, at once).
			t.wantEager = speechEnd
			st.tryEager()
		}
		st.endTurn(bus.TriggerModel)
		return
	}
	if o.EagerEOTThreshold > 0 && float64(p) >= o.EagerEOTThreshold && t.phase == turnOngoing {
		t.wantEager = speechEnd
		st.tryEager()
	}
	if r := s.pool.cfg.TurnEagerRecheck; r >= 0 && o.EagerEOTThreshold > 0 && (float64(p) >= o.EagerEOTThreshold || t.phase == turnAwaiting) {
		// The agent heard "probably done": ask again as the pause grows, so EndOfTurn
		// confirms it when the model does, not eot_timeout_ms later.
		if r == 0 {
			r = DefaultTurnEagerRecheck
		}
		t.nextCheck = min(t.nextCheck, st.end()+uint64(r.Milliseconds())*bus.SamplesPerMs)
	}
	st.turnCheck()
}

// eagerFromPartial, a measurement knob, sends an EagerEndOfTurn at the model's decision
// with the newest partial when the final is not decoded yet (tryEager, confirmEager).
// Off: on the turn set it came 0.2 s after the speech end instead of 0.55 s, but its
// text differed from the final's at 4 of 5 turn ends (the partial lacks the last word:
// "And so my fellow" for "And so my fellow Americans."), so an agent would draft its
// answer from a wrong transcript most of the time (BENCHMARKS.md, Turn-taking;
// EARSHOT_TURN_EAGER_PARTIAL=1 in TestTurnBenchmark).
var eagerFromPartial = false

// tryEager sends the EagerEndOfTurn wanted for the current pause once the transcript
// the turn will end with is known: the speculative final of the open utterance, or the
// finals when the utterance was already cut (with eagerFromPartial, at once, the newest
// partial standing in for the final until confirmEager checks it).
func (st *stream) tryEager() {
	t := st.turn
	if t.phase != turnOngoing || t.wantEager == 0 || t.wantEager != t.lastSpeech || !st.inTurnPause() {
		return
	}
	units, ws, known := st.turnTextNow()
	text := joinUnits(units)
	if text == "" || (!known && !eagerFromPartial) {
		return // Flux: an EagerEndOfTurn always has a transcript; tried again with the final
	}
	t.phase, t.eagerEnd, t.eagerText, t.wantEager, t.eagerEarly = turnAwaiting, t.lastSpeech, text, 0, !known
	st.sendTurn(bus.TurnEager, ws, text, t.p, t.lastSpeech)
}

// confirmEager checks an EagerEndOfTurn sent with a partial (eagerFromPartial) once the
// speculative final or the final of its pause is known: the same text confirms it; a
// different one is announced with TurnResumed and a new EagerEndOfTurn, as Flux does
// when the transcript changes after one. Callers hold sess.mu.
func (st *stream) confirmEager() {
	t := st.turn
	if t.phase != turnAwaiting || !t.eagerEarly || t.eagerEnd != t.lastSpeech || !st.inTurnPause() {
		return
	}
	units, ws, known := st.turnTextNow()
	if !known {
		return
	}
	t.eagerEarly = false
	if text := joinUnits(units); text != "" && text != t.eagerText {
		st.sendTurn(bus.TurnResumed, nil, "", 0, 0)
		t.eagerText = text
		st.sendTurn(bus.TurnEager, ws, text, t.p, t.lastSpeech)
	}
}

// turnTextNow is the turn's transcript as it would end now: its finals, then the open
// utterance's speculative final when decoded (known), else its newest partial.
func (st *stream) turnTextNow() (units []string, ws []bus.Word, known bool) {
	t := st.turn
	units = append([]string(nil), t.units...)
	ws = append([]bus.Word(nil), t.words...)
	partial := func() ([]string, []bus.Word, bool) {
		return append(units, t.partUnits...), append(ws, t.partWords...), false
	}
	switch {
	case st.uttOpen:
		if st.specUtt != st.uttID || st.specEnd != st.ep.speechEnd || !st.specDone || len(st.pending) > 0 {
			return partial()
		}
		words, times, again, _ := st.agree.finalWords(st.specWords, st.specTimes, st.specSkip, st.ep.speechEnd, st.uttLang())
		if again != "" {
			return partial() // the final will be decoded again: its text is not known yet
		}
		words, times = st.dropCommitted(words, times, st.uttStart, st.ep.speechEnd)
		units = append(units, words...)
		ws = append(ws, st.placeWords(words, times, st.uttStart, st.ep.speechEnd, st.specConf)...)
	case len(st.pending) > 0:
		return partial() // turnFinal checks again
	}
	return units, ws, true
}

// endTurn decides the end of the current turn: the open utterance is cut at its speech
// end, and EndOfTurn follows the turn's last final (emitFinal → turnFinal).
func (st *stream) endTurn(trigger string) {
	t := st.turn
	if !t.open() {
		return
	}
	t.phase, t.endAt = turnEnding, st.end()
	if st.uttOpen {
		speechEnd := st.ep.speechEnd
		if speechEnd <= st.uttStart {
			speechEnd = st.end()
		}
		st.cut(st.end(), speechEnd, true, trigger == bus.TriggerManual)
		st.ep.inSpeech, st.ep.cand, st.ep.silence = false, false, 0
	}
	if n := len(st.pending); n > 0 {
		st.pending[n-1].turnEnd = trigger
		return
	}
	st.sendEndOfTurn(trigger)
}

// turnFinalize handles Finalize (ForceEndTurn) and End in a turn session; false: the
// ordinary path (nothing of a turn is open).
func (st *stream) turnFinalize(fromFinalize bool) bool {
	t := st.turn
	trigger := bus.TriggerManual
	if !fromFinalize {
		trigger = bus.TriggerClose
	}
	switch {
	case t.open():
		st.endTurn(trigger)
		return true
	case t.phase == turnEnding && t.startPending:
		// The next turn's speech began while this one's final was decoding: its
		// StartOfTurn waits for this EndOfTurn, and its end is decided now.
		if st.uttOpen {
			speechEnd := st.ep.speechEnd
			if speechEnd <= st.uttStart {
				speechEnd = st.end()
			}
			st.cut(st.end(), speechEnd, true, fromFinalize)
			st.ep.inSpeech, st.ep.cand, st.ep.silence = false, false, 0
		}
		st.pending[len(st.pending)-1].turnEnd = trigger
		t.pendingEnd = true
		return true
	}
	return false
}

// turnFinal takes a final's words into the turn and sends EndOfTurn when the final
// ends it. Callers hold sess.mu.
func (st *stream) turnFinal(seg *finalSeg, units []string, ws []bus.Word) {
	t := st.turn
	if t.phase == turnIdle {
		return
	}
	t.units = append(t.units, units...)
	t.words = append(t.words, ws...)
	t.partUnits, t.partWords = nil, nil
	if seg.turnEnd != "" {
		st.sendEndOfTurn(seg.turnEnd)
		return
	}
	st.tryEager()
	st.confirmEager()
}

func (st *stream) sendEndOfTurn(trigger string) {
	t := st.turn
	text := joinUnits(t.units)
	if st.sess.turns.EagerEOTThreshold > 0 && text != "" && t.eagerText != text {
		// With eager turns on, EndOfTurn repeats the EagerEndOfTurn just before it. The
		// turn ended without one (the probability passed eot_threshold at once, a
		// timeout, ForceEndTurn), or the final differs from what the last one promised
		// (then Flux says a TurnResumed comes first): announce the final transcript
		// eagerly now.
		if t.eagerText != "" {
			st.sendTurn(bus.TurnResumed, nil, "", 0, 0)
		}
		st.sendTurn(bus.TurnEager, t.words, text, t.p, t.lastSpeech)
	}
	st.sess.send(st, bus.Result{
		Type: bus.ResultTurn, Event: bus.TurnEnd, TurnIndex: t.index,
		Start: sec(t.start), Duration: sec(t.endAt - min(t.endAt, t.start)),
		Text: text, Words: t.words, Confidence: utteranceConfidence(t.words),
		EOTConfidence: float64(t.p), Trigger: trigger, SpeechAt: t.lastSpeech, Language: st.sess.lang.Code,
	})
	pending, at, ended := t.startPending, t.pendingAt, t.pendingEnd
	*t = turnState{index: t.index + 1}
	if pending {
		st.startTurn(at)
		if ended {
			t.phase, t.endAt = turnEnding, st.end()
		}
	}
}

// turnPartial records the newest partial of the open utterance for Update.
func (st *stream) turnPartial(units []string, ws []bus.Word) {
	if t := st.turn; t != nil && t.phase != turnIdle {
		t.partUnits, t.partWords = units, ws
	}
}

// Configure changes a turn session's knobs mid-stream (Flux's Configure).
func (s *session) Configure(o bus.TurnOptions) error {
	o, err := CheckTurnOptions(o)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.turns == nil {
		return &OptionError{"turns", "not a turn-taking session"}
	}
	*s.turns = o
	return nil
}
