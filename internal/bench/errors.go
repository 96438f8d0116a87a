package bench

import "errors"

var (
	// ErrNoClips means the manifest gave no usable audio.
	ErrNoClips = errors.New("bench: no clips")
	// ErrClipFormat means a clip is not 16 kHz mono audio.
	ErrClipFormat = errors.New("bench: clip is not 16 kHz mono")
	// ErrConfig means a Config is incomplete or inconsistent.
	ErrConfig = errors.New("bench: bad config")
)
