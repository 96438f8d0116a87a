package testdata

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/earshot-dev/earshot/models"
)

// Model returns the installed file of model name (e.g. "tiny.en"): $EARSHOT_MODEL for
// tiny.en when set, else the model directory ($EARSHOT_MODEL_DIR or the per-user cache).
// A missing model skips the test with a loud message, except under CI=true, where it is a
// failure: CI runs `make model` first.
func Model(tb testing.TB, name string) string {
	tb.Helper()
	if p := os.Getenv("EARSHOT_MODEL"); p != "" && name == "tiny.en" {
		return p
	}
	p, err := models.Resolve(models.DefaultDir(), name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("model %s required in CI: %v (run `make model`)", name, err)
		}
		tb.Skipf("SKIPPING: model %s missing: %v (run `make model`)", name, err)
	}
	return p
}

// VAD returns the real Silero VAD weights of the shared test data.
func VAD(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(Require(tb), "models", "ggml-silero-v6.2.0.bin")
}
