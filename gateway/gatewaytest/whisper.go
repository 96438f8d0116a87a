package gatewaytest

import (
	"testing"

	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/transcriber"
)

// WhisperFiles returns the tiny.en weights and the Silero VAD of the test data
// (testdata.Model: it skips loudly when the weights are missing, except under CI=true,
// where that fails).
func WhisperFiles(t testing.TB) (model, vad string) {
	t.Helper()
	return testdata.Model(t, Model), testdata.VAD(t)
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
