package whispercpp

/*
#include <whisper.h>
*/
import "C"

// Params are the whisper_full_params fields Earshot sets; the sampling
// strategy is always greedy and every callback but abort stays NULL.
type Params struct {
	Threads  int    // n_threads; ≤ 0 = whisper's default min(4, hardware threads)
	AudioCtx int    // encoder positions (0 = model's, 1500 = 30 s); the encoder sees AudioCtx×20 ms of audio
	Language string // "" = "en"; "auto" detects (an extra encode and decode per call)

	NoTimestamps    bool // one window, no timestamp tokens
	SingleSegment   bool // one window, one segment (its t1 is window start + 30 s)
	TokenTimestamps bool // per-token t0/t1 (whisper's experimental estimate)
	NoContext       bool // do not condition on the previous call's text on this State

	PromptTokens []int // decoder prompt (previous text); at most n_text_ctx/2 are used
	// Draft are the tokens the call is expected to sample, timestamps included (e.g. the
	// previous partial's). Greedy decoding at temperature 0 verifies them in batched decoder passes
	// instead of one pass per token (patch 0007); the text is still the decoder's own.
	// Result.Draft reports what was used.
	Draft []int
	// DraftClasses lets a sampled text token give way to the draft's next token where the
	// two are of one class (whisper patch 0014; e.g. one character in two scripts, for a
	// caller that converts the text to one of them): decoding stays on the draft. nil =
	// the decoder's tokens as sampled. Result.Draft.Same says how many were taken so.
	DraftClasses *TokenClasses
	Bias         *Bias // key-term biasing of the decoder's logits; nil = none

	SuppressBlank bool
	SuppressNST   bool // suppress non-speech tokens ("[MUSIC]", "♪" …)

	NoSpeechThold  float32
	LogprobThold   float32
	EntropyThold   float32
	Temperature    float32
	TemperatureInc float32 // fallback step; ≤ 0 disables fallback
	BestOf         int     // greedy.best_of, used only at temperature > 0
	MaxTokens      int     // per segment; 0 = no limit
}

// DefaultParams returns whisper.cpp's greedy defaults (suppress_blank,
// no_context, thresholds 0.6 / -1.0 / 2.4, fallback step 0.2, best_of 5) in
// this struct, with token timestamps off and language "en".
func DefaultParams() Params {
	d := C.whisper_full_default_params(C.WHISPER_SAMPLING_GREEDY)
	return Params{
		Threads:         int(d.n_threads),
		AudioCtx:        int(d.audio_ctx),
		Language:        "en",
		NoTimestamps:    bool(d.no_timestamps),
		SingleSegment:   bool(d.single_segment),
		TokenTimestamps: bool(d.token_timestamps),
		NoContext:       bool(d.no_context),
		SuppressBlank:   bool(d.suppress_blank),
		SuppressNST:     bool(d.suppress_nst),
		NoSpeechThold:   float32(d.no_speech_thold),
		LogprobThold:    float32(d.logprob_thold),
		EntropyThold:    float32(d.entropy_thold),
		Temperature:     float32(d.temperature),
		TemperatureInc:  float32(d.temperature_inc),
		BestOf:          int(d.greedy.best_of),
		MaxTokens:       int(d.max_tokens),
	}
}

// Bias raises the logits of key terms' tokens while decoding (shallow fusion): First is
// added to a term's first token at every step, Next to the token that continues a term
// whose first tokens were just decoded. Logits are raw scores, so +b multiplies a
// token's odds by e^b. Terms are token sequences (tokenize them with a leading space).
type Bias struct {
	Terms [][]int
	First float32
	Next  float32
}
