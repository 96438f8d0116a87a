package ingest

import "errors"

// Sentinel errors. Functions wrap them with context using %w; callers test with
// errors.Is and map them to wire codes at the edge.
var (
	// ErrUnsupportedEncoding: the encoding name is not one we decode.
	ErrUnsupportedEncoding = errors.New("unsupported encoding")
	// ErrSampleRate: the sample rate is missing, not a number, or out of range.
	ErrSampleRate = errors.New("unsupported sample rate")
	// ErrChannels: the channel count is missing, not a number, or out of range.
	ErrChannels = errors.New("unsupported channel count")
	// ErrPartialFrame: a raw chunk is not a whole number of sample frames.
	ErrPartialFrame = errors.New("partial sample frame")
	// ErrNaN: float audio holds a NaN or an infinity.
	ErrNaN = errors.New("non-finite float sample")
	// ErrBadWAV: a WAV file is malformed, truncated or of an unsupported kind.
	ErrBadWAV = errors.New("bad WAV file")
	// ErrChannelMode: an unknown ChannelMode was passed to NewPipeline.
	ErrChannelMode = errors.New("unknown channel mode")
)
