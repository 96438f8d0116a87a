package whispercpp

import "errors"

// Sentinel errors. Callers match them with errors.Is.
var (
	// ErrClosed means the Model, State or VAD was already closed.
	ErrClosed = errors.New("whispercpp: closed")
	// ErrLoad means whisper.cpp could not load a model file.
	ErrLoad = errors.New("whispercpp: cannot load model")
	// ErrDecode means whisper_full_with_state failed for a reason other than
	// cancellation.
	ErrDecode = errors.New("whispercpp: decode failed")
	// ErrStateLost means whisper.cpp freed the state itself (return code -7);
	// the State is unusable and must be replaced.
	ErrStateLost = errors.New("whispercpp: state freed by whisper.cpp")
	// ErrInvalid means an argument is out of range.
	ErrInvalid = errors.New("whispercpp: invalid argument")
)
