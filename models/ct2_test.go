package models

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeVar is one variable of a deterministic fake CT2 model (unit tests only).
type fakeVar struct {
	name  string
	dims  []int
	dtype CT2DType
	data  []byte
}

// encodeCT2 serialises variables as CTranslate2 binary version 6.
func encodeCT2(spec string, vars []fakeVar, aliases map[string]string) []byte {
	var b bytes.Buffer
	str := func(s string) {
		binary.Write(&b, binary.LittleEndian, uint16(len(s)+1))
		b.WriteString(s)
		b.WriteByte(0)
	}
	binary.Write(&b, binary.LittleEndian, uint32(6))
	str(spec)
	binary.Write(&b, binary.LittleEndian, uint32(3))
	binary.Write(&b, binary.LittleEndian, uint32(len(vars)))
	for _, v := range vars {
		str(v.name)
		b.WriteByte(byte(len(v.dims)))
		for _, d := range v.dims {
			binary.Write(&b, binary.LittleEndian, uint32(d))
		}
		b.WriteByte(byte(v.dtype))
		binary.Write(&b, binary.LittleEndian, uint32(len(v.data)))
		b.Write(v.data)
	}
	binary.Write(&b, binary.LittleEndian, uint32(len(aliases)))
	for a, t := range aliases {
		str(a)
		str(t)
	}
	return b.Bytes()
}

// fakeWhisper returns the variables of a tiny fake Whisper (d=8, 1 head,
// one encoder and one decoder layer, 80 mels, 51864 tokens), f16 zeros
// except LayerNorm gains of 1.0.
func fakeWhisper() []fakeVar {
	const d, vocab = 8, 51864
	f16 := func(name string, dims ...int) fakeVar {
		n := 1
		for _, x := range dims {
			n *= x
		}
		data := make([]byte, 2*n)
		if strings.HasSuffix(name, "gamma") {
			for i := 0; i < n; i++ {
				binary.LittleEndian.PutUint16(data[2*i:], 0x3c00)
			}
		}
		return fakeVar{name, dims, CT2Float16, data}
	}
	vs := []fakeVar{
		{"decoder/num_heads", nil, CT2Int16, []byte{1, 0}},
		{"encoder/num_heads", nil, CT2Int16, []byte{1, 0}},
		f16("encoder/conv1/weight", d, 80, 3), f16("encoder/conv1/bias", d),
		f16("encoder/conv2/weight", d, d, 3), f16("encoder/conv2/bias", d),
		f16("encoder/position_encodings/encodings", 1500, d),
		f16("encoder/layer_norm/gamma", d), f16("encoder/layer_norm/beta", d),
		f16("decoder/embeddings/weight", vocab, d),
		f16("decoder/position_encodings/encodings", 448, d),
		f16("decoder/layer_norm/gamma", d), f16("decoder/layer_norm/beta", d),
	}
	layer := func(p string, cross bool) {
		vs = append(vs,
			f16(p+"self_attention/layer_norm/gamma", d), f16(p+"self_attention/layer_norm/beta", d),
			f16(p+"self_attention/linear_0/weight", 3*d, d), f16(p+"self_attention/linear_0/bias", 3*d),
			f16(p+"self_attention/linear_1/weight", d, d), f16(p+"self_attention/linear_1/bias", d),
			f16(p+"ffn/layer_norm/gamma", d), f16(p+"ffn/layer_norm/beta", d),
			f16(p+"ffn/linear_0/weight", 4*d, d), f16(p+"ffn/linear_0/bias", 4*d),
			f16(p+"ffn/linear_1/weight", d, 4*d), f16(p+"ffn/linear_1/bias", d))
		if cross {
			vs = append(vs,
				f16(p+"attention/layer_norm/gamma", d), f16(p+"attention/layer_norm/beta", d),
				f16(p+"attention/linear_0/weight", d, d), f16(p+"attention/linear_0/bias", d),
				f16(p+"attention/linear_1/weight", 2*d, d), f16(p+"attention/linear_1/bias", 2*d),
				f16(p+"attention/linear_2/weight", d, d), f16(p+"attention/linear_2/bias", d))
		}
	}
	layer("encoder/layer_0/", false)
	layer("decoder/layer_0/", true)
	return vs
}

