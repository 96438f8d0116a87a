package transcriber

import (
	"context"
	"math"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/wer"
	"github.com/earshot-dev/earshot/transcriber/whispercpp"
)

// refWord is a word of the timing reference, normalised, in stream seconds.
type refWord struct {
	word       string
	start, end float64
}

// alignRefModel is the model whose offline DTW alignment is the word-timing reference:
// EARSHOT_ALIGN_MODEL (the benchmark uses base, a larger model with its own alignment
// heads, so that the reference is not the streamed model's own view), else tiny.en.
func alignRefModel() string {
	if m := os.Getenv("EARSHOT_ALIGN_MODEL"); m != "" {
		return m
	}
	return "tiny.en"
}

// alignedUtt is one utterance of the long-form file decoded offline with DTW token
// times: its text tokens (End in seconds of the stream) and whisper's text.
type alignedUtt struct {
	toks []Token
	text string
}

// alignOffline decodes each utterance of the long-form file (±0.3 s) offline with the
// named model's full 30 s context and DTW token times over its alignment heads (OpenAI's
// word-timestamp method; flash attention off, as whisper.cpp needs).
func alignOffline(t *testing.T, pcm []int16, lf testdata.Longform, name string) map[string]alignedUtt {
	t.Helper()
	cp := whispercpp.DefaultContextParams()
	cp.FlashAttn, cp.DTW = false, "auto"
	m, err := whispercpp.Load(testdata.Model(t, name), cp)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	st, err := m.NewState()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p := whispercpp.DefaultParams()
	// DTW runs on calls with token timestamps (patch 0003).
	p.Threads, p.TemperatureInc, p.TokenTimestamps, p.Language = 2, 0, true, "en"
	out := map[string]alignedUtt{}
	for _, u := range lf.Utterances {
		a := max(0, int((u.Start.Seconds()-0.3)*bus.SampleRate))
		b := min(len(pcm), int((u.End.Seconds()+0.3)*bus.SampleRate))
		x := make([]float32, b-a)
		for i, s := range pcm[a:b] {
			x[i] = float32(s) / 32768
		}
		r, err := st.Full(context.Background(), p, x)
		if err != nil {
			t.Fatal(err)
		}
		off := float64(a) / bus.SampleRate
		au := alignedUtt{text: strings.TrimSpace(r.Text())}
		for _, s := range r.Segments {
			for _, tk := range s.Tokens {
				if !tk.Special && tk.TDTW >= 0 {
					au.toks = append(au.toks, Token{Text: tk.Text, End: off + tk.TDTW, P: tk.P})
				}
			}
		}
		out[u.ID] = au
	}
	return out
}

// refWordTimes is the word-timing reference: alignOffline with alignRefModel, a word
// ending where its last token ends and starting where the token before it ends (the
// first where its utterance's window starts), trimmed to the speech Silero heard inside
// it (windows with p ≥ 0.35, the endpointer's end threshold), the way a phonetic aligner
// would not give a pause to a word. Words are wer.Normalize'd.
func refWordTimes(t *testing.T, pcm []int16, lf testdata.Longform, sm speechMap) map[string][]refWord {
	t.Helper()
	aligned := alignOffline(t, pcm, lf, alignRefModel())
	out := map[string][]refWord{}
	for _, u := range lf.Utterances {
		au := aligned[u.ID]
		var ws []refWord
		for _, w := range tokenWords(au.toks) {
			s := w.start
			if w.start < 0 {
				s = max(0, u.Start.Seconds()-0.3)
			}
			s, e := sm.speechWithin(s, w.end)
			for _, n := range wer.Normalize(w.text) {
				ws = append(ws, refWord{n, s, e})
			}
		}
		out[u.ID] = ws
	}
	return out
}

// speechWithin is stream.speechWithin over the offline speech map.
func (m speechMap) speechWithin(a, b float64) (float64, float64) {
	speech := func(i int) bool { return i >= 0 && i < len(m.probs) && m.probs[i] >= vadEndThold }
	i0, i1 := int(a/m.win), int(math.Ceil(b/m.win))-1
	i := i0
	for i <= i1 && !speech(i) {
		i++
	}
	if i > i1 {
		return a, b
	}
	na := a
	if i > i0 {
		na = float64(i) * m.win
	}
	k := i1
	for k > i && !speech(k) {
		k--
	}
	nb := b
	if k < i1 {
		nb = float64(k+1) * m.win
	}
	return na, nb
}

