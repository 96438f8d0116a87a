package smartturn_test

import (
	"math"
	"testing"

	"github.com/earshot-dev/earshot/transcriber/smartturn"
)

// Tolerances against pipecat's numpy features, stored rounded to 6 decimals:
// the normalisation is numpy's to the last bit and the rest is float64, so
// only the FFT's order of operations can move a float32 value by an ulp. 8 kHz clips are resampled by a different resampler (ingest,
// not soxr), so for them the features are only close.
const (
	featTol     = 5e-6 // any single value
	featMeanTol = 2e-6 // means over a band or a frame, and the statistics
	resampTol   = 0.05 // band means after a different resampler

	telephoneBands = 56 // mel bands below ~3.3 kHz
)

func TestFeaturesMatchReference(t *testing.T) {
	for _, c := range loadReference(t) {
		t.Run(c.ID, func(t *testing.T) {
			f := smartturn.Features(c.audio(t))
			if len(f) != 80*800 {
				t.Fatalf("len %d, want 80×800", len(f))
			}
			tol, meanTol := featTol, featMeanTol
			if c.Rate != 16000 {
				tol, meanTol = resampTol, resampTol
			}
			var sum, ss float64
			lo, hi := math.Inf(1), math.Inf(-1)
			for _, v := range f {
				sum += float64(v)
				lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
			}
			mean := sum / float64(len(f))
			for _, v := range f {
				ss += (float64(v) - mean) * (float64(v) - mean)
			}
			std := math.Sqrt(ss / float64(len(f)))
			for _, s := range []struct {
				name      string
				got, want float64
			}{{"mean", mean, c.Mean}, {"std", std, c.Std}, {"min", lo, c.Min}, {"max", hi, c.Max}} {
				if math.Abs(s.got-s.want) > meanTol {
					t.Errorf("%s %.6f, reference %.6f", s.name, s.got, s.want)
				}
			}
			worst := func(name string, got, want []float64, tol float64) {
				t.Helper()
				if len(got) != len(want) {
					t.Fatalf("%s: %d values, reference %d", name, len(got), len(want))
				}
				wi, wd := 0, 0.0
				for i := range got {
					if d := math.Abs(got[i] - want[i]); d > wd {
						wi, wd = i, d
					}
				}
				if wd > tol {
					t.Errorf("%s[%d] = %.6f, reference %.6f (|Δ| %.2g > %.2g)", name, wi, got[wi], want[wi], wd, tol)
				}
				t.Logf("%s: max |Δ| %.2g over %d values", name, wd, len(got))
			}
			melMeans := make([]float64, 80)
			frameMeans := make([]float64, 800)
			for m := range 80 {
				for fr := range 800 {
					v := float64(f[m*800+fr])
					melMeans[m] += v / 800
					frameMeans[fr] += v / 80
				}
			}
			var strided []float64
			for i := 0; i < len(f); i += c.Stride {
				strided = append(strided, float64(f[i]))
			}
			if c.Rate != 16000 {
				// Above ~3.3 kHz (mel band 56) an 8 kHz clip has only what each
				// resampler's stop band leaves: near the floor, where logs differ.
				worst("mel_means below 3.3 kHz", melMeans[:telephoneBands], c.MelMeans[:telephoneBands], tol)
				return
			}
			worst("mel_means", melMeans, c.MelMeans, meanTol)
			worst("frame_means", frameMeans, c.FrameMeans, meanTol)
			worst("strided", strided, c.Strided, tol)
		})
	}
}

// Padding is with silence before the audio, as the reference; only the last
// Window samples count.
func TestFeaturesPaddingAndTruncation(t *testing.T) {
	tone := make([]float32, 3*16000)
	for i := range tone {
		tone[i] = float32(0.3 * math.Sin(2*math.Pi*440*float64(i)/16000))
	}
	f := smartturn.Features(tone)
	// The first 5 s are silence: every early frame is at the floor, the last ones are not.
	if f[0*800+10] != f[40*800+10] || f[10*800+10] >= f[10*800+790] {
		t.Errorf("silence not before the audio: early %v %v, late %v", f[10], f[40*800+10], f[10*800+790])
	}
	long := append(make([]float32, 5*16000), tone...) // 5 s of silence, then the tone: 8 s
	longer := append(make([]float32, 4*16000), long...)
	for i := range 4 * 16000 {
		longer[i] = 0.5 // loud, but outside the last 8 s
	}
	a, b := smartturn.Features(long), smartturn.Features(longer)
	for i := range a {
		if a[i] != b[i] || a[i] != f[i] {
			t.Fatalf("value %d: %v (8 s) %v (12 s) %v (3 s padded): only the last 8 s may count", i, a[i], b[i], f[i])
		}
	}
}

func TestFeaturesOfNothing(t *testing.T) {
	for _, pcm := range [][]float32{nil, {}, make([]float32, 100), make([]float32, smartturn.Window)} {
		f := smartturn.Features(pcm)
		for i, v := range f {
			// All silence: log10(1e-10) = -10 everywhere, so (-10 + 4) / 4.
			if v != -1.5 {
				t.Fatalf("len %d: value %d = %v, want -1.5", len(pcm), i, v)
			}
		}
	}
}
