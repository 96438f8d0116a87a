package whispercpp_test

import (
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
	clips := jfkAndDevClips(t, 6)
	p := params()
	p.TemperatureInc, p.BestOf = 0, 1
	states := make([]*whispercpp.State, 2) // as stored, repacked
	for i, m := range []*whispercpp.Model{plain, packed} {
		if states[i], err = m.NewState(); err != nil {
			t.Fatal(err)
		}
		defer states[i].Close()
	}
	var took [2]time.Duration
	errs, words, same := 0, 0, 0
	for _, c := range clips {
		var text [2]string
		for i, st := range states {
			start := time.Now()
			text[i] = decode(t, st, p, c.pcm).Text()
			took[i] += time.Since(start)
		}
		want, got := text[0], text[1]
		if len(wer.Normalize(want)) == 0 {
			t.Errorf("%s: no words decoded", c.id)
		}
		_, e, n := wer.WER(want, got)
		errs, words = errs+e, words+n
		switch {
		case got == want:
			same++
		case c.id == "whispercpp_jfk":
			t.Errorf("%s: repacked %q, as stored %q", c.id, got, want)
		default:
			t.Logf("%s: repacked %q, as stored %q (%d word errors)", c.id, got, want, e)
		}
	}
	if errs*100 > words {
		t.Errorf("repacked against as stored: %d word errors in %d words, want at most 1 %%", errs, words)
	}
	t.Logf("%d clips, %d the same text, %d word errors in %d words; decode time as stored %v, repacked %v (%d bytes repacked)",
		len(clips), same, errs, words, took[0].Round(time.Millisecond), took[1].Round(time.Millisecond), packed.RepackedBytes())
}
