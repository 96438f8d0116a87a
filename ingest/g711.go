package ingest

// G.711 companding, written from the ITU-T G.711 definition: an 8-bit code
// word is a sign bit, a 3-bit segment (exponent) and a 4-bit step (mantissa).
// Linear values here are on the 16-bit scale (the standard's 14-bit µ-law and
// 13-bit A-law values shifted left), so decoded codes span ±32124 (µ-law) and
// ±32256 (A-law).

const (
	mulawBias = 0x84 // 33 on the 14-bit scale: makes µ-law segments start at powers of two
	mulawClip = 32635
)

// MulawToLinear decodes one µ-law code word to a 16-bit linear sample.
func MulawToLinear(u byte) int16 {
	u = ^u // code words are transmitted inverted
	exp := (u >> 4) & 0x07
	mant := int32(u & 0x0F)
	mag := ((mant<<3)+mulawBias)<<exp - mulawBias
	if u&0x80 != 0 {
		return int16(-mag)
	}
	return int16(mag)
}

// LinearToMulaw encodes a 16-bit linear sample as a µ-law code word.
func LinearToMulaw(s int16) byte {
	v := int32(s)
	var sign byte
	if v < 0 {
		sign = 0x80
		v = -v
	}
	if v > mulawClip {
		v = mulawClip
	}
	v += mulawBias // now in [0x84, 0x7FFF]: the top set bit (7..14) picks the segment
	exp := byte(0)
	for m := v >> 8; m != 0 && exp < 7; m >>= 1 {
		exp++
	}
	mant := byte(v>>(exp+3)) & 0x0F
	return ^(sign | exp<<4 | mant)
}

// AlawToLinear decodes one A-law code word to a 16-bit linear sample.
func AlawToLinear(a byte) int16 {
	a ^= 0x55 // even bits are transmitted inverted
	exp := (a >> 4) & 0x07
	mant := int32(a & 0x0F)
	var mag int32
	if exp == 0 {
		mag = mant<<4 + 8
	} else {
		mag = (mant<<4 + 0x108) << (exp - 1)
	}
	if a&0x80 != 0 { // in A-law a set sign bit means positive
		return int16(mag)
	}
	return int16(-mag)
}

// LinearToAlaw encodes a 16-bit linear sample as an A-law code word.
func LinearToAlaw(s int16) byte {
	v := int32(s)
	mask := byte(0xD5) // positive: sign bit set, then the 0x55 inversion
	if v < 0 {
		mask = 0x55
		v = -v - 1 // one's complement keeps the code table symmetric
	}
	var code byte
	if v < 256 {
		code = byte(v >> 4)
	} else {
		exp := byte(1)
		for m := v >> 9; m != 0; m >>= 1 {
			exp++
		}
		code = exp<<4 | byte(v>>(exp+3))&0x0F
	}
	return code ^ mask
}

// EncodeMulaw encodes float samples in [-1, 1] (clipped) as µ-law bytes.
func EncodeMulaw(samples []float32) []byte {
	out := make([]byte, len(samples))
	for i, x := range samples {
		out[i] = LinearToMulaw(Int16(x))
	}
	return out
}

// EncodeAlaw encodes float samples in [-1, 1] (clipped) as A-law bytes.
func EncodeAlaw(samples []float32) []byte {
	out := make([]byte, len(samples))
	for i, x := range samples {
		out[i] = LinearToAlaw(Int16(x))
	}
	return out
}

// Decode tables, built once from the functions above.
var mulawTable, alawTable = func() (m, a [256]float32) {
	for i := range 256 {
		m[i] = float32(MulawToLinear(byte(i))) / 32768
		a[i] = float32(AlawToLinear(byte(i))) / 32768
	}
	return m, a
}()
