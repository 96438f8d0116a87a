package bus

import "errors"

// ErrorCode is a stable, machine-readable reason carried in grants and results; the
// gateway maps it to HTTP statuses, WebSocket close codes and client error messages.
type ErrorCode string

const (
	CodeNoCapacity   ErrorCode = "NO_CAPACITY"
	CodeUnknownModel ErrorCode = "UNKNOWN_MODEL"
	CodeBadAudio     ErrorCode = "BAD_AUDIO"
	CodeOverloaded   ErrorCode = "OVERLOADED"
	CodeShuttingDown ErrorCode = "SHUTTING_DOWN"
	CodeInternal     ErrorCode = "INTERNAL"
	CodeQuota        ErrorCode = "QUOTA_EXHAUSTED"
	CodeBadRequest   ErrorCode = "BAD_REQUEST"
)

// ErrNoCapacity: no transcriber has a free decode slot for the model. The engine
// returns it, the worker answers it as CodeNoCapacity, the gateway's bus client turns
// that grant back into it, and the gateway answers 503.
var ErrNoCapacity = errors.New("no capacity")

// Sentinel errors of the codecs in this package.
var (
	ErrShortChunk  = errors.New("bus: audio chunk shorter than its header")
	ErrChunkFormat = errors.New("bus: audio chunk of unknown version or odd PCM length")
)
