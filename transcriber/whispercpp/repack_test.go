package whispercpp_test

import (
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/testdata"
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
	var states [2]*whispercpp.State // as stored, repacked
	for i, m := range []*whispercpp.Model{plain, packed} {
		if states[i], err = m.NewState(); err != nil {
			t.Fatal(err)
		}
		defer states[i].Close()
	}
	cases := make([]textCase, 0, len(clips))
	for _, c := range clips {
		cases = append(cases, textCase{clip: c})
	}
	tl := sameText(t, states, [2]string{"as stored", "repacked"}, p, cases)
	t.Logf("%d clips, %d the same text, %d word errors in %d words; decode time as stored %v, repacked %v (%d bytes repacked)",
		len(clips), tl.same, tl.errs, tl.words, tl.took[0].Round(time.Millisecond), tl.took[1].Round(time.Millisecond), packed.RepackedBytes())
}
