package whispercpp_test

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/earshot-dev/earshot/transcriber/whispercpp"
)

// TestPowerSpectrumMatchesDFT checks patch 0009's power spectrum (a table product in
// place of whisper.cpp's FFT) against a float64 DFT on real speech: every bin within
// 80 dB of its frame's loudest (the log-mel's clamp is 80 dB below the spectrogram's
// maximum) must agree to 0.001 in log10 power. whisper.cpp's FFT misses by up to
// 5.8e-4 on these frames; the table by up to 1.8e-4. 7 frames leave a short last
// batch (the table takes 4 at a time).
func TestPowerSpectrumMatchesDFT(t *testing.T) {
	s := loadWAV(t, "whispercpp_jfk.wav")
	const hop, frames = 160 * 3, 7 // every third frame of the recording
	var checked, batches int
	var worst float64
	for start := 0; start+(frames-1)*hop+whispercpp.FFTSize <= len(s); start += frames * hop {
		in := make([]float32, frames*whispercpp.FFTSize)
		for f := 0; f < frames; f++ {
			for n := 0; n < whispercpp.FFTSize; n++ {
				w := 0.5 * (1 - math.Cos(2*math.Pi*float64(n)/whispercpp.FFTSize)) // periodic Hann, as whisper
				in[f*whispercpp.FFTSize+n] = float32(w) * s[start+f*hop+n]
			}
		}
		got, err := whispercpp.PowerSpectrum(in)
		if err != nil {
			t.Fatal(err)
		}
		batches++
		for f := 0; f < frames; f++ {
			want := dftPower(in[f*whispercpp.FFTSize : (f+1)*whispercpp.FFTSize])
			peak := 0.0
			for _, v := range want {
				peak = max(peak, v)
			}
			if peak < 1e-12 {
				continue // a silent frame: nothing to compare
			}
			floor := peak * 1e-8
			for k, w := range want {
				g := float64(got[f*whispercpp.Bins+k])
				d := math.Abs(math.Log10(max(g, floor)) - math.Log10(max(w, floor)))
				worst = max(worst, d)
				if d > 1e-3 {
					t.Errorf("frame at %d, bin %d: power %g, float64 DFT %g (log10 off by %.2g)", start+f*hop, k, g, w, d)
				}
				checked++
			}
		}
	}
	if checked < 10000 {
		t.Fatalf("only %d bins compared in %d batches: the recording is shorter than expected", checked, batches)
	}
	t.Logf("%d bins in %d batches of %d frames: worst |log10 error| %.2g", checked, batches, frames, worst)
	for _, n := range []int{0, 399, 401} {
		if _, err := whispercpp.PowerSpectrum(make([]float32, n)); !errors.Is(err, whispercpp.ErrInvalid) {
			t.Errorf("%d samples: err %v, want ErrInvalid", n, err)
		}
	}
}

func dftPower(x []float32) []float64 {
	out := make([]float64, whispercpp.Bins)
	for k := range out {
		var re, im float64
		for n, v := range x {
			a := 2 * math.Pi * float64((k*n)%whispercpp.FFTSize) / whispercpp.FFTSize
			re += float64(v) * math.Cos(a)
			im -= float64(v) * math.Sin(a)
		}
		out[k] = re*re + im*im
	}
	return out
}

// BenchmarkMel times the log-mel spectrogram of a 5 s and a 10 s window on 2 threads,
// the first step of every decode (patch 0009; BENCHMARKS.md, Density).
func BenchmarkMel(b *testing.B) {
	st, err := model(b).NewState()
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	s := loadWAV(b, "whispercpp_jfk.wav")
	for _, sec := range []int{5, 10} {
		b.Run(fmt.Sprintf("%ds", sec), func(b *testing.B) {
			win := s[:sec*whispercpp.SampleRate]
			for b.Loop() {
				if err := st.Mel(win, 2); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
