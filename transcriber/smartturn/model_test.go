package smartturn_test

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/earshot-dev/earshot/transcriber/smartturn"
)

// threshold is pipecat's: complete when the probability is above 0.5.
const threshold = 0.5

func TestPredictMatchesReference(t *testing.T) {
	m := openModel(t)
	t.Logf("ONNX Runtime %s, CPU class %s", smartturn.RuntimeVersion(), cpuClass())
	for _, c := range loadReference(t) {
		t.Run(c.ID, func(t *testing.T) {
			p, err := m.Predict(c.audio(t))
			if err != nil {
				t.Fatal(err)
			}
			ref, class, ok := c.want()
			if !ok {
				// Every class's decisions agree so far; without this class's own figures
				// only the decision can be compared.
				ref, class = c.anyRef(t)
				t.Logf("no %s reference: add one with `python3 scripts/smartturn-ref.py` on this machine; checking the decision against %s only", cpuClass(), class)
			}
			if got := p > threshold; got != ref.Complete {
				t.Errorf("complete = %v (p %.4f), reference (%s) says %v", got, p, class, ref.Complete)
			}
			t.Logf("p = %.6f (reference %.6f, %s)", p, ref.Probability, class)
			if !ok {
				return
			}
			tol := 1e-3
			if c.Rate != 16000 {
				tol = 0.02 // Earshot's resampler, not the reference's soxr
			}
			if d := math.Abs(float64(p) - ref.Probability); d > tol {
				t.Errorf("probability %.6f, reference (%s) %.6f (|Δ| %.2g > %.2g)", p, class, ref.Probability, d, tol)
			}
		})
	}
}

// What a user of the turn engine relies on: a finished sentence reads as a
// finished turn, the same sentence cut inside a word does not.
func TestCompleteSentenceScoresAboveCut(t *testing.T) {
	m := openModel(t)
	ref := map[string]refCase{}
	for _, c := range loadReference(t) {
		ref[c.ID] = c
	}
	for _, pair := range [][2]string{{"sentence_lj", "midword_lj"}, {"sentence_book", "midword_book"}, {"jfk_last8s", "jfk_midword"}} {
		whole, cut := ref[pair[0]], ref[pair[1]]
		pw, err := m.Predict(whole.audio(t))
		if err != nil {
			t.Fatal(err)
		}
		pc, err := m.Predict(cut.audio(t))
		if err != nil {
			t.Fatal(err)
		}
		if pw < threshold || pc >= threshold || pc >= pw {
			t.Errorf("%s: %.3f, %s: %.3f: want the whole sentence ≥ %.1f and the mid-word cut below it", whole.ID, pw, cut.ID, pc, threshold)
		}
	}
	p, err := m.Predict(ref["trailing_silence"].audio(t))
	if err != nil || p < threshold {
		t.Errorf("a list followed by 1.5 s of silence: p %.3f, %v: want complete", p, err)
	}
}

func TestPredictShortAndEmpty(t *testing.T) {
	m := openModel(t)
	for _, n := range []int{0, 1, 160, 16000, smartturn.Window, 2 * smartturn.Window} {
		pcm := make([]float32, n)
		for i := range pcm {
			pcm[i] = float32(0.1 * math.Sin(float64(i)/7))
		}
		p, err := m.Predict(pcm)
		if err != nil || p < 0 || p > 1 || math.IsNaN(float64(p)) {
			t.Errorf("%d samples: p %v, err %v: want a probability", n, p, err)
		}
	}
}

