// Package gateway is Earshot's WebSocket and HTTP edge. It authenticates tenants (API
// keys hashed in Redis, short-lived signed tokens), speaks Deepgram's live-streaming
// protocol on GET /v1/listen (message types in gateway/wire), decodes the client's
// audio, opens a transcription stream on a Backend and relays its results, and enforces
// limits, quotas and a graceful drain. Transcription, audio decoding, billing and the
// model catalog are reached through the small interfaces in interfaces.go.
package gateway
