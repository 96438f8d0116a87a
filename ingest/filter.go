package ingest

import (
	"math"
	"sync"
)

// Filter design. The kernel is a Kaiser-windowed sinc, evaluated at P evenly
// spaced fractional offsets (the polyphase rows). Stopband starts at half the
// lower of the two rates, so nothing above the output's Nyquist frequency can
// alias on the way down and no image survives on the way up; the passband ends
// at passFrac of that frequency.
const (
	stopbandDB = 90.0
	passFrac   = 0.85
	maxPhases  = 1024 // above this the rows are linearly interpolated
)

// filterBank is immutable once built and shared by all resamplers of one rate pair.
type filterBank struct {
	phases int       // P: rows 0..P, row r is the kernel at fractional offset r/P
	half   int       // K: taps j = -K+1..K around the output time
	coef   []float32 // (P+1) rows of 2K taps
	exact  bool      // P equals L: every output time falls exactly on a row
}

// maxCachedBanks bounds the shared cache: clients choose the rate, and a bank
// can take a megabyte, so rare rate pairs past this many get a private bank
// that is freed with its resampler.
const maxCachedBanks = 32

var banks struct {
	sync.Mutex
	m map[[2]int]*filterBank
}

func bankFor(in, out int, l int64) *filterBank {
	key := [2]int{in, out}
	banks.Lock()
	defer banks.Unlock()
	if b, ok := banks.m[key]; ok {
		return b
	}
	b := designBank(in, out, l)
	if banks.m == nil {
		banks.m = make(map[[2]int]*filterBank)
	}
	if len(banks.m) < maxCachedBanks {
		banks.m[key] = b
	}
	return b
}

func designBank(in, out int, l int64) *filterBank {
	nyq := float64(min(in, out)) / 2
	pass := passFrac * nyq
	fc := (pass + nyq) / 2 / float64(in)             // cutoff, cycles per input sample
	dw := 2 * math.Pi * (nyq - pass) / float64(in)   // transition width, rad per input sample
	halfWidth := (stopbandDB - 8) / (2.285 * dw) / 2 // Kaiser's length estimate, halved
	beta := 0.1102 * (stopbandDB - 8.7)              // Kaiser's β for this attenuation
	k := int(math.Ceil(halfWidth))
	p := int(min(l, maxPhases))
	fb := &filterBank{phases: p, half: k, exact: int64(p) == l, coef: make([]float32, (p+1)*2*k)}
	i0b := besselI0(beta)
	for r := 0; r <= p; r++ {
		row := fb.coef[r*2*k : (r+1)*2*k]
		frac := float64(r) / float64(p)
		var sum float64
		vals := make([]float64, 2*k)
		for i := range row {
			d := frac - float64(i-k+1) // distance from tap to output time, input samples
			v := 0.0
			if u := d / halfWidth; math.Abs(u) < 1 {
				v = 2 * fc * sinc(2*fc*d) * besselI0(beta*math.Sqrt(1-u*u)) / i0b
			}
			vals[i] = v
			sum += v
		}
		for i, v := range vals {
			row[i] = float32(v / sum) // unit DC gain in every phase
		}
	}
	return fb
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// besselI0 is the modified Bessel function of the first kind, order 0, by its power series.
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 200; k++ {
		term *= (x / 2) / float64(k)
		t2 := term * term
		sum += t2
		if t2 < sum*1e-17 {
			break
		}
	}
	return sum
}
