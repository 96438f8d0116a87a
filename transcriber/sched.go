package transcriber

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
)

// scheduler queues streams that are due for a decode. Fairness: finals go before
// partials; among equals, the stream whose last decode finished longest ago (never
// decoded = first) goes first, then the one queued first. A stream is in the queue at
// most once (stream.queued, guarded by its session's lock, plus the index here).
// Lock order: session.mu before scheduler.mu; the scheduler never calls into a stream.
//
// Preemption: a final never waits behind a partial. When more finals are queued than
// slots are free, the partial decodes that started last are cancelled (errPreempted)
// to free their slots; their streams are queued again (stream.complete).
type scheduler struct {
	mu     sync.Mutex
	cond   *sync.Cond
	queue  []*queued
	index  map[*stream]*queued
	slots  int
	busy   int                  // workers between next and done
	runs   map[int]*preemptible // partial decodes in flight, by slot
	closed bool
}

// preemptible is a partial decode in flight.
type preemptible struct {
	cancel    context.CancelCauseFunc
	at        time.Time
	preempted bool
}

// errPreempted is the cause of a partial decode cancelled for a final.
var errPreempted = errors.New("partial decode preempted by a final")

type queued struct {
	st       *stream
	final    bool
	lastDone time.Time
	at       time.Time
}

func newScheduler(slots int) *scheduler {
	s := &scheduler{index: make(map[*stream]*queued), slots: slots, runs: make(map[int]*preemptible)}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// push queues st, or upgrades its entry to a final. Callers hold st's session lock.
func (s *scheduler) push(st *stream, final bool, lastDone, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if q, ok := s.index[st]; ok {
		q.final = q.final || final
	} else {
		q := &queued{st: st, final: final, lastDone: lastDone, at: now}
		s.queue = append(s.queue, q)
		s.index[st] = q
		s.cond.Signal()
	}
	if final {
		s.preemptLocked()
	}
}

// started registers slot's partial decode as preemptible by a final (cancel cancels
// it), and preempts it at once if a final is already waiting. stopped says the decode
// returned: it can no longer be preempted, and one that was counts as a free slot until
// the slot is done.
func (s *scheduler) started(slot int, cancel context.CancelCauseFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs[slot] = &preemptible{cancel: cancel, at: time.Now()}
	s.preemptLocked()
}

func (s *scheduler) stopped(slot int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.runs[slot]; ok && !r.preempted {
		delete(s.runs, slot)
	}
}

// preemptLocked cancels the partial decodes that started last until every queued final
// has a slot (free, or freed by a preemption already asked for).
func (s *scheduler) preemptLocked() {
	finals, free := 0, s.slots-s.busy
	for _, q := range s.queue {
		if q.final {
			finals++
		}
	}
	for _, r := range s.runs {
		if r.preempted {
			free++
		}
	}
	for ; finals > free; free++ {
		var last *preemptible
		for _, r := range s.runs {
			if !r.preempted && (last == nil || r.at.After(last.at)) {
				last = r
			}
		}
		if last == nil {
			return
		}
		last.preempted = true
		last.cancel(errPreempted)
	}
}

// remove drops st from the queue (its session closed).
func (s *scheduler) remove(st *stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.index[st]; !ok {
		return
	}
	delete(s.index, st)
	for i, q := range s.queue {
		if q.st == st {
			s.queue = append(s.queue[:i], s.queue[i+1:]...)
			break
		}
	}
}

func (a *queued) before(b *queued) bool {
	if a.final != b.final {
		return a.final
	}
	if !a.lastDone.Equal(b.lastDone) {
		return a.lastDone.Before(b.lastDone)
	}
	return a.at.Before(b.at)
}

// next blocks until a stream is due and returns it, or nil once closed. The caller
// must call done when it has finished with the stream.
func (s *scheduler) next() *stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.queue) == 0 && !s.closed {
		s.cond.Wait()
	}
	if s.closed {
		return nil
	}
	best := 0
	for i := 1; i < len(s.queue); i++ {
		if s.queue[i].before(s.queue[best]) {
			best = i
		}
	}
	q := s.queue[best]
	s.queue = append(s.queue[:best], s.queue[best+1:]...)
	delete(s.index, q.st)
	s.busy++
	return q.st
}

func (s *scheduler) done(slot int) {
	s.mu.Lock()
	s.busy--
	delete(s.runs, slot)
	s.mu.Unlock()
}

// spare reports whether nothing is queued and a slot is free: a decode pushed now would
// take a slot no other stream is waiting for.
func (s *scheduler) spare() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) == 0 && s.busy < s.slots
}

// idle reports whether nothing is queued or being decoded (tests).
func (s *scheduler) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) == 0 && s.busy == 0
}

func (s *scheduler) close() {
	s.mu.Lock()
	s.closed = true
	s.queue, s.index = nil, map[*stream]*queued{}
	s.cond.Broadcast()
	s.mu.Unlock()
}

// decodeSlot is one decode worker: it owns one Decoder per model (made on first use), so a
// whisper_state is never used by two goroutines.
type decodeSlot struct {
	id       int
	pool     *Pool
	decoders map[string]Decoder
}

