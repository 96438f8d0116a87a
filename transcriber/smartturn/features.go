package smartturn

import (
	"math"
	"math/cmplx"
	"sync"
)

// Feature extraction: whisper's log-mel spectrogram as pipecat-ai 1.14.0
// computes it for Smart Turn v3 (pipecat/audio/turn/smart_turn/
// _whisper_features.py, itself transformers' WhisperFeatureExtractor with
// chunk_length=8). Facts, with where they come from:
//   - local_smart_turn_v3.py: keep the last 8 s (128 000 samples); shorter audio
//     is padded with zeros at the START.
//   - _whisper_features.py: zero-mean unit-variance normalisation of the whole
//     8 s (eps 1e-7 added to the variance) before the spectrogram; centred STFT
//     with reflect padding of n_fft/2; n_fft 400, hop 160, periodic Hann window;
//     power |X|²; 80 Slaney mel filters (Slaney scale, area-normalised) from 0
//     to 8000 Hz; floor 1e-10, log10; the last of the 801 frames dropped;
//     clamp at (max - 8); then (x + 4) / 4. Output [80][800], mel-major.
const (
	// Window is how many samples the model looks at: the last 8 s at 16 kHz.
	Window = 8 * 16000

	sampleRate = 16000
	nFFT       = 400
	hop        = 160
	nMels      = 80
	nFrames    = Window / hop // 801 centred frames less the last one
	nBins      = nFFT/2 + 1
	melFloor   = 1e-10
	normEps    = 1e-7
)

// featureSize is the length of Features' result: nMels × nFrames.
const featureSize = nMels * nFrames

type tables struct {
	window  [nFFT]float64
	twiddle [half + 1]complex128 // exp(-2πik/400)
	w200    [half]complex128     // exp(-2πik/200)
	mel     [nMels]melFilter
}

// melFilter is one triangular filter: its weights over bins [lo, lo+len(w)).
type melFilter struct {
	lo int
	w  []float64
}

var tabs = sync.OnceValue(func() *tables {
	t := &tables{}
	for n := range nFFT {
		t.window[n] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(n)/nFFT) // periodic Hann
	}
	for k := range t.twiddle {
		t.twiddle[k] = cmplx.Rect(1, -2*math.Pi*float64(k)/nFFT)
	}
	for k := range t.w200 {
		t.w200[k] = cmplx.Rect(1, -2*math.Pi*float64(k)/half)
	}
	// Slaney mel filters, as transformers' mel_filter_bank(norm="slaney", mel_scale="slaney").
	melMin, melMax := hzToMel(0), hzToMel(sampleRate/2)
	var f [nMels + 2]float64
	for i := range f {
		f[i] = melToHz(melMin + (melMax-melMin)*float64(i)/float64(nMels+1))
	}
	for m := range nMels {
		enorm := 2 / (f[m+2] - f[m])
		lo, hi := -1, -1
		var w [nBins]float64
		for k := range nBins {
			fk := float64(k) * float64(sampleRate/2) / float64(nBins-1)
			down := (fk - f[m]) / (f[m+1] - f[m])
			up := (f[m+2] - fk) / (f[m+2] - f[m+1])
			v := math.Max(0, math.Min(down, up)) * enorm
			if v > 0 {
				if lo < 0 {
					lo = k
				}
				hi = k
			}
			w[k] = v
		}
		if lo >= 0 {
			t.mel[m] = melFilter{lo: lo, w: append([]float64(nil), w[lo:hi+1]...)}
		}
	}
	return t
})

func hzToMel(hz float64) float64 {
	if hz >= 1000 {
		return 15 + math.Log(hz/1000)*27/math.Log(6.4)
	}
	return 3 * hz / 200
}

func melToHz(mel float64) float64 {
	if mel >= 15 {
		return 1000 * math.Exp(math.Log(6.4)/27*(mel-15))
	}
	return 200 * mel / 3
}

// Features computes the model's input from 16 kHz mono audio ending now: the
// last Window samples (shorter audio padded with silence before it), as
// float32 [80 mel bands][800 frames], mel-major.
func Features(pcm []float32) []float32 {
	out := make([]float32, featureSize)
	features(pcm, out)
	return out
}

