package transcriber

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/models"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

// TestTokenWords: words are the fields of the joined token text; a word ends where its
// last token ends by DTW and starts where the token before it ends; its confidence leaves
// out punctuation tokens.
func TestTokenWords(t *testing.T) {
	toks := []Token{
		{Text: " And", End: 0.5, P: 0.9}, {Text: " so", End: 1.0, P: 0.8},
		{Text: " my", End: 1.2, P: 0.5}, {Text: ",", End: 1.25, P: 0.1},
		{Text: " Qu", End: 1.5, P: 0.9}, {Text: "ilter", End: 1.9, P: 0.4},
	}
	ws := tokenWords(toks)
	want := []struct {
		text       string
		start, end float64
		conf       float64
	}{
		{"And", -1, 0.5, 0.9}, {"so", 0.5, 1.0, 0.8}, {"my,", 1.0, 1.25, 0.5}, {"Quilter", 1.25, 1.9, math.Sqrt(0.9 * 0.4)},
	}
	if len(ws) != len(want) {
		t.Fatalf("tokenWords = %+v", ws)
	}
	for i, w := range want {
		g := ws[i]
		if g.text != w.text || !near(g.start, w.start) || !near(g.end, w.end) || !near(g.conf, w.conf) {
			t.Errorf("word %d = %q %.2f–%.2f conf %.3f, want %q %.2f–%.2f conf %.3f", i, g.text, g.start, g.end, g.conf, w.text, w.start, w.end, w.conf)
		}
	}
	// A token without a DTW time (a decode that did not ask for them) gives none.
	if ws := tokenWords([]Token{{Text: " hi", End: -1, P: 0.7}}); len(ws) != 1 || ws[0].end != -1 || !near(ws[0].conf, 0.7) {
		t.Errorf("untimed: %+v", ws)
	}
	// A punctuation-only word takes its own tokens' probability.
	if ws := tokenWords([]Token{{Text: " -", End: 1, P: 0.25}}); len(ws) != 1 || !near(ws[0].conf, 0.25) {
		t.Errorf("punctuation word: %+v", ws)
	}
}

// TestTokenWordsMultibyte: a character whose bytes span two tokens joins them, and a
// Chinese run is one unit per character (punctuation with the character before it), each
// ending where the token holding its last byte ends.
func TestTokenWordsMultibyte(t *testing.T) {
	ni := "你"
	toks := []Token{{Text: ni[:2], End: 0.3, P: 0.5}, {Text: ni[2:] + "好", End: 0.6, P: 0.8}, {Text: "。", End: 0.7, P: 0.9}}
	ws := tokenWords(toks)
	if len(ws) != 2 || ws[0].text != "你" || ws[1].text != "好。" || !near(ws[0].end, 0.6) || !near(ws[1].end, 0.7) {
		t.Fatalf("tokenWords = %+v", ws)
	}
	if c := ws[0].cuts; len(c) != 2 || c[0].off != 2 || c[1].off != 3 {
		t.Errorf("你 cuts = %+v, want offsets 2, 3", c)
	}
	if c := ws[1].cuts; len(c) != 2 || c[0].off != 3 || c[1].off != 6 {
		t.Errorf("好。 cuts = %+v, want offsets 3, 6", c)
	}
	if !near(ws[0].conf, 0.8) || !near(ws[1].conf, 0.8) { // a token of a character's first bytes holds no letter
		t.Errorf("confidences %.3f %.3f", ws[0].conf, ws[1].conf)
	}
}

// TestSplitCJK: a Chinese run becomes one word per character (punctuation joined to the
// character before it, Latin runs whole), each ending where its last token ends.
func TestSplitCJK(t *testing.T) {
	w := bus.Word{Word: "x", Punctuated: "我们GPU，好。", Start: 1, End: 3, Confidence: 0.5}
	// tokens: 我 | 们 | GPU | ， | 好。
	cuts := []cut{{off: 3, end: 1.2 * bus.SampleRate, p: 0.9}, {off: 6, end: 1.5 * bus.SampleRate, p: 0.8},
		{off: 9, end: 2.0 * bus.SampleRate, p: 0.7}, {off: 12, end: 2.1 * bus.SampleRate, p: 0.3},
		{off: 18, end: 2.9 * bus.SampleRate, p: 0.6}}
	got := splitCJK(w, cuts)
	want := []struct {
		text       string
		start, end float64
	}{{"我", 1, 1.2}, {"们", 1.2, 1.5}, {"GPU，", 1.5, 2.1}, {"好。", 2.1, 3}}
	if len(got) != len(want) {
		t.Fatalf("splitCJK = %+v", got)
	}
	for i, w := range want {
		if got[i].Punctuated != w.text || !near(got[i].Start, w.start) || !near(got[i].End, w.end) {
			t.Errorf("part %d = %q %.2f–%.2f, want %q %.2f–%.2f", i, got[i].Punctuated, got[i].Start, got[i].End, w.text, w.start, w.end)
		}
	}
	if !near(got[0].Confidence, 0.9) || !near(got[2].Confidence, math.Sqrt(0.7*0.3)) {
		t.Errorf("confidences %v, %v", got[0].Confidence, got[2].Confidence)
	}
	// No model times: parts share the span by length.
	if got := splitCJK(bus.Word{Punctuated: "你好", Start: 0, End: 2}, nil); len(got) != 2 || !near(got[0].End, 1) || !near(got[1].Start, 1) {
		t.Errorf("untimed split = %+v", got)
	}
	// Latin words stay whole.
	if got := splitCJK(bus.Word{Punctuated: "hello,"}, nil); len(got) != 1 {
		t.Errorf("latin split = %+v", got)
	}
}

