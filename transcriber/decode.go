package transcriber

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
)

// job is one decode prepared from a stream's state.
type job struct {
	ctx   context.Context // the session's, or a partial's or speculative final's own (cancellable)
	final bool
	spec  bool // a speculative final (see stream.specUtt)
	early bool // a decode of a speech candidate not yet confirmed (see stream.earlyDue)
	// A partial's stream.decodedEnd before it was prepared (restored if it is preempted).
	prevDecodedEnd uint64
	uttID          uint64
	seg            *finalSeg
	samples        []float32
	winStart       uint64
	winEnd         uint64
	speechStart    uint64
	speechEnd      uint64
	from           uint64 // where the words of the window start: speechStart, or the trimmed window's start
	skip           int    // committed words before the window (in the prompt)
	prompt         string
	wordTimes      bool          // ask the model for word times (see wordTimesFrom)
	language       string        // whisper's code to decode in; "" with language=multi: detect it
	draft          []int         // the tokens the decode is expected to produce (see stream.draft)
	took           time.Duration // the decode's time (set when it completes)
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
		st.specTail = st.specLead()
		j.winEnd = st.ep.speechEnd + st.specTail
		st.specFrom, st.specSkip = st.finalWindow()
		j.trim(st.specFrom, st.specSkip)
		committed = st.agree.committed
		st.specUtt, st.specEnd, st.specDone, st.specWords, st.specTimes = st.uttID, st.ep.speechEnd, false, nil, nil
		st.decodedEnd, st.speechInWin = st.end(), false
		j.ctx, st.abortSpec = context.WithCancel(s.ctx)
	case st.partialDue(time.Time{}, false):
		j = job{uttID: st.uttID, speechStart: st.uttStart, speechEnd: st.end(), prevDecodedEnd: st.decodedEnd}
		j.winStart = st.uttStart - min(st.uttStart, s.pad)
		j.winEnd = st.end()
		j.trim(st.winFrom, st.winSkip)
		committed = st.agree.committed
		st.decodedEnd, st.speechInWin = st.end(), st.ep.inSpeech
		j.ctx, st.abortPartial = context.WithCancel(s.ctx)
	case st.earlyDue():
		// For the utterance the candidate opens (open gives it the next id).
		j = job{early: true, uttID: st.uttID + 1, speechStart: st.ep.candStart, speechEnd: st.end()}
		j.winStart = j.speechStart - min(j.speechStart, s.pad)
		j.winEnd = st.end()
		j.from = j.speechStart
		st.earlyAsked, st.earlyStart, st.early = true, j.speechStart, nil
		j.ctx, st.abortPartial = context.WithCancel(s.ctx)
	default:
		return job{}, false
	}
	j.winStart = max(j.winStart, st.bufStart)
	j.winEnd = max(j.winEnd, j.winStart)
	n := max(int(j.winEnd-j.winStart), minDecodeSamples)
	j.samples = make([]float32, n)
	copy(j.samples, st.buf[j.winStart-st.bufStart:j.winEnd-st.bufStart])
	j.language = s.lang.Code
	if s.lang.Detect {
		j.language = "" // detect: finals over the whole utterance, partials until one is sure
		if !j.final && !j.spec && st.langUtt == st.uttID {
			j.language = st.lang
		}
	}
	var history []string
	if st.earlierTextInPrompt(j) {
		history = st.promptHistory(j)
	}
	prompt := history
	if j.speechEnd-j.speechStart < shortSpeech {
		// A short burst with the stream's earlier text as context tends to come back as
		// that text (a 0.3 s tail after JFK's clip was decoded "Ask what you can do for
		// you"); whisper.cpp drops the past prompt for a short last window too.
		prompt = nil
	}
	if j.skip > 0 {
		prompt = append(append([]string(nil), history...), committed[:j.skip]...)
	}
	j.prompt = joinUnits(prompt)
	st.draft(&j)
	// Word times on finals, and on the partials a final may reuse or keep words from:
	// long windows (see wordTimesFrom) and windows that end in a pause. A turn session's
	// finals go without: EndOfTurn waits for its speculative final, the DTW pass costs
	// about 45 ms of it (BENCHMARKS.md, Turn-taking), and Flux's words carry no times.
	j.wordTimes = j.winEnd-j.winStart >= wordTimesFrom || (!st.ep.inSpeech && !j.early)
	if j.final || j.spec {
		j.wordTimes = !s.turnOn()
	}
	if j.ctx == nil {
		j.ctx = s.ctx
	}
	st.decoding = true
	return j, true
}

