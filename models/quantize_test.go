package models

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestQ8BlockRoundTrip(t *testing.T) {
	var x [q8Block]float32
	for i := range x {
		x[i] = float32(i-11) * 0.037
	}
	b := appendQ8Block(nil, &x)
	if len(b) != 2+q8Block {
		t.Fatalf("block of %d bytes, want 34", len(b))
	}
	d := HalfToFloat(binary.LittleEndian.Uint16(b))
	if want := float32(20*0.037) / 127; math.Abs(float64(d-want)) > float64(want)*1e-3 {
		t.Errorf("scale %g, want max|x|/127 = %g", d, want)
	}
	if q := int8(b[2+31]); q != 127 {
		t.Errorf("largest weight stored as %d, want 127", q)
	}
	for i, v := range dequantizeQ8_0(b) {
		if err := math.Abs(float64(v - x[i])); err > q8MaxError(d) {
			t.Errorf("weight %d: %g back as %g (error %g, bound %g)", i, x[i], v, err, q8MaxError(d))
		}
	}
	var zero [q8Block]float32
	if z := appendQ8Block(nil, &zero); strings.Trim(string(z), "\x00") != "" {
		t.Errorf("zero block quantized to % x", z)
	}
}

// TestQuantizeSyntheticFile quantizes a small file of known float16 weights written by
// the package's own writer and checks every tensor: which are quantized, and that each
// weight comes back within half a quantization step.
func TestQuantizeSyntheticFile(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "ggml-tiny.en.bin")
	if err := Synthesize("tiny.en", in, nil); err != nil {
		t.Fatal(err)
	}
	// A synthetic model is refused (random weights are not worth a quantized copy) …
	if _, err := Quantize(context.Background(), in, filepath.Join(dir, "x.bin"), "q8_0", nil); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("synthetic model: err %v, want ErrUnsupported", err)
	}
	// … so strip the marker: the same weights as a plain float16 file.
	unmarkSynthetic(t, in)
	out := filepath.Join(dir, "ggml-tiny.en-q8_0.bin")
	var progress strings.Builder
	rep, err := Quantize(context.Background(), in, out, "q8_0", &progress)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(progress.String(), "quantize: ") {
		t.Errorf("no progress lines: %q", progress.String())
	}
	info, err := ReadGGMLInfo(out)
	if err != nil {
		t.Fatal(err)
	}
	if info.FType != ftypeMostlyQ8_0 || info.QuantVersion != qntVersion || !info.HasWeights() {
		t.Fatalf("output ftype %d qntvr %d, %d/%d tensors", info.FType, info.QuantVersion, info.TensorCount, info.ExpectedTensors)
	}
	if rep.OutBytes >= rep.InBytes*6/10 || rep.Quantized == 0 {
		t.Errorf("%d → %d bytes, %d tensors quantized", rep.InBytes, rep.OutBytes, rep.Quantized)
	}
	src, dst := tensorsOf(t, in), tensorsOf(t, out)
	if len(src) != len(dst) {
		t.Fatalf("%d tensors in, %d out", len(src), len(dst))
	}
	quantized := 0
	for i, a := range src {
		b := dst[i]
		if a.name != b.name || len(a.ne) != len(b.ne) {
			t.Fatalf("tensor %d: %s %v became %s %v", i, a.name, a.ne, b.name, b.ne)
		}
		wantQ := len(a.ne) == 2 && !notQuantized[a.name] && (a.ttype == TypeF16 || a.ttype == TypeF32)
		if (b.ttype == TypeQ8_0) != wantQ {
			t.Errorf("%s (%d-D, type %d) written as type %d", a.name, len(a.ne), a.ttype, b.ttype)
			continue
		}
		if !wantQ {
			if string(a.data) != string(b.data) {
				t.Errorf("%s: copied tensor changed", a.name)
			}
			continue
		}
		quantized++
		back := dequantizeQ8_0(b.data)
		for j := 0; j < len(back); j += 97 {
			w := HalfToFloat(binary.LittleEndian.Uint16(a.data[2*j:]))
			d := HalfToFloat(binary.LittleEndian.Uint16(b.data[(j/q8Block)*(2+q8Block):]))
			if math.Abs(float64(back[j]-w)) > q8MaxError(d) {
				t.Fatalf("%s weight %d: %g back as %g (step %g)", a.name, j, w, back[j], d)
			}
		}
	}
	if quantized != rep.Quantized {
		t.Errorf("%d tensors quantized, report says %d", quantized, rep.Quantized)
	}
	// Quantizing a quantized file is refused, and a failure leaves nothing behind.
	again := filepath.Join(dir, "again.bin")
	if _, err := Quantize(context.Background(), out, again, "q8_0", nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("quantized input: err %v, want ErrUnsupported", err)
	}
	if _, err := Quantize(context.Background(), in, again, "q4_k", nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("unknown type: err %v, want ErrUnsupported", err)
	}
	if _, err := os.Stat(again); !os.IsNotExist(err) {
		t.Errorf("failed quantize left %s", again)
	}
}

