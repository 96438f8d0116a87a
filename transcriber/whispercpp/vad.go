package whispercpp

/*
#include <stdlib.h>
#include <whisper.h>
*/
import "C"

import (
	"fmt"
	"os"
	"sync"
	"unsafe"
)

// VADWindow is the Silero window whisper.cpp's converter writes: 512 samples,
// 32 ms at 16 kHz. LoadVAD checks the file agrees.
const VADWindow = 512

// VAD is one Silero voice-activity context (whisper_vad_*) with its own weight
// copy (about 1 MB) and LSTM state: use one per stream. Calls are serialised.
type VAD struct {
	mu sync.Mutex
	v  *C.struct_whisper_vad_context
}

// LoadVAD loads a ggml Silero model (whisper_vad_init_from_file_with_params) on
// the CPU with the given number of threads (1 is right for a 512-sample window).
func LoadVAD(path string, threads int) (*VAD, error) {
	if err := CPUSupported(); err != nil {
		return nil, fmt.Errorf("load VAD %s: %w", path, err)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("load VAD %s: %w: %w", path, ErrLoad, err)
	}
	if threads < 1 {
		threads = 1
	}
	cp := C.whisper_vad_default_context_params()
	cp.n_threads = C.int(threads)
	cp.use_gpu = false
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	v := C.whisper_vad_init_from_file_with_params(cpath, cp)
	if v == nil {
		return nil, fmt.Errorf("load VAD %s: whisper.cpp rejected the file: %w", path, ErrLoad)
	}
	vad := &VAD{v: v}
	// The window length is not exposed; check it from the number of
	// probabilities two windows of silence give.
	probe := make([]float32, 2*VADWindow)
	ok := C.whisper_vad_detect_speech(v, (*C.float)(unsafe.Pointer(&probe[0])), C.int(len(probe)))
	n := int(C.whisper_vad_n_probs(v))
	C.whisper_vad_reset_state(v)
	if !bool(ok) || n != 2 {
		vad.Close()
		return nil, fmt.Errorf("load VAD %s: window is not %d samples (%d probabilities for %d samples): %w", path, VADWindow, n, len(probe), ErrLoad)
	}
	return vad, nil
}

// DetectSpeechNoReset runs the model over samples, a whole number of
// VADWindow windows, keeping the LSTM state from the previous call
// (whisper_vad_detect_speech_no_reset), and returns one speech probability per
// window.
func (v *VAD) DetectSpeechNoReset(samples []float32) ([]float32, error) {
	if len(samples)%VADWindow != 0 {
		return nil, fmt.Errorf("VAD input of %d samples is not a multiple of %d: %w", len(samples), VADWindow, ErrInvalid)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.v == nil {
		return nil, ErrClosed
	}
	if len(samples) == 0 {
		return nil, nil
	}
	if !bool(C.whisper_vad_detect_speech_no_reset(v.v, (*C.float)(unsafe.Pointer(&samples[0])), C.int(len(samples)))) {
		return nil, fmt.Errorf("whisper_vad_detect_speech_no_reset: %w", ErrDecode)
	}
	n := int(C.whisper_vad_n_probs(v.v))
	out := make([]float32, n)
	if n > 0 {
		copy(out, unsafe.Slice((*float32)(unsafe.Pointer(C.whisper_vad_probs(v.v))), n))
	}
	return out, nil
}

// Reset zeroes the LSTM state (between utterances or streams).
func (v *VAD) Reset() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.v == nil {
		return ErrClosed
	}
	C.whisper_vad_reset_state(v.v)
	return nil
}

// Close frees the context. Idempotent.
func (v *VAD) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.v != nil {
		C.whisper_vad_free(v.v)
		v.v = nil
	}
	return nil
}
