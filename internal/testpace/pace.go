// Package testpace tells the tests that stream audio in real time how fast this machine
// decodes, so that they feed a slow or busy machine at a pace it can serve.
//
// A real-time test asserts what a user sees when the machine keeps up: partials while
// they speak, finals soon after. On the 2-core Intel VM where the latency targets were
// measured, tiny.en keeps up with a stream with room to spare. On a 2-core AVX2-only VM
// whisper is about five times slower, and under `make test` (two test binaries decoding
// at once) a one-second partial window took 1.9 s: the stream falls behind, the worker
// rightly sheds partials for finals, and a test that asserts partials fails although
// nothing is broken. Such a test sends its audio Factor times slower than real time, so
// the decodes take the share of the audio's time they take on the reference machine.
package testpace

import (
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/transcriber"
)

// Budget is what the probe decode may take for the machine to count as fast enough for
// real time (Factor 1): a third of a 500 ms partial step. The probe is one decode of a
// 5 s partial window (encoder context 256) with tiny.en, 2 threads, one token.
const Budget = 170 * time.Millisecond

// MaxFactor bounds the slowdown: a test at 5× real time still ends in minutes, and a machine slower than that fails the test as it should.
const MaxFactor = 5

// Env overrides the measurement (e.g. EARSHOT_TEST_PACE=1 to force real time).
const Env = "EARSHOT_TEST_PACE"

var once struct {
	sync.Once
	factor float64
	probe  time.Duration
	err    error
}

// Factor returns how many times slower than real time a stream should be fed here:
// 1 on a machine that decodes the probe within Budget, else probe/Budget (at most
// MaxFactor). Measured once per test binary, when first asked.
func Factor(tb testing.TB) float64 {
	tb.Helper()
	if v := os.Getenv(Env); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 1 || f > 100 {
			tb.Fatalf("%s=%q: want a number from 1 to 100", Env, v)
		}
		return f
	}
	path := testdata.Model(tb, "tiny.en")
	once.Do(func() { once.probe, once.err = probe(path) })
	if once.err != nil {
		tb.Fatalf("testpace: probe decode: %v", once.err)
	}
	f := min(max(1, float64(once.probe)/float64(Budget)), MaxFactor)
	tb.Logf("testpace: tiny.en probe decode %v (budget %v): audio fed at %.1f× real time's duration", once.probe.Round(time.Millisecond), Budget, f)
	return f
}

// Scale returns d stretched by the pace: how long d of audio takes to send.
func Scale(tb testing.TB, d time.Duration) time.Duration {
	tb.Helper()
	return time.Duration(float64(d) * Factor(tb))
}

// probe loads tiny.en and returns the median of three timed decodes (after a warm-up).
func probe(path string) (time.Duration, error) {
	m, err := transcriber.LoadWhisper(path, transcriber.LoadOptions{Threads: 2})
	if err != nil {
		return 0, err
	}
	defer m.Close()
	d, err := m.NewDecoder()
	if err != nil {
		return 0, err
	}
	defer d.Close()
	rng := rand.New(rand.NewPCG(7, 7))
	x := make([]float32, 5*16000)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 0.01)
	}
	var took []time.Duration
	for i := range 4 {
		start := time.Now()
		if _, err := d.Decode(context.Background(), transcriber.DecodeRequest{Samples: x, AudioCtx: 256, Threads: 2, MaxTokens: 1}); err != nil {
			return 0, err
		}
		if i > 0 {
			took = append(took, time.Since(start))
		}
	}
	slices.Sort(took)
	return took[1], nil
}
