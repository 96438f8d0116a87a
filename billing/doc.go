// Package billing turns usage events into money, exactly once. The gateway meters
// accepted audio per session and track (Meter) onto the JetStream stream USAGE with
// deterministic message ids; a durable consumer (Consumer) applies each event to Redis
// with one atomic Lua script that deduplicates by event id, so redelivery and replay
// never bill twice. Price plans (Plans), tenants (Store), quotas for live streams
// (Quota, Hold), invoices (Report) and the GET /v1/usage endpoint (UsageHandler)
// read the same integer counters.
//
// Resumed streams. A client that reconnects after a lost connection resends the audio
// after its last final, naming the stream and offset it resumes. The ledger never
// credits anything: every event is billed in full, and each connection's events carry
// its own id (UsageEvent.Conn), so JetStream's dedupe cannot drop them. What a resumed
// connection is not billed for, the gateway leaves out of its events, from the stream's
// record in Resumes: the audio an earlier connection was billed for and never got a
// final for, claimed once.
//
// Units. Usage is kept as integer milliseconds of audio. Money is integer minor units
// (cents) computed from milliseconds when an invoice is made. A prepaid balance is kept
// in "price units" (u): 1 minor unit = 3,600,000 u, so one millisecond at a price of P
// minor units per audio hour costs exactly P u. Every debit is an integer, and the sum
// of the debits equals P × total ms exactly: no floats anywhere (no INCRBYFLOAT).
//
// Redis keys (the {tenant} hash tag keeps a tenant's keys in one cluster slot, so the
// script touches one slot):
//
//	tenant:{t}                    hash: plan, plan_version, balance_u, rate, round_ms, min_ms, created
//	usage:{t}:ev:<event id>       dedupe marker, TTL DedupeTTL (longer than the stream keeps events)
//	usage:{t}:m:2026-11           hash model → ms
//	usage:{t}:d:2026-11-28        hash model → ms
//	usage:{t}:k:2026-11           hash key → ms
//	usage:{t}:dk:2026-11-28       hash key → ms
//	usage:{t}:s:2026-11           hash "model|session|track" → ms (per-stream totals for rounding)
//	usage:{t}:sc:2026-11          hash stream → ms debited from the prepaid balance, stream|f → closed
//	usage:{t}:sess:<session>      hash "ms" → ms (session total) (TTL DedupeTTL)
//	hold:{t}                      hash stream member → "grant|session|expiry": audio live streams may
//	                              send (Quota.Hold), so a quota holds across gateways
//	resume:{t}:<stream>           hash owner, b, f, p: the resume record (Resumes; TTL ResumeWindow)
//	usage:{t}:unknown             ms applied while no tenant:{t} existed (flag for operators)
package billing
