package ingest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func tone(rate int, hz float64, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(0.5 * math.Sin(2*math.Pi*hz*float64(i)/float64(rate)))
	}
	return x
}

// snrDB compares y with the analytic tone sampled at outRate, skipping edge
// samples at both ends.
func snrDB(y []float32, outRate int, hz float64, edge int) float64 {
	var sig, noise float64
	for i := edge; i < len(y)-edge; i++ {
		ref := 0.5 * math.Sin(2*math.Pi*hz*float64(i)/float64(outRate))
		sig += ref * ref
		d := float64(y[i]) - ref
		noise += d * d
	}
	return 10 * math.Log10(sig/noise)
}

func rms(y []float32, edge int) float64 {
	var s float64
	for _, v := range y[edge : len(y)-edge] {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(y)-2*edge))
}

// runChunked feeds x in random-size chunks and flushes.
func runChunked(r *Resampler, x []float32, rng *rand.Rand) []float32 {
	var y []float32
	for len(x) > 0 {
		n := min(len(x), rng.IntN(700))
		y = append(y, r.Process(x[:n])...)
		x = x[n:]
	}
	return append(y, r.Flush()...)
}

func TestResamplerToneSNR(t *testing.T) {
	for _, in := range []int{8000, 11025, 22050, 44100, 44101, 48000} {
		for _, hz := range []float64{440, 3000} {
			t.Run(fmt.Sprintf("%d_to_16000_%gHz", in, hz), func(t *testing.T) {
				x := tone(in, hz, in) // one second
				r := NewResampler(in, 16000)
				whole := append(r.Process(x), r.Flush()...)
				want := int(math.Round(float64(len(x)) * 16000 / float64(in)))
				if len(whole) != want {
					t.Fatalf("output length %d, want round(%d*16000/%d) = %d", len(whole), len(x), in, want)
				}
				edge := 2 * r.Latency() * 16000 / in
				edge = max(edge, 200)
				snr := snrDB(whole, 16000, hz, edge)
				t.Logf("SNR %.1f dB, look-ahead %d input samples (%.2f ms)", snr, r.Latency(),
					1000*float64(r.Latency())/float64(in))
				if snr < 60 {
					t.Errorf("SNR %.1f dB, want >= 60", snr)
				}
				chunked := runChunked(r, x, rand.New(rand.NewPCG(uint64(in), 7)))
				if !slices.Equal(whole, chunked) {
					t.Errorf("chunked output differs from one-chunk output")
				}
			})
		}
	}
}

func TestResamplerRejectsAbove8k(t *testing.T) {
	for _, in := range []int{44100, 48000, 32000} {
		for _, hz := range []float64{8500, 10000, 12000} {
			if hz >= float64(in)/2 {
				continue
			}
			x := tone(in, hz, in)
			r := NewResampler(in, 16000)
			y := append(r.Process(x), r.Flush()...)
			att := 20 * math.Log10(rms(y, 400)/(0.5/math.Sqrt2))
			t.Logf("%d Hz at %d → 16000: %.1f dB", int(hz), in, att)
			if att > -60 {
				t.Errorf("%d Hz tone at %d Hz → 16 kHz: level %.1f dB, want <= -60 dB", int(hz), in, att)
			}
		}
	}
}

func TestResamplerNoImagesOnUpsampling(t *testing.T) {
	// 3 kHz at 8 kHz → 16 kHz: the image at 5 kHz must be gone, so the output
	// is the pure tone (checked by SNR) and its power equals the tone's.
	x := tone(8000, 3000, 8000)
	r := NewResampler(8000, 16000)
	y := append(r.Process(x), r.Flush()...)
	if got := 20 * math.Log10(rms(y, 200)/(0.5/math.Sqrt2)); math.Abs(got) > 0.01 {
		t.Errorf("3 kHz tone level after 8k→16k = %.3f dB, want 0 ± 0.01", got)
	}
}

func TestResamplerIdentity(t *testing.T) {
	x := tone(16000, 440, 1000)
	r := NewResampler(16000, 16000)
	y := r.Process(x)
	if !slices.Equal(x, y) || r.Flush() != nil || r.Latency() != 0 {
		t.Fatal("16k→16k is not the identity")
	}
	y[0] = 9
	if x[0] == 9 {
		t.Fatal("identity path aliases its input")
	}
}

func TestResamplerLengths(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, pair := range [][2]int{{8000, 16000}, {44100, 16000}, {48000, 16000}, {16000, 8000}, {22050, 16000}, {12345, 16000}} {
		for _, n := range []int{0, 1, 2, 3, 17, 441, 1000, 4410} {
			r := NewResampler(pair[0], pair[1])
			y := runChunked(r, make([]float32, n), rng)
			want := int(math.Round(float64(n) * float64(pair[1]) / float64(pair[0])))
			if len(y) != want {
				t.Errorf("%d→%d, %d samples in: %d out, want %d", pair[0], pair[1], n, len(y), want)
			}
		}
	}
}

func TestResamplerDelayCompensated(t *testing.T) {
	// An impulse at input sample 4410 (0.1 s) must peak at output 1600 (0.1 s).
	for _, in := range []int{8000, 44100, 48000} {
		x := make([]float32, in/2)
		x[in/10] = 1
		r := NewResampler(in, 16000)
		y := append(r.Process(x), r.Flush()...)
		peak := 0
		for i := range y {
			if y[i] > y[peak] {
				peak = i
			}
		}
		if peak != 1600 {
			t.Errorf("%d→16000: impulse at 0.1 s peaks at output %d, want 1600", in, peak)
		}
	}
}

func TestResamplerReuseAfterFlush(t *testing.T) {
	x := tone(44100, 440, 5000)
	r := NewResampler(44100, 16000)
	a := append(r.Process(x), r.Flush()...)
	b := append(r.Process(x), r.Flush()...)
	if !slices.Equal(a, b) {
		t.Fatal("second stream after Flush differs from the first")
	}
}
