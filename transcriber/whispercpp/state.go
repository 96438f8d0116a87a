package whispercpp

/*
#include <stdlib.h>
#include "bridge.h"
*/
import "C"

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"unsafe"
)

// SampleRate is the only rate whisper accepts: 16 kHz mono float32 in [-1, 1].
const SampleRate = 16000

// MinSamples is the shortest input Full hands to whisper. Shorter non-empty
// input is padded with trailing zeros up to it: whisper returns nothing for
// under 100 ms ("input is too short") and reads past the buffer for under 201
// samples (the mel's 200-sample reflect pad). Times are unaffected (the padding
// is at the end) and are clamped to the real input length.
const MinSamples = SampleRate

// Token is one decoded token. Times are seconds from the start of the input;
// they are -1 unless Params.TokenTimestamps was set.
type Token struct {
	ID      int
	Text    string // raw bytes; a multi-byte character may span tokens
	P       float32
	PLog    float32
	T0, T1  float64
	TDTW    float64 // DTW time (s) where the alignment leaves the token, in effect its end; -1 unless the Model was loaded with DTW
	Special bool    // id ≥ EOT: <|endoftext|>, timestamps, <|notimestamps|> …
}

// Segment is one whisper segment; T0/T1 in seconds from the start of the input.
type Segment struct {
	T0, T1       float64
	Text         string
	NoSpeechProb float32
	Tokens       []Token // every token, special ones included
	AvgLogprob   float64 // mean PLog of the non-special tokens; 0 if none
}

// Result is the output of one Full call.
type Result struct {
	Segments   []Segment
	AvgLogprob float64 // mean PLog over all non-special tokens; 0 if none
	Padded     bool    // input was shorter than MinSamples and was padded
	Draft      DraftStats
}

// DraftStats is what a call did with Params.Draft: decoder passes that verified draft
// tokens, the draft tokens those passes computed, and how many of them the decoder then
// sampled (each one a decoder pass saved).
type DraftStats struct {
	Batches, Proposed, Accepted int
	Same                        int // sampled tokens replaced by the draft's of their class (Params.DraftClasses)
}

// Text joins the segment texts.
func (r *Result) Text() string {
	var b strings.Builder
	for _, s := range r.Segments {
		b.WriteString(s.Text)
	}
	return b.String()
}

// State is one whisper_state: the mutable half of a decoder (KV caches, mel,
// results). Calls on one State are serialised; use one State per goroutine for
// parallel decoding. Close frees it; later calls return ErrClosed.
type State struct {
	mu  sync.Mutex
	m   *Model
	ctx *C.struct_whisper_context // kept alive by the Model's refcount
	st  *C.struct_whisper_state
	// detected is the input of the last call when it was DetectLanguage: a Full over
	// the same samples and audio_ctx reuses its encoder pass (whisper patch 0005).
	detected detectedInput
	classes  *TokenClasses // the draft classes set on st (patch 0014 keeps them until set again)
}

// detectedInput identifies the samples (the caller's slice: first element, length) and
// audio_ctx of a DetectLanguage call.
type detectedInput struct {
	first    *float32
	n        int
	audioCtx int
}

// Close frees the state (waiting for a running Full). Idempotent.
func (s *State) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st == nil {
		return nil
	}
	C.whisper_free_state(s.st)
	s.forget()
	return nil
}

// forget drops the state pointer and the Model reference; s.mu must be held.
func (s *State) forget() {
	s.st = nil
	s.ctx = nil
	s.m.release()
}

