// Package client is Earshot's Go SDK for live transcription: Dial opens a stream on
// /v1/listen, SendAudio and the control calls feed it, Events delivers typed server
// messages. It can reconnect after a server restart or capacity loss and resend the
// audio not yet covered by a final. StreamFile is the core of `earshot stream`.
package client