// earlierTextInPrompt reports whether decode j gets the text of the stream's earlier
// utterances as its prompt: in English, yes; in any other language, or while the
// language is not known yet (language=multi), no. Words committed earlier in the same
// utterance stay in the prompt of a trimmed window either way (job.skip).
//
// Measured on the Mandarin dev set with base, each VAD utterance decoded the way a final
// is, with timestamp tokens (TestMandarinSplitSim, BENCHMARKS "A prompt of earlier text
// in Mandarin"): CER 13.3 % with each clip's own earlier utterances as prompt, 14.0 %
// with no prompt at all, and 16.8 % once the earlier clips' text is in the prompt too,
// as on one stream over the set. Unrelated earlier text costs far more than related
// text gives, and with Chinese text in the prompt whisper drops an English sentence
// said next ("He must be home now…" gone: 42 % on the code-switching clip against 14 %).
// In English the prompt is worth more (a 32-token prompt instead of 100 doubled the
// long-form file's live WER, BENCHMARKS "Turn-taking"), so it stays there.
func (st *stream) earlierTextInPrompt(j job) bool {
	if promptBesideEnglish {
		return true
	}
	code := j.language
	switch {
	case code != "":
	case j.final && j.seg != nil:
		code = j.seg.lang // language=multi: the language its partials detected, if any
	case st.langUtt == j.uttID:
		code = st.lang
	}
	return code == "en" && promptInEnglish
}

// promptHistory is the earlier text an English decode's prompt starts with: the
// stream's earlier finals, or in a turn session the open turn's own finals, so a turn's
// first utterance is decoded without one. A voice agent's turns are separate requests
// to it, and a prompt of the earlier turns cost words and time (BENCHMARKS.md, Density,
// "A turn's own prompt, one decode thread beside Smart Turn"): the 30 English dev clips
// decoded as finals one after another, 10.06 % WER with each clip's own earlier text as
// prompt against 10.89 % with every earlier clip's; the turn set's EndOfTurn transcripts
// 7.5–8.7 % against 11.6 %, and its speculative finals, which EndOfTurn waits for, 130
// against 163 ms (medians of a quiet run each).
func (st *stream) promptHistory(j job) []string {
	t := st.turn
	switch {
	case t == nil:
		return st.history
	case t.startPending && !j.final:
		return nil // the open utterance is the next turn's; this one's final is pending
	}
	return lastWords(t.units, maxHistoryWords)
}

// finalWindow is the window trimming (see stream.winFrom) of the open utterance's final,
// and of its speculative final: the partials' trimming in English, none in any other
// language, where the final decodes the whole utterance (at most MaxSegment, 15 s) and
// is that decode's words (finalWords). Whisper forced to a language other than English
// turns an English opening into that language in a partial's short window ("他需要去找…"
// for "He must be home now…" under language=zh-CN), and a final over a trimmed window
// keeps whatever the partials committed; decoded whole, the same utterance keeps its
// English. Measured on the Mandarin dev set (BENCHMARKS.md, "An English opening
// translated by the partials"): streamed CER 14.6 % in 4 of 4 runs against 13.7–16.6 %
// with trimmed finals; a long utterance's final comes later (final p95 through
// /v1/listen 1.74 / 2.54 s against 1.56–1.91 s on a slow Xeon).
func (st *stream) finalWindow() (from uint64, skip int) {
	if st.uttLang() == "en" || !wholeBesideEnglish {
		return st.winFrom, st.winSkip
	}
	return 0, 0
}

// wholeBesideEnglish switches finalWindow's rule; a measurement sets it to false to
// compare.
var wholeBesideEnglish = true