// q8MaxError bounds |x − d·q| for a block of stored scale d: half a step, plus the scale's
// own float16 rounding (relative 2⁻¹¹, or 2⁻²⁴ absolute where it underflows) times the
// largest |q|, 127.
func q8MaxError(d float32) float64 { return float64(d)*(0.5+127.0/2048) + 127*math.Ldexp(1, -24) }

// unmarkSynthetic renames the synthetic marker (the last vocabulary entry, same length).
func unmarkSynthetic(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndex(string(b), SyntheticMarker)
	if i < 0 {
		t.Fatal("no synthetic marker")
	}
	copy(b[i:], strings.Repeat("x", len(SyntheticMarker)))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// tensorsOf reads every tensor of a ggml file.
func tensorsOf(t *testing.T, path string) []ggmlTensor {
	t.Helper()
	info, err := ReadGGMLInfo(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := newCursor(f, info.Size)
	if err := c.skip(4+44+8+int64(info.MelBands)*int64(info.MelFFTBins)*4, "header"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.i32("vocab"); err != nil {
		t.Fatal(err)
	}
	for range info.VocabEntries {
		n, _ := c.u32("len")
		if err := c.skip(int64(n), "token"); err != nil {
			t.Fatal(err)
		}
	}
	var out []ggmlTensor
	for c.remaining() > 0 {
		tn, err := readTensor(c)
		if err != nil {
			t.Fatal(err)
		}
		tn.data = append([]byte(nil), tn.data...)
		out = append(out, tn)
	}
	return out
}

// FuzzQuantizeTensor: any float16/float32 tensor data (NaN, Inf, odd shapes) is either
// quantized to whole Q8_0 blocks that decode within the error bound, or refused.
func FuzzQuantizeTensor(f *testing.F) {
	f.Add([]byte{0x00, 0x3c, 0x00, 0xbc}, uint8(32), uint8(2), false)
	f.Add([]byte{0x00, 0x7c}, uint8(32), uint8(1), false) // +Inf
	f.Add([]byte{1, 2, 3}, uint8(33), uint8(1), true)
	f.Fuzz(func(t *testing.T, raw []byte, ne0, rows uint8, f32 bool) {
		tn := ggmlTensor{name: "w", ttype: TypeF16, ne: []int{int(ne0), int(rows)}}
		size := 2
		if f32 {
			tn.ttype, size = TypeF32, 4
		}
		n := int(ne0) * int(rows) * size
		tn.data = make([]byte, n)
		for i := range tn.data {
			if len(raw) > 0 {
				tn.data[i] = raw[i%len(raw)]
			}
		}
		out, err := quantizeQ8_0(tn)
		if err != nil {
			return
		}
		if int(ne0)%q8Block != 0 || len(out) != n/size/q8Block*(2+q8Block) {
			t.Fatalf("ne0 %d rows %d: %d bytes out", ne0, rows, len(out))
		}
		back := dequantizeQ8_0(out)
		for j, v := range back {
			var w float32
			if f32 {
				w = math.Float32frombits(binary.LittleEndian.Uint32(tn.data[4*j:]))
			} else {
				w = HalfToFloat(binary.LittleEndian.Uint16(tn.data[2*j:]))
			}
			d := HalfToFloat(binary.LittleEndian.Uint16(out[(j/q8Block)*(2+q8Block):]))
			if math.Abs(float64(v-w)) > q8MaxError(d) || math.IsInf(float64(d), 0) {
				t.Fatalf("weight %d: %g back as %g (step %g)", j, w, v, d)
			}
		}
	})
}
