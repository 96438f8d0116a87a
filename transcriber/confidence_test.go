package transcriber

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/wer"
)

// scoredWord is a decoded word, whether the reference agrees with it, and its tokens.
type scoredWord struct {
	right bool
	toks  []Token
}

// auc is the probability that a right word scores above a wrong one (ties count half).
func auc(right, wrong []float64) float64 {
	if len(right) == 0 || len(wrong) == 0 {
		return math.NaN()
	}
	sort.Float64s(wrong)
	var s float64
	for _, r := range right {
		lo := sort.SearchFloat64s(wrong, r)
		hi := lo
		for hi < len(wrong) && wrong[hi] == r {
			hi++
		}
		s += float64(lo) + 0.5*float64(hi-lo)
	}
	return s / float64(len(right)*len(wrong))
}

func mean(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// TestWordConfidenceInformative decodes the English dev sets (the 30 clips of 16 kHz
// speech and the 40 telephony prompts, half of each under make test; each as one final
// decode of the live path: tiny.en, single segment, word times on) and scores every
// decoded word right or wrong by its alignment with the reference (fewest word edits; a
// substituted or inserted word is wrong). Word confidence must tell them apart: the right
// words' mean confidence clearly above the wrong ones' and an AUC well above chance. It
// also reports the alternatives wordConfidence was chosen over (BENCHMARKS.md).
func TestWordConfidenceInformative(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: decodes 35 clips, 70 under EARSHOT_DEVSET=full (-short)")
	}
	m, err := LoadWhisper(testdata.Model(t, "tiny.en"), LoadOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	d, err := m.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dir := testdata.Require(t)
	var words []scoredWord
	for _, man := range []string{testdata.SpeechManifest, testdata.PhoneManifest} {
		items, err := testdata.LoadManifest(filepath.Join(dir, man))
		if err != nil {
			t.Fatal(err)
		}
		// Half of each set under make test (15 + 20 clips, the same every run; 61 s here
		// against about 2 minutes for both sets, measured idle on the 2-core AVX2 VM), all
		// under EARSHOT_DEVSET=full. The bounds below are the whole sets' and the half
		// passes them (2026-12-05: AUC 0.822, means 0.926 / 0.766; whole: 0.780, 0.906 /
		// 0.755). A third of each (10 + 13) does not (AUC 0.62 on 46 wrong words), so it is
		// not used.
		items = testdata.Subset(t, items, len(items)/2)
		for _, it := range items {
			f, err := os.Open(it.WAV)
			if err != nil {
				t.Fatal(err)
			}
			format, ch, err := ingest.ReadWAV(f)
			f.Close()
			if err != nil {
				t.Fatalf("%s: %v", it.WAV, err)
			}
			x := ingest.Convert16kMono(format, ch)
			h, err := d.Decode(context.Background(), DecodeRequest{Samples: x, AudioCtx: audioCtx(len(x), true, false),
				Threads: 2, MaxTokens: maxTokens(len(x), false), WordTimes: true})
			if err != nil {
				t.Fatal(err)
			}
			tw := tokenWords(h.Tokens)
			var hyp []string
			var owner []int
			for i, w := range tw {
				for _, n := range wer.Normalize(w.text) {
					hyp, owner = append(hyp, n), append(owner, i)
				}
			}
			ref := wer.Normalize(it.Reference)
			right := make([]bool, len(tw))
			wrong := make([]bool, len(tw))
			matched := make([]bool, len(hyp))
			for k, i := range alignWords(ref, hyp) {
				if i >= 0 {
					matched[i] = true
					if hyp[i] != ref[k] {
						wrong[owner[i]] = true
					} else {
						right[owner[i]] = true
					}
				}
			}
			for i := range hyp {
				if !matched[i] {
					wrong[owner[i]] = true // inserted
				}
			}
			for i, w := range tw {
				if right[i] || wrong[i] {
					words = append(words, scoredWord{right: right[i] && !wrong[i], toks: h.Tokens[w.first : w.last+1]})
				}
			}
		}
	}
	combiners := []struct {
		name string
		f    func([]Token) float64
	}{
		{"geometric mean of letter tokens (chosen)", wordConfidence},
		{"arithmetic mean of all tokens", func(ts []Token) float64 {
			var s float64
			for _, t := range ts {
				s += float64(t.P)
			}
			return s / float64(len(ts))
		}},
		{"minimum token", func(ts []Token) float64 {
			m := 1.0
			for _, t := range ts {
				m = min(m, float64(t.P))
			}
			return m
		}},
		{"first token", func(ts []Token) float64 { return float64(ts[0].P) }},
	}
	nRight := 0
	for _, w := range words {
		if w.right {
			nRight++
		}
	}
	t.Logf("%d decoded words: %d right, %d wrong", len(words), nRight, len(words)-nRight)
	for i, c := range combiners {
		var r, w []float64
		for _, sw := range words {
			if sw.right {
				r = append(r, c.f(sw.toks))
			} else {
				w = append(w, c.f(sw.toks))
			}
		}
		a := auc(r, w)
		t.Logf("word confidence %-42s mean right %.3f, wrong %.3f, AUC %.3f", c.name, mean(r), mean(w), a)
		if i == 0 {
			if mean(r)-mean(w) < 0.10 || a < 0.72 {
				t.Errorf("word confidence not informative: mean right %.3f, wrong %.3f, AUC %.3f", mean(r), mean(w), a)
			}
		}
	}
}
