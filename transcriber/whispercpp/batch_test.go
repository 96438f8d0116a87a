package whispercpp_test

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/transcriber/whispercpp"
)

// TestMeasureEncoderBatching answers issue 23's question whether encoding several
// streams' windows in one whisper.cpp graph (a batched encoder) would make a CPU hold
// more streams. A batch of n windows of c encoder frames runs the same matrix products
// as one window of n·c frames (the batch stacks rows; only attention, per window in a
// batch, is smaller), so the time of one n·c-frame window bounds the batch from above
// on everything but attention. If it is n times the time of a c-frame window, batching
// saves nothing on this CPU; if it is much less, the fixed cost of a graph (threads'
// barriers, op dispatch) dominates and batching would pay.
//
// Each window is decoded to at most one token (an encoder pass plus one decoder
// step), the median of EARSHOT_BATCH_RUNS (default 5) calls. Models: the
// comma-separated EARSHOT_BATCH_MODELS (default tiny.en). EARSHOT_BATCH_GPU=1 decodes on
// the GPU (use_gpu; a CUDA build of whisper.cpp: scripts/gpu-bench.sh runs it so), =0 on
// the CPU even in a GPU build; unset, whisper.cpp's default (use_gpu on: the GPU when the
// build has one). It logs a table for BENCHMARKS.md and fails only if a decode fails or
// the table would be empty.
//
//	EARSHOT_BENCH_BATCH=1 [EARSHOT_BATCH_FLASH=0] [EARSHOT_BATCH_DTW=1] [EARSHOT_BATCH_GPU=1] go test -run TestMeasureEncoderBatching -v ./transcriber/whispercpp/
func TestMeasureEncoderBatching(t *testing.T) {
	if os.Getenv("EARSHOT_BENCH_BATCH") == "" {
		t.Skip("measurement: set EARSHOT_BENCH_BATCH=1")
	}
	runs := envInt(t, "EARSHOT_BATCH_RUNS", 5)
	names := strings.Split(cmp.Or(os.Getenv("EARSHOT_BATCH_MODELS"), "tiny.en"), ",")
	// EARSHOT_BATCH_FLASH=0 turns flash attention off; EARSHOT_BATCH_DTW=1 loads the
	// alignment heads as the service does (flash attention then runs in the encoder only,
	// patch 0008).
	cp := whispercpp.DefaultContextParams()
	cp.FlashAttn = os.Getenv("EARSHOT_BATCH_FLASH") != "0"
	if os.Getenv("EARSHOT_BATCH_DTW") == "1" {
		cp.DTW = "auto"
	}
	switch os.Getenv("EARSHOT_BATCH_GPU") {
	case "1":
		cp.UseGPU = true
	case "0":
		cp.UseGPU = false
	}
	audio := loadWAV(t, "longform_dev.wav")
	t.Logf("%s; use_gpu %v, flash attention %v, DTW %q", whispercpp.SystemInfo(), cp.UseGPU, cp.FlashAttn, cp.DTW)
	t.Logf("| model | frames c | one window of c | per frame | n·c = 2c: one window vs 2 × c | n·c = 4c: one window vs 4 × c |")
	t.Logf("|---|---:|---:|---:|---|---|")
	rows := 0
	for _, name := range names {
		m, err := whispercpp.Load(testdata.Model(t, name), cp)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		st, err := m.NewState()
		if err != nil {
			t.Fatal(err)
		}
		cost := map[int]time.Duration{}
		for _, c := range []int{128, 256, 384, 512, 768, 1024, 1500} {
			p := whispercpp.DefaultParams()
			p.Threads, p.AudioCtx, p.MaxTokens = 2, c, 1
			p.SingleSegment, p.NoTimestamps, p.NoContext, p.TemperatureInc = true, true, true, 0
			p.Language = "en"
			win := audio[:min(len(audio), c*320)] // c frames of 20 ms
			ds := make([]time.Duration, 0, runs)
			for range runs + 1 { // the first call warms the caches and is not counted
				start := time.Now()
				if _, err := st.Full(context.Background(), p, win); err != nil {
					t.Fatalf("%s audio_ctx %d: %v", name, c, err)
				}
				ds = append(ds, time.Since(start))
			}
			ds = ds[1:]
			slices.Sort(ds)
			cost[c] = ds[len(ds)/2]
		}
		// ratio compares one window of n·c frames with n windows of c; 1 536 frames is
		// read as the whole 30 s window (1 500).
		ratio := func(c, n int) string {
			if n*c > 1536 {
				return "–"
			}
			one, each := cost[min(n*c, 1500)], time.Duration(n)*cost[c]
			return fmt.Sprintf("%s vs %s (%.0f %%)", ms(one), ms(each), 100*float64(one)/float64(each))
		}
		for _, c := range []int{128, 256, 384, 512, 768, 1024, 1500} {
			t.Logf("| %s | %d | %s | %.2f ms | %s | %s |", name, c, ms(cost[c]),
				float64(cost[c].Microseconds())/1000/float64(c), ratio(c, 2), ratio(c, 4))
			rows++
		}
		st.Close()
		m.Close()
	}
	if rows == 0 {
		t.Fatal("no model measured")
	}
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }
