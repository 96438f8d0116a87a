package gateway

import (
	"context"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
)

// Backend opens transcription streams (in production: remote.Client over NATS).
// Open must be safe for concurrent use and return within ctx's deadline; when no
// transcriber has a free slot it returns an error wrapping bus.ErrNoCapacity.
type Backend interface {
	Open(ctx context.Context, req bus.SessionRequest) (Stream, error)
}

// Stream is one open transcription session.
//
// Send is called from one goroutine at a time (the gateway serialises its calls);
// pcm is 16 kHz mono audio of output channel ch, and the stream must not keep pcm
// after Send returns. A Send with FlagFinalize or FlagEnd and no samples marks that
// point of the channel's audio. After FlagEnd has been sent on every channel, the
// stream delivers one ResultClosed per channel once all results are out.
//
// Results is the same channel on every call; it is closed by the Stream after Close
// (or when the stream fails, after a ResultError). Close is idempotent, safe to call
// concurrently with Send, and releases everything the stream holds; after Close the
// Stream must not block forever on a Results channel nobody reads any more.
//
// gatewaytest.TestStreamContract checks these rules (and Backend's); the stand-in of
// the gateway's tests and the real backend over NATS both pass it.
type Stream interface {
	Send(pcm []int16, ch int, flags bus.ChunkFlag) error
	Results() <-chan bus.Result
	Close()
}

// Model describes one model of the catalog as the gateway needs it. Card is what
// GET /v1/models returns for it (marshalled with encoding/json).
type Model struct {
	Name    string
	Version string
	Arch    string
	UUID    string
	Card    any
}

// ModelCatalog knows which models exist. Safe for concurrent use.
type ModelCatalog interface {
	Lookup(name string) (Model, bool)
	List() []Model
}

// Quota decides whether a tenant may (still) stream a model. Check returns nil, or an
// error wrapping ErrNoBalance, ErrQuotaExhausted or ErrModelNotInPlan; other errors
// are treated as internal failures. Safe for concurrent use. It is called before a
// stream opens and then every Config.QuotaRecheck while it runs.
type Quota interface {
	Check(ctx context.Context, tenant bus.TenantID, model string) error
}

// SessionInfo identifies a stream to the metering and live-stream guard.
type SessionInfo struct {
	Session bus.SessionID
	Tenant  bus.TenantID
	Key     bus.KeyID
	Model   string
	// Billed is the stream the audio is billed to: Session, or on a resumed
	// connection the request_id it continues; OffsetMs is where in that stream this
	// connection's audio starts (0 on a new stream).
	Billed   bus.SessionID
	OffsetMs int64
	// RunUpMs: the first RunUpMs of this connection's audio are run-up the client
	// already has finals for (wire.Params.ResumeRunUpMs).
	RunUpMs int64
	// Channels is how many channels the stream is billed for: the number of
	// independently transcribed channels (multichannel=true), else 1.
	Channels int
}

// Metering starts the usage meter of a session (in production: billing.Meter).
type Metering interface {
	Start(ctx context.Context, s SessionInfo) (Meter, error)
}

// Meter accumulates the audio accepted into one session. Add is called with each
// increment of accepted milliseconds (from one goroutine); Close is called once at the
// end, with a context bounded by the drain deadline, and flushes what is pending.
type Meter interface {
	Add(ms int64)
	Close(ctx context.Context) error
}

// FinalMarker is a Meter that keeps the stream's resume record (in production the
// metering of internal/app does): the gateway tells it the end (ms of this connection's
// audio) of each final it delivers, after flushing the meter, and that the connection
// finished cleanly (every final delivered) before it closes the meter. What a later
// connection resuming the stream is not billed for follows from these marks.
type FinalMarker interface {
	FinalDelivered(endMs int64)
	Finished()
}

// MeterSettler is a Meter that can bring its stream's billing up to date on demand: the
// audio accepted so far published, acknowledged and written to the resume record. The
// gateway settles before it sends the close frame, bounded by SettleTimeout: a client
// that resumes as soon as it hears the close (a 1013 after a failed failover, say) must
// find the record current, or the audio this connection paid for without a final is
// billed again on the next one.
type MeterSettler interface {
	Settle(ctx context.Context) error
}

// SettleTimeout bounds the wait for MeterSettler.Settle before a close frame.
const SettleTimeout = 3 * time.Second

// MeterFlusher is a Meter that can publish its pending audio on demand (billing.Meter
// can). The gateway flushes before it sends a final, bounded by FlushTimeout, so the
// audio under every final a client received is billed even if the gateway then dies;
// a reconnecting client resends only the audio after its last final.
type MeterFlusher interface {
	Flush(ctx context.Context) error
}

// FlushTimeout bounds the wait for a meter flush before a final: a slow or absent
// JetStream delays finals by at most this much.
const FlushTimeout = 250 * time.Millisecond

// LiveGuard enforces the per-tenant concurrent-stream limit (in production one shared
// through Redis so it holds across gateways). Acquire returns an error wrapping
// ErrTooManyStreams when the tenant is at its limit; release is called exactly once.
type LiveGuard interface {
	Acquire(ctx context.Context, s SessionInfo) (release func(), err error)
}

// KeyLookup resolves credentials (KeyStore satisfies it).
type KeyLookup interface {
	// Lookup returns the key whose secret this is, or an error wrapping ErrKeyNotFound.
	Lookup(ctx context.Context, secret string) (Key, error)
	// Active reports whether key id still exists (tokens die with their key).
	Active(ctx context.Context, id bus.KeyID) (bool, error)
}