func TestPredictRejectsNaN(t *testing.T) {
	m := openModel(t)
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		pcm := make([]float32, 16000)
		pcm[1234] = bad
		if _, err := m.Predict(pcm); !errors.Is(err, smartturn.ErrInput) {
			t.Errorf("%v in the audio: err %v, want ErrInput", bad, err)
		}
	}
	// Overflowing the float32 variance: an error or a probability, never NaN.
	huge := make([]float32, 16000)
	for i := range huge {
		huge[i] = float32(1e30 * math.Sin(float64(i)))
	}
	if p, err := m.Predict(huge); err == nil && (math.IsNaN(float64(p)) || p < 0 || p > 1) {
		t.Errorf("huge samples: p %v", p)
	} else {
		t.Logf("huge samples: p %v, err %v", p, err)
	}
	// Outside the last 8 s it does not count.
	pcm := make([]float32, smartturn.Window+10)
	pcm[3] = float32(math.NaN())
	if _, err := m.Predict(pcm); err != nil {
		t.Errorf("NaN before the last 8 s: %v", err)
	}
}

func TestCloseIdempotentAndPredictAfterClose(t *testing.T) {
	m := openModel(t)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := m.Predict(make([]float32, 16000)); !errors.Is(err, smartturn.ErrClosed) {
		t.Fatalf("Predict after Close: %v, want ErrClosed", err)
	}
}

// Many goroutines share one Model, and Close arrives while they run.
func TestConcurrentPredictAndClose(t *testing.T) {
	m := openModel(t)
	c := loadReference(t)[0]
	pcm := c.audio(t)
	want, err := m.Predict(pcm)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				p, err := m.Predict(pcm)
				if err != nil {
					t.Error(err)
					return
				}
				if p != want {
					t.Errorf("concurrent p %v, alone %v", p, want)
				}
			}
		}()
	}
	wg.Wait()
	var closing sync.WaitGroup
	for range 3 {
		closing.Add(2)
		go func() { defer closing.Done(); m.Predict(pcm) }() // ErrClosed or a result: never a crash
		go func() { defer closing.Done(); m.Close() }()
	}
	closing.Wait()
	if _, err := m.Predict(pcm); !errors.Is(err, smartturn.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.onnx")
	if err := os.WriteFile(junk, []byte("not an onnx model"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("missing library", func(t *testing.T) {
		_, err := smartturn.Open(junk, smartturn.Options{LibPath: filepath.Join(dir, "libonnxruntime.so")})
		if !errors.Is(err, smartturn.ErrRuntime) || !strings.Contains(err.Error(), "smartturn.sh") {
			t.Fatalf("err %v: want ErrRuntime saying to run scripts/smartturn.sh", err)
		}
	})
	t.Run("not a library", func(t *testing.T) {
		_, err := smartturn.Open(junk, smartturn.Options{LibPath: junk})
		if !errors.Is(err, smartturn.ErrRuntime) || !strings.Contains(err.Error(), junk) {
			t.Fatalf("err %v: want ErrRuntime naming %s", err, junk)
		}
	})
	t.Run("missing model", func(t *testing.T) {
		_, err := smartturn.Open(filepath.Join(dir, "none.onnx"), smartturn.Options{})
		if !errors.Is(err, smartturn.ErrModel) || !strings.Contains(err.Error(), "smartturn.sh") {
			t.Fatalf("err %v: want ErrModel saying to run scripts/smartturn.sh", err)
		}
	})
	t.Run("not a model", func(t *testing.T) {
		openModel(t) // needs the library
		for _, p := range []string{junk, filepath.Join("testdata", "reference.json")} {
			_, err := smartturn.Open(p, smartturn.Options{})
			if !errors.Is(err, smartturn.ErrModel) || !strings.Contains(err.Error(), p) {
				t.Errorf("%s: err %v: want ErrModel naming the file", p, err)
			}
			t.Logf("%s: %v", p, err)
		}
	})
}

// More intra-op threads give the same answer.
func TestThreads(t *testing.T) {
	one := openModel(t)
	two, err := smartturn.Open("", smartturn.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer two.Close()
	pcm := loadReference(t)[0].audio(t)
	p1, err1 := one.Predict(pcm)
	p2, err2 := two.Predict(pcm)
	if err1 != nil || err2 != nil || math.Abs(float64(p1-p2)) > 1e-6 {
		t.Fatalf("1 thread: %v %v, 2 threads: %v %v", p1, err1, p2, err2)
	}
}
