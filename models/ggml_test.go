package models

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestReadGGMLInfoOfficialTestFiles(t *testing.T) {
	tests := []struct {
		file         string
		variant      string
		multilingual bool
		nVocab       int
	}{
		{"for-tests-ggml-tiny.en.bin", "tiny.en", false, 51864},
		{"for-tests-ggml-tiny.bin", "tiny", true, 51865},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			info, err := ReadGGMLInfo(sharedTestdata(t, "models/"+tt.file))
			if err != nil {
				t.Fatal(err)
			}
			// Loader test files: header, mel filters and vocabulary, no tensors.
			if info.ModelType != "tiny" || info.Variant != tt.variant || info.Multilingual != tt.multilingual ||
				info.NVocab != tt.nVocab || info.FType != 1 || info.TensorCount != 0 || info.HasWeights() ||
				info.Synthetic || info.MelBands != 80 || info.MelFFTBins != 201 {
				t.Fatalf("info %+v", info)
			}
		})
	}
}

func TestParseGGMLRejects(t *testing.T) {
	good, err := os.ReadFile(sharedTestdata(t, "models/for-tests-ggml-tiny.en.bin"))
	if err != nil {
		t.Fatal(err)
	}
	// A complete synthetic file, to cut inside the tensor section too.
	synth := filepath.Join(t.TempDir(), "s.bin")
	if err := Synthesize("tiny.en", synth, nil); err != nil {
		t.Fatal(err)
	}
	full, err := os.ReadFile(synth)
	if err != nil {
		t.Fatal(err)
	}
	wrongMagic := bytes.Clone(good)
	wrongMagic[0] = 'G'
	gguf := append([]byte("GGUF"), good[4:]...)
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"wrong magic", wrongMagic},
		{"gguf", gguf},
		{"cut in hparams", good[:20]},
		{"cut in mel filters", good[:1000]},
		{"cut in vocabulary", good[:len(good)-3]},
		{"cut in a tensor header", full[:len(full)-len(full)/2-1]},
		{"cut in tensor data", full[:len(full)-1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseGGML(bytes.NewReader(tt.data), int64(len(tt.data)))
			if !errors.Is(err, ErrBadModelFile) {
				t.Fatalf("error %v, want ErrBadModelFile", err)
			}
			// The same through a plain io.Reader (no ReaderAt).
			_, err = ParseGGML(struct{ *bytes.Reader }{bytes.NewReader(tt.data)}, int64(len(tt.data)))
			if !errors.Is(err, ErrBadModelFile) {
				t.Fatalf("plain reader: error %v, want ErrBadModelFile", err)
			}
		})
	}
	if _, err := ParseGGML(struct{ *bytes.Reader }{bytes.NewReader(full)}, int64(len(full))); err != nil {
		t.Fatalf("plain reader over a good file: %v", err)
	}
}

func FuzzParseGGML(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("..", "..", "shared", "testdata", "models", "for-tests-ggml-tiny.en.bin")); err == nil {
		f.Add(b[:2000])
	}
	var w bytes.Buffer
	g := &ggmlWriter{w: &w}
	g.header(Hparams{8, 4, 4, 1, 1, 4, 4, 1, 1, 2, 1}, make([]float32, 2*3), 2, 3)
	g.vocab([][]byte{[]byte(" "), []byte(SyntheticMarker)})
	g.tensorHeader("x", TypeF32, []int{2, 1})
	g.write(make([]byte, 8))
	f.Add(w.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := ParseGGML(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		if info.TensorBytes > int64(len(b)) || info.VocabEntries*4 > len(b) {
			t.Fatalf("accepted impossible sizes: %+v for %d bytes", info, len(b))
		}
	})
}
