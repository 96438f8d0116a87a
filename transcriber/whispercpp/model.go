package whispercpp

/*
#include <stdlib.h>
#include <whisper.h>
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"unsafe"

	"github.com/earshot-dev/earshot/models"
)

// ContextParams are whisper_context_params: where the weights run.
type ContextParams struct {
	UseGPU    bool
	FlashAttn bool
	GPUDevice int
	// DTW names the alignment heads of the model ("tiny.en", "base", …; see dtwPresets)
	// for DTW token times (Token.TDTW), OpenAI's word-timestamp method; "auto" picks them
	// from the file's hyper-parameters (DTWPreset). Empty = off. whisper.cpp computes
	// them (patch 0003) only on calls with Params.TokenTimestamps. DTW reads the
	// decoder's cross-attention weights, which flash attention never forms: with DTW,
	// FlashAttn applies to the encoder only (patch 0008).
	DTW string
}

// dtwPresets maps model names to whisper.cpp's alignment-head presets.
var dtwPresets = map[string]C.enum_whisper_alignment_heads_preset{
	"tiny.en": C.WHISPER_AHEADS_TINY_EN, "tiny": C.WHISPER_AHEADS_TINY,
	"base.en": C.WHISPER_AHEADS_BASE_EN, "base": C.WHISPER_AHEADS_BASE,
	"small.en": C.WHISPER_AHEADS_SMALL_EN, "small": C.WHISPER_AHEADS_SMALL,
	"medium.en": C.WHISPER_AHEADS_MEDIUM_EN, "medium": C.WHISPER_AHEADS_MEDIUM,
	"large-v1": C.WHISPER_AHEADS_LARGE_V1, "large-v2": C.WHISPER_AHEADS_LARGE_V2,
	"large-v3": C.WHISPER_AHEADS_LARGE_V3, "large-v3-turbo": C.WHISPER_AHEADS_LARGE_V3_TURBO,
}

// DefaultContextParams returns whisper.cpp's defaults (use_gpu and flash_attn
// on, device 0); on a CPU-only build use_gpu has no effect.
func DefaultContextParams() ContextParams {
	p := C.whisper_context_default_params()
	return ContextParams{UseGPU: bool(p.use_gpu), FlashAttn: bool(p.flash_attn), GPUDevice: int(p.gpu_device)}
}

// ModelInfo describes loaded weights.
type ModelInfo struct {
	Type         string // "tiny", "base", … (whisper_model_type_readable)
	Multilingual bool
	// Languages is how many languages the model knows: 1 (English) for an .en model,
	// 99 for multilingual ones up to large-v2, 100 for large-v3 (whisper's tokenizer has
	// one token per language, between <|startoftranscript|> and <|translate|>).
	Languages   int
	NVocab      int
	NAudioCtx   int // encoder positions (1500 = 30 s)
	NTextCtx    int
	NAudioState int
	NAudioLayer int
	NTextLayer  int
}

// Model is one whisper_context loaded without a default state: weights and
// vocabulary only, shared by every State made from it. Safe for concurrent use.
// The C context is freed when the Model is closed and its last State is closed.
type Model struct {
	mu     sync.RWMutex
	ctx    *C.struct_whisper_context
	refs   int // 1 for the Model itself + 1 per open State
	closed bool
	eot    int
	dtw    bool
	info   ModelInfo
}

// RepackedBytes is how much of the weights ggml repacked at load for a faster matrix
// kernel (whisper patch 0010: q8_0 weights, built for and run on a CPU with AVX-512 VNNI);
// 0 when they are used as stored: other weight types and CPUs, or EARSHOT_Q8_REPACK=0 in
// the environment when the model was loaded.
func (m *Model) RepackedBytes() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return 0
	}
	return int64(C.whisper_earshot_repacked_bytes(m.ctx))
}

// Load reads a ggml whisper model (whisper_init_from_file_with_params_no_state).
func Load(path string, p ContextParams) (*Model, error) {
	if err := CPUSupported(); err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, errors.Join(ErrLoad, err))
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("load %s: not a regular file: %w", path, ErrLoad)
	}
	h, err := checkHeader(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	cp := C.whisper_context_default_params()
	if p.DTW == "auto" {
		if p.DTW = h.dtwPreset(); p.DTW == "" {
			return nil, fmt.Errorf("load %s: no DTW alignment heads known for a model of %d audio layers, %d text layers, %d tokens (set no word times for it): %w",
				path, h.NAudioLayer, h.NTextLayer, h.NVocab, ErrInvalid)
		}
	}
	if p.DTW != "" {
		preset, ok := dtwPresets[p.DTW]
		if !ok {
			return nil, fmt.Errorf("load %s: no DTW alignment heads known for %q (known: tiny.en, base, small.en …): %w", path, p.DTW, ErrInvalid)
		}
		cp.dtw_token_timestamps = true
		cp.dtw_aheads_preset = preset
	}
	cp.use_gpu = C.bool(p.UseGPU)
	cp.flash_attn = C.bool(p.FlashAttn)
	cp.gpu_device = C.int(p.GPUDevice)
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	ctx := C.whisper_init_from_file_with_params_no_state(cpath, cp)
	if ctx == nil {
		return nil, fmt.Errorf("load %s: whisper.cpp rejected the file (not a complete ggml whisper model?): %w", path, ErrLoad)
	}
	m := &Model{ctx: ctx, refs: 1, eot: int(C.whisper_token_eot(ctx)), dtw: p.DTW != ""}
	m.info = ModelInfo{
		Type:         C.GoString(C.whisper_model_type_readable(ctx)),
		Multilingual: C.whisper_is_multilingual(ctx) != 0,
		NVocab:       int(C.whisper_n_vocab(ctx)),
		NAudioCtx:    int(C.whisper_n_audio_ctx(ctx)),
		NTextCtx:     int(C.whisper_n_text_ctx(ctx)),
		NAudioState:  int(C.whisper_model_n_audio_state(ctx)),
		NAudioLayer:  int(C.whisper_model_n_audio_layer(ctx)),
		NTextLayer:   int(C.whisper_model_n_text_layer(ctx)),
	}
	m.info.Languages = 1
	if m.info.Multilingual {
		m.info.Languages = int(C.whisper_token_translate(ctx) - C.whisper_token_sot(ctx) - 1)
	}
	return m, nil
}

// Info describes the loaded weights. It stays valid after Close.
func (m *Model) Info() ModelInfo { return m.info }

// Close releases the Model. The weights are freed once every State made from
// it is closed too. Close is idempotent.
func (m *Model) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	m.release()
	return nil
}

func (m *Model) acquire() (*C.struct_whisper_context, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.ctx == nil {
		return nil, ErrClosed
	}
	m.refs++
	return m.ctx, nil
}

func (m *Model) release() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refs--
	if m.refs == 0 && m.ctx != nil {
		C.whisper_free(m.ctx)
		m.ctx = nil
	}
}

// NewState allocates a decoding state (whisper_init_state): KV caches and
// compute buffers, about 100 MB whatever the model size.
func (m *Model) NewState() (*State, error) {
	ctx, err := m.acquire()
	if err != nil {
		return nil, err
	}
	st := C.whisper_init_state(ctx)
	if st == nil {
		m.release()
		return nil, fmt.Errorf("whisper_init_state: %w", ErrDecode)
	}
	return &State{m: m, ctx: ctx, st: st}, nil
}

// Tokenize converts text to token ids (whisper_tokenize). Safe for concurrent
// use, also while States decode.
func (m *Model) Tokenize(text string) ([]int, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed || m.ctx == nil {
		return nil, ErrClosed
	}
	if text == "" {
		return nil, nil
	}
	ctext := C.CString(text)
	defer C.free(unsafe.Pointer(ctext))
	n := len(text) + 1 // a BPE token covers at least one byte
	buf := (*C.whisper_token)(C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(C.whisper_token(0)))))
	defer C.free(unsafe.Pointer(buf))
	got := int(C.whisper_tokenize(m.ctx, ctext, buf, C.int(n)))
	if got < 0 {
		return nil, fmt.Errorf("tokenize %d bytes: needs %d tokens: %w", len(text), -got, ErrInvalid)
	}
	ids := unsafe.Slice(buf, got)
	out := make([]int, got)
	for i, id := range ids {
		out[i] = int(id)
	}
	return out, nil
}

// TokenText returns the bytes of token id (whisper_token_to_str); "" when id
// is out of range or the Model is closed.
func (m *Model) TokenText(id int) string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed || m.ctx == nil || id < 0 || id >= m.info.NVocab {
		return ""
	}
	return C.GoString(C.whisper_token_to_str(m.ctx, C.whisper_token(id)))
}

// EOT is the end-of-text token id; every id ≥ EOT is a special token.
func (m *Model) EOT() int { return m.eot }

// header is the hyper-parameters at the start of a ggml whisper file.
type header struct {
	Magic                                        uint32
	NVocab, NAudioCtx, NAudioState, NAudioHead   int32
	NAudioLayer, NTextCtx, NTextState, NTextHead int32
	NTextLayer, NMels, FType                     int32
}

// dtwPreset names the alignment heads of OpenAI's checkpoint with these
// hyper-parameters: models.DTWPreset.
func (h header) dtwPreset() string {
	return models.DTWPreset(models.Hparams{NVocab: h.NVocab, NAudioCtx: h.NAudioCtx, NAudioState: h.NAudioState,
		NAudioHead: h.NAudioHead, NAudioLayer: h.NAudioLayer, NTextCtx: h.NTextCtx, NTextState: h.NTextState,
		NTextHead: h.NTextHead, NTextLayer: h.NTextLayer, NMels: h.NMels, FType: h.FType})
}

// DTWPreset reads the header of a ggml whisper file and names the alignment heads
// that ContextParams.DTW "auto" would use ("" if none is known).
func DTWPreset(path string) (string, error) {
	h, err := checkHeader(path)
	if err != nil {
		return "", err
	}
	return h.dtwPreset(), nil
}

// checkHeader rejects files whisper.cpp would abort the process on (a
// GGML_ASSERT on an unknown weight type, e.g. a Silero VAD file): it reads
// the ggml magic and the 11 int32 hyper-parameters and checks their ranges.
func checkHeader(path string) (header, error) {
	var h header
	f, err := os.Open(path)
	if err != nil {
		return h, errors.Join(ErrLoad, err)
	}
	defer f.Close()
	if err := binary.Read(f, binary.LittleEndian, &h); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return h, fmt.Errorf("file too short for a ggml whisper header: %w", ErrLoad)
		}
		return h, errors.Join(ErrLoad, err)
	}
	if h.Magic != 0x67676d6c {
		return h, fmt.Errorf("not a ggml file (magic %#x): %w", h.Magic, ErrLoad)
	}
	in := func(v, lo, hi int32) bool { return v >= lo && v <= hi }
	if !in(h.NVocab, 1, 1<<20) || !in(h.NAudioCtx, 1, 1<<16) || !in(h.NAudioState, 1, 1<<16) ||
		!in(h.NAudioHead, 1, 1024) || !in(h.NAudioLayer, 1, 1024) || !in(h.NTextCtx, 1, 1<<16) ||
		!in(h.NTextState, 1, 1<<16) || !in(h.NTextHead, 1, 1024) || !in(h.NTextLayer, 1, 1024) ||
		(h.NMels != 80 && h.NMels != 128) {
		return h, fmt.Errorf("not a whisper model (hyper-parameters %+v): %w", h, ErrLoad)
	}
	switch h.FType % 1000 { // GGML_QNT_VERSION_FACTOR
	case 0, 1, 2, 3, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27: // ggml_ftype_to_ggml_type maps these
	default:
		return h, fmt.Errorf("unsupported weight type ftype=%d: %w", h.FType, ErrLoad)
	}
	// whisper.cpp accepts a file with no tensors as an "empty model for
	// testing" (its for-tests-ggml-*.bin); real weights hold at least the token
	// embedding, n_vocab × n_text_state values of 2 bits or more.
	if st, err := f.Stat(); err == nil && st.Size() < int64(h.NVocab)*int64(h.NTextState)/4 {
		return h, fmt.Errorf("file of %d bytes holds no weights (a vocabulary-only test file?): %w", st.Size(), ErrLoad)
	}
	return h, nil
}

// LangStr is whisper.cpp's code of language id (the order of its language tokens), ""
// past the last it knows.
func LangStr(id int) string {
	if id < 0 || id > int(C.whisper_lang_max_id()) {
		return ""
	}
	return C.GoString(C.whisper_lang_str(C.int(id)))
}
