package transcriber

import (
	"strings"
	"testing"
)

// The q8_0 hint is given on a CPU path with AVX2, for a float16 model only, with the gain
// measured on that kind of CPU.
func TestQ8Hint(t *testing.T) {
	for _, c := range []struct {
		name                               string
		gpu, amd64, avx512, avx2, build512 bool
		want                               bool
		gain                               string
	}{
		{"tiny.en", false, true, false, true, false, true, "about a third"},
		{"base", false, true, false, true, false, true, "about a third"},
		{"tiny.en-q8_0", false, true, false, true, false, false, ""},
		{"base-q5_1", false, true, false, true, false, false, ""},
		{"tiny.en", false, true, true, true, true, true, "about 6 %"},   // AVX-512, built for it
		{"tiny.en", false, true, true, true, false, true, "about 15 %"}, // AVX-512, AVX2-only build
		{"tiny.en", true, true, false, true, false, false, ""},          // GPU decodes
		{"tiny.en", false, false, false, false, false, false, ""},
		{"tiny.en", false, true, false, false, false, false, ""}, // no AVX2: not measured
	} {
		got := q8Hint(c.name, c.gpu, c.amd64, c.avx512, c.avx2, c.build512)
		if (got != "") != c.want {
			t.Errorf("%+v: hint %q", c, got)
		}
		if got != "" && !strings.Contains(got, "choose "+c.name+"-q8_0") {
			t.Errorf("%s: the hint does not say what to run: %q", c.name, got)
		}
		if got != "" && !strings.Contains(got, c.gain) {
			t.Errorf("%+v: the hint does not give this CPU's gain (%s): %q", c, c.gain, got)
		}
	}
}
