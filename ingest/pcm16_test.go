package ingest

import (
	"encoding/binary"
	"math"
	"testing"
)

// Every int16 survives int16 → float (the linear16 decoder's ÷32768) → Int16.
func TestInt16RoundTripsEveryValue(t *testing.T) {
	b := make([]byte, 2*65536)
	for i := range 65536 {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(i))
	}
	chans, err := NewDecoder(Format{Encoding: Linear16, SampleRate: 16000, Channels: 1}).Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	got := ToInt16(chans[0])
	for i, v := range got {
		if want := int16(uint16(i)); v != want {
			t.Fatalf("%d → %v → %d", want, chans[0][i], v)
		}
	}
	if out := PCM16Bytes(FromPCM16Bytes(b)); string(out) != string(b) {
		t.Fatal("PCM16Bytes(FromPCM16Bytes(b)) != b")
	}
}

func TestInt16Clips(t *testing.T) {
	for _, c := range []struct {
		in   float32
		want int16
	}{{1, 32767}, {2, 32767}, {-1, -32768}, {-2, -32768}, {float32(math.Inf(1)), 32767},
		{float32(math.Inf(-1)), -32768}, {float32(math.NaN()), 0}, {0.5, 16384}} {
		if got := Int16(c.in); got != c.want {
			t.Errorf("Int16(%v) = %d, want %d", c.in, got, c.want)
		}
	}
}