// Full runs whisper_full_with_state on samples (16 kHz mono). When ctx is
// cancelled whisper stops within one graph node (the library as scripts/whisper.sh builds
// it; unpatched whisper.cpp checks only after each encoder or decoder pass) and Full
// returns ctx.Err(). Empty input returns an empty Result without calling
// whisper.
func (s *State) Full(ctx context.Context, p Params, samples []float32) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if p.Threads < 0 || p.AudioCtx < 0 || p.MaxTokens < 0 || p.BestOf < 0 || p.BestOf > 8 {
		return nil, fmt.Errorf("params %+v: %w", p, ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st == nil {
		return nil, ErrClosed
	}
	res := &Result{}
	if len(samples) == 0 {
		return res, nil
	}
	if p.AudioCtx > s.m.info.NAudioCtx {
		return nil, fmt.Errorf("audio_ctx %d > model's %d: %w", p.AudioCtx, s.m.info.NAudioCtx, ErrInvalid)
	}
	nVocab := int(C.whisper_n_vocab(s.ctx))
	for _, id := range p.Draft { // a draft token is an embedding row: out of range reads past the table
		if id < 0 || id >= nVocab {
			return nil, fmt.Errorf("draft token %d outside the vocabulary (%d): %w", id, nVocab, ErrInvalid)
		}
	}
	if p.DraftClasses != nil && p.DraftClasses.m != s.m {
		return nil, fmt.Errorf("draft classes of another model: %w", ErrInvalid)
	}
	orig, realLen := samples, len(samples)
	if realLen < MinSamples {
		padded := make([]float32, MinSamples)
		copy(padded, samples)
		samples = padded
		res.Padded = true
	}

	cp := C.whisper_full_default_params(C.WHISPER_SAMPLING_GREEDY)
	if p.Threads > 0 {
		cp.n_threads = C.int(p.Threads)
	}
	cp.audio_ctx = C.int(p.AudioCtx)
	cp.no_timestamps = C.bool(p.NoTimestamps)
	cp.single_segment = C.bool(p.SingleSegment)
	cp.token_timestamps = C.bool(p.TokenTimestamps)
	cp.no_context = C.bool(p.NoContext)
	cp.suppress_blank = C.bool(p.SuppressBlank)
	cp.suppress_nst = C.bool(p.SuppressNST)
	cp.no_speech_thold = C.float(p.NoSpeechThold)
	cp.logprob_thold = C.float(p.LogprobThold)
	cp.entropy_thold = C.float(p.EntropyThold)
	cp.temperature = C.float(p.Temperature)
	cp.temperature_inc = C.float(p.TemperatureInc)
	if p.BestOf > 0 {
		cp.greedy.best_of = C.int(p.BestOf)
	}
	cp.max_tokens = C.int(p.MaxTokens)
	cp.print_progress = false
	cp.print_realtime = false
	cp.print_timestamps = false
	cp.print_special = false

	lang := p.Language
	if lang == "" {
		lang = "en"
	}
	if lang == "auto" {
		cp.language = nil
	} else {
		clang := C.CString(lang)
		defer C.free(unsafe.Pointer(clang))
		cp.language = clang
	}
	if n := len(p.PromptTokens); n > 0 {
		buf := (*C.whisper_token)(C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(C.whisper_token(0)))))
		defer C.free(unsafe.Pointer(buf))
		dst := unsafe.Slice(buf, n)
		for i, id := range p.PromptTokens {
			dst[i] = C.whisper_token(id)
		}
		cp.prompt_tokens = buf
		cp.prompt_n_tokens = C.int(n)
	}

	if b := p.Bias; b != nil && len(b.Terms) > 0 {
		n := 0
		for _, t := range b.Terms {
			n += len(t)
		}
		// C memory for the callback: whisper calls it from its own threads while Go
		// may move Go memory.
		toks := (*C.int32_t)(C.malloc(C.size_t(max(n, 1)) * 4))
		defer C.free(unsafe.Pointer(toks))
		lens := (*C.int32_t)(C.malloc(C.size_t(len(b.Terms)) * 4))
		defer C.free(unsafe.Pointer(lens))
		cb := (*C.earshot_bias)(C.malloc(C.size_t(unsafe.Sizeof(C.earshot_bias{}))))
		defer C.free(unsafe.Pointer(cb))
		ts, ls := unsafe.Slice(toks, max(n, 1)), unsafe.Slice(lens, len(b.Terms))
		k := 0
		for i, t := range b.Terms {
			ls[i] = C.int32_t(len(t))
			for _, id := range t {
				ts[k] = C.int32_t(id)
				k++
			}
		}
		*cb = C.earshot_bias{toks: toks, lens: lens, n_terms: C.int(len(b.Terms)), n_vocab: C.int(C.whisper_n_vocab(s.ctx)),
			first: C.float(b.First), next: C.float(b.Next)}
		C.earshot_set_bias(&cp, cb)
	}

	flag := C.earshot_abort_flag_new()
	if flag == nil {
		return nil, fmt.Errorf("abort flag: out of memory: %w", ErrDecode)
	}
	set := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		C.earshot_abort_flag_set(flag)
		close(set)
	})
	defer func() {
		if !stop() {
			<-set // the flag is being set: free it after
		}
		C.earshot_abort_flag_free(flag)
	}()
	C.earshot_set_abort(&cp, flag)

	// Set on every call, empty included: an earlier call that failed before reading its
	// draft must not leave it to this one.
	d := make([]C.whisper_token, len(p.Draft)+1) // whisper copies it before this returns
	for i, id := range p.Draft {
		d[i] = C.whisper_token(id)
	}
	C.whisper_earshot_set_draft(s.st, &d[0], C.int(len(p.Draft)))
	if p.DraftClasses != s.classes {
		if c := p.DraftClasses; c != nil {
			C.whisper_earshot_set_draft_classes(s.st, &c.class[0], C.int(len(c.class))) // copied before this returns
		} else {
			C.whisper_earshot_set_draft_classes(s.st, nil, 0)
		}
		s.classes = p.DraftClasses
	}
	var rc C.int
	if in := (detectedInput{&orig[0], len(orig), p.AudioCtx}); s.detected == in {
		// DetectLanguage just encoded this window of these samples: decode without
		// encoding it again.
		rc = C.whisper_full_after_detect_with_state(s.ctx, s.st, cp, (*C.float)(unsafe.Pointer(&samples[0])), C.int(len(samples)))
	} else {
		rc = C.whisper_full_with_state(s.ctx, s.st, cp, (*C.float)(unsafe.Pointer(&samples[0])), C.int(len(samples)))
	}
	s.detected = detectedInput{}
	switch {
	case rc == -7:
		// whisper freed the state itself (KV cache reallocation failed).
		s.forget()
		return nil, fmt.Errorf("whisper_full_with_state: code -7: %w", ErrStateLost)
	case rc != 0:
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("whisper_full_with_state: code %d: %w", int(rc), ErrDecode)
	}
	s.collect(res, p, float64(realLen)/SampleRate)
	var b, pr, a C.int
	C.whisper_earshot_draft_stats(s.st, &b, &pr, &a)
	res.Draft = DraftStats{int(b), int(pr), int(a), int(C.whisper_earshot_draft_same(s.st))}
	return res, nil
}

