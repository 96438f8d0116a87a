// Package whispercpp is Earshot's only cgo package: a small, safe layer over
// whisper.cpp's C API (whisper.h). A Model holds one weights-only context that
// many States share; each State is one decoding stream. VAD wraps the Silero
// voice-activity model. Every C object is freed exactly once, and any use after
// Close returns ErrClosed instead of crashing.
//
// Link flags: the static libraries built by scripts/whisper.sh. Include and
// library paths come from the environment (`eval "$(scripts/whisper.sh env)"`).
package whispercpp
