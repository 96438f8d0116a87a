package transcriber

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// OfflineOptions configure Transcribe.
type OfflineOptions struct {
	Threads  int    // 0 = the model's default
	Language string // "" = "en"
	Prompt   string // optional initial prompt (vocabulary, spelling)
}

// Transcript is a whole-file transcription.
type Transcript struct {
	Text     string              `json:"text"`
	Duration float64             `json:"duration"` // seconds of input
	Segments []TranscriptSegment `json:"segments"`
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

// Word is one word with times from whisper's token timestamps (an estimate:
// whisper.cpp's experimental token-level timing) and the mean probability of
// its tokens.
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
	req := DecodeRequest{Samples: samples, Language: opts.Language, Threads: opts.Threads, Offline: true}
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
	t := &Transcript{Text: h.Text, Duration: float64(len(samples)) / 16000}
	for _, s := range h.Segments {
		t.Segments = append(t.Segments, TranscriptSegment{
			Start: s.Start, End: s.End, Text: s.Text, Words: words(s.Tokens),
			NoSpeechProb: s.NoSpeechProb, AvgLogprob: s.AvgLogprob,
		})
	}
	return t, nil
}

// words joins text tokens into words: a token that starts with a space starts
// a new word; any other token (a word piece, punctuation) extends the current
// one. Times come from the first and last token; the probability is the
// tokens' mean.
func words(toks []Token) []Word {
	var out []Word
	var cur strings.Builder
	var w Word
	var psum float32
	var n int
	flush := func() {
		text := strings.TrimSpace(cur.String())
		if text != "" {
			w.Text = strings.ToValidUTF8(text, "\uFFFD")
			w.Probability = psum / float32(n)
			out = append(out, w)
		}
		cur.Reset()
		w, psum, n = Word{}, 0, 0
	}
	for _, t := range toks {
		if strings.HasPrefix(t.Text, " ") && n > 0 {
			flush()
		}
		if n == 0 {
			w.Start = t.T0
		}
		cur.WriteString(t.Text)
		w.End = t.T1
		psum += t.P
		n++
	}
	if n > 0 {
		flush()
	}
	return out
}
