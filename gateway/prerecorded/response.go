package prerecorded

import (
	"crypto/sha256"
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

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

// Results holds one entry per channel (Earshot mixes channels down: one) and, with
// utterances=true, the utterances (an empty list when nothing was said).
type Results struct {
	Channels   []wire.Channel `json:"channels"`
	Utterances *[]Utterance   `json:"utterances,omitempty"`
}

// Utterance is one of Deepgram's utterances: words with no pause of utt_split seconds or
// more between them.
type Utterance struct {
	Start      float64     `json:"start"`
	End        float64     `json:"end"`
	Confidence float64     `json:"confidence"`
	Channel    int         `json:"channel"`
	Transcript string      `json:"transcript"`
	Words      []wire.Word `json:"words"`
	ID         string      `json:"id"`
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
	for _, t := range texts {
		alt.Transcript += separator(alt.Transcript, t) + t
	}
	if n > 0 {
		alt.Confidence = round3(confSum / float64(n))
	}
	return alt
}

// detected is the language of a file asked to detect it (detect_language=true,
// language=multi): the language of most of its finals' audio, with the mean probability
// of that language over them (weighted by duration); languages lists every language
// heard, most first. Each word gets its final's language.
func detected(finals []bus.Result, alt *wire.Alternative) (string, float64) {
	dur := map[string]float64{}
	conf := map[string]float64{}
	for _, f := range finals {
		if f.Language == "" || strings.TrimSpace(f.Text) == "" {
			continue
		}
		d := max(f.Duration, 0.001)
		dur[f.Language] += d
		conf[f.Language] += d * f.LanguageConfidence
	}
	if len(dur) == 0 {
		return "", 0
	}
	for l := range dur {
		alt.Languages = append(alt.Languages, l)
	}
	sort.Slice(alt.Languages, func(i, j int) bool {
		a, b := alt.Languages[i], alt.Languages[j]
		return dur[a] > dur[b] || (dur[a] == dur[b] && a < b)
	})
	k := 0
	for _, f := range finals {
		for range f.Words {
			if k < len(alt.Words) {
				alt.Words[k].Language = f.Language
			}
			k++
		}
	}
	best := alt.Languages[0]
	return best, round3(conf[best] / dur[best])
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
		cur.text += separator(cur.text, t) + t
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

// utterances splits a channel's words at every pause of split seconds or more (from one
// word's end to the next one's start), as Deepgram's utt_split does. Each utterance's
// confidence is the mean of its words'; its id is derived from the request id and its
// place, so the same request always gets the same ids.
func utterances(request bus.SessionID, channel int, words []wire.Word, split float64) []Utterance {
	var out []Utterance
	flush := func(ws []wire.Word) {
		if len(ws) == 0 {
			return
		}
		u := Utterance{Start: ws[0].Start, End: ws[len(ws)-1].End, Channel: channel, Words: ws,
			Transcript: joinWords(ws), ID: utteranceID(request, channel, len(out))}
		var c float64
		for _, w := range ws {
			c += w.Confidence
		}
		u.Confidence = round3(c / float64(len(ws)))
		out = append(out, u)
	}
	from := 0
	for i := 1; i < len(words); i++ {
		if words[i].Start-words[i-1].End >= split {
			flush(words[from:i])
			from = i
		}
	}
	flush(words[from:])
	return out
}

func joinWords(ws []wire.Word) string {
	var b strings.Builder
	for _, w := range ws {
		t := w.PunctuatedWord
		if t == "" {
			t = w.Word
		}
		b.WriteString(separator(b.String(), t))
		b.WriteString(t)
	}
	return b.String()
}

// separator is what goes between running text and the next piece: a space, except
// between two characters of a script written without spaces (Chinese, Japanese:
// transcriber.splitCJK lists them one character per word), and nothing at the start.
func separator(text, next string) string {
	if text == "" {
		return ""
	}
	a, _ := utf8.DecodeLastRuneInString(strings.TrimRightFunc(text, unicode.IsPunct))
	b, _ := utf8.DecodeRuneInString(next)
	if noSpaceScript(a) && noSpaceScript(b) {
		return ""
	}
	return " "
}

func noSpaceScript(r rune) bool {
	return unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) || unicode.Is(unicode.Katakana, r)
}

// utteranceID is a UUID-shaped id (version 8: our own layout) from SHA-256 of the
// request id, channel and index.
func utteranceID(request bus.SessionID, channel, i int) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s/%d/%d", request, channel, i)))
	h[6] = h[6]&0x0f | 0x80
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// Paragraph breaks: a sentence starts a new paragraph after a pause of paragraphPauses
// times utt_split or more, or when its paragraph already holds paragraphSentences.
// Deepgram says only that its paragraphs follow the punctuation (and speakers, which
// Earshot does not tell apart); these bounds keep a monologue readable.
const (
	paragraphPauses    = 2
	paragraphSentences = 6
)

// paragraphs groups words into sentences (ending at a word whose punctuated form ends
// in . ? ! 。 ？ or ！, closing quotes and brackets aside) and sentences into paragraphs.
func paragraphs(words []wire.Word, split float64) *wire.Paragraphs {
	var sentences [][]wire.Word
	from := 0
	for i, w := range words {
		if endsSentence(w.PunctuatedWord) || i == len(words)-1 {
			sentences = append(sentences, words[from:i+1])
			from = i + 1
		}
	}
	out := &wire.Paragraphs{Paragraphs: []wire.Paragraph{}}
	var texts []string
	var cur *wire.Paragraph
	var curText string
	flush := func() {
		if cur != nil {
			out.Paragraphs = append(out.Paragraphs, *cur)
			texts = append(texts, curText)
		}
		cur, curText = nil, ""
	}
	for _, s := range sentences {
		st := wire.Sentence{Text: joinWords(s), Start: s[0].Start, End: s[len(s)-1].End}
		if cur != nil && (st.Start-cur.End >= paragraphPauses*split || len(cur.Sentences) >= paragraphSentences) {
			flush()
		}
		if cur == nil {
			cur = &wire.Paragraph{Start: st.Start}
		}
		cur.Sentences = append(cur.Sentences, st)
		cur.NumWords += len(s)
		cur.End = st.End
		curText += separator(curText, st.Text) + st.Text
	}
	flush()
	if len(texts) > 0 {
		out.Transcript = "\n" + strings.Join(texts, "\n\n")
	}
	return out
}

func endsSentence(w string) bool {
	w = strings.TrimRight(w, "\"'”’)]»」』")
	return strings.HasSuffix(w, ".") || strings.HasSuffix(w, "?") || strings.HasSuffix(w, "!") ||
		strings.HasSuffix(w, "。") || strings.HasSuffix(w, "？") || strings.HasSuffix(w, "！")
}
