package twilio

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/wer"
	"github.com/earshot-dev/earshot/transcriber"
)

// TestBenchPhoneQuality transcribes every prompt of manifest_8k.tsv offline with
// tiny.en three ways and reports corpus WER (docs/bench-phone.md):
//
//	mulaw+ingest: µ-law encoded and decoded (what a Twilio call carries), then the
//	              ingest 8→16 kHz resampler (what the phone bridge does);
//	linear+ingest: the 8 kHz PCM as recorded, ingest resampler (isolates µ-law);
//	sox:           the 8 kHz PCM upsampled by `sox in.wav -r 16000 out.wav`.
//
// Run: EARSHOT_BENCH_PHONE=1 go test -run TestBenchPhoneQuality -v ./gateway/twilio/
func TestBenchPhoneQuality(t *testing.T) {
	if os.Getenv("EARSHOT_BENCH_PHONE") != "1" {
		t.Skip("benchmark: set EARSHOT_BENCH_PHONE=1 to run")
	}
	modelPath, _ := realFiles(t)
	sox, err := exec.LookPath("sox")
	if err != nil {
		t.Fatal("sox not found (apt-get install sox)")
	}
	items, err := testdata.LoadManifest(filepath.Join(testdata.Require(t), testdata.PhoneManifest))
	if err != nil {
		t.Fatal(err)
	}
	model, err := transcriber.LoadWhisper(modelPath, transcriber.LoadOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer model.Close()
	ctx := context.Background()
	ways := []string{"mulaw+ingest", "linear+ingest", "sox"}
	corpus := map[string]*wer.Corpus{}
	for _, w := range ways {
		corpus[w] = &wer.Corpus{}
	}
	dir := t.TempDir()
	began := time.Now()
	var audio time.Duration
	for _, it := range items {
		f, err := os.Open(it.WAV)
		if err != nil {
			t.Fatal(err)
		}
		format, chans, err := ingest.ReadWAV(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if format.SampleRate != 8000 {
			t.Fatalf("%s: %d Hz, want 8000", it.ID, format.SampleRate)
		}
		audio += it.Duration
		mono := ingest.Downmix(chans)
		up := func(x []float32) []float32 {
			r := ingest.NewResampler(8000, 16000)
			return append(r.Process(x), r.Flush()...)
		}
		mu := ingest.EncodeMulaw(mono)
		decoded := make([]float32, len(mu))
		for i, c := range mu {
			decoded[i] = float32(ingest.MulawToLinear(c)) / 32768
		}
		out := filepath.Join(dir, it.ID+".wav")
		if b, err := exec.Command(sox, it.WAV, "-r", "16000", out).CombinedOutput(); err != nil {
			t.Fatalf("sox %s: %v\n%s", it.ID, err, b)
		}
		sf, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		sfmt, sch, err := ingest.ReadWAV(sf)
		sf.Close()
		if err != nil {
			t.Fatal(err)
		}
		inputs := map[string][]float32{
			"mulaw+ingest":  up(decoded),
			"linear+ingest": up(mono),
			"sox":           ingest.Convert16kMono(sfmt, sch),
		}
		line := it.ID
		for _, w := range ways {
			tr, err := transcriber.Transcribe(ctx, model, inputs[w], transcriber.OfflineOptions{Threads: 2})
			if err != nil {
				t.Fatalf("%s %s: %v", it.ID, w, err)
			}
			c := corpus[w].Add(it.Reference, tr.Text)
			line += "\t" + w + "=" + itoaErrs(c.Errors(), c.Ref) + " " + tr.Text
		}
		t.Log(line)
	}
	for _, w := range ways {
		c := corpus[w]
		t.Logf("%-14s WER %.2f%% (%d errors / %d words: %d sub %d del %d ins, %d prompts)", w, 100*c.WER(),
			c.Errors(), c.Ref, c.Sub, c.Del, c.Ins, c.Utterances)
	}
	t.Logf("%d prompts, %.1f s of audio, %v wall (3 decodes each, 2 threads)", len(items), audio.Seconds(), time.Since(began).Round(time.Second))
}

func itoaErrs(e, n int) string {
	return strconv.Itoa(e) + "/" + strconv.Itoa(n)
}
