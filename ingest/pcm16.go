package ingest

import "math"

// floatToInt16 scales a sample in [-1, 1] to int16, rounding and clipping, so
// that int16 → float (÷32768) → int16 is the identity.
func floatToInt16(x float32) int16 {
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

// PCM16Bytes encodes samples as little-endian signed 16-bit PCM, clipping to
// [-1, 1]. NaN encodes as 0.
func PCM16Bytes(samples []float32) []byte {
	out := make([]byte, 2*len(samples))
	for i, x := range samples {
		v := uint16(floatToInt16(x))
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
