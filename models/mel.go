package models

import "math"

// Whisper's front end: 16 kHz audio, 400-sample FFT, 201 frequency bins.
const (
	sampleRate = 16000
	nFFT       = 400
	nFFTBins   = 1 + nFFT/2
)

// MelFilters computes the Slaney-scale, Slaney-normalised triangular filter
// bank that OpenAI Whisper ships as mel_filters.npz (librosa.filters.mel with
// sr=16000, n_fft=400, fmin=0, fmax=8000), row-major [band][bin], nMels×201.
//
// The arithmetic follows librosa's order: weights in float64, stored into a
// float32 array, then multiplied by the float64 normalisation and rounded to
// float32 again, so the result matches the published values to the last bit
// or one ulp.
func MelFilters(nMels int) []float32 {
	const (
		fSp       = 200.0 / 3 // Hz per mel below 1 kHz
		minLogHz  = 1000.0
		minLogMel = minLogHz / fSp // 15
	)
	logStep := math.Log(6.4) / 27
	hzToMel := func(f float64) float64 {
		if f >= minLogHz {
			return minLogMel + math.Log(f/minLogHz)/logStep
		}
		return f / fSp
	}
	melToHz := func(m float64) float64 {
		if m >= minLogMel {
			return minLogHz * math.Exp(logStep*(m-minLogMel))
		}
		return fSp * m
	}
	// np.linspace(min_mel, max_mel, n+2): i*step + start, last point exact.
	maxMel := hzToMel(sampleRate / 2)
	pts := nMels + 2
	step := maxMel / float64(pts-1)
	melF := make([]float64, pts)
	for i := range melF {
		melF[i] = melToHz(float64(i) * step)
	}
	melF[pts-1] = melToHz(maxMel)

	out := make([]float32, nMels*nFFTBins)
	for i := 0; i < nMels; i++ {
		d0 := melF[i+1] - melF[i]
		d1 := melF[i+2] - melF[i+1]
		enorm := 2.0 / (melF[i+2] - melF[i])
		for k := 0; k < nFFTBins; k++ {
			f := float64(k) * (sampleRate / 2) / float64(nFFTBins-1)
			lower := -(melF[i] - f) / d0
			upper := (melF[i+2] - f) / d1
			w := math.Max(0, math.Min(lower, upper))
			out[i*nFFTBins+k] = float32(float64(float32(w)) * enorm)
		}
	}
	return out
}
