package models

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// GGMLMagic is the legacy ggml container magic ("ggml" read as a
// little-endian u32; on disk 6c 6d 67 67).
const GGMLMagic = 0x67676d6c

// SyntheticMarker is the last vocabulary entry of files written by
// Synthesize; ReadGGMLInfo reports Synthetic=true when it finds it.
const SyntheticMarker = "<|earshot:synthetic|>"

// GGMLType is a ggml tensor type id (ggml/include/ggml.h enum ggml_type).
type GGMLType int32

// The tensor types whisper.cpp model files use.
const (
	TypeF32  GGMLType = 0
	TypeF16  GGMLType = 1
	TypeQ4_0 GGMLType = 2
	TypeQ4_1 GGMLType = 3
	TypeQ5_0 GGMLType = 6
	TypeQ5_1 GGMLType = 7
	TypeQ8_0 GGMLType = 8
	TypeQ2_K GGMLType = 10
	TypeQ3_K GGMLType = 11
	TypeQ4_K GGMLType = 12
	TypeQ5_K GGMLType = 13
	TypeQ6_K GGMLType = 14
	TypeBF16 GGMLType = 30
)

// blockSize returns elements per block and bytes per block (ggml.c
// type_traits); ok is false for a type this reader does not know.
func (t GGMLType) blockSize() (elems, bytes int64, ok bool) {
	switch t {
	case TypeF32:
		return 1, 4, true
	case TypeF16, TypeBF16:
		return 1, 2, true
	case TypeQ4_0:
		return 32, 18, true
	case TypeQ4_1:
		return 32, 20, true
	case TypeQ5_0:
		return 32, 22, true
	case TypeQ5_1:
		return 32, 24, true
	case TypeQ8_0:
		return 32, 34, true
	case TypeQ2_K:
		return 256, 84, true
	case TypeQ3_K:
		return 256, 110, true
	case TypeQ4_K:
		return 256, 144, true
	case TypeQ5_K:
		return 256, 176, true
	case TypeQ6_K:
		return 256, 210, true
	}
	return 0, 0, false
}

// Hparams are the eleven i32 hyperparameters after the magic, in file order.
type Hparams struct {
	NVocab      int32 `json:"n_vocab"`
	NAudioCtx   int32 `json:"n_audio_ctx"`
	NAudioState int32 `json:"n_audio_state"`
	NAudioHead  int32 `json:"n_audio_head"`
	NAudioLayer int32 `json:"n_audio_layer"`
	NTextCtx    int32 `json:"n_text_ctx"`
	NTextState  int32 `json:"n_text_state"`
	NTextHead   int32 `json:"n_text_head"`
	NTextLayer  int32 `json:"n_text_layer"`
	NMels       int32 `json:"n_mels"`
	FType       int32 `json:"ftype"`
}

func (h *Hparams) fields() []*int32 {
	return []*int32{&h.NVocab, &h.NAudioCtx, &h.NAudioState, &h.NAudioHead, &h.NAudioLayer,
		&h.NTextCtx, &h.NTextState, &h.NTextHead, &h.NTextLayer, &h.NMels, &h.FType}
}

// ExpectedTensors is the tensor count whisper.cpp's loader requires.
func (h Hparams) ExpectedTensors() int {
	return 7 + 15*int(h.NAudioLayer) + 4 + 24*int(h.NTextLayer)
}

// Multilingual follows whisper.cpp: n_vocab ≥ 51865.
func (h Hparams) Multilingual() bool { return h.NVocab >= 51865 }

// ModelType is whisper.cpp's size class, chosen by the encoder layer count.
func (h Hparams) ModelType() string {
	switch h.NAudioLayer {
	case 4:
		return "tiny"
	case 6:
		return "base"
	case 12:
		return "small"
	case 24:
		return "medium"
	case 32:
		return "large"
	}
	return "unknown"
}

