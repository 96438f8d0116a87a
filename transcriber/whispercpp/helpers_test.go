package whispercpp_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/internal/testdata"
)

// modelPath returns the tiny.en weights ($EARSHOT_MODEL or
// ~/.cache/earshot/models/ggml-tiny.en.bin). It skips the test when they are
// missing, except under CI=true, where that is a failure.
func modelPath(tb testing.TB) string {
	tb.Helper()
	p := os.Getenv("EARSHOT_MODEL")
	if p == "" {
		home, _ := os.UserHomeDir()
		p = filepath.Join(home, ".cache", "earshot", "models", "ggml-tiny.en.bin")
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("whisper model required in CI: %v (run `make model`)", err)
		}
		tb.Skipf("SKIP: whisper model missing: %v (run `earshot models pull tiny.en` or `make model`)", err)
	}
	return p
}

func vadPath(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(testdata.Require(tb), "models", "ggml-silero-v6.2.0.bin")
}

// loadWAV reads a 16 kHz mono test recording from the shared speech folder.
func loadWAV(tb testing.TB, name string) []float32 {
	tb.Helper()
	p := filepath.Join(testdata.Require(tb), "speech", "wav16k", name)
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
