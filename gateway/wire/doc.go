// Package wire owns Earshot's client wire protocol: the query parameters of
// GET /v1/listen, the JSON control messages a client sends, the JSON messages the
// server sends, and the stable error and WebSocket close codes. It follows
// Deepgram's live-streaming protocol so that Deepgram clients work unchanged; the
// differences are listed in docs/api.md. It imports nothing of Earshot's but the bus
// ids, and every parser here takes hostile input without panicking.
package wire