// uttLang is the open utterance's language: the session's, or with language=multi the
// one its partials detected ("" until they have).
func (st *stream) uttLang() string {
	if st.sess.lang.Code == "" && st.langUtt == st.uttID {
		return st.lang
	}
	return st.sess.lang.Code
}

// promptBesideEnglish: a measurement sets it to true to give every language's decodes the
// stream's earlier text as before; promptInEnglish to false to take it from English ones.
var promptBesideEnglish, promptInEnglish = false, true

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
	preempted := errors.Is(err, errPreempted)
	st.decoding = false
	if !preempted { // a preempted partial is due again as soon as a slot is free
		st.lastDone = now
	}
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
		if !j.final && (j.ctx.Err() != nil || preempted) { // aborted by a cut, or for another stream's final
			if preempted && !j.early && j.uttID == st.uttID && st.decodedEnd == j.winEnd {
				st.decodedEnd, st.speechInWin = j.prevDecodedEnd, true // decode that window again
			}
			st.drain()
			s.maybeClosed()
			st.schedule(now)
			return
		}
		s.fail(st, bus.CodeInternal, fmt.Errorf("session %s: decode: %w", s.req.Session, err))
		return
	}
	st.keepDraft(j, hyp)
	if n := len(j.samples); n > 0 && j.took > 0 {
		st.decodeRate = float64(j.took.Microseconds()) / 1000 / (float64(n) / bus.SampleRate)
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
	case j.early:
		st.completeEarly(j, words, times, hyp)
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

// shortSpeech is the speech below which a decode gets no earlier text as its prompt
// (keyterms still bias it).
const shortSpeech = 400 * bus.SamplesPerMs

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
		st.confirmEager()
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
		"committed", strings.Join(st.agree.committed, " "), "decoded", strings.Join(words, " "), "unaligned", st.agree.unaligned)
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

// wholeAgain makes seg's final a decode of the whole utterance (no trimmed window, no
// decode to reuse), saying why.
func (st *stream) wholeAgain(seg *finalSeg, why string, words []string) {
	st.sess.log.Debug(why, "start", sec(seg.start), "speech_end", sec(seg.speechEnd),
		"committed", strings.Join(seg.agree.committed, " "), "decoded", strings.Join(words, " "))
	seg.from, seg.skip = 0, 0
	seg.reuse, seg.reuseTimes, seg.reused = nil, nil, false
}

// earlyEndGap is how much speech may follow a final's last word (by the model's word
// times) before the decode counts as ended early: whisper's words end up to a few tenths
// of a second before the VAD's speech end (its hangover, a breath).
const earlyEndGap = 1000 * bus.SamplesPerMs

// endsEarly reports whether the last word with the model's times ends more than
// earlyEndGap before speechEnd. Without such a word it cannot tell, and says no.
func endsEarly(times []wordTime, speechEnd uint64) bool {
	for i := len(times) - 1; i >= 0; i-- {
		if times[i].model {
			return times[i].end+earlyEndGap < speechEnd
		}
	}
	return false
}

// finalOverrulesCommits reports whether, in language code, a final decoded over the
// whole utterance is that decode's words, in place of the words committed from its
// partials. English keeps its commits (its stable words are a promise, and its finals
// are measured with them); every other language takes the final's own words.
func finalOverrulesCommits(code string) bool {
	return code != "" && code != "en" && overruleBesideEnglish
}

// overruleBesideEnglish switches finalOverrulesCommits; a measurement sets it to false to
// compare.
var overruleBesideEnglish = true

