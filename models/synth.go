package models

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// synthDims are the real whisper dimensions (OpenAI whisper/__init__.py
// checkpoints' ModelDimensions, as listed by whisper.cpp's loader log).
var synthDims = map[string]Hparams{
	"tiny":           {51865, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1},
	"tiny.en":        {51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1},
	"base":           {51865, 1500, 512, 8, 6, 448, 512, 8, 6, 80, 1},
	"base.en":        {51864, 1500, 512, 8, 6, 448, 512, 8, 6, 80, 1},
	"small":          {51865, 1500, 768, 12, 12, 448, 768, 12, 12, 80, 1},
	"small.en":       {51864, 1500, 768, 12, 12, 448, 768, 12, 12, 80, 1},
	"medium":         {51865, 1500, 1024, 16, 24, 448, 1024, 16, 24, 80, 1},
	"medium.en":      {51864, 1500, 1024, 16, 24, 448, 1024, 16, 24, 80, 1},
	"large-v3":       {51866, 1500, 1280, 20, 32, 448, 1280, 20, 32, 128, 1},
	"large-v3-turbo": {51866, 1500, 1280, 20, 32, 448, 1280, 20, 4, 128, 1},
}

// SynthDims lists the dims names Synthesize accepts.
func SynthDims() []string {
	names := make([]string, 0, len(synthDims))
	for n := range synthDims {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// SynthHparams returns the hyperparameters of a dims name.
func SynthHparams(dims string) (Hparams, error) {
	h, ok := synthDims[dims]
	if !ok {
		return h, fmt.Errorf("%w: dims %q (known: %s)", ErrUnsupported, dims, strings.Join(SynthDims(), ", "))
	}
	return h, nil
}

// Synthesize writes a whisper.cpp-loadable ggml file with the real
// dimensions of dims and random weights (f16 N(0, 0.02); LayerNorm gains
// 1; real mel filters), for load, memory and speed tests. It transcribes
// nothing meaningful. Its last vocabulary entry is SyntheticMarker, so
// ReadGGMLInfo reports Synthetic=true. The output is deterministic.
func Synthesize(dims, out string, progress io.Writer) error {
	h, err := SynthHparams(dims)
	if err != nil {
		return err
	}
	plan := importPlan(h)
	fill := func(w io.Writer) error {
		g := &ggmlWriter{w: w}
		g.header(h, MelFilters(int(h.NMels)), int(h.NMels), nFFTBins)
		g.vocab(synthVocab(int(h.NVocab)))
		rng := newSynthRand(0x5eed)
		next := 1
		for i, it := range plan {
			g.tensorHeader(it.name, it.ttype, it.ne)
			g.write(rng.tensor(it))
			if g.err != nil {
				return fmt.Errorf("write %s: %w", out, g.err)
			}
			if progress != nil && (i+1)*10 >= next*len(plan) {
				fmt.Fprintf(progress, "synth %s: %d/%d tensors, %.1f MB written\n", dims, i+1, len(plan), float64(g.n)/1e6)
				next = (i+1)*10/len(plan) + 1
			}
		}
		return nil
	}
	check := func(tmp string) error {
		info, err := ReadGGMLInfo(tmp)
		if err != nil {
			return err
		}
		if !info.Synthetic || !info.HasWeights() {
			return fmt.Errorf("%w: synthetic file re-read as %+v", ErrBadModelFile, info)
		}
		return nil
	}
	if err := writeAtomic(out, fill, check); err != nil {
		return fmt.Errorf("synthesize %s: %w", dims, err)
	}
	return nil
}

// synthVocab: ids 0–255 are the 256 single bytes in GPT-2's order (so " "
// exists, at 220), then made-up word pieces up to <|endoftext|>, then
// "[_…]" names for special and timestamp tokens (whisper.cpp's own naming
// convention for tokens it does not know), and SyntheticMarker last.
func synthVocab(n int) [][]byte {
	eot := 50256
	if n >= 51865 {
		eot = 50257
	}
	out := make([][]byte, 0, n)
	var order []byte
	for b := 0; b < 256; b++ {
		if (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff) {
			order = append(order, byte(b))
		}
	}
	for b := 0; b < 256; b++ {
		if !((b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)) {
			order = append(order, byte(b))
		}
	}
	for _, b := range order {
		out = append(out, []byte{b})
	}
	for i := 256; i < eot; i++ {
		out = append(out, []byte(" s"+strconv.FormatInt(int64(i), 36)))
	}
	out = append(out, []byte("<|endoftext|>"))
	for i := eot + 1; i < n-1; i++ {
		out = append(out, []byte("[_synthetic_"+strconv.Itoa(i)+"]"))
	}
	return append(out, []byte(SyntheticMarker))
}

// synthRand is a splitmix64 generator with a 4096-entry table of f16
// N(0, 0.02) values: five table lookups per 64-bit draw.
type synthRand struct {
	s     uint64
	table [4096]uint16
}

func newSynthRand(seed uint64) *synthRand {
	r := &synthRand{s: seed}
	for i := range r.table {
		// Inverse-CDF-free: Box–Muller on evenly spaced quantile pairs.
		u1 := (float64(i) + 0.5) / float64(len(r.table))
		u2 := float64(r.next()>>11) / (1 << 53)
		z := math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
		r.table[i] = floatToHalf(float32(0.02 * z))
	}
	return r
}

func (r *synthRand) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// tensor returns random data for one plan item in its declared type.
func (r *synthRand) tensor(it planItem) []byte {
	n := 1
	for _, d := range it.ne {
		n *= d
	}
	if it.ttype == TypeF16 {
		out := make([]byte, 2*n)
		for i := 0; i < n; {
			v := r.next()
			for k := 0; k < 5 && i < n; k++ {
				binary.LittleEndian.PutUint16(out[2*i:], r.table[v&4095])
				v >>= 12
				i++
			}
		}
		return out
	}
	out := make([]byte, 4*n)
	gain := strings.HasSuffix(it.name, "ln.weight") || strings.HasSuffix(it.name, "ln_post.weight")
	for i := 0; i < n; i++ {
		v := HalfToFloat(r.table[r.next()&4095])
		if gain {
			v += 1
		}
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
	}
	return out
}
