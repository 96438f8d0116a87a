package smartturn

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "ort.h"
*/
import "C"

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"unsafe"
)

// Install facts: what scripts/smartturn.sh puts in the cache.
const (
	// ModelFile is the model's file name in the cache and in the pipecat wheel.
	ModelFile = "smart-turn-v3.2-cpu.onnx"
	// RuntimeFile is ONNX Runtime's shared library, from the PyPI wheel onnxruntime==1.31.1.
	RuntimeFile = "libonnxruntime.so.1.31.1"
	// EnvLib overrides where ONNX Runtime's library is (Options.LibPath wins).
	EnvLib = "EARSHOT_ORT_LIB"

	inputName   = "input_features"
	installHint = "run scripts/smartturn.sh (or `make turn-model`)"
)

// Options says how to load the model.
type Options struct {
	// LibPath is ONNX Runtime's shared library; "" means $EARSHOT_ORT_LIB, else
	// the one scripts/smartturn.sh installs beside the model (DefaultLibPath).
	LibPath string
	// Threads is ONNX Runtime's intra-op threads for one prediction; ≤ 0 means 1.
	Threads int
}

// cacheDir is scripts/smartturn.sh's directory:
// ${EARSHOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/earshot}/smartturn.
func cacheDir() string {
	base := os.Getenv("EARSHOT_CACHE")
	if base == "" {
		xdg := os.Getenv("XDG_CACHE_HOME")
		if xdg == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				home = os.TempDir()
			}
			xdg = filepath.Join(home, ".cache")
		}
		base = filepath.Join(xdg, "earshot")
	}
	return filepath.Join(base, "smartturn")
}

// DefaultModelPath is where scripts/smartturn.sh installs the model.
func DefaultModelPath() string { return filepath.Join(cacheDir(), ModelFile) }

// DefaultLibPath is where scripts/smartturn.sh installs ONNX Runtime.
func DefaultLibPath() string { return filepath.Join(cacheDir(), RuntimeFile) }

// The library is loaded once per process (one OrtEnv, as ONNX Runtime wants)
// and never unloaded; every Model shares it.
var (
	libMu   sync.Mutex
	libPath string
	lib     *C.st_lib
)

func loadRuntime(path string) (*C.st_lib, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%w: %v (%s)", ErrRuntime, err, installHint)
	}
	libMu.Lock()
	defer libMu.Unlock()
	if lib != nil {
		if path != libPath {
			return nil, fmt.Errorf("%w: %s: ONNX Runtime is already loaded from %s (one library per process)", ErrRuntime, path, libPath)
		}
		return lib, nil
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var l *C.st_lib
	var cerr *C.char
	if C.st_load(cpath, &l, &cerr) != 0 {
		return nil, fmt.Errorf("%w: %s: %s (%s)", ErrRuntime, path, takeErr(cerr), installHint)
	}
	lib, libPath = l, path
	return lib, nil
}

func takeErr(e *C.char) string {
	if e == nil {
		return "unknown error"
	}
	defer C.free(unsafe.Pointer(e))
	return C.GoString(e)
}

// RuntimeVersion is the version of the loaded ONNX Runtime, "" before Open.
func RuntimeVersion() string {
	libMu.Lock()
	defer libMu.Unlock()
	if lib == nil {
		return ""
	}
	return C.GoString(C.st_version(lib))
}

// Model is the Smart Turn v3 model in one ONNX Runtime session. Predict is
// safe for concurrent use (ONNX Runtime runs a session from many threads);
// Close waits for running predictions and may be called more than once.
type Model struct {
	mu   sync.RWMutex
	s    *C.st_session // nil once closed
	bufs sync.Pool     // *[]float32 of featureSize
}

// Open loads the model at modelPath ("" = DefaultModelPath) with ONNX Runtime.
// Errors wrap ErrRuntime (library missing or unusable) or ErrModel (model
// missing or not Smart Turn v3) and say what to run.
func Open(modelPath string, o Options) (*Model, error) {
	if modelPath == "" {
		modelPath = DefaultModelPath()
	}
	path := o.LibPath
	if path == "" {
		path = os.Getenv(EnvLib)
	}
	if path == "" {
		path = DefaultLibPath()
	}
	threads := o.Threads
	if threads <= 0 {
		threads = 1
	}
	if _, err := os.Stat(modelPath); err != nil {
		return nil, fmt.Errorf("%w: %v (%s)", ErrModel, err, installHint)
	}
	l, err := loadRuntime(path)
	if err != nil {
		return nil, err
	}
	cmodel := C.CString(modelPath)
	defer C.free(unsafe.Pointer(cmodel))
	cname := C.CString(inputName)
	defer C.free(unsafe.Pointer(cname))
	var s *C.st_session
	var cerr *C.char
	if C.st_open(l, cmodel, C.int(threads), cname, nMels, nFrames, &s, &cerr) != 0 {
		return nil, fmt.Errorf("%w: %s: %s (want Smart Turn v3 %s; %s)", ErrModel, modelPath, takeErr(cerr), ModelFile, installHint)
	}
	m := &Model{s: s}
	m.bufs.New = func() any { b := make([]float32, featureSize); return &b }
	return m, nil
}

// Predict returns the probability (0..1) that the turn is complete, given
// 16 kHz mono audio ending now. Only the last Window samples are used;
// shorter audio, even none, is padded with silence before it, as pipecat does.
// Audio holding a NaN or an infinity is ErrInput.
func (m *Model) Predict(pcm []float32) (float32, error) {
	if len(pcm) > Window {
		pcm = pcm[len(pcm)-Window:]
	}
	for i, v := range pcm {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return 0, fmt.Errorf("%w: sample %d of the last %d is %v", ErrInput, i, len(pcm), v)
		}
	}
	bp := m.bufs.Get().(*[]float32)
	defer m.bufs.Put(bp)
	buf := *bp
	features(pcm, buf)

	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.s == nil {
		return 0, ErrClosed
	}
	var p C.float
	var cerr *C.char
	if C.st_run(m.s, (*C.float)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), &p, &cerr) != 0 {
		return 0, fmt.Errorf("%w: %s", ErrPredict, takeErr(cerr))
	}
	if math.IsNaN(float64(p)) {
		// Samples so large that their variance overflows float32.
		return 0, fmt.Errorf("%w: no probability for it (samples far outside [-1, 1]?)", ErrInput)
	}
	return float32(p), nil
}

// Close releases the session. It waits for predictions in progress; later
// calls to Predict return ErrClosed. Closing twice is not an error.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.s != nil {
		C.st_close(m.s)
		m.s = nil
	}
	return nil
}
