package ingest

import (
	"bytes"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"testing"
)

var fuzzEncodings = []Encoding{Linear16, Float32, Mulaw, Alaw}

// FuzzDecoder: any bytes in any format decode or fail with a sentinel, never
// panic, and decoded samples are finite and within [-1, 1].
func FuzzDecoder(f *testing.F) {
	f.Add(uint8(0), uint8(1), []byte{0x00, 0x80, 0xff, 0x7f})
	f.Add(uint8(1), uint8(2), f32bytes(0.5, -2, float32(math.NaN()), 1))
	f.Add(uint8(2), uint8(1), []byte{0xff, 0x7f, 0x00, 0x80})
	f.Add(uint8(3), uint8(8), []byte{0xd5, 0x55, 0xaa, 0x2a, 0, 1, 2, 3})
	f.Add(uint8(0), uint8(3), []byte{1, 2, 3, 4, 5})
	f.Fuzz(func(t *testing.T, enc, ch uint8, b []byte) {
		fm := Format{Encoding: fuzzEncodings[int(enc)%len(fuzzEncodings)], SampleRate: 8000, Channels: 1 + int(ch)%MaxChannels}
		out, err := NewDecoder(fm).Decode(b)
		if err != nil {
			if !errors.Is(err, ErrPartialFrame) && !errors.Is(err, ErrNaN) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if len(out) != fm.Channels {
			t.Fatalf("%d channels, want %d", len(out), fm.Channels)
		}
		for _, c := range out {
			if len(c) != len(b)/fm.BytesPerFrame() {
				t.Fatalf("%d samples from %d bytes", len(c), len(b))
			}
			for _, x := range c {
				if !(x >= -1 && x <= 1) {
					t.Fatalf("sample %v out of range", x)
				}
			}
		}
	})
}

// FuzzReadWAV: any file reads or fails with a sentinel, never panics, and never
// returns more samples than the file has bytes.
func FuzzReadWAV(f *testing.F) {
	var b bytes.Buffer
	WriteWAV16(&b, 16000, tone(16000, 440, 64))
	f.Add(b.Bytes())
	f.Add(makeWAV(7, 1, 8000, 8, []byte{0xff, 0x80, 0x00}))
	f.Add(makeWAV(3, 2, 48000, 32, f32bytes(0.5, -0.5, 1, -1)))
	f.Add(makeWAV(1, 3, 44100, 24, make([]byte, 18), chunk("LIST", []byte("INFOx"))))
	f.Add(makeWAV(1, 1, 8000, 8, []byte{1, 2, 3})[:30])
	f.Fuzz(func(t *testing.T, file []byte) {
		fm, ch, err := ReadWAV(bytes.NewReader(file))
		if err != nil {
			if !errors.Is(err, ErrBadWAV) && !errors.Is(err, ErrChannels) && !errors.Is(err, ErrSampleRate) && !errors.Is(err, ErrNaN) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if len(ch) != fm.Channels || fm.Channels < 1 {
			t.Fatalf("%d channel slices for %v", len(ch), fm)
		}
		if len(ch[0])*fm.Channels > len(file) {
			t.Fatalf("%d samples from a %d-byte file", len(ch[0])*fm.Channels, len(file))
		}
		// OpenWAV + Read in chunks of a size the file picks gives the same samples.
		w, err := OpenWAV(bytes.NewReader(file))
		if err != nil {
			t.Fatalf("ReadWAV read the file, OpenWAV did not: %v", err)
		}
		step := 1 + int(file[len(file)-1])%97
		var got int
		for {
			part, err := w.Read(step)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("chunked read at frame %d: %v", got, err)
			}
			if len(part) != fm.Channels || len(part[0]) > step {
				t.Fatalf("chunk of %d channels × %d frames, asked %d", len(part), len(part[0]), step)
			}
			for c := range part {
				for i, v := range part[c] {
					if v != ch[c][got+i] {
						t.Fatalf("channel %d frame %d: chunked %v, whole %v", c, got+i, v, ch[c][got+i])
					}
				}
			}
			got += len(part[0])
		}
		if got != len(ch[0]) || int64(got) != w.Frames() {
			t.Fatalf("chunked read gave %d frames, whole %d, header %d", got, len(ch[0]), w.Frames())
		}
	})
}

// FuzzResampler: random rates and chunkings never panic, never emit more than
// round(n·out/in) samples, and emit exactly that after Flush.
func FuzzResampler(f *testing.F) {
	f.Add(uint16(8000), uint16(16000), uint64(1), uint16(1000))
	f.Add(uint16(44100), uint16(16000), uint64(2), uint16(4410))
	f.Add(uint16(47999), uint16(8000), uint64(3), uint16(7))
	f.Add(uint16(11025), uint16(16000), uint64(4), uint16(0))
	f.Fuzz(func(t *testing.T, in, out uint16, seed uint64, n uint16) {
		inRate := MinSampleRate + int(in)%(MaxSampleRate-MinSampleRate+1)
		outRate := MinSampleRate + int(out)%(MaxSampleRate-MinSampleRate+1)
		total := int(n) % 6000
		r := NewResampler(inRate, outRate)
		rng := rand.New(rand.NewPCG(seed, 0))
		x := make([]float32, total)
		for i := range x {
			x[i] = rng.Float32()*2 - 1
		}
		want := int(math.Round(float64(total) * float64(outRate) / float64(inRate)))
		var got int
		for fed := 0; fed < total; {
			k := min(total-fed, rng.IntN(1+total))
			y := r.Process(x[fed : fed+k])
			fed += k
			got += len(y)
			if bound := int(math.Round(float64(fed) * float64(outRate) / float64(inRate))); got > bound {
				t.Fatalf("%d→%d: %d out after %d in, bound %d", inRate, outRate, got, fed, bound)
			}
			for _, v := range y {
				if math.IsNaN(float64(v)) || math.Abs(float64(v)) > 2 {
					t.Fatalf("output %v", v)
				}
			}
		}
		got += len(r.Flush())
		if got != want {
			t.Fatalf("%d→%d: %d in, %d out, want %d", inRate, outRate, total, got, want)
		}
	})
}
