package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/earshot-dev/earshot/billing"
	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/gateway/prerecorded"
	"github.com/earshot-dev/earshot/gateway/twilio"
	"github.com/earshot-dev/earshot/ingest/remote"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/privacy"
	"github.com/earshot-dev/earshot/models"
	"github.com/earshot-dev/earshot/transcriber"
	"github.com/earshot-dev/earshot/web"
)

// startGateway wires the public API onto p.srv: the live gateway (/v1/listen,
// /v2/listen, keys, tokens, usage), the Twilio bridge, the pre-recorded API, the web
// pages and the load balancers' probes. Run serves it once the ops server is up.
func (p *process) startGateway(ctx context.Context) error {
	o, c, log := p.o, p.o.Common, p.log
	rdb, store := p.rdb, p.store
	if o.Gateway.Demo {
		// The demo tenant is on the capped "demo" plan (1 h a month, tiny models), also
		// when it was created on another plan by an older version; a plans file may
		// define its own "demo" plan, and must have one.
		if _, err := p.plans.Get("demo", 0); err != nil {
			return fmt.Errorf("--demo needs a plan named \"demo\" in the plans file: %w", err)
		}
		if _, err := store.CreateTenant(ctx, bus.TenantID(o.Gateway.DemoTenant), "demo"); err != nil && !errors.Is(err, billing.ErrTenantExists) {
			return fmt.Errorf("demo tenant: %w", err)
		}
		if err := store.SetPlan(ctx, bus.TenantID(o.Gateway.DemoTenant), "demo", 0); err != nil {
			return fmt.Errorf("demo tenant: %w", err)
		}
	}
	secret, err := tokenSecret(o.Gateway.TokenSecret, c.DataDir)
	if err != nil {
		return err
	}
	signer, err := gateway.NewSigner(secret)
	if err != nil {
		return err
	}
	// The gateway paces clients itself (2x real time after a 10 s burst, by pausing
	// reads); the client's own guard gets more burst so that the pacing, not an
	// error, is what a fast client meets.
	client, err := remote.NewClient(p.nc, log.With("component", "ingest"), remote.ClientOptions{SpeedBurst: 15 * time.Second})
	if err != nil {
		return err
	}
	p.closers = append(p.closers, func() { _ = client.Close() })
	if err := models.MeasuredErr(); err != nil {
		log.Error("model cards are served without measurements", "err", err)
	}
	gw, err := gateway.New(gateway.Config{
		Backend:             gateway.RemoteBackend(client),
		Models:              catalog{allowSynthetic: o.Gateway.AllowSynthetic},
		Keys:                gateway.NewKeyStore(rdb),
		Signer:              signer,
		TokenUses:           gateway.NewRedisTokenUses(rdb),
		Quota:               quota{billing.NewQuota(store)},
		Metering:            metering{js: p.js, resumes: billing.NewResumes(rdb, 0)},
		Log:                 log,
		Metrics:             p.ops.Registry,
		DefaultModel:        o.Gateway.DefaultModel,
		MaxStreamsPerTenant: o.Gateway.MaxStreams,
		// The limit holds across every gateway on this Redis (leases with heartbeats:
		// a crashed gateway's streams free their slots within gateway.DefaultLeaseTTL).
		Live: gateway.NewRedisLiveGuard(rdb, o.Gateway.MaxStreams, 0, log.With("component", "live-guard")),
		// Failed-authentication and demo-grant buckets per address, across gateways.
		SharedLimits: rdb,
		MaxSession:   o.Gateway.MaxSession,
		// Balances are debited as usage events arrive (every 2 s of audio); checking
		// every second ends an exhausted stream within about 3 s of the cut.
		QuotaRecheck: time.Second,
		TokenTTL:     o.Gateway.TokenTTL,
		Demo:         gateway.DemoConfig{Enabled: o.Gateway.Demo, Tenant: bus.TenantID(o.Gateway.DemoTenant)},
	})
	if err != nil {
		return err
	}
	p.gw = gw
	gw.Mount("GET /v1/usage", gw.LimitFailedAuth(gw.KeyOnly(billing.UsageHandler(store, gw.TenantFromRequest))))
	if err := p.startPhone(client); err != nil {
		return err
	}
	if err := p.startPrerecorded(ctx); err != nil {
		return err
	}
	gw.Mount("/", web.Handler())
	// Load balancers probe /healthz and /readyz on the public address; there /readyz
	// says only ready or not. /metrics and the readiness details are on the ops address.
	publicOps := http.NewServeMux()
	p.ops.MountPublic(publicOps)
	for _, route := range []string{"GET /healthz", "GET /readyz"} {
		gw.Mount(route, publicOps)
	}
	p.srv = newHTTPServer(o.Gateway.Listen, gw.Handler(), c)
	return nil
}

