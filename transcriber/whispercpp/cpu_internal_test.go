package whispercpp

import (
	"errors"
	"strings"
	"testing"
)

// TestCPUMissing checks the guard that keeps a whisper.cpp built for another machine's
// instructions (scripts/whisper.sh, WHISPER_CPU=auto) from stopping the process with
// SIGILL: Load and LoadVAD return an error naming what this CPU lacks instead.
func TestCPUMissing(t *testing.T) {
	avx2 := isa{"AVX2", true, true}
	cases := []struct {
		name string
		list []isa
		want []string // in the error; none: no error
	}{
		{"all there", []isa{avx2, {"AVX-512", true, true}, {"AVX-512 VNNI", true, true}}, nil},
		{"not built, not there", []isa{avx2, {"AVX-512", false, false}, {"AVX-VNNI", false, false}}, nil},
		{"built for more than this CPU has", []isa{avx2, {"AVX-512", true, false}, {"AVX-512 VNNI", true, false}, {"AVX-VNNI", true, true}},
			[]string{"built for AVX-512, AVX-512 VNNI, which this CPU lacks", "WHISPER_CPU=portable", "make build"}},
		{"a portable build on a CPU without AVX2", []isa{{"AVX2", true, false}, {"FMA", true, false}}, []string{"built for AVX2, FMA,"}},
	}
	for _, c := range cases {
		err := cpuMissing(c.list)
		if len(c.want) == 0 {
			if err != nil {
				t.Errorf("%s: %v, want none", c.name, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrLoad) {
			t.Errorf("%s: %v, want an ErrLoad", c.name, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", c.name, err, w)
			}
		}
		if strings.Contains(err.Error(), "AVX-VNNI") {
			t.Errorf("%s: %q names AVX-VNNI, which this CPU has", c.name, err)
		}
	}
	// This binary's whisper.cpp was built on this machine: it runs here.
	if err := CPUSupported(); err != nil {
		t.Fatal(err)
	}
	t.Logf("ggml built for: %s", BuiltFor())
}
