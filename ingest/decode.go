package ingest

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Decoder turns raw chunks of one stream format into per-channel float32
// samples at the source rate. It is stateless between chunks (every chunk must
// hold whole frames) and safe for use by one goroutine at a time.
type Decoder struct {
	f   Format
	bpf int
}

// NewDecoder returns a decoder for f. f should have passed Validate; a format
// with an unknown encoding or no channels makes every Decode fail.
func NewDecoder(f Format) *Decoder {
	return &Decoder{f: f, bpf: f.BytesPerFrame()}
}

// Format is the format the decoder reads.
func (d *Decoder) Format() Format { return d.f }

// Decode decodes one chunk. It returns one slice per channel, each with
// len(b)/BytesPerFrame samples.
//
// Errors: ErrPartialFrame when len(b) is not a multiple of the frame size;
// ErrNaN when a float32 sample is NaN or ±Inf (the whole chunk is rejected).
// Finite float32 samples outside [-1, 1] are clipped to [-1, 1], not rejected:
// slightly hot float audio is common and downstream stages assume the range.
func (d *Decoder) Decode(b []byte) ([][]float32, error) {
	if d.bpf <= 0 {
		return nil, fmt.Errorf("decode %s: %w", d.f, ErrUnsupportedEncoding)
	}
	if len(b)%d.bpf != 0 {
		return nil, fmt.Errorf("chunk of %d bytes is not a whole number of %d-byte frames (%s, %d channels): %w",
			len(b), d.bpf, d.f.Encoding, d.f.Channels, ErrPartialFrame)
	}
	nch, n := d.f.Channels, len(b)/d.bpf
	out := make([][]float32, nch)
	for c := range out {
		out[c] = make([]float32, n)
	}
	switch d.f.Encoding {
	case Linear16:
		for i := range n {
			for c := range nch {
				o := 2 * (i*nch + c)
				out[c][i] = float32(int16(binary.LittleEndian.Uint16(b[o:]))) / 32768
			}
		}
	case Float32:
		for i := range n {
			for c := range nch {
				x := math.Float32frombits(binary.LittleEndian.Uint32(b[4*(i*nch+c):]))
				if x != x || x > math.MaxFloat32 || x < -math.MaxFloat32 {
					return nil, fmt.Errorf("frame %d channel %d is %v: %w", i, c, x, ErrNaN)
				}
				out[c][i] = min(max(x, -1), 1)
			}
		}
	case Mulaw, Alaw:
		table := &mulawTable
		if d.f.Encoding == Alaw {
			table = &alawTable
		}
		for i := range n {
			for c := range nch {
				out[c][i] = table[b[i*nch+c]]
			}
		}
	}
	return out, nil
}

// Downmix averages the channels into one. A single channel is returned as is
// (not copied). Channels of unequal length are cut to the shortest.
func Downmix(ch [][]float32) []float32 {
	switch len(ch) {
	case 0:
		return nil
	case 1:
		return ch[0]
	}
	n := len(ch[0])
	for _, c := range ch[1:] {
		n = min(n, len(c))
	}
	out := make([]float32, n)
	scale := 1 / float32(len(ch))
	for i := range out {
		var s float32
		for _, c := range ch {
			s += c[i]
		}
		out[i] = s * scale
	}
	return out
}
