package transcriber

import (
	"context"
	"errors"
	"fmt"

	"github.com/earshot-dev/earshot/internal/bus"
)

// OfflineOptions configure Transcribe.
type OfflineOptions struct {
	Threads  int    // 0 = the model's default
	Language string // a language= tag (see internal/lang): "" = "en", "zh-TW", "multi" (detect) …
	Prompt   string // optional initial prompt (vocabulary, spelling)
}

// Transcript is a whole-file transcription.
type Transcript struct {
	Text     string              `json:"text"`
	Duration float64             `json:"duration"` // seconds of input
	Segments []TranscriptSegment `json:"segments"`
	// Language is the language decoded in; LanguageP its probability when detected.
	Language  string  `json:"language"`
	LanguageP float32 `json:"language_probability,omitempty"`
}

// TranscriptSegment is one whisper segment; times in seconds from the start.
type TranscriptSegment struct {
	Start        float64 `json:"start"`
	End          float64 `json:"end"`
	Text         string  `json:"text"`
	Words        []Word  `json:"words"`
	NoSpeechProb float32 `json:"no_speech_prob"`
	AvgLogprob   float64 `json:"avg_logprob"`
}

// Word is one word with times in seconds and a confidence. Times come from DTW over
// the model's alignment heads where it was loaded with them (tokenWords), otherwise
// from whisper's experimental token timestamps; Probability is wordConfidence.
type Word struct {
	Start       float64 `json:"start"`
	End         float64 `json:"end"`
	Text        string  `json:"word"`
	Probability float32 `json:"probability"`
}

// Transcribe decodes a whole 16 kHz mono recording with its own Decoder
// (whisper walks input longer than 30 s window by window, with timestamps). It
// is the accuracy baseline and backs `earshot transcribe`. Cancelling ctx
// stops whisper after its current pass and returns ctx.Err().
func Transcribe(ctx context.Context, m Model, samples []float32, opts OfflineOptions) (*Transcript, error) {
	d, err := m.NewDecoder()
	if err != nil {
		return nil, err
	}
	defer d.Close()
	spec, err := sessionLanguage(m, bus.SessionRequest{Model: m.Name(), Options: bus.StreamOptions{Language: opts.Language}})
	if err != nil {
		return nil, err
	}
	// Detection looks at the first 30 s (whisper's window): a file is taken to be in one
	// language.
	req := DecodeRequest{Samples: samples, Language: spec.Code, DetectLanguage: spec.Detect, DetectAmong: spec.Among, Threads: opts.Threads, Offline: true}
	if opts.Prompt != "" {
		if req.PromptTokens, err = d.Tokenize(opts.Prompt); err != nil {
			return nil, fmt.Errorf("tokenize prompt: %w", err)
		}
	}
	h, err := d.Decode(ctx, req)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, fmt.Errorf("transcribe %s: %w", m.Name(), err)
	}
	conv := func(text string) string { return toScript(spec, h.Language, text) }
	t := &Transcript{Text: conv(h.Text), Duration: float64(len(samples)) / 16000, Language: h.Language, LanguageP: h.LanguageP}
	for _, s := range h.Segments {
		ws := words(s.Tokens)
		for i := range ws {
			ws[i].Text = conv(ws[i].Text)
		}
		t.Segments = append(t.Segments, TranscriptSegment{
			Start: s.Start, End: s.End, Text: conv(s.Text), Words: ws,
			NoSpeechProb: s.NoSpeechProb, AvgLogprob: s.AvgLogprob,
		})
	}
	return t, nil
}

// words joins a segment's text tokens into words (tokenWords). A word's times are the
// DTW times where the decode has them; otherwise the first and last token's
// experimental timestamps.
func words(toks []Token) []Word {
	tw := tokenWords(toks)
	out := make([]Word, 0, len(tw))
	for _, w := range tw {
		o := Word{Text: w.text, Probability: float32(w.conf), Start: toks[w.first].T0, End: toks[w.last].T1}
		if w.end > 0 {
			o.End = w.end
			switch {
			case w.start > 0:
				o.Start = w.start
			case o.Start < 0 || o.Start > o.End: // the first word: DTW starts it at the window start
				o.Start = 0
			}
		}
		out = append(out, o)
	}
	return out
}
