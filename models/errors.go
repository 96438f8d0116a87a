package models

import "errors"

// Sentinel errors. Functions wrap them with context (fmt.Errorf("...: %w", err)),
// so callers test with errors.Is.
var (
	// ErrUnknownModel: a name is not in the catalog.
	ErrUnknownModel = errors.New("unknown model")
	// ErrNotInstalled: a catalog model has no file in the model directory.
	ErrNotInstalled = errors.New("model not installed")
	// ErrBadModelFile: a file is truncated, has a wrong magic, or its
	// contents contradict themselves.
	ErrBadModelFile = errors.New("bad model file")
	// ErrChecksum: downloaded bytes do not match the published sha256.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrNotWhisper: a CTranslate2 model of another architecture.
	ErrNotWhisper = errors.New("not a CTranslate2 Whisper model")
	// ErrUnsupported: a valid input this package cannot convert (int8
	// CTranslate2 weights, an unknown dims name, an unknown tensor type).
	ErrUnsupported = errors.New("unsupported")
	// ErrDownload: the server refused or the transfer failed.
	ErrDownload = errors.New("download failed")
)
