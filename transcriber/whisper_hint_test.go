package transcriber

import (
	"strings"
	"testing"
)

// The q8_0 hint is given on a CPU path with AVX2, for a float16 model only, with the gain
// measured on that kind of CPU.
func TestQ8Hint(t *testing.T) {
	for _, c := range []struct {
		name                     string
		gpu, amd64, avx512, avx2 bool
		want                     bool
	}{
		{"tiny.en", false, true, false, true, true},
		{"base", false, true, false, true, true},
		{"tiny.en-q8_0", false, true, false, true, false},
		{"base-q5_1", false, true, false, true, false},
		{"tiny.en", false, true, true, true, true},  // AVX-512: about 15 %
		{"tiny.en", true, true, false, true, false}, // GPU decodes
		{"tiny.en", false, false, false, false, false},
		{"tiny.en", false, true, false, false, false}, // no AVX2: not measured
	} {
		got := q8Hint(c.name, c.gpu, c.amd64, c.avx512, c.avx2)
		if (got != "") != c.want {
			t.Errorf("%+v: hint %q", c, got)
		}
		if got != "" && !strings.Contains(got, "choose "+c.name+"-q8_0") {
			t.Errorf("%s: the hint does not say what to run: %q", c.name, got)
		}
		if gain := map[bool]string{false: "about a third", true: "about 15 %"}[c.avx512]; got != "" && !strings.Contains(got, gain) {
			t.Errorf("%+v: the hint does not give this CPU's gain (%s): %q", c, gain, got)
		}
	}
}
