package ingest

import (
	"math"
	"testing"
)

// Code words and values from the G.711 tables (16-bit scale).
func TestG711KnownCodes(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  int16
		want int16
	}{
		{"mulaw 0xFF is +0", MulawToLinear(0xFF), 0},
		{"mulaw 0x7F is -0", MulawToLinear(0x7F), 0},
		{"mulaw 0x80 is max", MulawToLinear(0x80), 32124},
		{"mulaw 0x00 is min", MulawToLinear(0x00), -32124},
		{"mulaw 0xFE", MulawToLinear(0xFE), 8},
		{"alaw 0xD5 is +8", AlawToLinear(0xD5), 8},
		{"alaw 0x55 is -8", AlawToLinear(0x55), -8},
		{"alaw 0xAA is max", AlawToLinear(0xAA), 32256},
		{"alaw 0x2A is min", AlawToLinear(0x2A), -32256},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, tc.got, tc.want)
		}
	}
	if LinearToMulaw(0) != 0xFF || LinearToAlaw(0) != 0xD5 || LinearToMulaw(32767) != 0x80 || LinearToAlaw(-32768) != 0x2A {
		t.Error("encoder misses the standard code words for 0 and full scale")
	}
}

// Every code word decodes to a value that encodes back to a code word with the
// same value, and decoded values are monotonic in the code's order.
func TestG711RoundTripAllCodes(t *testing.T) {
	for c := range 256 {
		if v := MulawToLinear(byte(c)); MulawToLinear(LinearToMulaw(v)) != v {
			t.Errorf("mulaw code %#x: %d re-encodes to %d", c, v, MulawToLinear(LinearToMulaw(v)))
		}
		if v := AlawToLinear(byte(c)); AlawToLinear(LinearToAlaw(v)) != v {
			t.Errorf("alaw code %#x: %d re-encodes to %d", c, v, AlawToLinear(LinearToAlaw(v)))
		}
	}
}

// Encoding then decoding any 16-bit value errs by at most half a step of its
// segment, and the sign is kept.
func TestG711QuantisationError(t *testing.T) {
	for s := math.MinInt16; s <= math.MaxInt16; s++ {
		v := int16(s)
		for _, tc := range []struct {
			name string
			got  int16
			seg  int
		}{
			{"mulaw", MulawToLinear(LinearToMulaw(v)), muSegmentStep(v)},
			{"alaw", AlawToLinear(LinearToAlaw(v)), aSegmentStep(v)},
		} {
			if d := abs(int(tc.got) - s); d > tc.seg/2+1 && abs(s) < 32000 {
				t.Fatalf("%s: %d decodes back as %d (error %d > half step %d)", tc.name, s, tc.got, d, tc.seg/2)
			}
			if (s > 16 && tc.got <= 0) || (s < -16 && tc.got >= 0) {
				t.Fatalf("%s: %d decodes back as %d: sign lost", tc.name, s, tc.got)
			}
		}
	}
}

func muSegmentStep(v int16) int {
	m := abs(int(v)) + 0x84
	step := 8
	for m >= 256 {
		m >>= 1
		step <<= 1
	}
	return step
}

func aSegmentStep(v int16) int {
	m := abs(int(v))
	if m < 512 {
		return 16
	}
	step := 16
	for m >= 512 {
		m >>= 1
		step <<= 1
	}
	return step
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// A speech-level tone through µ-law or A-law keeps the SNR G.711 is known
// for (about 38 dB for a loud sine).
func TestG711ToneSNR(t *testing.T) {
	x := tone(8000, 1019, 8000) // amplitude 0.5; 1019 Hz so samples fall on many phases
	for name, codec := range map[string]struct {
		enc Encoding
		b   []byte
	}{"mulaw": {Mulaw, EncodeMulaw(x)}, "alaw": {Alaw, EncodeAlaw(x)}} {
		ch, err := NewDecoder(Format{codec.enc, 8000, 1}).Decode(codec.b)
		if err != nil {
			t.Fatal(err)
		}
		snr := snrDB(ch[0], 8000, 1019, 0)
		t.Logf("%s 1019 Hz tone at -6 dBFS: SNR %.1f dB", name, snr)
		if snr < 35 || snr > 42 {
			t.Errorf("%s SNR %.1f dB, want 35..42 (G.711)", name, snr)
		}
	}
}