// writeFakeCT2Dir writes model.bin, config.json and vocabulary.txt.
func writeFakeCT2Dir(t *testing.T, spec string, vars []fakeVar, modelBin func([]byte) []byte) string {
	t.Helper()
	dir := t.TempDir()
	bin := encodeCT2(spec, vars, map[string]string{"decoder/projection/weight": "decoder/embeddings/weight"})
	if modelBin != nil {
		bin = modelBin(bin)
	}
	var voc strings.Builder
	for i := 0; i < 51864; i++ {
		switch {
		case i == 220:
			voc.WriteString("Ġ")
		case i == 50256:
			voc.WriteString("<|endoftext|>")
		case i > 50256:
			fmt.Fprintf(&voc, "<|special%d|>", i)
		default:
			fmt.Fprintf(&voc, "t%d", i)
		}
		voc.WriteByte('\n')
	}
	for name, data := range map[string][]byte{"model.bin": bin, "config.json": []byte("{}\n"), "vocabulary.txt": []byte(voc.String())} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestImportCT2Fake(t *testing.T) {
	dir := writeFakeCT2Dir(t, "WhisperSpec", fakeWhisper(), nil)
	out := filepath.Join(t.TempDir(), "m.bin")
	rep, err := ImportCT2(context.Background(), dir, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Hparams{51864, 1500, 8, 1, 1, 448, 8, 1, 1, 80, 1}
	if rep.Hparams != want || rep.Tensors != 7+15+4+24 {
		t.Fatalf("report %+v", rep)
	}
	info, err := ReadGGMLInfo(out)
	if err != nil || !info.HasWeights() || info.Synthetic {
		t.Fatalf("info %+v, %v", info, err)
	}
}

func TestImportCT2Errors(t *testing.T) {
	setVar := func(name string, f func(*fakeVar)) []fakeVar {
		vs := fakeWhisper()
		for i := range vs {
			if vs[i].name == name {
				f(&vs[i])
			}
		}
		return vs
	}
	tests := []struct {
		name    string
		spec    string
		vars    []fakeVar
		bin     func([]byte) []byte
		wantErr error
		wantMsg string
	}{
		{"other architecture", "TransformerSpec", fakeWhisper(), nil, ErrNotWhisper, "TransformerSpec"},
		{"wrong shape", "WhisperSpec", setVar("encoder/conv2/bias", func(v *fakeVar) {
			v.dims, v.data = []int{9}, make([]byte, 18)
		}), nil, ErrBadModelFile, "encoder/conv2/bias has shape [9]"},
		{"nonzero key bias", "WhisperSpec", setVar("encoder/layer_0/self_attention/linear_0/bias", func(v *fakeVar) {
			v.data[2*8+1] = 0x3c
		}), nil, ErrBadModelFile, "zero key bias"},
		{"truncated", "WhisperSpec", fakeWhisper(), func(b []byte) []byte { return b[:len(b)/2] }, ErrBadModelFile, "truncated"},
		{"int8 weights", "WhisperSpec", setVar("encoder/conv1/weight", func(v *fakeVar) {
			v.dtype, v.data = CT2Int8, v.data[:len(v.data)/2]
		}), nil, ErrUnsupported, "int8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFakeCT2Dir(t, tt.spec, tt.vars, tt.bin)
			out := filepath.Join(t.TempDir(), "m.bin")
			_, err := ImportCT2(context.Background(), dir, out, nil)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("error %v, want %v containing %q", err, tt.wantErr, tt.wantMsg)
			}
			for _, p := range []string{out, out + ".tmp"} {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Errorf("%s exists after a failed import", p)
				}
			}
		})
	}
}

func TestReadCT2RealHeader(t *testing.T) {
	dir := extractWheel(t)
	f, err := os.Open(filepath.Join(dir, "model.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	m, err := ReadCT2(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	// CT2_TO_GGML.md §0–1: version 6, WhisperSpec rev 3, 148 variables, one alias.
	if m.BinaryVersion != 6 || m.Spec != "WhisperSpec" || m.SpecRevision != 3 || len(m.Vars) != 148 ||
		m.Aliases["decoder/projection/weight"] != "decoder/embeddings/weight" {
		t.Fatalf("version %d spec %q rev %d vars %d aliases %v", m.BinaryVersion, m.Spec, m.SpecRevision, len(m.Vars), m.Aliases)
	}
	if h, ok := m.Int("encoder/num_heads"); !ok || h != 6 {
		t.Fatalf("encoder/num_heads = %d, %v", h, ok)
	}
}

func FuzzReadCT2(f *testing.F) {
	f.Add(encodeCT2("WhisperSpec", fakeWhisper()[:4], map[string]string{"a": "b"}))
	f.Add([]byte{6, 0, 0, 0, 2, 0, 'W', 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ReadCT2(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		for _, name := range m.Order {
			v := m.Vars[name]
			if v.Offset+v.NBytes > int64(len(b)) {
				t.Fatalf("%s data [%d,+%d) past end %d", name, v.Offset, v.NBytes, len(b))
			}
			if _, err := m.Data(v); err != nil {
				t.Fatal(err)
			}
		}
	})
}
