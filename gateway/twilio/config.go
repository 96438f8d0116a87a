package twilio

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/models"
)

// CallMetering starts the usage meter of one track of one call. It is the phone
// counterpart of gateway.Metering: the usage events it produces carry Call (the
// Twilio callSid) and Track ("inbound" or "outbound"). Safe for concurrent use.
// In production: billing.NewMeter(js, bus.UsageEvent{Tenant, Model, Session, Call,
// Track}, every) behind a one-line adapter.
type CallMetering interface {
	Start(ctx context.Context, tenant bus.TenantID, model string, session bus.SessionID, call, track string) (gateway.Meter, error)
}

// Defaults of Config's limits.
const (
	DefaultMaxCallDuration   = 4 * time.Hour
	DefaultMaxCallsPerTenant = 20
	// MaxMarks and MaxDTMF bound what a call keeps of Twilio's mark and dtmf events
	// (for its summary); more are counted, not kept. MaxMarkName bounds one mark's name.
	MaxMarks    = 100
	MaxDTMF     = 256
	MaxMarkName = 128
	// DefaultBargeInHold is Config.BargeInHold's default.
	DefaultBargeInHold = 300 * time.Millisecond
	// fillSlack is how far a track's clock (gap fill included) may run ahead of the
	// wall time since its call started: lost chunks are filled with silence only up to
	// the time that really passed.
	fillSlack = 2 * time.Second
)

// Config configures a Handler. Zero values take the defaults.
type Config struct {
	// Backend opens one transcription session per track. Required.
	Backend gateway.Backend
	// Tenants resolves stream secrets (a *SecretStore). Required.
	Tenants TenantResolver
	// Metering meters each track. Required: a call that cannot be billed is refused.
	Metering CallMetering
	// Quota, when set, is checked at start (the plan and balance of the tenant) and then
	// every QuotaRecheck while the call runs, as live streams are: an exhausted tenant's
	// call ends with reason "quota_exhausted", billed for what was accepted.
	Quota gateway.Quota
	// QuotaRecheck is how often Quota is checked during a call. Default 1 s.
	QuotaRecheck time.Duration
	// MaxCallDuration ends a call that lasts longer (reason "max_duration"). Default 4 h.
	MaxCallDuration time.Duration
	// MaxCallsPerTenant bounds a tenant's concurrent calls on this handler; the next
	// call's start is refused. Default 20.
	MaxCallsPerTenant int
	// Calls counts the tenant's calls: across gateways with a gateway.NewRedisLeases of
	// MaxCallsPerTenant; default gateway.NewLocalGuard (this handler only). Its
	// ErrTooManyStreams refuses a start.
	Calls gateway.LiveGuard
	// StartTimeout is how long a connection may go without its start message; before
	// start only "connected" is accepted. Default 10 s.
	StartTimeout time.Duration
	// Webhooks says where a tenant's events go; nil: NATS only.
	Webhooks Webhooks
	// Publisher receives every event on bus.CallSubject and undeliverable ones on
	// bus.CallDeadLetterSubject (a *nats.Conn); nil: webhook only, failures only logged.
	Publisher Publisher
	// Model transcribes calls unless the start message's customParameters name
	// another ("model"). Default models.Default ("tiny.en").
	Model string
	// AuthToken is the Twilio account auth token. When set, every handshake must carry a
	// valid X-Twilio-Signature (HMAC-SHA1 of the URL Twilio connected to).
	AuthToken string
	// PublicURL is the scheme and host Twilio connects to ("wss://stt.example.com"),
	// needed to check X-Twilio-Signature behind a proxy. Default: from the request.
	PublicURL string
	// IdleTimeout finalises and bills a call that sent nothing for this long (no stop).
	// Default 10 s.
	IdleTimeout time.Duration
	// ReorderWindow is how many chunks may wait for a late one before the gap is filled
	// with silence. Default 10 (200 ms).
	ReorderWindow int
	// FinalTimeout bounds the wait for a track's last finals after the call ended.
	// Default 20 s.
	FinalTimeout time.Duration
	// OpenTimeout bounds Backend.Open. Default 5 s.
	OpenTimeout time.Duration
	// NoPartials delivers finals and the summary only (and turn events on calls with
	// turn-taking on).
	NoPartials bool
	// Turns, when set, turns turn-taking on for every call (each track a turn session:
	// turn.* and barge_in events; docs/phone.md, "Turn-taking"), with these end-of-turn
	// knobs (zero fields: Flux's defaults 0.7, off, 5000 ms). A call may still turn it
	// off (customParameters turns=false) or change the knobs. nil: off unless a call
	// asks for it (turns=true).
	Turns *bus.TurnOptions
	// TurnUpdates sends turn.update events (every 250 ms of a speaker's turn) unless a
	// call says otherwise (turn_updates).
	TurnUpdates bool
	// BargeInHold is how long after the agent's speech ended (its turn.end) the caller's
	// new turn still counts as a barge-in. Default 300 ms.
	BargeInHold time.Duration
	// Delivery tunes the webhook.
	Delivery DeliveryOptions
	// Log is the handler's logger. Default: discard.
	Log *slog.Logger
}

func (c *Config) validate() error {
	if c.Backend == nil || c.Tenants == nil || c.Metering == nil {
		return fmt.Errorf("%w: Backend, Tenants and Metering are required", ErrConfig)
	}
	if c.Model == "" {
		c.Model = models.Default
	}
	if !bus.ValidModel(c.Model) {
		return fmt.Errorf("%w: model %q", ErrConfig, c.Model)
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 10 * time.Second
	}
	if c.ReorderWindow <= 0 {
		c.ReorderWindow = 10
	}
	if c.FinalTimeout <= 0 {
		c.FinalTimeout = 20 * time.Second
	}
	if c.OpenTimeout <= 0 {
		c.OpenTimeout = 5 * time.Second
	}
	if c.QuotaRecheck <= 0 {
		c.QuotaRecheck = time.Second
	}
	if c.MaxCallDuration <= 0 {
		c.MaxCallDuration = DefaultMaxCallDuration
	}
	if c.MaxCallsPerTenant <= 0 {
		c.MaxCallsPerTenant = DefaultMaxCallsPerTenant
	}
	if c.Calls == nil {
		c.Calls = gateway.NewLocalGuard(c.MaxCallsPerTenant)
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 10 * time.Second
	}
	if c.BargeInHold <= 0 {
		c.BargeInHold = DefaultBargeInHold
	}
	if c.Turns != nil {
		t, err := checkTurns(*c.Turns)
		if err != nil {
			return fmt.Errorf("%w: Turns: %w", ErrConfig, err)
		}
		c.Turns = &t
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	c.Delivery.defaults()
	return nil
}