// features writes Features(pcm) into out (len featureSize).
func features(pcm []float32, out []float32) {
	t := tabs()
	// The last 8 s, zeros first; normalised to zero mean and unit variance in
	// float32 exactly as numpy does it (pairwise sums, float32 rounding at each
	// step): the model is quantised to 8 bits, and a last-bit difference in its
	// input can move its output by a quantisation step.
	x32 := make([]float32, Window)
	if len(pcm) > Window {
		pcm = pcm[len(pcm)-Window:]
	}
	copy(x32[Window-len(pcm):], pcm)
	mean := pairwiseSum(x32) / Window
	sq := make([]float32, Window)
	for i, v := range x32 {
		d := v - mean
		sq[i] = d * d
	}
	variance := pairwiseSum(sq) / Window
	std := float32(math.Sqrt(float64(variance + normEps)))
	x := make([]float64, Window)
	for i, v := range x32 {
		x[i] = float64((v - mean) / std)
	}

	logmel := make([]float64, featureSize)
	frame := make([]float64, nFFT)
	spec := make([]complex128, nBins)
	zin, z := make([]complex128, half), make([]complex128, half)
	var power [nBins]float64
	maxv := math.Inf(-1)
	// The silence put before audio shorter than the window is one value once normalised,
	// so every frame that reads only that silence (reflect padding included) has the
	// same values: its mel bands are computed once and copied (a 3 s turn has 499 such
	// frames of 800). Bit for bit the same features: TestFeaturesPaddingAndTruncation.
	pad := Window - len(pcm)
	padFrame := -1 // the first frame of silence only, once computed
	for f := range nFrames {
		start := f*hop - nFFT/2 // centred: sample index of the frame's first value
		if start+nFFT <= pad && nFFT/2 < pad {
			if padFrame >= 0 {
				for m := range nMels {
					logmel[m*nFrames+f] = logmel[m*nFrames+padFrame]
				}
				continue
			}
			padFrame = f
		}
		for n := range nFFT {
			frame[n] = x[reflect(start+n)] * t.window[n]
		}
		rfft(t, spec, frame, zin, z)
		for k := range nBins {
			re, im := real(spec[k]), imag(spec[k])
			power[k] = re*re + im*im
		}
		for m := range nMels {
			mf := &t.mel[m]
			var s float64
			for j, w := range mf.w {
				s += w * power[mf.lo+j]
			}
			v := math.Log10(math.Max(s, melFloor))
			logmel[m*nFrames+f] = v
			maxv = math.Max(maxv, v)
		}
	}
	floor := maxv - 8
	for i, v := range logmel {
		out[i] = float32((math.Max(v, floor) + 4) / 4)
	}
}

// pairwiseSum is numpy's float32 sum (pairwise_sum in numpy's loops_utils.h):
// blocks of up to 128 values summed in 8 interleaved float32 accumulators,
// longer runs split in two at a multiple of 8.
func pairwiseSum(a []float32) float32 {
	n := len(a)
	switch {
	case n < 8:
		var s float32
		for _, v := range a {
			s += v
		}
		return s
	case n <= 128:
		var r [8]float32
		copy(r[:], a[:8])
		i := 8
		for ; i < n-n%8; i += 8 {
			for j := range 8 {
				r[j] += a[i+j]
			}
		}
		s := ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			s += a[i]
		}
		return s
	}
	n2 := n / 2
	n2 -= n2 % 8
	return pairwiseSum(a[:n2]) + pairwiseSum(a[n2:])
}

// reflect maps a sample index of the reflect-padded signal to the signal
// (numpy's mode="reflect": the edge sample is not repeated).
func reflect(i int) int {
	if i < 0 {
		return -i
	}
	if i >= Window {
		return 2*(Window-1) - i
	}
	return i
}

// The real 400-point DFT of a frame is one complex 200-point FFT of the frame's
// even and odd samples packed as real and imaginary parts, then untangled.
const half = nFFT / 2

// rfft writes the DFT bins 0..nFFT/2 of the real frame x (nFFT values) to
// out; zin and z are scratch of half values each.
func rfft(t *tables, out []complex128, x []float64, zin, z []complex128) {
	for n := range half {
		zin[n] = complex(x[2*n], x[2*n+1])
	}
	fft200(t, z, zin, 1, half)
	// With E, O the DFTs of the even and odd samples: Z = E + iO, so
	// E[k] = (Z[k] + conj Z[-k])/2, O[k] = (Z[k] - conj Z[-k])/2i, X[k] = E[k] + W^k O[k].
	for k := 0; k <= half; k++ {
		zk, zc := z[k%half], cmplx.Conj(z[(half-k)%half])
		e := (zk + zc) * 0.5
		d := zk - zc
		o := complex(imag(d)*0.5, -real(d)*0.5) // d / 2i
		out[k] = e + t.twiddle[k]*o
	}
}

// fft200 writes the DFT of in[0], in[stride], … (n values, n dividing 200)
// to out[:n]: recursive mixed-radix decimation in time, radix 4, 2 and 5
// (200 = 4·2·5·5); out and in do not overlap.
func fft200(t *tables, out, in []complex128, stride, n int) {
	if n == 1 {
		out[0] = in[0]
		return
	}
	r := 5
	switch {
	case n%4 == 0:
		r = 4
	case n%2 == 0:
		r = 2
	}
	m := n / r
	for q := range r {
		fft200(t, out[q*m:(q+1)*m], in[q*stride:], stride*r, m)
	}
	step := half / n // W_n^j = w200[j·step]; q·k·step < n·step = 200
	w := t.w200[:]
	for k := range m {
		y0 := out[k]
		switch r {
		case 2:
			y1 := out[m+k] * w[k*step]
			out[k], out[m+k] = y0+y1, y0-y1
		case 4:
			y1 := out[m+k] * w[k*step]
			y2 := out[2*m+k] * w[2*k*step]
			y3 := out[3*m+k] * w[3*k*step]
			a, b := y0+y2, y0-y2
			c, d := y1+y3, y1-y3
			d = complex(imag(d), -real(d)) // -i·d
			out[k], out[m+k], out[2*m+k], out[3*m+k] = a+c, b+d, a-c, b-d
		default:
			var y [5]complex128
			y[0] = y0
			for q := 1; q < 5; q++ {
				y[q] = out[q*m+k] * w[q*k*step]
			}
			for s := range 5 {
				acc := y[0]
				for q := 1; q < 5; q++ {
					acc += y[q] * w[(q*s%5)*(half/5)]
				}
				out[s*m+k] = acc
			}
		}
	}
}
