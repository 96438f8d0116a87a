// Package web serves Earshot's browser demo: a page that streams the microphone
// (or a WAV file) to /v1/listen and shows live transcripts, the AudioWorklet that
// turns browser audio into 16 kHz PCM16, and the built JavaScript SDK under /sdk/.
// Everything is embedded, so the binary needs no files at run time; the SDK sources
// live in web/sdk and their build output is committed into web/static/sdk.
package web
