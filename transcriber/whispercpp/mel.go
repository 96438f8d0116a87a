package whispercpp

/*
#include "bridge.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// FFTSize and Bins are the frame length of whisper's log-mel spectrogram (25 ms at 16 kHz)
// and the number of frequency bins of its power spectrum.
const (
	FFTSize = 400
	Bins    = FFTSize/2 + 1
)

// powerSpectrum returns |X[k]|² for k < Bins of each FFTSize-sample frame in frames, as
// the log-mel spectrogram computes it (patch 0009's table product). For tests: it checks
// the patch against a float64 DFT.
func powerSpectrum(frames []float32) ([]float32, error) {
	if len(frames) == 0 || len(frames)%FFTSize != 0 {
		return nil, fmt.Errorf("power spectrum of %d samples: not whole frames of %d: %w", len(frames), FFTSize, ErrInvalid)
	}
	n := len(frames) / FFTSize
	out := make([]float32, n*Bins)
	C.whisper_earshot_power_spectrum((*C.float)(unsafe.Pointer(&frames[0])), C.int(n), (*C.float)(unsafe.Pointer(&out[0])))
	return out, nil
}

// mel computes the state's log-mel spectrogram of samples and nothing else. For
// benchmarks: the part of every decode that patch 0009 made cheaper.
func (s *State) mel(samples []float32, threads int) error {
	if len(samples) < MinSamples || threads < 1 {
		return fmt.Errorf("mel of %d samples on %d threads: %w", len(samples), threads, ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st == nil {
		return ErrClosed
	}
	s.detected = detectedInput{} // the mel no longer matches a detection's encoding
	if rc := C.whisper_pcm_to_mel_with_state(s.ctx, s.st, (*C.float)(unsafe.Pointer(&samples[0])), C.int(len(samples)), C.int(threads)); rc != 0 {
		return fmt.Errorf("whisper_pcm_to_mel_with_state: code %d: %w", int(rc), ErrDecode)
	}
	return nil
}