func (w *decodeSlot) run(ctx context.Context, warmed func()) {
	defer func() {
		for name, d := range w.decoders {
			if err := d.Close(); err != nil {
				w.pool.log.Warn("close decoder", "model", name, "err", err)
			}
		}
	}()
	if w.pool.cfg.Warm {
		w.warm(ctx)
	}
	warmed()
	for {
		st := w.pool.sched.next()
		if st == nil {
			return
		}
		w.serve(ctx, st)
		w.pool.sched.done(w.id)
	}
}

func (w *decodeSlot) serve(ctx context.Context, st *stream) {
	j, ok := st.prepare()
	if !ok {
		return
	}
	d, err := w.decoder(st.sess.model)
	if err != nil {
		st.complete(j, Hypothesis{}, err)
		return
	}
	req := DecodeRequest{
		Samples:  j.samples,
		Language: j.language,
		// language=multi: a decode without the utterance's language finds it first.
		DetectLanguage: st.sess.lang.Detect && j.language == "",
		DetectAmong:    st.sess.lang.Among,
		Threads:        w.pool.cfg.ThreadsPerDecode,
		MaxTokens:      maxTokens(len(j.samples), st.sess.lang.Wide()),
		WordTimes:      j.wordTimes,
		Timestamps:     timestampsBesideEnglish,
	}
	req.AudioCtx = audioCtx(len(j.samples), j.final || j.spec, st.sess.turnOn() && req.english())
	if j.prompt != "" {
		if toks, err := d.Tokenize(j.prompt); err == nil {
			req.PromptTokens = lastN(toks, maxPromptTokens)
		} else {
			st.sess.log.Debug("tokenize prompt", "err", err)
		}
	}
	req.Draft = j.draft
	req.Script = st.sess.lang.Script
	if kt := st.sess.keyterms; len(kt.prompt) > 0 {
		// The key terms go first: whisper keeps the last 224 prompt tokens, and the
		// glossary is at most maxKeytermTokens (checked when the session opened).
		req.PromptTokens = append(kt.prompt[:len(kt.prompt):len(kt.prompt)], req.PromptTokens...)
		req.BiasTerms = kt.bias
	}
	dctx, cancel := mergeCtx(ctx, j.ctx)
	pctx, preempt := context.WithCancelCause(dctx)
	if !j.final && !j.spec {
		w.pool.sched.started(w.id, preempt)
	}
	start := time.Now()
	w.pool.decodeCall(1)
	hyp, err := d.Decode(pctx, req)
	w.pool.decodeCall(-1)
	if !j.final && !j.spec {
		w.pool.sched.stopped(w.id)
		if err != nil && errors.Is(context.Cause(pctx), errPreempted) && dctx.Err() == nil {
			err = errPreempted
		}
	}
	preempt(nil)
	cancel()
	j.took = time.Since(start)
	st.sess.log.Debug("decode", "final", j.final, "spec", j.spec, "window_s", sec(uint64(len(j.samples))),
		"prompt_tokens", len(req.PromptTokens), "tokens", len(hyp.Tokens), "draft", len(req.Draft),
		"draft_computed", hyp.DraftProposed, "draft_sampled", hyp.DraftAccepted, "draft_same", hyp.DraftSame, "took_ms", j.took.Milliseconds(), "err", err)
	st.complete(j, hyp, err)
}

// warm makes this slot's decoder of every model and decodes a second of silence on
// each (see PoolConfig.Warm). A failure is logged; the model's first stream retries.
func (w *decodeSlot) warm(ctx context.Context) {
	names := make([]string, 0, len(w.pool.cfg.Models))
	for n := range w.pool.cfg.Models {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		start := time.Now()
		d, err := w.decoder(name)
		if err == nil {
			samples := make([]float32, bus.SampleRate)
			w.pool.decodeCall(1)
			_, err = d.Decode(ctx, DecodeRequest{Samples: samples, AudioCtx: audioCtx(len(samples), false, false),
				Threads: w.pool.cfg.ThreadsPerDecode})
			w.pool.decodeCall(-1)
		}
		if err != nil {
			w.pool.log.Warn("warm-up decode failed", "slot", w.id, "model", name, "err", err)
			continue
		}
		w.pool.log.Debug("decoder warm", "slot", w.id, "model", name, "took", time.Since(start).Round(time.Millisecond))
	}
}

func (w *decodeSlot) decoder(model string) (Decoder, error) {
	if d, ok := w.decoders[model]; ok {
		return d, nil
	}
	m, ok := w.pool.cfg.Models[model]
	if !ok {
		return nil, ErrUnknownModel
	}
	d, err := m.NewDecoder()
	if err != nil {
		return nil, err
	}
	w.decoders[model] = d
	return d, nil
}