// timingErrors aligns the words of results (finals, or partials) with the reference
// words of the utterance they overlap and returns |start error| and |end error| in
// seconds of every word whose normalised text equals its reference word.
func timingErrors(ref map[string][]refWord, lf testdata.Longform, results []bus.Result) (starts, ends []float64) {
	for _, r := range results {
		if len(r.Words) == 0 {
			continue
		}
		mid := r.Start + r.Duration/2
		for _, u := range lf.Utterances {
			if mid < u.Start.Seconds()-0.5 || mid >= u.End.Seconds()+0.7 {
				continue
			}
			rw := ref[u.ID]
			refText := make([]string, len(rw))
			for i, w := range rw {
				refText[i] = w.word
			}
			var hyp []string
			var hw []bus.Word
			for _, w := range r.Words {
				for _, n := range wer.Normalize(w.Punctuated) {
					hyp, hw = append(hyp, n), append(hw, w)
				}
			}
			// The result covers a part of the utterance: align it against the stretch of
			// reference words its time span overlaps (±1 s).
			lo, hi := 0, len(rw)
			for lo < hi && rw[lo].end < hw[0].Start-1 {
				lo++
			}
			for hi > lo && rw[hi-1].start > hw[len(hw)-1].End+1 {
				hi--
			}
			for k, i := range alignWords(refText[lo:hi], hyp) {
				if i < 0 || hyp[i] != refText[lo+k] {
					continue
				}
				starts = append(starts, math.Abs(hw[i].Start-rw[lo+k].start))
				ends = append(ends, math.Abs(hw[i].End-rw[lo+k].end))
			}
		}
	}
	return starts, ends
}

func median(x []float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func quantile(x []float64, q float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	return s[min(len(s)-1, int(math.Ceil(q*float64(len(s))))-1)]
}

// spreadBaseline is what Earshot reported before word times came from the model: each
// final's words spread evenly by length over the final's first start and last end.
func spreadBaseline(rs []bus.Result) []bus.Result {
	out := make([]bus.Result, 0, len(rs))
	for _, r := range rs {
		if len(r.Words) == 0 {
			continue
		}
		words := strings.Fields(r.Text)
		from := uint64(math.Round(r.Words[0].Start * bus.SampleRate))
		to := uint64(math.Round(r.Words[len(r.Words)-1].End * bus.SampleRate))
		c := r
		c.Words = spreadWords(words, from, to, 0)
		out = append(out, c)
	}
	return out
}

// checkWordTimes measures the streamed words' times against the reference alignment and
// holds finals to the target (median |start| and |end| error ≤ 80 ms).
func checkWordTimes(t *testing.T, pcm []int16, lf testdata.Longform, sm speechMap, rs []bus.Result) {
	t.Helper()
	ref := refWordTimes(t, pcm, lf, sm)
	var finals, partials []bus.Result
	for _, r := range rs {
		switch r.Type {
		case bus.ResultFinal:
			finals = append(finals, r)
		case bus.ResultPartial:
			partials = append(partials, r)
		}
	}
	fs, fe := timingErrors(ref, lf, finals)
	ps, pe := timingErrors(ref, lf, partials)
	bs, be := timingErrors(ref, lf, spreadBaseline(finals))
	ms := func(x float64) int { return int(math.Round(1000 * x)) }
	t.Logf("word times against %s DTW+VAD alignment: finals (%d words) median |start| %d ms |end| %d ms, p90 %d / %d ms; "+
		"partials (%d words) median %d / %d ms, p90 %d / %d ms; spread-over-span baseline %d / %d ms (p90 %d / %d)",
		alignRefModel(), len(fs), ms(median(fs)), ms(median(fe)), ms(quantile(fs, 0.9)), ms(quantile(fe, 0.9)),
		len(ps), ms(median(ps)), ms(median(pe)), ms(quantile(ps, 0.9)), ms(quantile(pe, 0.9)),
		ms(median(bs)), ms(median(be)), ms(quantile(bs, 0.9)), ms(quantile(be, 0.9)))
	refWords := 0
	for _, u := range lf.Utterances {
		refWords += len(wer.Normalize(u.Reference))
	}
	if len(fs) < refWords*6/10 { // 172 of 173 on the whole file, 65 of 66 on its first half
		t.Errorf("only %d final words of the reference's %d matched it", len(fs), refWords)
	}
	if median(fs) > 0.08 || median(fe) > 0.08 {
		t.Errorf("finals' word times: median |start error| %d ms, |end error| %d ms; want ≤ 80 ms", ms(median(fs)), ms(median(fe)))
	}
	// Times never go back, within a result or across finals.
	last := 0.0
	for _, r := range finals {
		for _, w := range r.Words {
			if w.Start < last-1e-9 {
				t.Errorf("final %q: word %q starts at %.3f s, before the word before it ends (%.3f s)", r.Text, w.Punctuated, w.Start, last)
			}
			last = w.End
		}
	}
	// The words' confidences are the model's, not one per utterance.
	distinct := map[float64]bool{}
	for _, r := range finals {
		for _, w := range r.Words {
			distinct[w.Confidence] = true
			if w.Confidence <= 0 || w.Confidence > 1 || w.End < w.Start {
				t.Errorf("final %q: word %+v", r.Text, w)
			}
		}
	}
	if len(distinct) < len(fs)/3 {
		t.Errorf("%d distinct word confidences over %d words", len(distinct), len(fs))
	}
}
