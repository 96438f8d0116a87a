package transcriber

import (
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/earshot-dev/earshot/internal/bus"
)

// Word times and confidences from the model.
//
// A decode asked for DecodeRequest.WordTimes gets, for every text token, the time at
// which whisper's DTW over the alignment heads' cross-attention leaves the token (its
// end; OpenAI's word-timestamp method, computed by whisper.cpp). A word is the tokens
// between two spaces, as strings.Fields splits the text: it ends where its last token
// ends and starts where the token before it ends (the window start for the first). The
// alignment gives pauses to a neighbouring word, so the stream then trims each word to the
// speech the VAD heard inside it (see stream.placeWords).

// tokWord is one word of a decode: its text, times in seconds from the window start
// (start −1: the window start; end −1: no time from the model) and its confidence.
type tokWord struct {
	text       string
	start, end float64
	conf       float64
	ok         bool // matched to a decode word (matchWords)
	first      int  // index of its first and last token
	last       int
	cuts       []tokCut // where each of its tokens ends in text (for splitCJK)
}

// tokCut is where a token of a word ends: its byte offset in the word's text (0 for a
// token that lies in the space before it), its DTW end (−1 none) and its probability.
type tokCut struct {
	off int
	end float64
	p   float32
}

// tokenWords splits a decode's text tokens into units (see units: the fields of their
// joined text, CJK runs split per character; a multi-byte character may span tokens).
func tokenWords(toks []Token) []tokWord {
	var text []byte
	var owner []int // token index of each byte of text
	for i, t := range toks {
		text = append(text, t.Text...)
		for range len(t.Text) {
			owner = append(owner, i)
		}
	}
	var out []tokWord
	for a := 0; a < len(text); {
		r, n := utf8.DecodeRune(text[a:])
		if unicode.IsSpace(r) {
			a += n
			continue
		}
		b := a
		for b < len(text) {
			r, n := utf8.DecodeRune(text[b:])
			if unicode.IsSpace(r) {
				break
			}
			b += n
		}
		for _, p := range cjkSpans(string(text[a:b])) {
			out = append(out, unitWord(toks, text, owner, a+p.a, a+p.b))
		}
		a = b
	}
	return out
}

// unitWord is the unit text[a:b] of a decode (see units) with its tokens' times and
// confidence.
func unitWord(toks []Token, text []byte, owner []int, a, b int) tokWord {
	first, last := owner[a], owner[b-1]
	w := tokWord{text: strings.ToValidUTF8(string(text[a:b]), ""), start: -1, end: -1, ok: true, first: first, last: last}
	if toks[last].End > 0 {
		w.end = toks[last].End
	}
	if first > 0 && toks[first-1].End > 0 {
		w.start = toks[first-1].End
	}
	w.conf = wordConfidence(toks[first : last+1])
	w.cuts = make([]tokCut, last-first+1)
	for i := range w.cuts {
		w.cuts[i] = tokCut{end: -1, p: toks[first+i].P}
		if toks[first+i].End > 0 {
			w.cuts[i].end = toks[first+i].End
		}
	}
	for k := a; k < b; k++ { // tokens own bytes in order: the last byte of each wins
		w.cuts[owner[k]-first].off = k - a + 1
	}
	return w
}

// wordConfidence combines the probabilities of a word's tokens: the geometric mean of
// the tokens that hold a letter or digit (the probability of the word's spelling, per
// token), so that a comma or full stop whisper was unsure of does not mark a right word
// as doubtful; a word of punctuation only takes its tokens' geometric mean. It tells
// wrong words from right ones better than the arithmetic mean or the minimum
// (TestWordConfidenceInformative; see docs/bench/history.md); the first token's
// probability does as well but says nothing of the rest of a long word.
func wordConfidence(toks []Token) float64 {
	var sum float64
	n := 0
	for pass := 0; pass < 2 && n == 0; pass++ {
		for _, t := range toks {
			if pass == 0 && !hasAlnum(t.Text) {
				continue
			}
			sum += math.Log(max(float64(t.P), 1e-6))
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return math.Exp(sum / float64(n))
}

func hasAlnum(s string) bool {
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return true
		}
	}
	return false
}

