// Package abuse is Earshot's abuse suite: each test tries one attack against a real
// `earshot serve` (real Redis, real NATS, real whisper) through the public API, the way
// a hostile client on the internet would, and asserts that the door held: exact
// milliseconds billed, bounded memory, a clear refusal. The suite reports every case as
// held or failed in a table (`make abuse` writes it to bench/out/abuse.md; RELIABILITY.md
// keeps the latest one under "Security").
//
// `go test ./internal/abuse/` (and so `make test` in CI) runs the short form: every
// case, with the slow ones (large uploads, long calls, slowloris waits) cut down to
// sizes that still fail on the bug they guard. EARSHOT_ABUSE=full (set by `make abuse`)
// runs them at the sizes of the original findings.
package abuse
