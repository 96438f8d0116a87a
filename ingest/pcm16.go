package ingest

import "math"

// Int16 scales a sample in [-1, 1] to int16 (×32768), rounding and clipping, so
// that int16 → float (÷32768, as every decoder here and the worker divide) → int16
// is the identity: linear16 audio passes through bit for bit. NaN gives 0. It is
// the one float → PCM16 conversion of the service.
func Int16(x float32) int16 {
	v := math.Round(float64(x) * 32768)
	switch {
	case v != v: // NaN
		return 0
	case v > math.MaxInt16:
		return math.MaxInt16
	case v < math.MinInt16:
		return math.MinInt16
	}
	return int16(v)
}

// ToInt16 converts samples with Int16.
func ToInt16(samples []float32) []int16 {
	out := make([]int16, len(samples))
	for i, x := range samples {
		out[i] = Int16(x)
	}
	return out
}

// PCM16Bytes encodes samples (with Int16) as little-endian signed 16-bit PCM.
func PCM16Bytes(samples []float32) []byte {
	out := make([]byte, 2*len(samples))
	for i, x := range samples {
		v := uint16(Int16(x))
		out[2*i] = byte(v)
		out[2*i+1] = byte(v >> 8)
	}
	return out
}

// FromPCM16Bytes decodes little-endian signed 16-bit PCM to floats (÷32768).
// A trailing odd byte is ignored.
func FromPCM16Bytes(b []byte) []float32 {
	out := make([]float32, len(b)/2)
	for i := range out {
		out[i] = float32(int16(uint16(b[2*i])|uint16(b[2*i+1])<<8)) / 32768
	}
	return out
}
