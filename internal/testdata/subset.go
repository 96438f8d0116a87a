package testdata

import (
	"os"
	"testing"
)

// EnvDevSet chooses how much of a dev set the accuracy tests decode: "full" for every
// clip (make accuracy, make bench-engine: the figures in BENCHMARKS.md), anything else
// for the subset Subset picks (make test: a 2-core AVX2 machine decodes the whole sets
// for about 25 minutes of CPU, most of what make test may spend).
const EnvDevSet = "EARSHOT_DEVSET"

// FullDevSets reports whether EARSHOT_DEVSET=full asks for every clip.
func FullDevSets() bool { return os.Getenv(EnvDevSet) == "full" }

// Subset is items itself under EARSHOT_DEVSET=full, or else n of them spread evenly over
// the manifest (the first, then every len/n-th: each source of the set is drawn, and the
// same clips every run, so thresholds measured on the subset stay meaningful). It logs
// which it is, so that a figure is never read as the whole set's.
func Subset(tb testing.TB, items []Item, n int) []Item {
	tb.Helper()
	if FullDevSets() || n <= 0 || n >= len(items) {
		tb.Logf("dev set: all %d clips", len(items))
		return items
	}
	out := make([]Item, 0, n)
	for i := range n {
		out = append(out, items[i*len(items)/n])
	}
	tb.Logf("dev set: %d of %d clips (%s=full for all)", n, len(items), EnvDevSet)
	return out
}