// maxTokens bounds the text tokens of one streaming decode: 10 per second of window
// plus 12, about twice what fast speech needs (~4.5 words/s, ~6 tokens/s). Whisper
// sometimes loops on a short window ("and and and …", a prompt phrase over and over)
// until its 220-token limit: on 2 threads that held the decode slot for 1–2 s, so the
// first partials of an utterance never came (seen in the browser test, 1 run in 3).
// Capped, such a decode ends within a few tokens, and the repetition guard drops it.
//
// Text without spaces takes more tokens per second: a Chinese character is one to three
// of whisper's byte-level tokens, and Mandarin is spoken at 4–8 characters a second (the
// dev set's fastest clip, an announcer, 7 a second): 25 per second there (wide: Chinese,
// Japanese, Cantonese, and language=multi, whose language is not known yet).
func maxTokens(samples int, wide bool) int {
	if wide {
		return 12 + 25*samples/bus.SampleRate
	}
	return 12 + 10*samples/bus.SampleRate
}

// timestampsBesideEnglish decodes every window in a language other than English with
// whisper's timestamp tokens (DecodeRequest.Timestamps). Measured on the Mandarin dev
// set with base, each VAD utterance decoded the way a final is (TestMandarinSplitSim,
// 2026-12-04): CER 13.3 % against 14.8 % without them, and the code-switching clip's
// English sentence kept ("He must be home-naught for the lightest.他一定在家…", 14 %)
// where without them whisper dropped it (42 %). English decodes are unchanged. A
// variable for the measurements that compare the two.
var timestampsBesideEnglish = true

// maxPromptTokens bounds the prompt (previous finals of the stream) passed to whisper.
const maxPromptTokens = 100

func lastN(t []int, n int) []int {
	if len(t) > n {
		return t[len(t)-n:]
	}
	return t
}

// audioCtx scales whisper's encoder context to the window: the encoder reads
// audio_ctx × 20 ms, so ceil(sec/30·1500) frames cover the audio; a margin of silence
// follows, and the total is rounded up to a multiple of 256 frames, capped at the model's
// 1500. Flash attention pads K/V to 256 rows anyway (whisper-patches/0002 masks the
// padding), but the rounding is not free: on CPU the encoder costs the same per frame
// from 128 frames to 1 500 (TestMeasureEncoderBatching: a 1 s partial encodes 256
// frames where rounding to 64 would give 192, a third more time). It stays for
// accuracy: rounding to 64 lost words in the turn benchmark (BENCHMARKS, Turn-taking).
// Too little trailing silence truncates and invents tails (whisper.cpp issue #1855;
// TestAudioCtxMargin): +128 keeps a step away from that cliff, as accurate as +64
// streamed (see docs/bench/history.md).
//
// A final (or speculative final) gets at least minFinalAudioCtx: a short window with a
// prompt loops at 256 (JFK's 1.3 s "Ask not" after "And so my fellow Americans." came
// back "Ask not! Ask not! …"; exact at 384 and above; TestShortFinalDoesNotRepeat).
// Partials keep 256: a loop there is trimmed by the guard and replaced by the next
// partial, and their cadence is what partial latency is made of (the floor on partials
// too was measured worse: see docs/bench/history.md).
//
// An English final of a turn session (tight) rounds up to a multiple of 128 instead (the
// margin stays +128): a 2.6–5.1 s window, the common utterance, encodes 384 frames
// instead of 512, about 45 ms less on 2 cores, and EndOfTurn waits for that decode
// (BENCHMARKS.md, Turn-taking). The long-form utterances and the English dev clips gave
// the same words (TestAudioCtxMargin, TestMandarinSplitSim with EARSHOT_SPLIT_LANG=en),
// but one long-form stream in eleven came out at 10 % WER against 1.7–2.3 %, and a
// /v1/listen final waits for the endpoint, not for its decode, so only turn sessions
// take the risk. Mandarin through base lost 11 characters of 542 at 128 (CER 13.3 →
// 15.3 %): every other language keeps 256.
func audioCtx(samples int, final, tight bool) int {
	step := 256
	if final && tight {
		step = 128
	}
	c := audioCtxRound(samples, audioCtxMargin, step)
	if final {
		c = max(c, minFinalAudioCtx)
	}
	return c
}

// FinalAudioCtx is the encoder window a final over samples (at most 30 s) decodes with
// on /v1/listen, for callers that decode a whole clip the way the stream decodes a final.
func FinalAudioCtx(samples int) int { return audioCtx(min(samples, 30*16000), true, false) }

const (
	audioCtxMargin   = 128
	minFinalAudioCtx = 384 // masked to 384 of the 512 rows flash attention reads (patch 0002)
)

func audioCtxWith(samples, margin int) int { return audioCtxRound(samples, margin, 256) }

// audioCtxRound is the frames covering samples, plus margin, rounded up to a multiple of
// step, capped at the model's 1500.
func audioCtxRound(samples, margin, step int) int {
	frames := (samples*1500 + 30*16000 - 1) / (30 * 16000)
	return min(1500, (frames+margin+step-1)/step*step)
}

// mergeCtx is a context cancelled when either parent is.
func mergeCtx(a, b context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(a)
	stop := context.AfterFunc(b, func() { cancel(context.Cause(b)) })
	return ctx, func() {
		stop()
		cancel(errors.New("decode done"))
	}
}