// startPhone wires the Twilio media-stream bridge (/v1/twilio) onto the live client.
func (p *process) startPhone(client *remote.Client) error {
	o, log := p.o, p.log
	rdb, store := p.rdb, p.store
	var phoneTurns *bus.TurnOptions // --phone-turns: Flux's default knobs
	if o.Gateway.PhoneTurns {
		phoneTurns = &bus.TurnOptions{}
	}
	phone, err := twilio.New(twilio.Config{
		Turns:             phoneTurns,
		Backend:           gateway.RemoteBackend(client),
		Tenants:           twilio.NewSecretStore(rdb),
		Metering:          callMetering{p.js},
		Quota:             quota{billing.NewQuota(store)},
		Webhooks:          twilio.NewRedisWebhooks(rdb),
		Publisher:         p.nc,
		Model:             o.Gateway.DefaultModel,
		AuthToken:         o.Gateway.TwilioAuthToken,
		PublicURL:         o.Gateway.PublicURL,
		MaxCallsPerTenant: o.Gateway.MaxCalls,
		Calls:             gateway.NewRedisLeases(rdb, "calls", "phone calls", o.Gateway.MaxCalls, 0, log.With("component", "call-guard")),
		MaxCallDuration:   o.Gateway.MaxCallDuration,
		Delivery:          twilio.DeliveryOptions{AllowLoopback: o.Gateway.OutboundLoopback},
		Log:               log.With("component", "twilio"),
	})
	if err != nil {
		return err
	}
	p.phone = phone
	p.gw.Mount("GET /v1/twilio", phone)
	p.gw.Mount("GET /v1/twilio/{secret}", phone)
	return nil
}

// startPrerecorded wires the pre-recorded API (POST /v1/listen, /v1/requests) with its
// retention store, its own client and its upload spool.
func (p *process) startPrerecorded(ctx context.Context) error {
	o, c, log := p.o, p.o.Common, p.log
	js, rdb, store, gw := p.js, p.rdb, p.store, p.gw
	var retention *privacy.Store
	err := retryJS(ctx, log, "retention store", func(ctx context.Context) (err error) {
		retention, err = privacy.Open(ctx, privacy.Config{JS: js, Log: log.With("component", "privacy"), Replicas: c.JSReplicas})
		return err
	})
	if err != nil {
		return fmt.Errorf("retention store: %w", err)
	}
	p.g.Go(func() error { return retention.Run(p.gctx) })
	// Pre-recorded files go through their own client: they may be sent faster than
	// real time (the handler paces them against the worker's progress).
	batchClient, err := remote.NewClient(p.nc, log.With("component", "ingest-batch"), remote.ClientOptions{MaxSpeed: -1})
	if err != nil {
		return err
	}
	p.closers = append(p.closers, func() { _ = batchClient.Close() })
	// Uploads wait here while they are transcribed (unlinked files: nothing is left
	// behind by a crash), beside JetStream's files rather than in a small /tmp.
	spool := filepath.Join(c.DataDir, "spool")
	if err := os.MkdirAll(spool, 0o700); err != nil {
		return fmt.Errorf("spool dir %s: %w", spool, err)
	}
	var pre *prerecorded.Handler
	err = retryJS(ctx, log, "pre-recorded queue", func(ctx context.Context) (err error) {
		pre, err = prerecorded.New(ctx, prerecorded.Config{
			Backend:        gateway.RemoteBackend(batchClient),
			Auth:           gw.Authenticate,
			Metering:       metering{js: js},
			JS:             js,
			Retention:      retention,
			URLAllowList:   o.Gateway.URLAllowList,
			AllowLoopback:  o.Gateway.OutboundLoopback,
			Log:            log.With("component", "prerecorded"),
			DefaultModel:   o.Gateway.DefaultModel,
			ValidRedaction: transcriber.ValidRedaction,
			// The live path's admission: plan, model, balance and quotas.
			Quota:            quota{billing.NewQuota(store)},
			FileAdmit:        quota{billing.NewQuota(store)}.CheckFile,
			MaxUpload:        int64(o.Gateway.MaxUploadMB) << 20,
			MaxAudio:         o.Gateway.MaxAudio,
			SpoolDir:         spool,
			Replicas:         c.JSReplicas,
			Metrics:          p.ops.Registry,
			MaxJobsPerTenant: o.Gateway.MaxPrerecorded,
			Slots:            gateway.NewRedisLeases(rdb, "prerec", "pre-recorded requests", o.Gateway.MaxPrerecorded, 0, log.With("component", "prerecorded-guard")),
			CallbackSecrets:  prerecorded.NewRedisCallbackSecrets(rdb),
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("pre-recorded API: %w", err)
	}
	p.g.Go(func() error { return pre.Run(p.gctx) })
	gw.Mount("POST /v1/listen", gw.LimitFailedAuth(gw.KeyOnly(pre)))
	gw.Mount("GET /v1/requests/{id}", gw.LimitFailedAuth(gw.KeyOnly(pre)))
	gw.Mount("DELETE /v1/requests/{id}", gw.LimitFailedAuth(gw.KeyOnly(pre)))
	gw.Mount("GET /v1/callbacks/secret", gw.LimitFailedAuth(gw.KeyOnly(pre)))
	return nil
}

// tokenSecret returns the configured secret, or one generated once and kept in the data dir.
func tokenSecret(configured, dataDir string) ([]byte, error) {
	if configured != "" {
		if len(configured) < 32 {
			return nil, fmt.Errorf("--token-secret must be at least 32 characters")
		}
		return []byte(configured), nil
	}
	p := filepath.Join(dataDir, "token-secret")
	if b, err := os.ReadFile(p); err == nil && len(b) >= 64 {
		return b, nil
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	b := []byte(hex.EncodeToString(raw[:]))
	if err := os.WriteFile(p, b, 0o600); err != nil {
		return nil, fmt.Errorf("keep token secret in %s: %w", p, err)
	}
	return b, nil
}