// collect copies the results out of the state; s.mu must be held.
// With NoTimestamps or SingleSegment whisper's segment times are not
// meaningful (t1 is start + 30 s, t0 can be garbage): they are set to the
// input's span.
func (s *State) collect(res *Result, p Params, dur float64) {
	tokenTimes := p.TokenTimestamps && !p.NoTimestamps
	clamp := func(cs C.int64_t) float64 {
		return min(max(float64(cs)/100, 0), dur)
	}
	eot := s.m.eot
	nseg := int(C.whisper_full_n_segments_from_state(s.st))
	res.Segments = make([]Segment, 0, nseg)
	var sumAll float64
	var nAll int
	for i := 0; i < nseg; i++ {
		ci := C.int(i)
		seg := Segment{
			T0:           clamp(C.whisper_full_get_segment_t0_from_state(s.st, ci)),
			T1:           clamp(C.whisper_full_get_segment_t1_from_state(s.st, ci)),
			Text:         C.GoString(C.whisper_full_get_segment_text_from_state(s.st, ci)),
			NoSpeechProb: float32(C.whisper_full_get_segment_no_speech_prob_from_state(s.st, ci)),
		}
		if p.NoTimestamps || p.SingleSegment {
			seg.T0, seg.T1 = 0, dur
		}
		ntok := int(C.whisper_full_n_tokens_from_state(s.st, ci))
		seg.Tokens = make([]Token, 0, ntok)
		var sum float64
		var n int
		for j := 0; j < ntok; j++ {
			cj := C.int(j)
			d := C.whisper_full_get_token_data_from_state(s.st, ci, cj)
			tok := Token{
				ID:      int(d.id),
				Text:    C.GoString(C.whisper_full_get_token_text_from_state(s.ctx, s.st, ci, cj)),
				P:       float32(d.p),
				PLog:    float32(d.plog),
				T0:      -1,
				T1:      -1,
				TDTW:    -1,
				Special: int(d.id) >= eot,
			}
			if s.m.dtw && !tok.Special && d.t_dtw >= 0 {
				tok.TDTW = clamp(d.t_dtw)
			}
			if tokenTimes && d.t0 >= 0 && d.t1 >= 0 {
				tok.T0, tok.T1 = clamp(d.t0), clamp(d.t1)
			}
			if !tok.Special && !math.IsInf(float64(tok.PLog), 0) && !math.IsNaN(float64(tok.PLog)) {
				sum += float64(tok.PLog)
				n++
			}
			seg.Tokens = append(seg.Tokens, tok)
		}
		if n > 0 {
			seg.AvgLogprob = sum / float64(n)
		}
		sumAll += sum
		nAll += n
		res.Segments = append(res.Segments, seg)
	}
	if nAll > 0 {
		res.AvgLogprob = sumAll / float64(nAll)
	}
}