// matchWords gives each of words (the guarded text's fields, a subsequence of the
// decode's words but for sound tags the guard dropped) its decode word, or a zero
// tokWord with end −1 where none matches.
func matchWords(words []string, tw []tokWord) []tokWord {
	out := make([]tokWord, len(words))
	j := 0
	for i, w := range words {
		out[i] = tokWord{text: w, start: -1, end: -1}
		for k := j; k < len(tw) && k <= j+3; k++ {
			if tw[k].text == w {
				out[i], j = tw[k], k+1
				break
			}
		}
	}
	return out
}

// utteranceConfidence is the mean of its words' confidences (0 for none).
func utteranceConfidence(ws []bus.Word) float64 {
	if len(ws) == 0 {
		return 0
	}
	var s float64
	for _, w := range ws {
		s += w.Confidence
	}
	return s / float64(len(ws))
}

// wordTime is a word's place in the stream and its confidence.
type wordTime struct {
	start, end uint64  // stream samples; meaningful when model is set
	conf       float64 // meaningful when scored is set
	model      bool    // start and end from the model (DTW)
	scored     bool    // conf from the word's tokens
	cuts       []cut   // where the word's tokens end (splitCJK); model times only
}

// cut is tokCut in stream samples.
type cut struct {
	off int
	end uint64
	p   float32
}

// wordTimesFrom is the shortest partial window that asks the model for word times
// (finals and speculative finals always do). The DTW pass costs about 30 ms on a 3 s
// window (tiny.en, 2 threads), so short partials, whose latency matters most, show
// estimates. A final that decodes the whole utterance gives every word the model's
// times; a window is trimmed only after a partial of at least commitLag + trimMargin +
// trimMinStep (the last committed word must end trimMargin + trimMinStep into the
// window, and commitLag before its end), and that partial, decoded with word times,
// refreshes the committed words it holds (agreement.update) before any leave the window.
const wordTimesFrom = commitLag + trimMargin + trimMinStep

// allModelTimes reports whether every word has the model's times.
func allModelTimes(ts []wordTime) bool {
	for _, t := range ts {
		if !t.model {
			return false
		}
	}
	return true
}

// times gives the guarded words of the job's decode their times in stream samples and
// their confidences (matchWords over tokenWords).
// conv is applied to the decode's units first (the script conversion of the text).
func (j *job) times(words []string, hyp Hypothesis, conv func(string) string) []wordTime {
	tw := tokenWords(hyp.Tokens)
	for i := range tw {
		tw[i].text = conv(tw[i].text)
	}
	tw = matchWords(words, tw)
	at := func(s float64) uint64 {
		return min(j.winEnd, j.winStart+uint64(math.Round(s*bus.SampleRate)))
	}
	out := make([]wordTime, len(words))
	for i, w := range tw {
		t := wordTime{conf: w.conf, scored: w.ok}
		if w.end > 0 {
			t.model, t.start, t.end = true, j.winStart, at(w.end)
			if w.start > 0 {
				t.start = at(w.start)
			}
		}
		for _, c := range w.cuts {
			if c.end > 0 {
				t.cuts = append(t.cuts, cut{off: c.off, end: at(c.end), p: c.p})
			}
		}
		out[i] = t
	}
	return out
}

// placeWords gives words their stream times: the model's, trimmed to the speech the VAD
// heard (the alignment gives a pause to the word before or after it: a word's start moves
// forward to the first speech window at or after it, its end back to the end of the last
// speech window before it); words without model times are spread by their length over
// the gap their neighbours leave (the whole span [from, to) when none has times). Times
// never go back: not before the previous word, nor before the last final's last word.
// conf is the confidence of a word its tokens did not score.
func (st *stream) placeWords(words []string, times []wordTime, from, to uint64, conf float64) []bus.Word {
	n := len(words)
	if n == 0 {
		return nil
	}
	model := func(i int) bool { return i < len(times) && times[i].model }
	s, e := make([]uint64, n), make([]uint64, n)
	for i := range n {
		if model(i) {
			s[i], e[i] = st.speechWithin(times[i].start, times[i].end)
		}
	}
	for i := 0; i < n; {
		if model(i) {
			i++
			continue
		}
		k := i
		for k < n && !model(k) {
			k++
		}
		lo, hi := from, to
		if i > 0 {
			lo = e[i-1]
		}
		if k < n {
			hi = max(s[k], lo)
		}
		for m, w := range spreadWords(words[i:k], lo, max(hi, lo), 0) {
			s[i+m], e[i+m] = uint64(math.Round(w.Start*bus.SampleRate)), uint64(math.Round(w.End*bus.SampleRate))
		}
		i = k
	}
	prev := uint64(math.Round(st.lastWordEnd * bus.SampleRate))
	out := make([]bus.Word, n)
	for i, w := range words {
		a := max(s[i], prev)
		b := max(e[i], a)
		c := conf
		if i < len(times) && times[i].scored {
			c = times[i].conf
		}
		out[i] = bus.Word{Word: normWord(w), Punctuated: w, Start: sec(a), End: sec(b), Confidence: c}
		prev = b
	}
	var split []bus.Word
	for i, w := range out {
		var cuts []cut
		if i < len(times) && times[i].model {
			cuts = times[i].cuts
		}
		split = append(split, splitCJK(w, cuts)...)
	}
	return split
}

