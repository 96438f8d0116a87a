// Package billing turns usage events into money, exactly once. The gateway meters
// accepted audio per session and track (Meter) onto the JetStream stream USAGE with
// deterministic message ids; a durable consumer (Consumer) applies each event to Redis
// with one atomic Lua script that deduplicates by event id, so redelivery and replay
// never bill twice. Price plans (Plans), tenants (Store), quotas for live streams
// (Quota, LiveGuard), invoices (Report) and the GET /v1/usage endpoint (UsageHandler)
// read the same integer counters.
//
// Resumed streams. A client that reconnects after a gateway crash resends the audio
// after its last final, naming the stream and offset it resumes; its meter numbers its
// events from that offset under the original stream's id. The script bills only the part
// of an event's interval that no earlier event of the same stream and track covered (up
// to ResumeCreditMs of such overlap per track), so the union of the intervals is billed,
// whatever order events arrive in.
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
//	usage:{t}:sess:<session>      hash "ms" → ms (session total), "cov|track" → covered intervals
//	                              "s-e,s-e", "ovl|track" → overlap credited (TTL DedupeTTL)
//	usage:{t}:unknown             ms applied while no tenant:{t} existed (flag for operators)
package billing