// GGMLInfo describes a whisper.cpp ggml file without loading its weights.
type GGMLInfo struct {
	Hparams         Hparams `json:"hparams"`
	ModelType       string  `json:"model_type"` // tiny|base|small|medium|large|unknown
	Variant         string  `json:"variant"`    // best guess at the catalog dims, e.g. "large-v3-turbo"
	NVocab          int     `json:"n_vocab"`
	VocabEntries    int     `json:"vocab_entries"` // strings stored; whisper.cpp names the rest
	Multilingual    bool    `json:"multilingual"`
	FType           int32   `json:"ftype"` // hparams.ftype % 1000
	QuantVersion    int32   `json:"quant_version"`
	MelBands        int     `json:"mel_bands"`
	MelFFTBins      int     `json:"mel_fft_bins"`
	TensorCount     int     `json:"tensor_count"`
	ExpectedTensors int     `json:"expected_tensors"`
	TensorBytes     int64   `json:"tensor_bytes"`
	Synthetic       bool    `json:"synthetic"`
	Size            int64   `json:"size"`
}

// HasWeights reports whether the file holds the full tensor set (loader test
// files such as for-tests-ggml-tiny.en.bin hold none).
func (i *GGMLInfo) HasWeights() bool { return i.TensorCount == i.ExpectedTensors }

