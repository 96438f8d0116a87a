package transcriber

import (
	"context"
	"fmt"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
)

// The streaming policy of one channel: audio in, VAD endpointing, utterance cuts, the
// speculative final, and when a decode is due. decode.go prepares the decodes and turns
// their results into partials and finals; session.go holds a session's channels.

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
	specTail  uint64 // the silence after the speech end in its window (specLead)
	// decodeRate is the stream's latest decode's time per second of its window (ms), what
	// specLead expects of the next one (0: no decode yet).
	decodeRate float64

	drafts drafts // the newest decodes' tokens, the next decodes' drafts (see draft)

	// The early decode (see earlyDue): the speech candidate it was asked for, and its
	// result while that candidate is not yet confirmed as speech.
	earlyAsked bool
	earlyStart uint64
	early      *earlyResult

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
				if e := st.early; e != nil {
					st.early = nil
					st.applyEarly(e)
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
		agree: st.agree, audioSeq: st.audioSeq,
	}
	seg.from, seg.skip = st.finalWindow()
	if st.langUtt == st.uttID {
		seg.lang, seg.langP = st.lang, st.langP
	}
	switch {
	case st.specUtt == st.uttID && st.specEnd == speechEnd && st.specDone && st.specWindowMatches(end, speechEnd) &&
		st.specFrom == seg.from && st.specSkip == seg.skip:
		seg.reuse, seg.reuseTimes, seg.reuseConf, seg.reuseSkip, seg.reused = st.specWords, st.specTimes, st.specConf, st.specSkip, true
	case len(st.lastHyp) > 0 && st.lastHypEnd >= min(end, speechEnd+st.sess.tail) && st.agree.settled() &&
		(!st.modelTimes || allModelTimes(st.lastHypTimes)) && (seg.skip > 0 || st.lastHypSkip == 0):
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
	// The utterance's first partial is due as soon as it has earlySpeech (for /v1, the
	// VAD's confirmation at minSpeech), not one step after its start.
	first := st.decodedEnd == st.uttStart
	need := s.step
	if first {
		need = min(need, earlySpeech)
	}
	if st.end()-st.decodedEnd < need {
		return false
	}
	return !checkTime || first || now.Sub(st.lastDone) >= s.pool.cfg.Step
}

// earlySpeech is the candidate speech after which a first decode is worth making: a
// short word ("and", "so") lasts about this long.
const earlySpeech = 160 * bus.SamplesPerMs

// earlyDue reports whether the VAD's speech candidate, not yet confirmed (the endpointer
// waits minSpeech, 250 ms, before it opens an utterance), has lasted earlySpeech and has
// not been decoded yet. Its decode runs while the confirmation is awaited; its text is
// shown only once the candidate is confirmed (applyEarly), so noise that never becomes
// speech shows nothing. A detecting stream (language=multi) waits for the utterance: a
// language detected on 0.16 s would be a guess.
func (st *stream) earlyDue() bool {
	s := st.sess
	return s.req.Options.InterimResults && !s.lang.Detect && !st.uttOpen && st.ep.cand &&
		st.end()-st.ep.candStart >= earlySpeech && !(st.earlyAsked && st.earlyStart == st.ep.candStart)
}

// earlyResult is an early decode's outcome, kept until its candidate is confirmed.
type earlyResult struct {
	j     job
	words []string
	times []wordTime
	hyp   Hypothesis
}

// completeEarly applies an early decode: shown now if its candidate was confirmed while
// it ran, kept for the confirmation if the candidate is still alive, else dropped.
func (st *stream) completeEarly(j job, words []string, times []wordTime, hyp Hypothesis) {
	e := &earlyResult{j: j, words: words, times: times, hyp: hyp}
	switch {
	case st.uttOpen:
		st.applyEarly(e)
	case st.ep.cand && st.ep.candStart == j.speechStart:
		st.early = e
	}
}

// applyEarly shows an early decode as the first partial of the utterance it was made
// for, unless it found no words or a partial of that utterance was decoded meanwhile.
// The next partial then comes a step after the early window's end.
func (st *stream) applyEarly(e *earlyResult) {
	if !st.uttOpen || e.j.uttID != st.uttID || e.j.speechStart != st.uttStart ||
		len(e.words) == 0 || st.decodedEnd != st.uttStart {
		return
	}
	st.decodedEnd = e.j.winEnd
	st.emitPartial(e.j, e.words, e.times, e.hyp)
}

// inPause reports whether the open utterance is in silence after speech that has not yet
// lasted the endpoint hangover.
func (st *stream) inPause() bool {
	return st.uttOpen && st.ep.inSpeech && st.ep.silence > 0
}

// specPhase reports whether specLead of silence has followed the open utterance's speech
// (and the endpoint hangover has not ended it yet): the time of its speculative final.
func (st *stream) specPhase() bool {
	s := st.sess
	return s.endpoint > 0 && s.tail <= s.hangover && st.inPause() &&
		st.ep.speechEnd > st.uttStart && st.end() >= st.ep.speechEnd+st.specLead()
}

// specLead is the silence after the open utterance's speech end at which its speculative
// final starts, and the silence its window keeps: the session's tail (Pad; one Silero
// window in a turn session), unless the final would not be ready by the endpoint that
// way. When the stream's latest decode, scaled to the utterance's window, says the
// decode takes longer than the rest of the endpoint silence after Pad (a long utterance,
// base on Mandarin, a loaded machine), it starts at the first silent Silero window
// (specEarly), as in a turn session, and the final comes that much sooner after the
// endpoint. Starting every speculative final there would decode at the speaker's short
// pauses too, at a final's priority (BENCHMARKS.md, Density, "A long final's time").
func (st *stream) specLead() uint64 {
	s := st.sess
	if s.tail <= specEarly || st.decodeRate == 0 {
		return s.tail
	}
	window := st.ep.speechEnd + specEarly - (st.uttStart - min(st.uttStart, s.pad))
	estMs := st.decodeRate * float64(window) / bus.SampleRate
	if estMs*bus.SamplesPerMs > float64(s.hangover-min(s.hangover, s.tail)) {
		return specEarly
	}
	return s.tail
}

// specDue reports whether the speculative final of the open utterance should be decoded
// now: it is time (specPhase) and this speech end was not decoded yet.
func (st *stream) specDue() bool {
	return st.specPhase() && !(st.specUtt == st.uttID && st.specEnd == st.ep.speechEnd)
}

// specWindowMatches reports whether a final cut at end with speech up to speechEnd
// covers the speculative window [uttStart − Pad, speechEnd + specTail).
func (st *stream) specWindowMatches(end, speechEnd uint64) bool {
	return end >= speechEnd+st.specTail
}

// schedule queues the stream when a final or a partial is due. Callers hold sess.mu.
func (st *stream) schedule(now time.Time) {
	s := st.sess
	if s.closed || s.failed || st.decoding {
		return
	}
	final := len(st.pending) > 0 || st.specDue()
	// An early decode only takes a slot nobody else wants: under load it would cost the
	// other streams' partials and finals more than it gives.
	if final || st.partialDue(now, true) || (st.earlyDue() && s.pool.sched.spare()) {
		st.queued = true
		s.pool.sched.push(st, final, st.lastDone, now)
	}
}

func lastWords(w []string, n int) []string {
	if len(w) > n {
		return append([]string(nil), w[len(w)-n:]...)
	}
	return w
}
