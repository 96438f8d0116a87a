// Package prerecorded serves Deepgram's pre-recorded API, POST /v1/listen with a whole
// file (WAV, raw linear16/µ-law, or {"url": ...} fetched behind an SSRF guard), on the
// same transcriber workers as live streams at batch priority. Requests with callback=
// are queued on the durable JetStream work queue PRERECORDED and their result is POSTed
// to the callback once; GET and DELETE /v1/requests/{id} show progress and retained
// results (see internal/privacy and docs/privacy.md).
package prerecorded