// TestMatchWords: the guard's words (sound tags dropped) find their decode words.
func TestMatchWords(t *testing.T) {
	tw := []tokWord{{text: "[MUSIC]", end: 1, ok: true}, {text: "hello", end: 2, ok: true}, {text: "world.", end: 3, ok: true}}
	got := matchWords([]string{"hello", "world.", "extra"}, tw)
	if !near(got[0].end, 2) || !near(got[1].end, 3) || got[2].ok || got[2].end != -1 {
		t.Errorf("matchWords = %+v", got)
	}
}

// TestPlaceWords: model times are trimmed to the VAD's speech, words without them are
// spread over the gap their neighbours leave, and nothing starts before the last final's
// last word.
func TestPlaceWords(t *testing.T) {
	const win = 512
	st := &stream{ep: endpointer{win: win}}
	// VAD windows 0–9 speech, 10–19 silence, 20–39 speech.
	for i := 0; i < 40; i++ {
		p := float32(0.9)
		if i >= 10 && i < 20 {
			p = 0.05
		}
		st.vadProbs = append(st.vadProbs, p)
	}
	s := func(w int) uint64 { return uint64(w * win) }
	times := []wordTime{
		{model: true, start: s(0), end: s(14), conf: 0.9, scored: true},  // ends in the pause: back to window 10
		{model: true, start: s(14), end: s(25), conf: 0.8, scored: true}, // starts in the pause: on to window 20
		{}, // no model time: spread between its neighbours
		{model: true, start: s(30), end: s(36), conf: 0.7, scored: true},
	}
	ws := st.placeWords([]string{"one", "two", "three", "four"}, times, 0, s(40), 0.5)
	if len(ws) != 4 {
		t.Fatalf("placeWords = %+v", ws)
	}
	if !near(ws[0].End, sec(s(10))) || !near(ws[1].Start, sec(s(20))) {
		t.Errorf("pause not trimmed: %+v", ws[:2])
	}
	if !(ws[2].Start >= ws[1].End && ws[2].End <= ws[3].Start) || ws[2].Confidence != 0.5 {
		t.Errorf("estimated word %+v between %+v and %+v", ws[2], ws[1], ws[3])
	}
	st.lastWordEnd = sec(s(22))
	ws = st.placeWords([]string{"one", "two"}, times[:2], 0, s(40), 0.5)
	if ws[0].Start < st.lastWordEnd || ws[1].Start < ws[0].End {
		t.Errorf("times go back: %+v after %.3f", ws, st.lastWordEnd)
	}
}

// TestMandarinWordTimes streams a Mandarin clip through the live path on the multilingual
// base model (when it is installed: `earshot models import-ct2`; CI has only tiny.en, so
// there it skips) and checks the words a Chinese caption or search user reads: one per
// character, in order, inside the audio, with the model's times (not all the same length).
func TestMandarinWordTimes(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: real engine (-short)")
	}
	path, err := models.Resolve(models.DefaultDir(), "base")
	if err != nil {
		t.Skipf("SKIPPING: the multilingual base model is not installed (%v)", err)
	}
	m, err := LoadWhisper(path, LoadOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	_, newVAD := realEngine(t)
	pcm := readWAV(t, filepath.Join(testdata.Require(t), "speech-zh", "wav16k", "soulx_female_mandarin.wav"))
	rig, s, c := simulatedSession(t, "base", m, newVAD, bus.StreamOptions{Language: "zh"})
	rig.feed(s, c, append(pcm, make([]int16, bus.SampleRate)...), 0, bus.FlagEnd)
	deadline := time.Now().Add(30 * time.Second)
	for !slices.ContainsFunc(c.results(), func(r bus.Result) bool { return r.Type == bus.ResultClosed }) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var words []bus.Word
	han := 0
	for _, r := range c.results() {
		if r.Type == bus.ResultFinal {
			words = append(words, r.Words...)
			for _, ch := range r.Text {
				if isCJK(ch) {
					han++
				}
			}
			t.Logf("final %q", r.Text)
		}
	}
	if han < 20 {
		t.Fatalf("%d Chinese characters in the finals", han)
	}
	if len(words) < han*9/10 || len(words) > han+5 {
		t.Errorf("%d words for %d characters: %+v", len(words), han, words)
	}
	last, lengths := 0.0, map[int]bool{}
	for _, w := range words {
		if w.Start < last-1e-9 || w.End < w.Start || w.End > float64(len(pcm))/bus.SampleRate+0.5 || utf8.RuneCountInString(strings.TrimFunc(w.Punctuated, unicode.IsPunct)) > 4 {
			t.Errorf("word %+v (the word before ended at %.2f s)", w, last)
		}
		last = w.End
		lengths[int(math.Round((w.End-w.Start)*50))] = true // in 20 ms steps
	}
	if len(lengths) < 5 {
		t.Errorf("word lengths %v: spread evenly, not the model's times", lengths)
	}
}
