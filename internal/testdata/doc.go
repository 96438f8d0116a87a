// Package testdata finds the shared test recordings (../shared/testdata beside
// the module, or $EARSHOT_TESTDATA) and loads their manifests: utterances with
// their WAV paths, durations and reference transcripts, and the long-form
// recording with its utterance timings. Tests use it to assert on real speech.
package testdata
