// Package ingest turns audio from outside into what every later stage consumes:
// 16 kHz mono (or per-channel) float32 samples in [-1, 1].
//
// It parses and validates stream formats (linear16, float32, G.711 µ-law and
// A-law), decodes raw chunks and WAV files, downmixes or splits channels, and
// resamples with a streaming Kaiser-windowed sinc filter. A Pipeline ties these
// together for one live stream and counts the accepted audio exactly, in source
// samples, for billing.
package ingest
