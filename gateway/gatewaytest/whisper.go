package gatewaytest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/transcriber"
)

// WhisperFiles returns the tiny.en weights (EARSHOT_MODEL, else the path `make model`
// installs them to) and the Silero VAD of the test data. It skips loudly when the
// weights are missing, except under CI=true, where that fails.
func WhisperFiles(t testing.TB) (model, vad string) {
	t.Helper()
	model = os.Getenv("EARSHOT_MODEL")
	if model == "" {
		home, _ := os.UserHomeDir()
		model = filepath.Join(home, ".cache", "earshot", "models", "ggml-tiny.en.bin")
	}
	if _, err := os.Stat(model); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("whisper model required in CI: %v (run `make model`)", err)
		}
		t.Skipf("SKIP: whisper model missing: %v (run `earshot models pull tiny.en` or `make model`)", err)
	}
	return model, filepath.Join(testdata.Require(t), "models", "ggml-silero-v6.2.0.bin")
}

// WhisperPool is a real transcriber.Pool serving tiny.en as Model with Silero VAD,
// configured by cfg otherwise (its Models and NewVAD are set here), closed when the
// test ends.
func WhisperPool(t testing.TB, cfg transcriber.PoolConfig) *transcriber.Pool {
	t.Helper()
	modelPath, vad := WhisperFiles(t)
	m, err := transcriber.LoadWhisper(modelPath, transcriber.LoadOptions{Threads: max(1, cfg.ThreadsPerDecode)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	cfg.Models = map[string]transcriber.Model{Model: m}
	cfg.NewVAD = func() (transcriber.VAD, error) { return transcriber.NewSileroVAD(vad) }
	pool, err := transcriber.NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	return pool
}