// ReadGGMLInfo opens path and parses it with ParseGGML.
func ReadGGMLInfo(path string) (*GGMLInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	info, err := ParseGGML(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return info, nil
}

// ParseGGML reads a whisper.cpp legacy ggml file of the given size: header,
// mel filters, vocabulary, then walks every tensor header (skipping data).
// A wrong magic, implausible hparams, a truncated block or a tensor whose
// data runs past the end are ErrBadModelFile. r may be an io.ReaderAt (an
// *os.File), in which case tensor data is skipped without reading it.
func ParseGGML(r io.Reader, size int64) (*GGMLInfo, error) {
	c := newCursor(asReaderAt(r), size)
	magic, err := c.u32("magic")
	if err != nil {
		return nil, err
	}
	if magic != GGMLMagic {
		return nil, fmt.Errorf("%w: magic %#08x is not ggml (%#08x)", ErrBadModelFile, magic, GGMLMagic)
	}
	info := &GGMLInfo{Size: size}
	h := &info.Hparams
	for _, p := range h.fields() {
		if *p, err = c.i32("hparams"); err != nil {
			return nil, err
		}
	}
	if err := checkHparams(*h); err != nil {
		return nil, err
	}
	info.NVocab = int(h.NVocab)
	info.Multilingual = h.Multilingual()
	info.FType, info.QuantVersion = h.FType%1000, h.FType/1000
	info.ModelType = h.ModelType()
	info.Variant = variantOf(*h)
	info.ExpectedTensors = h.ExpectedTensors()

	nMel, err := c.i32("mel n_mel")
	if err != nil {
		return nil, err
	}
	nFFT, err := c.i32("mel n_fft")
	if err != nil {
		return nil, err
	}
	if nMel <= 0 || nMel > 1024 || nFFT <= 0 || nFFT > 4096 {
		return nil, fmt.Errorf("%w: mel filter block %d×%d", ErrBadModelFile, nMel, nFFT)
	}
	info.MelBands, info.MelFFTBins = int(nMel), int(nFFT)
	if err := c.skip(int64(nMel)*int64(nFFT)*4, "mel filters"); err != nil {
		return nil, err
	}

	nv, err := c.i32("vocab count")
	if err != nil {
		return nil, err
	}
	if nv < 0 || int64(nv)*4 > c.remaining() {
		return nil, fmt.Errorf("%w: vocabulary count %d", ErrBadModelFile, nv)
	}
	info.VocabEntries = int(nv)
	var last []byte
	for i := int32(0); i < nv; i++ {
		n, err := c.u32("token length")
		if err != nil {
			return nil, fmt.Errorf("token %d: %w", i, err)
		}
		b, err := c.bytes(int64(n), "token")
		if err != nil {
			return nil, fmt.Errorf("token %d: %w", i, err)
		}
		if i == nv-1 {
			last = b
		}
	}
	info.Synthetic = string(last) == SyntheticMarker

	for c.remaining() > 0 {
		nb, err := walkTensor(c)
		if err != nil {
			return nil, fmt.Errorf("tensor %d: %w", info.TensorCount, err)
		}
		info.TensorCount++
		info.TensorBytes += nb
	}
	return info, nil
}

func checkHparams(h Hparams) error {
	ok := h.NVocab > 0 && h.NVocab <= 1<<20 &&
		h.NAudioCtx > 0 && h.NAudioCtx <= 1<<16 && h.NTextCtx > 0 && h.NTextCtx <= 1<<16 &&
		h.NAudioState > 0 && h.NAudioState <= 1<<16 && h.NTextState > 0 && h.NTextState <= 1<<16 &&
		h.NAudioHead > 0 && h.NAudioHead <= h.NAudioState && h.NTextHead > 0 && h.NTextHead <= h.NTextState &&
		h.NAudioLayer > 0 && h.NAudioLayer <= 256 && h.NTextLayer > 0 && h.NTextLayer <= 256 &&
		h.NMels > 0 && h.NMels <= 1024 && h.FType >= 0
	if !ok {
		return fmt.Errorf("%w: implausible hparams %+v", ErrBadModelFile, h)
	}
	return nil
}

// walkTensor reads one tensor header and skips its data, returning the data size.
func walkTensor(c *cursor) (int64, error) {
	nDims, err := c.i32("n_dims")
	if err != nil {
		return 0, err
	}
	nameLen, err := c.i32("name length")
	if err != nil {
		return 0, err
	}
	ttype, err := c.i32("tensor type")
	if err != nil {
		return 0, err
	}
	if nDims < 1 || nDims > 4 || nameLen < 1 || nameLen > 1024 {
		return 0, fmt.Errorf("%w: n_dims %d, name length %d", ErrBadModelFile, nDims, nameLen)
	}
	be, bb, ok := GGMLType(ttype).blockSize()
	if !ok {
		return 0, fmt.Errorf("%w: tensor type %d", ErrUnsupported, ttype)
	}
	elems := int64(1)
	var ne0 int64
	for i := int32(0); i < nDims; i++ {
		d, err := c.i32("ne")
		if err != nil {
			return 0, err
		}
		if d <= 0 || elems > (1<<40)/int64(d) {
			return 0, fmt.Errorf("%w: dimension %d", ErrBadModelFile, d)
		}
		if i == 0 {
			ne0 = int64(d)
		}
		elems *= int64(d)
	}
	if ne0%be != 0 {
		return 0, fmt.Errorf("%w: row of %d elements is not a multiple of block %d", ErrBadModelFile, ne0, be)
	}
	name, err := c.bytes(int64(nameLen), "tensor name")
	if err != nil {
		return 0, err
	}
	nb := elems / be * bb
	if err := c.skip(nb, "tensor "+string(name)); err != nil {
		return 0, err
	}
	return nb, nil
}

// variantOf guesses the catalog dims name from the hparams.
func variantOf(h Hparams) string {
	t := h.ModelType()
	switch {
	case t == "unknown":
		return t
	case t == "large" && h.NMels == 128 && h.NTextLayer == 4:
		return "large-v3-turbo"
	case t == "large" && h.NMels == 128:
		return "large-v3"
	case t != "large" && !h.Multilingual():
		return t + ".en"
	}
	return t
}

// ggmlWriter writes the legacy container with little-endian fields.
type ggmlWriter struct {
	w   io.Writer
	err error
	n   int64
}

func (g *ggmlWriter) write(b []byte) {
	if g.err != nil {
		return
	}
	n, err := g.w.Write(b)
	g.n += int64(n)
	g.err = err
}

func (g *ggmlWriter) i32(v int32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(v))
	g.write(b[:])
}

func (g *ggmlWriter) header(h Hparams, mel []float32, nMel, nFFT int) {
	g.i32(GGMLMagic)
	for _, p := range h.fields() {
		g.i32(*p)
	}
	g.i32(int32(nMel))
	g.i32(int32(nFFT))
	b := make([]byte, 4*len(mel))
	for i, v := range mel {
		binary.LittleEndian.PutUint32(b[4*i:], math32bits(v))
	}
	g.write(b)
}

func (g *ggmlWriter) vocab(tokens [][]byte) {
	g.i32(int32(len(tokens)))
	for _, t := range tokens {
		g.i32(int32(len(t)))
		g.write(t)
	}
}

// tensorHeader writes n_dims, name length, type, ne (innermost first), name.
func (g *ggmlWriter) tensorHeader(name string, t GGMLType, ne []int) {
	g.i32(int32(len(ne)))
	g.i32(int32(len(name)))
	g.i32(int32(t))
	for _, d := range ne {
		g.i32(int32(d))
	}
	g.write([]byte(name))
}
