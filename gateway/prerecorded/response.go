package prerecorded

import (
	"fmt"
	"sort"
	"strings"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/internal/bus"
)

// Response is Deepgram's pre-recorded response.
type Response struct {
	Metadata Metadata `json:"metadata"`
	Results  Results  `json:"results"`
}

// Metadata describes the request and the audio.
type Metadata struct {
	TransactionKey string   `json:"transaction_key"`
	RequestID      string   `json:"request_id"`
	SHA256         string   `json:"sha256"`  // of the uploaded bytes
	Created        string   `json:"created"` // RFC 3339, UTC
	Duration       float64  `json:"duration"`
	Channels       int      `json:"channels"`
	Models         []string `json:"models"`
}

// Results holds one entry per channel (Earshot mixes channels down: one).
type Results struct {
	Channels []wire.Channel `json:"channels"`
}

// Transcript is the first channel's first alternative's transcript.
func (r *Response) Transcript() string {
	if len(r.Results.Channels) == 0 || len(r.Results.Channels[0].Alternatives) == 0 {
		return ""
	}
	return r.Results.Channels[0].Alternatives[0].Transcript
}

// assemble joins a session's finals into one alternative.
func assemble(finals []bus.Result) wire.Alternative {
	sort.SliceStable(finals, func(i, j int) bool { return finals[i].Start < finals[j].Start })
	alt := wire.Alternative{Words: []wire.Word{}}
	var texts []string
	var confSum float64
	var n int
	for _, f := range finals {
		if t := strings.TrimSpace(f.Text); t != "" {
			texts = append(texts, t)
		}
		for _, w := range f.Words {
			alt.Words = append(alt.Words, wire.Word{Word: w.Word, Start: round3(w.Start), End: round3(w.End),
				Confidence: round3(w.Confidence), PunctuatedWord: w.Punctuated})
		}
		k := max(1, len(f.Words))
		confSum += f.Confidence * float64(k)
		n += k
	}
	alt.Transcript = strings.Join(texts, " ")
	if n > 0 {
		alt.Confidence = round3(confSum / float64(n))
	}
	return alt
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }

// Caption limits: a cue holds at most this much time and text.
const (
	cueMaxSeconds = 7.0
	cueMaxChars   = 42
)

type cue struct {
	start, end float64
	text       string
}

// cues groups words into caption cues of at most cueMaxSeconds and cueMaxChars, and
// starts a new cue after a pause of a second or more.
func cues(words []wire.Word) []cue {
	var out []cue
	var cur *cue
	for _, w := range words {
		t := w.PunctuatedWord
		if t == "" {
			t = w.Word
		}
		if cur != nil && (w.End-cur.start > cueMaxSeconds || len(cur.text)+1+len(t) > cueMaxChars || w.Start-cur.end >= 1) {
			out = append(out, *cur)
			cur = nil
		}
		if cur == nil {
			cur = &cue{start: w.Start, end: w.End, text: t}
			continue
		}
		cur.text += " " + t
		cur.end = w.End
	}
	if cur != nil {
		out = append(out, *cur)
	}
	return out
}

func stamp(sec float64, sep string) string {
	ms := int64(sec*1000 + 0.5)
	return fmt.Sprintf("%02d:%02d:%02d%s%03d", ms/3600000, ms/60000%60, ms/1000%60, sep, ms%1000)
}

// WebVTT renders the response's words as a WebVTT document.
func (r *Response) WebVTT() string {
	var b strings.Builder
	b.WriteString("WEBVTT\n\n")
	for i, c := range cues(r.words()) {
		fmt.Fprintf(&b, "%d\n%s --> %s\n%s\n\n", i+1, stamp(c.start, "."), stamp(c.end, "."), c.text)
	}
	return b.String()
}

// SRT renders the response's words as SubRip subtitles.
func (r *Response) SRT() string {
	var b strings.Builder
	for i, c := range cues(r.words()) {
		fmt.Fprintf(&b, "%d\n%s --> %s\n%s\n\n", i+1, stamp(c.start, ","), stamp(c.end, ","), c.text)
	}
	return b.String()
}

func (r *Response) words() []wire.Word {
	if len(r.Results.Channels) == 0 || len(r.Results.Channels[0].Alternatives) == 0 {
		return nil
	}
	return r.Results.Channels[0].Alternatives[0].Words
}
