package models

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"time"
)

// QuantizeReport says what Quantize read and wrote.
type QuantizeReport struct {
	Source    string        `json:"source"`
	Output    string        `json:"output"`
	Type      string        `json:"type"`
	Tensors   int           `json:"tensors"`
	Quantized int           `json:"quantized"` // tensors converted; the rest are copied as they are
	InBytes   int64         `json:"in_bytes"`
	OutBytes  int64         `json:"out_bytes"`
	Elapsed   time.Duration `json:"elapsed_ns"`
}

// ftypeMostlyQ8_0 is ggml_ftype GGML_FTYPE_MOSTLY_Q8_0; a quantized file stores it plus
// qntVersion × 1000 in hparams.ftype (ggml.h GGML_QNT_VERSION 2, GGML_QNT_VERSION_FACTOR
// 1000), which whisper.cpp's loader splits again.
const (
	ftypeMostlyQ8_0 = 7
	qntVersion      = 2
)

// q8Block is Q8_0's block: 32 weights as one float16 scale and 32 int8 values.
const q8Block = 32

// maxQ8Weight is the largest |w| whose block scale (|w|/127) fits float16 (65504).
const maxQ8Weight = 65504.0 * 127

// notQuantized are the 2-D tensors whisper.cpp keeps in their own type whatever the file's
// ftype: its loader creates them as F32 (positional embeddings) or reads them as biases.
var notQuantized = map[string]bool{
	"encoder.conv1.bias":           true,
	"encoder.conv2.bias":           true,
	"encoder.positional_embedding": true,
	"decoder.positional_embedding": true,
}

// QuantizeTypes are the types Quantize writes.
func QuantizeTypes() []string { return []string{"q8_0"} }

