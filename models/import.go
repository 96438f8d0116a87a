package models

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// ImportReport says what ImportCT2 read and wrote.
type ImportReport struct {
	Source        string        `json:"source"`
	Output        string        `json:"output"`
	CT2Version    uint32        `json:"ct2_binary_version"`
	SpecRevision  uint32        `json:"spec_revision"`
	Vocabulary    string        `json:"vocabulary_file"`
	Hparams       Hparams       `json:"hparams"`
	ModelType     string        `json:"model_type"`
	Variant       string        `json:"variant"`
	Multilingual  bool          `json:"multilingual"`
	VocabEntries  int           `json:"vocab_entries"`
	Tensors       int           `json:"tensors"`
	Bytes         int64         `json:"bytes"`
	SkippedScalar int           `json:"skipped_scalars"`
	Elapsed       time.Duration `json:"elapsed_ns"`
	// Warnings are differences between the export's config.json and what whisper.cpp
	// does with the imported file that do not stop the import (checkCT2Config).
	Warnings []string `json:"warnings,omitempty"`
}

// ImportCT2 converts a CTranslate2 Whisper model directory (model.bin,
// config.json, vocabulary.json or vocabulary.txt; float16 or float32 weights)
// into whisper.cpp's legacy ggml format at outPath. config.json's decoding
// rules must be the ones whisper.cpp applies (checkCT2Config). It writes outPath+".tmp",
// checks the result with ParseGGML, fsyncs and renames; on error nothing is
// left under outPath. progress (may be nil) gets a line per 10% of tensors.
func ImportCT2(ctx context.Context, dir, outPath string, progress io.Writer) (*ImportReport, error) {
	start := time.Now()
	binPath := filepath.Join(dir, "model.bin")
	f, err := os.Open(binPath)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", dir, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	m, err := ReadCT2(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", binPath, err)
	}
	if m.BinaryVersion >= 2 && m.Spec != "WhisperSpec" {
		return nil, fmt.Errorf("%w: %s holds a %q model", ErrNotWhisper, binPath, m.Spec)
	}
	h, err := ct2Dims(m)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", binPath, err)
	}
	if h.FType, err = chooseFType(m); err != nil {
		return nil, fmt.Errorf("import %s: %w", binPath, err)
	}
	plan := importPlan(h)
	for _, it := range plan {
		v, ok := m.Lookup(it.src)
		if !ok {
			return nil, fmt.Errorf("%w: %s has no variable %s", ErrNotWhisper, binPath, it.src)
		}
		if fmt.Sprint(v.Dims) != fmt.Sprint(it.want) {
			return nil, fmt.Errorf("%w: %s has shape %v, want %v for %s", ErrBadModelFile, it.src, v.Dims, it.want, it.name)
		}
	}
	toks, vocabPath, err := readCT2Vocabulary(dir)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", dir, err)
	}
	if len(toks) != int(h.NVocab) {
		return nil, fmt.Errorf("%w: %s has %d tokens, embeddings have %d rows", ErrBadModelFile, vocabPath, len(toks), h.NVocab)
	}
	vocab, err := ggmlVocab(toks, int(h.NVocab))
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", vocabPath, err)
	}
	cfg, err := readCT2Config(dir)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", dir, err)
	}
	warnings, err := checkCT2Config(cfg, h, vocab)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", dir, err)
	}

	rep := &ImportReport{Source: dir, Output: outPath, CT2Version: m.BinaryVersion, SpecRevision: m.SpecRevision,
		Vocabulary: vocabPath, Hparams: h, ModelType: h.ModelType(), Variant: variantOf(h),
		Multilingual: h.Multilingual(), VocabEntries: len(vocab), Tensors: len(plan), Warnings: warnings}
	for _, v := range m.Vars {
		if len(v.Dims) == 0 {
			rep.SkippedScalar++
		}
	}
	fill := func(w io.Writer) error {
		g := &ggmlWriter{w: w}
		g.header(h, MelFilters(int(h.NMels)), int(h.NMels), nFFTBins)
		g.vocab(vocab)
		next := 1
		for i, it := range plan {
			if err := ctx.Err(); err != nil {
				return err
			}
			data, err := planData(m, it)
			if err != nil {
				return err
			}
			g.tensorHeader(it.name, it.ttype, it.ne)
			g.write(data)
			if g.err != nil {
				return fmt.Errorf("write %s: %w", outPath, g.err)
			}
			if progress != nil && (i+1)*10 >= next*len(plan) {
				fmt.Fprintf(progress, "import: %d/%d tensors, %.1f MB written\n", i+1, len(plan), float64(g.n)/1e6)
				next = (i+1)*10/len(plan) + 1
			}
		}
		rep.Bytes = g.n
		return nil
	}
	check := func(tmp string) error {
		info, err := ReadGGMLInfo(tmp)
		if err != nil {
			return fmt.Errorf("re-reading written file: %w", err)
		}
		if info.TensorCount != info.ExpectedTensors {
			return fmt.Errorf("%w: wrote %d tensors, whisper.cpp expects %d", ErrBadModelFile, info.TensorCount, info.ExpectedTensors)
		}
		return nil
	}
	if err := writeAtomic(outPath, fill, check); err != nil {
		return nil, fmt.Errorf("import %s: %w", dir, err)
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// chooseFType is 1 (mostly F16) when every matrix is float16, else 0 (all
// F32, converting float16/bfloat16). Integer weights (int8 quantized
// exports) cannot be converted.
func chooseFType(m *CT2Model) (int32, error) {
	allF16 := true
	for _, name := range m.Order {
		v := m.Vars[name]
		if len(v.Dims) == 0 {
			continue
		}
		switch v.DType {
		case CT2Float16:
		case CT2Float32, CT2BFloat16:
			allF16 = false
		default:
			return 0, fmt.Errorf("%w: %s is %s (re-export the model with --quantization float16)", ErrUnsupported, name, v.DType)
		}
	}
	if allF16 {
		return 1, nil
	}
	return 0, nil
}

// planData reads the rows of one plan item and converts them to its type.
func planData(m *CT2Model, it planItem) ([]byte, error) {
	v, _ := m.Lookup(it.src)
	raw, err := m.Data(v)
	if err != nil {
		return nil, err
	}
	isz := int64(v.DType.Size())
	rowBytes := v.Elems() / int64(v.Dims[0]) * isz
	if it.zero[1] > 0 {
		z := raw[int64(it.zero[0])*rowBytes : int64(it.zero[1])*rowBytes]
		for i := 0; i+int(isz) <= len(z); i += int(isz) {
			var mag uint32 // the value without its sign bit: ±0 are both zero
			if isz == 2 {
				mag = uint32(binary.LittleEndian.Uint16(z[i:]) & 0x7fff)
			} else {
				mag = binary.LittleEndian.Uint32(z[i:]) & 0x7fffffff
			}
			if mag != 0 {
				return nil, fmt.Errorf("%w: %s rows [%d,%d) should be the zero key bias of a fused projection",
					ErrBadModelFile, it.src, it.zero[0], it.zero[1])
			}
		}
	}
	src := raw[int64(it.row0)*rowBytes : int64(it.row1)*rowBytes]
	return convertFloats(src, v.DType, it.ttype)
}

func convertFloats(src []byte, from CT2DType, to GGMLType) ([]byte, error) {
	if (from == CT2Float16 && to == TypeF16) || (from == CT2Float32 && to == TypeF32) {
		return src, nil
	}
	n := len(src) / from.Size()
	at := func(i int) float32 {
		switch from {
		case CT2Float16:
			return HalfToFloat(binary.LittleEndian.Uint16(src[2*i:]))
		case CT2BFloat16:
			return bf16ToFloat(binary.LittleEndian.Uint16(src[2*i:]))
		}
		return float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
	switch to {
	case TypeF32:
		out := make([]byte, 4*n)
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint32(out[4*i:], math32bits(at(i)))
		}
		return out, nil
	case TypeF16:
		out := make([]byte, 2*n)
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint16(out[2*i:], floatToHalf(at(i)))
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: conversion %s → ggml type %d", ErrUnsupported, from, to)
}
