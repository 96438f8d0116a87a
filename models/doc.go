// Package models knows which Whisper weights exist, where they come from and
// how they are laid out on disk. It holds the catalog of named models, the
// local model directory, a resumable checksum-verified downloader, a
// CTranslate2 → whisper.cpp ggml importer, a reader for whisper.cpp's legacy
// ggml container, and a generator of synthetic (random-weight) models with
// real dimensions for load and performance tests.
//
// The package is pure Go: it never loads weights into an inference engine.
package models