// Quantize writes a copy of the float16/float32 ggml whisper model at inPath to outPath
// with its weight matrices (every 2-D tensor but the positional embeddings and conv
// biases, the set whisper.cpp's loader expects in the file's type) in Q8_0: blocks of 32
// weights, each stored as round(w/d) in int8 with d = max|w|/127 as float16. Layer norms,
// biases and the 3-D conv kernels are copied as they are. The result is what whisper.cpp's
// own quantize tool makes. It is written atomically and re-read before the rename.
// progress (may be nil) gets a line per 10% of tensors.
func Quantize(ctx context.Context, inPath, outPath, to string, progress io.Writer) (*QuantizeReport, error) {
	start := time.Now()
	if to != "q8_0" {
		return nil, fmt.Errorf("%w: quantization %q (supported: %v)", ErrUnsupported, to, QuantizeTypes())
	}
	info, err := ReadGGMLInfo(inPath)
	if err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	switch {
	case info.Synthetic:
		return nil, fmt.Errorf("quantize %s: %w: a synthetic model (random weights) is not worth quantizing", inPath, ErrUnsupported)
	case !info.HasWeights():
		return nil, fmt.Errorf("quantize %s: %w: %d of %d tensors", inPath, ErrBadModelFile, info.TensorCount, info.ExpectedTensors)
	case info.FType > 1:
		return nil, fmt.Errorf("quantize %s: %w: already quantized (ftype %d); start from the float16 model", inPath, ErrUnsupported, info.FType)
	}
	f, err := os.Open(inPath)
	if err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	defer f.Close()
	rep := &QuantizeReport{Source: inPath, Output: outPath, Type: to, Tensors: info.TensorCount, InBytes: info.Size}
	fill := func(w io.Writer) error {
		c := newCursor(f, info.Size)
		g := &ggmlWriter{w: w}
		h := info.Hparams
		if err := c.skip(4+4*int64(len(h.fields())), "header"); err != nil {
			return err
		}
		h.FType = qntVersion*1000 + ftypeMostlyQ8_0
		g.i32(GGMLMagic)
		for _, p := range h.fields() {
			g.i32(*p)
		}
		// Mel filters and vocabulary are copied byte for byte.
		melBytes := 8 + int64(info.MelBands)*int64(info.MelFFTBins)*4
		vocabStart := c.off + melBytes
		if err := c.skip(melBytes, "mel filters"); err != nil {
			return err
		}
		if _, err := c.i32("vocab count"); err != nil {
			return err
		}
		for i := 0; i < info.VocabEntries; i++ {
			n, err := c.u32("token length")
			if err != nil {
				return err
			}
			if err := c.skip(int64(n), "token"); err != nil {
				return err
			}
		}
		raw, err := readRange(f, vocabStart-melBytes, c.off-(vocabStart-melBytes))
		if err != nil {
			return err
		}
		g.write(raw)
		next := 1
		for i := 0; c.remaining() > 0; i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			t, err := readTensor(c)
			if err != nil {
				return fmt.Errorf("tensor %d: %w", i, err)
			}
			data := t.data
			if len(t.ne) == 2 && (t.ttype == TypeF16 || t.ttype == TypeF32) && !notQuantized[t.name] {
				if data, err = quantizeQ8_0(t); err != nil {
					return err
				}
				t.ttype = TypeQ8_0
				rep.Quantized++
			}
			g.tensorHeader(t.name, t.ttype, t.ne)
			g.write(data)
			if g.err != nil {
				return fmt.Errorf("write %s: %w", outPath, g.err)
			}
			if progress != nil && (i+1)*10 >= next*info.TensorCount {
				fmt.Fprintf(progress, "quantize: %d/%d tensors, %.1f MB written\n", i+1, info.TensorCount, float64(g.n)/1e6)
				next = (i+1)*10/info.TensorCount + 1
			}
		}
		rep.OutBytes = g.n
		return nil
	}
	check := func(tmp string) error {
		out, err := ReadGGMLInfo(tmp)
		if err != nil {
			return fmt.Errorf("re-reading written file: %w", err)
		}
		if out.TensorCount != info.TensorCount || out.FType != ftypeMostlyQ8_0 {
			return fmt.Errorf("%w: wrote %d tensors (ftype %d), want %d (ftype %d)", ErrBadModelFile,
				out.TensorCount, out.FType, info.TensorCount, ftypeMostlyQ8_0)
		}
		return nil
	}
	if err := writeAtomic(outPath, fill, check); err != nil {
		return nil, fmt.Errorf("quantize %s: %w", inPath, err)
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

func readRange(r io.ReaderAt, off, n int64) ([]byte, error) {
	b := make([]byte, n)
	if _, err := r.ReadAt(b, off); err != nil {
		return nil, err
	}
	return b, nil
}

// ggmlTensor is one tensor of a legacy ggml file, with its data.
type ggmlTensor struct {
	name  string
	ttype GGMLType
	ne    []int
	data  []byte
}

// readTensor reads one tensor header and its data (walkTensor's checks).
func readTensor(c *cursor) (ggmlTensor, error) {
	start := c.off
	nb, err := walkTensor(c)
	if err != nil {
		return ggmlTensor{}, err
	}
	end := c.off
	c.off = start
	var t ggmlTensor
	nDims, _ := c.i32("n_dims")
	nameLen, _ := c.i32("name length")
	ttype, _ := c.i32("tensor type")
	t.ttype = GGMLType(ttype)
	for i := int32(0); i < nDims; i++ {
		d, _ := c.i32("ne")
		t.ne = append(t.ne, int(d))
	}
	name, err := c.bytes(int64(nameLen), "tensor name")
	if err != nil {
		return ggmlTensor{}, err
	}
	t.name = string(name)
	if t.data, err = c.bytes(nb, "tensor "+t.name); err != nil {
		return ggmlTensor{}, err
	}
	if c.off != end {
		return ggmlTensor{}, fmt.Errorf("%w: tensor %s: inconsistent size", ErrBadModelFile, t.name)
	}
	return t, nil
}

// quantizeQ8_0 converts an F16 or F32 tensor's data to Q8_0 blocks, row by row.
func quantizeQ8_0(t ggmlTensor) ([]byte, error) {
	if t.ne[0]%q8Block != 0 {
		return nil, fmt.Errorf("%w: tensor %s: row of %d weights is not a multiple of %d", ErrUnsupported, t.name, t.ne[0], q8Block)
	}
	size := 4
	if t.ttype == TypeF16 {
		size = 2
	}
	n := len(t.data) / size
	out := make([]byte, 0, n/q8Block*(2+q8Block))
	var block [q8Block]float32
	for i := 0; i < n; i += q8Block {
		for j := range block {
			if size == 2 {
				block[j] = HalfToFloat(binary.LittleEndian.Uint16(t.data[2*(i+j):]))
			} else {
				block[j] = math.Float32frombits(binary.LittleEndian.Uint32(t.data[4*(i+j):]))
			}
			if v := block[j]; v != v || math.Abs(float64(v)) > maxQ8Weight {
				return nil, fmt.Errorf("%w: tensor %s holds %v at %d (Q8_0 stores |w| ≤ %g)", ErrBadModelFile, t.name, v, i+j, maxQ8Weight)
			}
		}
		out = appendQ8Block(out, &block)
	}
	return out, nil
}

// appendQ8Block appends one Q8_0 block: scale d = max|x|/127 as float16, then
// round(x/d) (halves away from zero) as int8. The arithmetic is float32, as in ggml's
// reference quantizer, so the bytes match whisper.cpp's quantize tool.
func appendQ8Block(out []byte, x *[q8Block]float32) []byte {
	var amax float32
	for _, v := range x {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	out = binary.LittleEndian.AppendUint16(out, floatToHalf(d))
	for _, v := range x {
		q := float32(v * id)
		out = append(out, byte(int8(math.Round(float64(q)))))
	}
	return out
}

// dequantizeQ8_0 is the inverse, for tests and checks: x = d × q.
func dequantizeQ8_0(b []byte) []float32 {
	out := make([]float32, 0, len(b)/(2+q8Block)*q8Block)
	for len(b) >= 2+q8Block {
		d := HalfToFloat(binary.LittleEndian.Uint16(b))
		for _, q := range b[2 : 2+q8Block] {
			out = append(out, d*float32(int8(q)))
		}
		b = b[2+q8Block:]
	}
	return out
}
