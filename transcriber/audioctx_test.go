package transcriber

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/wer"
)

// TestAudioCtxMargin measures what the encoder context margin does to accuracy: each
// utterance of longform_dev decoded alone (±200 ms), the way the streaming policy
// decodes a final, with audio_ctx = frames of the audio + margin, and with the full
// 1500. A measurement for BENCHMARKS.md, run with EARSHOT_BENCH_CTX=1; it asserts
// only that the chosen margin is within 1.5 points of the full context.
func TestAudioCtxMargin(t *testing.T) {
	if os.Getenv("EARSHOT_BENCH_CTX") == "" {
		t.Skip("measurement: set EARSHOT_BENCH_CTX=1")
	}
	d, lf, all := longformDecoder(t)
	got := map[int]float64{}
	for _, margin := range []int{64, 128, 256, -1} {
		var c wer.Corpus
		for _, u := range lf.Utterances {
			a := int(u.Start.Seconds()*16000) - 3200
			b := int(u.End.Seconds()*16000) + 3200
			s := all[max(a, 0):min(b, len(all))]
			ctx := 0
			if margin >= 0 {
				ctx = min(1500, (len(s)*1500+30*16000-1)/(30*16000)+margin)
			}
			h, err := d.Decode(context.Background(), DecodeRequest{Samples: s, AudioCtx: ctx, Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			c.Add(u.Reference, h.Text)
			t.Logf("margin %d %s %q", margin, u.ID, strings.TrimSpace(h.Text))
		}
		t.Logf("margin %d: WER %.2f%% (%d/%d)", margin, 100*c.WER(), c.Errors(), c.Ref)
		got[margin] = c.WER()
	}
	if got[audioCtxMargin] > got[-1]+0.015 {
		t.Errorf("margin %d: WER %.2f%%, more than 1.5 points above the full context's %.2f%%",
			audioCtxMargin, 100*got[audioCtxMargin], 100*got[-1])
	}
}

// longformDecoder loads real tiny.en (2 threads) and returns one decoder on it, closed
// when the test ends, with longform_dev and its audio at 16 kHz mono.
func longformDecoder(t *testing.T) (Decoder, testdata.Longform, []float32) {
	t.Helper()
	m, err := LoadWhisper(testdata.Model(t, "tiny.en"), LoadOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	d, err := m.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	lf, err := testdata.LoadLongform()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(lf.WAV)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	format, ch, err := ingest.ReadWAV(f)
	if err != nil {
		t.Fatal(err)
	}
	return d, lf, ingest.Convert16kMono(format, ch)
}