// splitCJK splits a word of text written without spaces (whisper writes a Mandarin
// clause as one run) into its units (cjkSpans), as Deepgram lists Chinese words. Each
// part ends where the model says its last token ends (cuts: a character may span two
// tokens; characters that share a token share its time by bytes) within the word's span,
// else at its share of the span by length; its confidence is the geometric mean of the
// tokens it touches. Other words are returned as they are.
func splitCJK(w bus.Word, cuts []cut) []bus.Word {
	text := w.Punctuated
	parts := cjkSpans(text)
	if len(parts) == 1 {
		return []bus.Word{w}
	}
	out := make([]bus.Word, len(parts))
	start := w.Start
	for k, p := range parts {
		end := w.Start + (w.End-w.Start)*float64(p.b)/float64(len(text))
		var lp float64
		n := 0
		for ci, c := range cuts {
			from, t0 := 0, w.Start
			if ci > 0 {
				from, t0 = cuts[ci-1].off, sec(cuts[ci-1].end)
			}
			if c.off > p.a && from < p.b { // the token holds part of this part
				lp += math.Log(max(float64(c.p), 1e-6))
				n++
			}
			if c.off >= p.b && from < p.b {
				// The token holding the part's last byte ends at c.end; parts that share
				// a token (two characters in one) share its time by bytes.
				t1 := sec(c.end)
				end = t1
				if c.off > from && t1 > t0 {
					end = t0 + (t1-t0)*float64(p.b-from)/float64(c.off-from)
				}
				break
			}
		}
		end = min(max(end, start), w.End)
		if k == len(parts)-1 {
			end = w.End
		}
		conf := w.Confidence
		if n > 0 {
			conf = math.Exp(lp / float64(n))
		}
		seg := text[p.a:p.b]
		out[k] = bus.Word{Word: normWord(seg), Punctuated: seg, Start: start, End: end, Confidence: conf}
		start = end
	}
	return out
}

// speechWithin trims [a, b) to the VAD windows with speech inside it (p ≥ the
// endpointer's end threshold); unchanged where the VAD has nothing buffered or hears no
// speech in it at all.
func (st *stream) speechWithin(a, b uint64) (uint64, uint64) {
	win := st.ep.win
	if win == 0 || b <= a || a < st.vadAt {
		return a, b
	}
	speech := func(x uint64) (bool, bool) {
		i := (x - st.vadAt) / win
		if i >= uint64(len(st.vadProbs)) {
			return false, false
		}
		return st.vadProbs[i] >= vadEndThold, true
	}
	na, nb := a, b
	for x := a; x < b; x = (x-st.vadAt)/win*win + st.vadAt + win {
		sp, known := speech(x)
		if !known || sp {
			na = x
			break
		}
		if x+win >= b {
			return a, b // no speech inside: leave it
		}
	}
	for x := b - 1; x > na; {
		sp, known := speech(x)
		if !known || sp {
			nb = min(b, (x-st.vadAt)/win*win+st.vadAt+win)
			break
		}
		w0 := (x-st.vadAt)/win*win + st.vadAt
		if w0 == 0 || w0 <= na {
			break
		}
		x = w0 - 1
	}
	return na, nb
}