// finalWords is the final of an utterance in language lang whose speech ends at speechEnd,
// from the words of its decode (made after the first skip committed words) and the
// words committed from its partials (finish). A decode of a trimmed window that cannot
// be joined to the committed words without losing or repeating words must be decoded
// again over the whole utterance, and again says why: one in which the last committed
// words cannot be found, and one whose words end long before the speech (endsEarly:
// whisper ended it early; on a Mandarin clip after the first of two sentences, "…冠名不出"
// and no "豆奶牛奶换着喝…", where the whole window holds both). Outside English a decode
// of the whole utterance is the final (finalOverrulesCommits); overruled reports that
// its words differ from the commits.
func (a *agreement) finalWords(words []string, times []wordTime, skip int, speechEnd uint64, lang string) (
	all []string, allTimes []wordTime, again string, overruled bool) {
	if skip > 0 && endsEarly(times, speechEnd) {
		return nil, nil, "trimmed final ends before the speech: decoding the whole utterance", false
	}
	all, allTimes, ok := a.finish(words, times, skip)
	switch {
	case skip == 0 && finalOverrulesCommits(lang):
		// The decode heard the whole utterance: in a language other than English the
		// partials committed words from windows that ended mid-sentence, where whisper
		// forced to zh turns an English opening into Chinese ("他需要去找…" for "He must be
		// home…"), and a final that keeps them keeps the translation however the rest
		// aligns; the whole decode keeps both (finalWindow).
		overruled = !ok || !slices.Equal(all, words)
		all = append([]string(nil), words...)
		allTimes = append(append([]wordTime(nil), times...), make([]wordTime, max(0, len(words)-len(times)))...)[:len(words)]
	case ok:
	case skip > 0:
		return nil, nil, "trimmed final does not align: decoding the whole utterance", false
	}
	return all, allTimes, "", overruled
}

// emitFinal emits the final of pending[0] from the words of its decode (see finalWords),
// or decodes it again over the whole utterance (wholeAgain) and reports false.
func (st *stream) emitFinal(words []string, times []wordTime, conf float64, skip int) bool {
	seg := st.pending[0]
	all, allTimes, again, overruled := seg.agree.finalWords(words, times, skip, seg.speechEnd, cmp.Or(seg.lang, st.sess.lang.Code))
	if again != "" {
		st.wholeAgain(seg, again, words)
		return false
	}
	if overruled {
		st.sess.log.Debug("final overrules the partials' commits", "start", sec(seg.start),
			"committed", strings.Join(seg.agree.committed, " "), "decoded", strings.Join(words, " "))
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

// confidence maps whisper's mean token log-probability to [0, 1].
func confidence(h Hypothesis) float64 {
	if h.AvgLogprob == 0 && len(h.Tokens) == 0 {
		return 0
	}
	return math.Max(0, math.Min(1, math.Exp(h.AvgLogprob)))
}

// drafts are the tokens of an utterance's newest decodes, which its next decodes are
// expected to produce again (DecodeRequest.Draft): a partial decodes the previous
// partial's words and a little more, a final what the partials showed. They are the
// model's own tokens, timestamps included: the words the stream committed are not (zh-CN
// converts them to simplified characters, and whisper base writes traditional ones).
type drafts struct {
	utt   uint64
	whole []int // the newest decode over the whole utterance (no committed words before it)
	trim  []int // the newest decode of a trimmed window
}

// draftDecodes switches drafts on; a measurement sets it to false to compare.
var draftDecodes = true

// draft sets j's draft: for a trimmed window, the newest trimmed decode (a window trimmed
// further starts inside it: whisper.cpp finds its place, patch 0007); for the whole
// utterance, the newest decode over it followed by the newest trimmed one, which goes
// on from words inside the first.
func (st *stream) draft(j *job) {
	utt := j.utterance()
	d := &st.drafts
	if !draftDecodes || j.early || utt == 0 || d.utt != utt {
		return
	}
	if j.skip > 0 {
		j.draft = d.trim
		if len(j.draft) == 0 {
			j.draft = d.whole // the first trimmed window starts inside the whole one
		}
		return
	}
	j.draft = append(d.whole[:len(d.whole):len(d.whole)], d.trim...)
}

// keepDraft records a finished decode's tokens as the draft of the utterance's next ones.
func (st *stream) keepDraft(j job, hyp Hypothesis) {
	utt := j.utterance()
	if j.early || utt == 0 || len(hyp.Sampled) == 0 {
		return
	}
	if st.drafts.utt != utt {
		st.drafts = drafts{utt: utt}
	}
	if j.skip > 0 {
		st.drafts.trim = hyp.Sampled
	} else {
		st.drafts.whole = hyp.Sampled
	}
}

// utterance is the id of the utterance j decodes: a final's segment's, else its own.
func (j *job) utterance() uint64 {
	if j.seg != nil {
		return j.seg.uttID
	}
	return j.uttID
}
