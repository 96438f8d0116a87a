package ingest

import (
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
)

func f32bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    Format
		in   []byte
		want [][]float32
	}{
		{"linear16 mono", Format{Linear16, 16000, 1}, []byte{0x00, 0x80, 0xff, 0x7f, 0x00, 0x40}, [][]float32{{-1, 32767.0 / 32768, 0.5}}},
		{"linear16 stereo interleaved", Format{Linear16, 16000, 2}, []byte{0x00, 0x40, 0x00, 0xc0, 0x00, 0x20, 0x00, 0x00},
			[][]float32{{0.5, 0.25}, {-0.5, 0}}},
		{"float32 clipped", Format{Float32, 48000, 1}, f32bytes(0.25, 1.5, -3), [][]float32{{0.25, 1, -1}}},
		{"mulaw", Format{Mulaw, 8000, 1}, []byte{0xff, 0x80, 0x00}, [][]float32{{0, 32124.0 / 32768, -32124.0 / 32768}}},
		{"alaw stereo", Format{Alaw, 8000, 2}, []byte{0xd5, 0x55}, [][]float32{{8.0 / 32768}, {-8.0 / 32768}}},
		{"empty chunk", Format{Linear16, 16000, 2}, nil, [][]float32{{}, {}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NewDecoder(tc.f).Decode(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d channels, want %d", len(got), len(tc.want))
			}
			for c := range got {
				if len(got[c]) != len(tc.want[c]) {
					t.Fatalf("channel %d: %v, want %v", c, got[c], tc.want[c])
				}
				for i := range got[c] {
					if got[c][i] != tc.want[c][i] {
						t.Errorf("channel %d: %v, want %v", c, got[c], tc.want[c])
						break
					}
				}
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    Format
		in   []byte
		err  error
		msg  string
	}{
		{"odd linear16", Format{Linear16, 16000, 1}, []byte{1, 2, 3}, ErrPartialFrame, "not a whole number of 2-byte frames"},
		{"half stereo frame", Format{Linear16, 16000, 2}, []byte{1, 2, 3, 4, 5, 6}, ErrPartialFrame, "4-byte frames"},
		{"float32 partial", Format{Float32, 16000, 1}, []byte{1, 2, 3, 4, 5}, ErrPartialFrame, "4-byte frames"},
		{"NaN", Format{Float32, 16000, 1}, f32bytes(0, float32(math.NaN())), ErrNaN, "frame 1"},
		{"Inf", Format{Float32, 16000, 2}, f32bytes(0, 0, float32(math.Inf(-1)), 0), ErrNaN, "frame 1 channel 0"},
		{"unknown encoding", Format{"opus", 16000, 1}, []byte{1}, ErrUnsupportedEncoding, "opus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewDecoder(tc.f).Decode(tc.in)
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tc.err, tc.msg)
			}
		})
	}
}

func TestDownmix(t *testing.T) {
	mono := []float32{1, 2}
	if got := Downmix([][]float32{mono}); &got[0] != &mono[0] {
		t.Error("mono input should be returned as is")
	}
	got := Downmix([][]float32{{1, 0.5, 9}, {-1, 0.5}})
	if len(got) != 2 || got[0] != 0 || got[1] != 0.5 {
		t.Errorf("Downmix = %v, want [0 0.5]", got)
	}
	if Downmix(nil) != nil {
		t.Error("Downmix(nil) should be nil")
	}
}

func TestPCM16RoundTrip(t *testing.T) {
	b := make([]byte, 2*65536)
	for i := range 65536 {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(i))
	}
	if got := PCM16Bytes(FromPCM16Bytes(b)); string(got) != string(b) {
		t.Fatal("int16 → float → int16 is not the identity")
	}
	clipped := FromPCM16Bytes(PCM16Bytes([]float32{2, -2, float32(math.NaN()), 0.5}))
	if clipped[0] != 32767.0/32768 || clipped[1] != -1 || clipped[2] != 0 || clipped[3] != 0.5 {
		t.Errorf("clipping: got %v", clipped)
	}
}
