// Package remote is the gateway's half of the bus protocol (docs/bus.md): a Client asks
// a transcriber worker for a session over NATS request/reply, and a Session sends the
// connection's 16 kHz PCM16 audio as numbered chunks, receives the worker's results in
// order, keeps a replay buffer of the audio since the last final, answers a worker's
// request to resend a gap, and fails over to another worker (replaying that audio) when
// its worker's heartbeats stop. The worker's half is package transcriber/worker.
//
// Vocabulary: a connection is one client's WebSocket (or HTTP request, or phone call)
// at the gateway; a session is what this package opens on the bus for it, one per
// connection, possibly served by several workers in turn.
package remote
