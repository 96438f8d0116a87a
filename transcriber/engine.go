package transcriber

import (
	"context"
	"errors"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/lang"
)

// Sentinel errors of the transcriber.
var (
	ErrUnknownModel = errors.New("transcriber: model not loaded on this worker")
	ErrOverloaded   = errors.New("transcriber: session buffer full, audio arrives faster than it is decoded")
	ErrClosed       = errors.New("transcriber: session closed")
)

// Token is one decoded token; times are seconds relative to the window start, -1
// where the decode did not compute them.
type Token struct {
	ID   int
	Text string
	T0   float64 // whisper's experimental token timestamps (offline decodes)
	T1   float64
	// End is where the token ends by DTW over the alignment heads' cross-attention
	// (OpenAI's word-timestamp method): set on decodes with DecodeRequest.WordTimes by
	// a model loaded with word times; the next token starts there.
	End float64
	P   float32 // the token's probability
}

// Hypothesis is whisper's output for one window.
type Hypothesis struct {
	Text         string
	Tokens       []Token // text tokens only (no special tokens)
	NoSpeechProb float32
	AvgLogprob   float64
	// Segments is whisper's own segmentation with times from the input start;
	// set only for DecodeRequest.Offline (see whisper.go).
	Segments []Segment
	// Language is the language decoded in; LanguageP its probability when the decode
	// detected it (DecodeRequest.DetectLanguage), else 0.
	Language  string
	LanguageP float32
	// DraftProposed and DraftAccepted say what the decode did with DecodeRequest.Draft:
	// draft tokens computed in batched decoder passes, and how many of them it sampled.
	DraftProposed, DraftAccepted int
	// DraftSame is how many sampled tokens gave way to the draft's token of the same text
	// in DecodeRequest.Script (whisper patch 0014).
	DraftSame int
	// Sampled are the ids of every token the decoder sampled, timestamps included, in
	// order: the draft of a later decode of the same words (see stream.keepDraft).
	Sampled []int
}

// DecodeRequest is one whisper call over a window of 16 kHz mono audio.
type DecodeRequest struct {
	Samples      []float32
	PromptTokens []int  // previous committed text, as context
	AudioCtx     int    // encoder context (0 = whisper's 1500); scale with the window length
	Language     string // whisper's language code ("" = "en")
	// DetectLanguage finds the language first (one more encoder pass over the window)
	// and decodes in it; Language is ignored. DetectAmong, when set, are the only
	// languages it may choose (whisper codes; see lang.Spec.Among).
	DetectLanguage bool
	DetectAmong    []string
	Threads        int
	// Offline asks for whole-file decoding with segment timestamps (not single_segment).
	Offline bool
	// Timestamps decodes a streaming window in a language other than English with
	// whisper's timestamp tokens, in as many segments as whisper makes of it (see
	// whisperDecoder.Decode): what keeps an English stretch English inside a Chinese
	// utterance (see timestampsBesideEnglish).
	Timestamps bool
	// MaxTokens stops a streaming decode after this many text tokens (0: whisper's
	// limit, 220). See maxTokens.
	MaxTokens int
	// Draft are the tokens, timestamps included, the decode is expected to produce (see stream.draft):
	// greedy decoding verifies them in batched decoder passes instead of one pass per
	// token. The text stays the model's own; a wrong draft costs a pass, not words.
	Draft []int
	// Script is the script the session shows Chinese text in (lang.Spec.Script). In a
	// Chinese decode with a draft, a sampled token whose text converts to the same text in
	// it as the draft's next token's gives way to the draft's (whisper patch 0014): whisper
	// base may write the final of an utterance in traditional characters where its partials
	// chose simplified, and leave the draft for the rest of it. "" = never.
	Script lang.Script
	// WordTimes asks for DTW token times (Token.End) where the model was loaded with
	// them (about 30 ms more on a 3 s window, tiny.en; see LoadOptions.EstimateWordTimes).
	WordTimes bool
	// BiasTerms are key terms as token sequences (each tokenized with a leading space)
	// whose tokens the decoder favours (keytermFirstBias, keytermNextBias).
	BiasTerms [][]int
}

// english reports whether the request decodes English: a language of "en" or none (the
// decoder's default), and no detection.
func (r DecodeRequest) english() bool {
	return !r.DetectLanguage && (r.Language == "en" || r.Language == "")
}

// Decoder decodes windows for one stream. It owns one whisper_state; it is not safe for
// concurrent use, and Close releases it. Decode returns early with ctx.Err() when ctx is
// cancelled (whisper's abort callback).
type Decoder interface {
	Decode(ctx context.Context, req DecodeRequest) (Hypothesis, error)
	Tokenize(text string) ([]int, error)
	Close() error
}

// ThreadCapper is implemented by a Model whose decodes can be told to start their work on
// fewer threads for a while (the whisper models: every decode of the process, whisper
// patch 0012). The Pool caps them while the decodes running and its end-of-turn model's
// calls need more threads than there are cores (Pool.decodeCall, Pool.turnCall). Safe
// for concurrent use.
type ThreadCapper interface {
	CapThreads(n int) // at most n threads; n ≤ 0: no cap
}

// Model is one set of loaded weights shared by every Decoder made from it. Safe for
// concurrent use.
type Model interface {
	Name() string
	NewDecoder() (Decoder, error)
	Close() error
}

// Languages is implemented by models that know how many languages they speak: 1 for an
// English-only model, 99 or 100 for multilingual whisper. A model without it is taken to
// accept any language= (the stand-ins).
type Languages interface {
	Languages() int
}

// VAD gives speech probabilities for one stream; it keeps state between calls, so one per
// stream; not safe for concurrent use.
type VAD interface {
	// Process consumes samples and returns one probability per complete window of
	// WindowSamples(); a trailing partial window is kept for the next call.
	Process(samples []float32) ([]float32, error)
	WindowSamples() int
	Reset()
	Close() error
}

// Emitter receives a session's results in order. It must not block for long.
type Emitter func(r bus.Result)

// Session is one live stream on a worker.
type Session interface {
	// Write hands over one chunk of audio (and its Finalize/End flags). It does not block
	// on decoding; it returns ErrOverloaded when the session cannot keep up.
	Write(c *bus.AudioChunk) error
	// Close stops the session and frees its slot; no result is emitted after it returns.
	Close()
}

// SessionFactory opens sessions on the models a worker holds. Safe for concurrent use.
// Configurer is a Session whose turn-taking knobs can change mid-stream
// (the worker applies bus.ControlConfigure, Flux's Configure message).
type Configurer interface {
	Configure(bus.TurnOptions) error
}

type SessionFactory interface {
	Models() []string
	Capacity(model string) bus.Capacity
	Open(req bus.SessionRequest, emit Emitter) (Session, error)
}
