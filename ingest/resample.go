package ingest

// Resampler converts a mono stream from one sample rate to another, chunk by
// chunk. Output sample n is the band-limited input evaluated at input time
// n·in/out, so the filter's delay is compensated: output and input line up with
// zero group delay, and the output depends only on the input samples, never on
// how they were split into chunks. The price is a look-ahead of Latency() input
// samples, which Process holds back until more input or Flush arrives.
//
// A Resampler is not safe for concurrent use.
type Resampler struct {
	in, out  int
	l, m     int64 // out/g and in/g: output n sits at input time n·m/l
	fb       *filterBank
	buf      []float32 // input samples from absolute index bufStart on
	bufStart int64
	total    int64 // input samples accepted since the stream began
	n        int64 // next output index
}

// NewResampler returns a resampler from inRate to outRate (both > 0; the
// ingest limits are 8000..48000). Filter tables are shared between resamplers
// of the same rate pair.
func NewResampler(inRate, outRate int) *Resampler {
	if inRate <= 0 || outRate <= 0 {
		panic("ingest: NewResampler needs positive rates")
	}
	g := gcd(inRate, outRate)
	r := &Resampler{in: inRate, out: outRate, l: int64(outRate / g), m: int64(inRate / g)}
	if inRate != outRate {
		r.fb = bankFor(inRate, outRate, r.l)
		r.reset()
	}
	return r
}

func (r *Resampler) reset() {
	k := r.fb.half
	r.buf = append(r.buf[:0], make([]float32, k)...) // silence before the stream starts
	r.bufStart = -int64(k)
	r.total, r.n = 0, 0
}

// Latency is the look-ahead in input samples: how far input must run ahead of
// an output sample before Process emits it. It is 0 when the rates are equal.
func (r *Resampler) Latency() int {
	if r.fb == nil {
		return 0
	}
	return r.fb.half
}

// Process accepts the next input samples and returns the output samples that
// are now complete. When the rates are equal it returns a copy of in.
func (r *Resampler) Process(in []float32) []float32 {
	if r.fb == nil {
		return append([]float32(nil), in...)
	}
	r.buf = append(r.buf, in...)
	r.total += int64(len(in))
	return r.produce(false)
}

// Flush ends the stream: it treats the input as followed by silence and
// returns the remaining output, so that the total output of the stream is
// round(inputLen·out/in) samples. The resampler is then ready for a new stream.
func (r *Resampler) Flush() []float32 {
	if r.fb == nil {
		return nil
	}
	r.buf = append(r.buf, make([]float32, r.fb.half+1)...)
	out := r.produce(true)
	r.reset()
	return out
}

func (r *Resampler) produce(flushing bool) []float32 {
	k := int64(r.fb.half)
	end := r.bufStart + int64(len(r.buf)) // absolute index after the last buffered sample
	target := (r.total*int64(r.out)*2 + int64(r.in)) / (2 * int64(r.in))
	var out []float32
	for {
		c, rem := r.n*r.m/r.l, r.n*r.m%r.l // input sample at or before the output time, and the phase
		if flushing {
			if r.n >= target {
				break
			}
		} else if c+k > r.total-1 {
			break
		}
		if c+k >= end { // cannot happen: Flush pads K+1 zeros
			break
		}
		x := r.buf[c-k+1-r.bufStart : c+k+1-r.bufStart]
		out = append(out, r.fb.apply(x, rem, r.l))
		r.n++
	}
	if drop := r.n*r.m/r.l - k + 1 - r.bufStart; drop > 0 {
		drop = min(drop, int64(len(r.buf)))
		r.buf = r.buf[:copy(r.buf, r.buf[drop:])]
		r.bufStart += drop
	}
	return out
}

// apply filters the 2K input samples around an output time whose phase is rem/l.
func (fb *filterBank) apply(x []float32, rem, l int64) float32 {
	w := 2 * fb.half
	if fb.exact {
		return dot(fb.coef[int(rem)*w:int(rem+1)*w], x)
	}
	pos := float64(rem) * float64(fb.phases) / float64(l)
	row := int(pos)
	a := float32(pos - float64(row))
	y0 := dot(fb.coef[row*w:(row+1)*w], x)
	y1 := dot(fb.coef[(row+1)*w:(row+2)*w], x)
	return y0 + a*(y1-y0)
}

func dot(h, x []float32) float32 {
	x = x[:len(h)]
	var s0, s1 float32
	i := 0
	for ; i+1 < len(h); i += 2 {
		s0 += h[i] * x[i]
		s1 += h[i+1] * x[i+1]
	}
	if i < len(h) {
		s0 += h[i] * x[i]
	}
	return s0 + s1
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
