package whispercpp_test

import (
	"cmp"
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/transcriber/whispercpp"
)

// TestMeasureStreamWindow times one streaming decode of the JFK recording's first
// EARSHOT_WINDOW_SECONDS (default 5) the way a live stream's final decodes it (one
// segment, no timestamps, encoder context of the window plus margin, at least 384
// frames), four ways: stopped after one token (log-mel, encoder, prompt), whole, whole
// with its own text as the draft (a final after partials that showed it), and stopped
// after one token with a 100-token prompt (a live English stream's earlier text; its own
// tokens repeated). It logs each one's median and best of EARSHOT_WINDOW_RUNS (default 7)
// calls, rounds interleaved, for each of the comma-separated EARSHOT_WINDOW_MODELS
// (default tiny.en-q8_0), with the instruction sets ggml was built for: the figures of
// BENCHMARKS.md's sections on the AVX-512 build and the q8_0 kernel (EARSHOT_Q8_REPACK=0
// for the kernel before it). It fails only if a decode fails or loses the words.
//
//	EARSHOT_BENCH_WINDOW=1 [EARSHOT_WINDOW_MODELS=tiny.en,base] [EARSHOT_WINDOW_SECONDS=10] go test -run TestMeasureStreamWindow -v ./transcriber/whispercpp/
func TestMeasureStreamWindow(t *testing.T) {
	if os.Getenv("EARSHOT_BENCH_WINDOW") == "" {
		t.Skip("measurement: set EARSHOT_BENCH_WINDOW=1")
	}
	sec, runs := envInt(t, "EARSHOT_WINDOW_SECONDS", 5), envInt(t, "EARSHOT_WINDOW_RUNS", 7)
	all := loadWAV(t, "whispercpp_jfk.wav")
	if sec < 2 || sec*whispercpp.SampleRate > len(all) {
		t.Fatalf("EARSHOT_WINDOW_SECONDS=%d: 2 to %d", sec, len(all)/whispercpp.SampleRate)
	}
	win := all[:sec*whispercpp.SampleRate]
	ac := max(384, sec*50+64)
	models := strings.Split(cmp.Or(os.Getenv("EARSHOT_WINDOW_MODELS"), "tiny.en-q8_0"), ",")
	t.Logf("ggml built for %s; %d s window, audio_ctx %d, 2 threads, %d runs", whispercpp.BuiltFor(), sec, ac, runs)
	for _, name := range models {
		m, err := whispercpp.Load(testdata.Model(t, name), whispercpp.ContextParams{FlashAttn: true})
		if err != nil {
			t.Fatal(err)
		}
		st, err := m.NewState()
		if err != nil {
			t.Fatal(err)
		}
		base := func() whispercpp.Params {
			p := whispercpp.DefaultParams()
			p.Threads, p.AudioCtx = 2, ac
			p.NoContext, p.SingleSegment, p.NoTimestamps, p.SuppressNST = true, true, true, true
			p.TemperatureInc, p.BestOf = 0, 1
			return p
		}
		first, err := st.Full(context.Background(), base(), win)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.ToLower(first.Text()), "fellow americans") {
			t.Errorf("%s: %q lacks the words", name, first.Text())
		}
		var draft []int
		for _, s := range first.Segments {
			for _, tk := range s.Tokens {
				if !tk.Special {
					draft = append(draft, tk.ID)
				}
			}
		}
		ways := []struct {
			name string
			p    func() whispercpp.Params
		}{
			{"one token", func() whispercpp.Params { p := base(); p.MaxTokens = 1; return p }},
			{"whole", base},
			{"with draft", func() whispercpp.Params { p := base(); p.Draft = draft; return p }},
			{"1 token, prompt", func() whispercpp.Params {
				p := base()
				p.MaxTokens = 1
				for len(p.PromptTokens) < 100 {
					p.PromptTokens = append(p.PromptTokens, draft...)
				}
				p.PromptTokens = p.PromptTokens[:100]
				return p
			}},
		}
		took := make([][]time.Duration, len(ways))
		for range runs {
			for i, w := range ways {
				start := time.Now()
				if _, err := st.Full(context.Background(), w.p(), win); err != nil {
					t.Fatal(err)
				}
				took[i] = append(took[i], time.Since(start))
			}
		}
		for i, w := range ways {
			slices.Sort(took[i])
			t.Logf("%-14s %-15s median %6s  best %6s", name, w.name,
				ms(took[i][len(took[i])/2]), ms(took[i][0]))
		}
		st.Close()
		m.Close()
	}
}
