package transcriber

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/wer"
)

// TestAgreeCommitSim replays the streaming policy's decodes offline and deterministically:
// for each VAD segment of longform_dev (as the real-time test found them) it decodes the
// growing partial windows every 300 ms and the final window, then applies the agreement
// with different commit lags to every partial cadence (every 1–4 steps, every phase) and
// reports the final WER. A measurement for BENCHMARKS.md: EARSHOT_BENCH_AGREE=1.
func TestAgreeCommitSim(t *testing.T) {
	if os.Getenv("EARSHOT_BENCH_AGREE") == "" {
		t.Skip("measurement: set EARSHOT_BENCH_AGREE=1")
	}
	d, lf, all := longformDecoder(t)
	// VAD segments (start, speech end) of a real-time run of TestStreamLongformRealEngine.
	segs := [][2]float64{{1.344, 3.232}, {4.288, 5.408}, {6.4, 12}, {15.072, 20}, {21.888, 31.552},
		{35.744, 42.368}, {43.552, 52.096}, {52.96, 62.624}, {63.68, 68.544}, {71.488, 75.936}}
	const step, pad = 0.3, 0.2
	decode := func(a, b float64, prompt string) []string {
		s := all[int(max(a, 0)*bus.SampleRate):min(int(b*bus.SampleRate), len(all))]
		x := make([]float32, max(len(s), minDecodeSamples))
		copy(x, s)
		req := DecodeRequest{Samples: x, AudioCtx: audioCtx(len(x), false, false), Threads: 2}
		if prompt != "" {
			toks, _ := d.Tokenize(prompt)
			req.PromptTokens = lastN(toks, maxPromptTokens)
		}
		h, err := d.Decode(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		text, _ := guardText(h, b-a)
		return strings.Fields(text)
	}
	type segDecodes struct {
		partials [][]string
		ends     []float64
		final    []string
	}
	var history []string
	var dec []segDecodes
	for _, sg := range segs {
		prompt := strings.Join(lastWords(history, maxHistoryWords), " ")
		var sd segDecodes
		for e := sg[0] + step; e < sg[1]+pad; e += step {
			sd.partials = append(sd.partials, decode(sg[0]-pad, e, prompt))
			sd.ends = append(sd.ends, e)
		}
		sd.final = decode(sg[0]-pad, sg[1]+pad, prompt)
		history = append(history, sd.final...)
		t.Logf("segment %.2f–%.2f final %q", sg[0], sg[1], strings.Join(sd.final, " "))
		dec = append(dec, sd)
	}
	for _, lag := range []float64{0, 0.5, 1, 1.5, 2, 100} {
		var errs, ref, runs int
		var bad []string
		for cad := 1; cad <= 4; cad++ {
			for off := 0; off < cad; off++ {
				finals := make([]string, len(segs))
				for i, sd := range dec {
					var a agreement
					for k := off; k < len(sd.partials); k += cad {
						w := sd.partials[k]
						n := commitable(w, uint64(segs[i][0]*bus.SampleRate), uint64(sd.ends[k]*bus.SampleRate), uint64(lag*bus.SampleRate))
						a.update(w, nil, nil, 0, n)
					}
					finals[i] = strings.Join(first(a.finish(sd.final, nil, 0)), " ")
				}
				var c wer.Corpus
				for _, u := range lf.Utterances {
					var hyp []string
					for i, sg := range segs {
						if mid := (sg[0] + sg[1]) / 2; mid >= u.Start.Seconds()-0.5 && mid < u.End.Seconds()+0.7 {
							hyp = append(hyp, finals[i])
						}
					}
					if cu := c.Add(u.Reference, strings.Join(hyp, " ")); cu.Errors() > 0 {
						bad = append(bad, fmt.Sprintf("%s:%d", u.ID, cu.Errors()))
					}
				}
				errs += c.Errors()
				ref += c.Ref
				runs++
			}
		}
		t.Logf("commit lag %.1f s: mean WER %.2f%% over %d cadences/phases (%.1f errors per pass); errors %v",
			lag, 100*float64(errs)/float64(ref), runs, float64(errs)/float64(runs), bad)
	}
}
