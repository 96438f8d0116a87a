package transcriber

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/wer"
)

// TestPauseSplitSim measures an alternative to window trimming that was not kept:
// splitting each VAD utterance of longform_dev at its inner pauses (at least minPause of
// silence) and decoding the pieces in turn, each with the earlier ones as prompt, as if
// every pause were a final. It logs the WER per minimum pause and how long the last
// piece's decode took (what a final would wait for). A measurement for BENCHMARKS.md:
// EARSHOT_BENCH_SPLIT=1.
func TestPauseSplitSim(t *testing.T) {
	if os.Getenv("EARSHOT_BENCH_SPLIT") == "" {
		t.Skip("measurement: set EARSHOT_BENCH_SPLIT=1")
	}
	d, lf, all := longformDecoder(t)
	v, err := NewSileroVAD(testdata.VAD(t))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	probs, err := v.Process(all)
	if err != nil {
		t.Fatal(err)
	}
	type utt struct {
		start, end uint64
		pauses     [][2]uint64 // speech end, resume
	}
	var utts []utt
	ep := newEndpointer(v.WindowSamples(), 0, 600*bus.SamplesPerMs)
	var cur *utt
	for _, p := range probs {
		prevEnd, prevSil, was := ep.speechEnd, ep.silence, ep.inSpeech
		switch ep.push(p) {
		case evSpeechStart:
			utts = append(utts, utt{start: ep.speechStart})
			cur = &utts[len(utts)-1]
		case evSpeechEnd:
			cur.end = ep.speechEnd
		default:
			if was && ep.inSpeech && prevSil > 0 && ep.silence == 0 {
				cur.pauses = append(cur.pauses, [2]uint64{prevEnd, ep.speechEnd - uint64(v.WindowSamples())})
			}
		}
	}
	pad := uint64(200 * bus.SamplesPerMs)
	decode := func(a, b uint64, prompt []string) ([]string, time.Duration) {
		s := all[a:min(int(b), len(all))]
		x := make([]float32, max(len(s), minDecodeSamples))
		copy(x, s)
		req := DecodeRequest{Samples: x, AudioCtx: audioCtx(len(x), true, false), Threads: 2, MaxTokens: maxTokens(len(x), false)}
		if len(prompt) > 0 {
			toks, _ := d.Tokenize(strings.Join(lastWords(prompt, maxHistoryWords), " "))
			req.PromptTokens = lastN(toks, maxPromptTokens)
		}
		t0 := time.Now()
		h, err := d.Decode(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		text, _ := guardText(h, sec(b-a))
		return strings.Fields(text), time.Since(t0)
	}
	for _, minPause := range []uint64{1 << 40, 400, 300, 200, 150, 100} {
		var history []string
		var finals []string
		var lastDur []time.Duration
		for _, u := range utts {
			var cuts []uint64
			for _, p := range u.pauses {
				if p[1]-p[0] >= minPause*bus.SamplesPerMs {
					cuts = append(cuts, p[0])
				}
			}
			from := u.start - min(u.start, pad)
			var words []string
			var dur time.Duration
			bounds := append(cuts, u.end)
			for i, c := range bounds {
				w, took := decode(from, c+pad, append(append([]string(nil), history...), words...))
				words = append(words, w...)
				dur = took
				if i < len(cuts) {
					from = c + pad/2
				}
			}
			history = append(history, words...)
			finals = append(finals, strings.Join(words, " "))
			lastDur = append(lastDur, dur)
			if minPause == 200 {
				t.Logf("utt %.2f-%.2f cuts %v: %q", sec(u.start), sec(u.end), cuts, strings.Join(words, " "))
			}
		}
		var c wer.Corpus
		var bad []string
		for _, ru := range lf.Utterances {
			var hyp []string
			for i, u := range utts {
				if mid := (sec(u.start) + sec(u.end)) / 2; mid >= ru.Start.Seconds()-0.5 && mid < ru.End.Seconds()+0.7 {
					hyp = append(hyp, finals[i])
				}
			}
			if cu := c.Add(ru.Reference, strings.Join(hyp, " ")); cu.Errors() > 0 {
				bad = append(bad, fmt.Sprintf("%s:%d", ru.ID, cu.Errors()))
			}
		}
		t.Logf("min pause %d ms: WER %.2f%% (%d/%d) %v; last-piece decode %v", minPause, 100*c.WER(), c.Errors(), c.Ref, bad, lastDur)
	}
	for _, u := range utts {
		var ps []string
		for _, p := range u.pauses {
			ps = append(ps, fmt.Sprintf("%.2f+%dms", sec(p[0]), (p[1]-p[0])/bus.SamplesPerMs))
		}
		t.Logf("utt %.2f–%.2f pauses %v", sec(u.start), sec(u.end), ps)
	}
}
