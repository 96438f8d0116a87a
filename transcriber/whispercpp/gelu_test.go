package whispercpp_test

import (
	"math"
	"testing"

	"github.com/earshot-dev/earshot/models"
	"github.com/earshot-dev/earshot/transcriber/whispercpp"
)

// TestGELUTable: ggml's GELU, which whisper's encoder and decoder apply after every
// convolution and in every MLP, gives the same value through whisper patch 0011's vector
// steps (a gather of ggml's float16 table, 16 or 8 values at a time) as through the scalar
// loop that looks the table up one value at a time, for every input: each finite float16
// value (the table's indices), values between them, the ±10 edges where the table gives
// way to 0 and x, and lengths that leave a tail of 1 to 15 values. A wrong gather index,
// scale or mask gives other values. Both must also be GELU (tanh form) to within the
// table's float16 rounding, so a table or loop broken both ways fails too; NaN stays NaN.
func TestGELUTable(t *testing.T) {
	var x []float32
	for h := range 1 << 16 {
		if v := models.HalfToFloat(uint16(h)); !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) {
			x = append(x, v, v*1.0004) // the value and one that rounds to it or past it
		}
	}
	for _, v := range []float32{-10, 10, -9.999, 9.999, -10.001, 10.001, 0, float32(math.Copysign(0, -1)), 1e-8, -1e-8} {
		x = append(x, v)
	}
	x = append(x, float32(math.NaN()))
	for _, n := range []int{len(x), len(x) - 1, 17, 15, 9, 7, 1} {
		for _, threads := range []int{1, 2} {
			got, want, err := whispercpp.GELU(x[:n], threads)
			if err != nil {
				t.Fatal(err)
			}
			bad := 0
			for i := range n {
				g, w := got[i], want[i]
				if math.IsNaN(float64(x[i])) {
					if !math.IsNaN(float64(g)) {
						t.Errorf("gelu(NaN) = %v, want NaN", g)
					}
					continue
				}
				if g != w {
					if bad++; bad <= 5 {
						t.Errorf("%d values, %d threads: gelu(%v) = %v in a row, %v alone (the table)", n, threads, x[i], g, w)
					}
				}
				if e := geluTanh(float64(x[i])); math.Abs(float64(w)-e) > 2e-3*max(1, math.Abs(e)) {
					if bad++; bad <= 5 {
						t.Errorf("gelu(%v) = %v, want about %v", x[i], w, e)
					}
				}
			}
			if bad > 5 {
				t.Errorf("%d values, %d threads: %d values wrong", n, threads, bad)
			}
		}
	}
}

// geluTanh is GELU in the tanh form ggml's table is built from (0 at x ≤ −10, x from 10).
func geluTanh(x float64) float64 {
	switch {
	case x <= -10:
		return 0
	case x >= 10:
		return x
	}
	return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*x*(1+0.044715*x*x)))
}
