package smartturn

import "errors"

// Sentinel errors. Callers match them with errors.Is.
var (
	// ErrRuntime means ONNX Runtime's shared library could not be loaded
	// (missing, not ONNX Runtime, or too old). Run scripts/smartturn.sh.
	ErrRuntime = errors.New("smartturn: cannot load ONNX Runtime")
	// ErrModel means the model file is missing or is not the Smart Turn v3 model.
	ErrModel = errors.New("smartturn: cannot load model")
	// ErrInput means the audio holds a NaN or an infinity.
	ErrInput = errors.New("smartturn: invalid audio")
	// ErrPredict means ONNX Runtime failed to run the model.
	ErrPredict = errors.New("smartturn: inference failed")
	// ErrClosed means the Model was already closed.
	ErrClosed = errors.New("smartturn: closed")
)
