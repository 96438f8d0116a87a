package gateway

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// DemoConfig enables POST /demo/grant, which hands a short-lived token for Tenant to
// anyone who asks (rate-limited per address). For the one-machine browser demo only.
type DemoConfig struct {
	Enabled     bool
	Tenant      bus.TenantID
	GrantBurst  int           // demo grants per address before 429; default 20
	GrantPerSec float64       // refill of that bucket (its own, not the failed-auth one); default 0.5
	MaxSession  time.Duration // longest demo stream (close 4003); default 5m
}

// Config configures a Server. Zero durations and sizes take the defaults noted.
type Config struct {
	Backend   Backend               // required
	Models    ModelCatalog          // required
	Keys      KeyLookup             // required
	Signer    *Signer               // required
	Quota     Quota                 // optional: nil allows everything
	Metering  Metering              // optional: nil meters nothing
	Live      LiveGuard             // optional: nil uses an in-process limit of MaxStreamsPerTenant (RedisLiveGuard shares it across gateways)
	TokenUses TokenUses             // optional: nil records used tokens in this process only
	Log       *slog.Logger          // optional: nil discards
	Metrics   prometheus.Registerer // optional: nil registers nowhere

	DefaultModel string // used when model is absent; required
	// MultilingualModel is what model=flux-general-multi means on /v2/listen; "" means
	// DefaultModel when that is multilingual (no ".en" in its name), else the alias is
	// refused.
	MultilingualModel   string
	MaxStreamsPerTenant int           // per gateway when Live is nil (else Live's own limit); default 10
	IdleTimeout         time.Duration // no audio, KeepAlive or control message: close 4001; default 10s
	MaxFrameBytes       int           // largest binary frame; default 1 MiB
	MaxTextBytes        int           // largest text frame; default 64 KiB
	MaxSession          time.Duration // longest stream: close 4003; default 4h
	WriteQueue          int           // messages queued for a client before it is a slow consumer; default 256
	WriteTimeout        time.Duration // one frame write; default 10s
	OpenTimeout         time.Duration // Backend.Open; default 5s
	CloseTimeout        time.Duration // wait for finals after CloseStream; default 15s
	QuotaRecheck        time.Duration // re-run Quota.Check during a stream; default 30s
	RealtimeFactor      float64       // audio faster than this × real time is slowed; default 2; <0 disables
	RealtimeBurst       time.Duration // audio allowed ahead of that pace; default 10s
	AuthFailBurst       int           // failed authentications per address before 429; default 20
	AuthFailPerSec      float64       // refill of that bucket; default 1
	// SharedLimits, if set, keeps the failed-authentication and demo-grant buckets in
	// this Redis, so they hold across gateways (else each gateway counts its own).
	SharedLimits redis.UniversalClient
	TokenTTL     time.Duration // default token lifetime; default 30s
	MaxTokenTTL  time.Duration // longest a client may ask for; default 1h
	Demo         DemoConfig
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	defInt := func(d *int, v int) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.IdleTimeout, 10*time.Second)
	def(&c.MaxSession, 4*time.Hour)
	def(&c.WriteTimeout, 10*time.Second)
	def(&c.OpenTimeout, 5*time.Second)
	def(&c.CloseTimeout, 15*time.Second)
	def(&c.QuotaRecheck, 30*time.Second)
	def(&c.RealtimeBurst, 10*time.Second)
	def(&c.TokenTTL, 30*time.Second)
	def(&c.MaxTokenTTL, time.Hour)
	def(&c.Demo.MaxSession, 5*time.Minute)
	defInt(&c.MaxStreamsPerTenant, 10)
	defInt(&c.MaxFrameBytes, 1<<20)
	defInt(&c.MaxTextBytes, 64<<10)
	defInt(&c.WriteQueue, 256)
	defInt(&c.AuthFailBurst, 20)
	defInt(&c.Demo.GrantBurst, 20)
	if c.Demo.GrantPerSec == 0 {
		c.Demo.GrantPerSec = 0.5
	}
	if c.AuthFailPerSec == 0 {
		c.AuthFailPerSec = 1
	}
	if c.RealtimeFactor == 0 {
		c.RealtimeFactor = 2
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first problem of a defaulted config.
func (c *Config) Validate() error {
	switch {
	case c.Backend == nil:
		return fmt.Errorf("%w: Backend is required", ErrConfig)
	case c.Models == nil:
		return fmt.Errorf("%w: Models is required", ErrConfig)
	case c.Keys == nil:
		return fmt.Errorf("%w: Keys is required", ErrConfig)
	case c.Signer == nil:
		return fmt.Errorf("%w: Signer is required", ErrConfig)
	case c.DefaultModel == "":
		return fmt.Errorf("%w: DefaultModel is required", ErrConfig)
	case c.Demo.Enabled && !bus.ValidToken(string(c.Demo.Tenant)):
		return fmt.Errorf("%w: Demo.Tenant %q is not a valid tenant id", ErrConfig, c.Demo.Tenant)
	case c.MaxTextBytes > c.MaxFrameBytes:
		return fmt.Errorf("%w: MaxTextBytes %d > MaxFrameBytes %d", ErrConfig, c.MaxTextBytes, c.MaxFrameBytes)
	case c.IdleTimeout < 0 || c.MaxSession < 0 || c.WriteQueue < 1 || c.AuthFailBurst < 1 || c.Demo.GrantBurst < 1 || c.Demo.GrantPerSec < 0:
		return fmt.Errorf("%w: negative durations or sizes", ErrConfig)
	case c.TokenTTL > c.MaxTokenTTL:
		return fmt.Errorf("%w: TokenTTL %v > MaxTokenTTL %v", ErrConfig, c.TokenTTL, c.MaxTokenTTL)
	}
	return nil
}