// Language is a language whisper heard, with its probability.
type Language struct {
	Code string // whisper's code: "en", "zh", …
	P    float32
}

// DetectLanguage runs whisper's language detection (OpenAI's detect_language: the
// probability of each language token after <|startoftranscript|>) on samples, over the
// first audioCtx encoder frames (0: the whole 30 s window; the same rule as
// Params.AudioCtx, so a caller passes what it would decode with). It costs one encoder
// pass and one decoder step, and returns the model's languages, most likely first.
// Only multilingual models detect: others return ErrInvalid.
func (s *State) DetectLanguage(ctx context.Context, samples []float32, audioCtx, threads int) ([]Language, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !s.m.info.Multilingual {
		return nil, fmt.Errorf("detect language with an English-only model: %w", ErrInvalid)
	}
	if audioCtx < 0 || audioCtx > s.m.info.NAudioCtx || threads < 0 || len(samples) == 0 {
		return nil, fmt.Errorf("detect language: audio_ctx %d, threads %d, %d samples: %w", audioCtx, threads, len(samples), ErrInvalid)
	}
	if threads == 0 {
		threads = 1
	}
	orig := samples
	if len(samples) < MinSamples {
		padded := make([]float32, MinSamples)
		copy(padded, samples)
		samples = padded
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st == nil {
		return nil, ErrClosed
	}
	s.detected = detectedInput{}
	if rc := C.whisper_pcm_to_mel_with_state(s.ctx, s.st, (*C.float)(unsafe.Pointer(&samples[0])), C.int(len(samples)), C.int(threads)); rc != 0 {
		return nil, fmt.Errorf("whisper_pcm_to_mel_with_state: code %d: %w", int(rc), ErrDecode)
	}
	n := int(C.whisper_lang_max_id()) + 1
	probs := make([]float32, n)
	if rc := C.whisper_lang_auto_detect_audio_ctx_with_state(s.ctx, s.st, C.int(audioCtx), C.int(threads), (*C.float)(unsafe.Pointer(&probs[0]))); rc < 0 {
		return nil, fmt.Errorf("whisper_lang_auto_detect: code %d: %w", int(rc), ErrDecode)
	}
	s.detected = detectedInput{&orig[0], len(orig), audioCtx}
	// whisper.cpp scores every language it knows of; a model knows fewer (base has no
	// "yue", whose token id is the model's <|translate|>): keep the model's and
	// renormalise.
	k := min(s.m.info.Languages, n)
	out := make([]Language, 0, k)
	var sum float32
	for id := 0; id < k; id++ {
		out = append(out, Language{Code: C.GoString(C.whisper_lang_str(C.int(id))), P: probs[id]})
		sum += probs[id]
	}
	if sum > 0 {
		for i := range out {
			out[i].P /= sum
		}
	}
	slices.SortStableFunc(out, func(a, b Language) int { return cmp.Compare(b.P, a.P) })
	return out, nil
}
