package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/earshot-dev/earshot/internal/redislog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/earshot-dev/earshot/billing"
	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/gateway/prerecorded"
	"github.com/earshot-dev/earshot/gateway/twilio"
	"github.com/earshot-dev/earshot/ingest/remote"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/config"
	"github.com/earshot-dev/earshot/internal/privacy"
	"github.com/earshot-dev/earshot/models"
	"github.com/earshot-dev/earshot/transcriber"
	"github.com/earshot-dev/earshot/transcriber/smartturn"
	"github.com/earshot-dev/earshot/transcriber/worker"
	"github.com/earshot-dev/earshot/web"
)

// Parts says which services a process runs.
type Parts struct {
	Gateway, Transcriber, Billing bool
	// Embedded runs nats-server in the process when Common.NATSURL is empty.
	Embedded bool
}

// Options is everything a process needs.
type Options struct {
	Parts       Parts
	Common      config.Common
	Gateway     config.Gateway
	Transcriber config.Transcriber
	Log         *slog.Logger
	// Ready, if set, is called with the gateway's (or ops') base URL once serving.
	Ready func(url string)
}

// Run runs the configured services until ctx is cancelled, then drains them.
func Run(ctx context.Context, o Options) error {
	log := o.Log
	c := o.Common
	// Private: it holds the token secret, the embedded NATS credentials and JetStream's
	// files (retained audio and transcripts).
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir %s: %w", c.DataDir, err)
	}
	ops := NewOps()
	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()

	// NATS: embedded for one-machine use, else external.
	url := c.NATSURL
	var natsAuth []nats.Option
	if url == "" && o.Parts.Embedded {
		ns, user, cleanup, err := StartSecuredNATS(c.DataDir, log)
		if err != nil {
			return err
		}
		closers = append(closers, func() { ns.Shutdown(); ns.WaitForShutdown(); cleanup() })
		url = ns.ClientURL()
		natsAuth = append(natsAuth, nats.UserInfo(user.Name, user.Password))
		ops.AddCheck("nats-server", func(context.Context) error {
			if !ns.Running() || !ns.JetStreamEnabled() {
				return errors.New("embedded nats (JetStream) not running")
			}
			return nil
		})
	}
	if url == "" {
		return fmt.Errorf("--nats (EARSHOT_NATS_URL) is required: point it at your NATS server, e.g. nats://127.0.0.1:4222")
	}
	nc, err := ConnectNATS(url, "earshot", c, log, natsAuth...)
	if err != nil {
		return err
	}
	closers = append(closers, func() { _ = nc.Drain() })
	ops.AddCheck("nats", func(context.Context) error {
		if !nc.IsConnected() {
			return fmt.Errorf("not connected to %s", RedactURL(url))
		}
		return nil
	})
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if err := waitJetStream(ctx, js, c.JSReplicas, log); err != nil {
		return err
	}

	var rdb redis.UniversalClient
	if o.Parts.Gateway || o.Parts.Billing {
		redislog.Route(log)
		if rdb, err = c.RedisClient(); err != nil {
			return err
		}
		closers = append(closers, func() { _ = rdb.Close() })
		ops.AddCheck("redis", func(ctx context.Context) error { return rdb.Ping(ctx).Err() })
	}

	g, gctx := errgroup.WithContext(ctx)
	plans := billing.DefaultPlans()
	if c.PlansFile != "" {
		if plans, err = billing.LoadPlans(c.PlansFile); err != nil {
			return fmt.Errorf("--plans: %w", err)
		}
	}
	var store *billing.Store
	if rdb != nil {
		store = billing.NewStore(rdb, plans, log.With("component", "billing"))
		if wait := c.RedisReplicas(); wait > 0 {
			// Exactly once across a failover: an event is acked to JetStream only once
			// its ledger write is on a replica that Sentinel or the cluster can promote.
			store.SetReplicaWait(wait, 2*time.Second)
		}
	}
	if o.Parts.Billing || o.Parts.Gateway {
		err := retryJS(ctx, log, "usage stream", func(ctx context.Context) error {
			_, err := billing.EnsureStream(ctx, js, c.JSReplicas)
			return err
		})
		if err != nil {
			return fmt.Errorf("usage stream: %w", err)
		}
	}
	if o.Parts.Billing {
		cons := billing.NewConsumer(js, store, ops.Registry, log.With("component", "billing"), billing.ConsumerConfig{Replicas: c.JSReplicas})
		g.Go(func() error { return cons.Run(gctx) })
	}

	if o.Parts.Transcriber {
		w, err := newWorker(nc, o, ops, log)
		if err != nil {
			return err
		}
		g.Go(func() error { return w.Run(gctx) })
	}

	var srv, opsSrv *http.Server
	var gw *gateway.Server
	var phone *twilio.Handler
	mux := http.NewServeMux()
	if o.Parts.Gateway {
		if o.Gateway.Demo {
			// The demo tenant is on the capped "demo" plan (1 h a month, tiny models), also
			// when it was created on another plan by an older version; a plans file may
			// define its own "demo" plan, and must have one.
			if _, err := plans.Get("demo", 0); err != nil {
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
		client, err := remote.NewClient(nc, log.With("component", "ingest"), remote.ClientOptions{SpeedBurst: 15 * time.Second})
		if err != nil {
			return err
		}
		closers = append(closers, func() { _ = client.Close() })
		gw, err = gateway.New(gateway.Config{
			Backend:             backend{client},
			Pipelines:           pipelines,
			Models:              catalog{allowSynthetic: o.Gateway.AllowSynthetic},
			Keys:                gateway.NewKeyStore(rdb),
			Signer:              signer,
			TokenUses:           gateway.NewRedisTokenUses(rdb),
			Quota:               quota{billing.NewQuota(store)},
			Metering:            metering{js: js, resumes: billing.NewResumes(rdb, 0)},
			Log:                 log,
			Metrics:             ops.Registry,
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
		gw.Mount("GET /v1/usage", gw.LimitFailedAuth(gw.KeyOnly(billing.UsageHandler(store, gw.TenantFromRequest))))
		var phoneTurns *bus.TurnOptions // --phone-turns: Flux's default knobs
		if o.Gateway.PhoneTurns {
			phoneTurns = &bus.TurnOptions{}
		}
		phone, err = twilio.New(twilio.Config{
			Turns:             phoneTurns,
			Backend:           backend{client},
			Tenants:           twilio.NewSecretStore(rdb),
			Metering:          callMetering{js},
			Quota:             quota{billing.NewQuota(store)},
			Webhooks:          twilio.NewRedisWebhooks(rdb),
			Publisher:         nc,
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
		gw.Mount("GET /v1/twilio", phone)
		gw.Mount("GET /v1/twilio/{secret}", phone)

		var retention *privacy.Store
		err = retryJS(ctx, log, "retention store", func(ctx context.Context) (err error) {
			retention, err = privacy.Open(ctx, privacy.Config{JS: js, Log: log.With("component", "privacy"), Replicas: c.JSReplicas})
			return err
		})
		if err != nil {
			return fmt.Errorf("retention store: %w", err)
		}
		g.Go(func() error { return retention.Run(gctx) })
		// Pre-recorded files go through their own client: they may be sent faster than
		// real time (the handler paces them against the worker's progress).
		batchClient, err := remote.NewClient(nc, log.With("component", "ingest-batch"), remote.ClientOptions{MaxSpeed: -1})
		if err != nil {
			return err
		}
		closers = append(closers, func() { _ = batchClient.Close() })
		// Uploads wait here while they are transcribed (unlinked files: nothing is left
		// behind by a crash), beside JetStream's files rather than in a small /tmp.
		spool := filepath.Join(c.DataDir, "spool")
		if err := os.MkdirAll(spool, 0o700); err != nil {
			return fmt.Errorf("spool dir %s: %w", spool, err)
		}
		var pre *prerecorded.Handler
		err = retryJS(ctx, log, "pre-recorded queue", func(ctx context.Context) (err error) {
			pre, err = prerecorded.New(ctx, prerecorded.Config{
				Backend:        backend{batchClient},
				Pipelines:      pipelines,
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
				Metrics:          ops.Registry,
				MaxJobsPerTenant: o.Gateway.MaxPrerecorded,
				Slots:            gateway.NewRedisLeases(rdb, "prerec", "pre-recorded requests", o.Gateway.MaxPrerecorded, 0, log.With("component", "prerecorded-guard")),
				CallbackSecrets:  prerecorded.NewRedisCallbackSecrets(rdb),
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("pre-recorded API: %w", err)
		}
		g.Go(func() error { return pre.Run(gctx) })
		gw.Mount("POST /v1/listen", gw.LimitFailedAuth(gw.KeyOnly(pre)))
		gw.Mount("GET /v1/requests/{id}", gw.LimitFailedAuth(gw.KeyOnly(pre)))
		gw.Mount("DELETE /v1/requests/{id}", gw.LimitFailedAuth(gw.KeyOnly(pre)))
		gw.Mount("GET /v1/callbacks/secret", gw.LimitFailedAuth(gw.KeyOnly(pre)))
		gw.Mount("/", web.Handler())
		// Load balancers probe /healthz and /readyz on the public address; there /readyz
		// says only ready or not. /metrics and the readiness details are on the ops address.
		publicOps := http.NewServeMux()
		ops.MountPublic(publicOps)
		for _, route := range []string{"GET /healthz", "GET /readyz"} {
			gw.Mount(route, publicOps)
		}
		srv = newHTTPServer(o.Gateway.Listen, gw.Handler(), c)
	}
	if opsAddr := c.OpsAddr(); opsAddr != "" {
		ops.Mount(mux)
		opsSrv = newHTTPServer(opsAddr, mux, c)
		ln, err := listenOps(opsAddr, log)
		if err != nil {
			return err
		}
		g.Go(func() error { return serveUntilClosed(opsSrv, ln) })
		opsBase := "http://" + displayAddr(ln.Addr())
		log.Info("ops serving", "url", opsBase)
		if srv == nil && o.Ready != nil {
			o.Ready(opsBase)
		}
	}
	if srv != nil {
		ln, err := net.Listen("tcp", srv.Addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w (is another earshot running? pick another with --listen)", srv.Addr, err)
		}
		base := "http://" + displayAddr(ln.Addr())
		tlsOn := o.Gateway.TLSCert != "" && o.Parts.Gateway
		if tlsOn {
			// The certificate is read on every handshake from a reloader: SIGHUP loads
			// renewed files without a restart (a failed reload keeps the old pair).
			certs, err := NewCertReloader(o.Gateway.TLSCert, o.Gateway.TLSKey, log.With("component", "tls"))
			if err != nil {
				ln.Close()
				return err
			}
			srv.TLSConfig = certs.TLSConfig()
			g.Go(func() error { return certs.Run(gctx) })
			base = "https://" + displayAddr(ln.Addr())
		}
		g.Go(func() error {
			var err error
			if tlsOn {
				err = srv.ServeTLS(ln, "", "")
			} else {
				err = srv.Serve(ln)
			}
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return err
		})
		log.Info("serving", "url", base)
		if o.Ready != nil {
			o.Ready(base)
		}
	}

	<-gctx.Done()
	ops.SetDraining()
	log.Info("draining", "timeout", c.DrainTimeout)
	dctx, cancel := context.WithTimeout(context.Background(), c.DrainTimeout)
	defer cancel()
	if phone != nil {
		if err := phone.Shutdown(dctx); err != nil {
			log.Warn("phone bridge drain", "err", err)
		}
	}
	if gw != nil {
		if err := gw.Shutdown(dctx); err != nil {
			log.Warn("gateway drain", "err", err)
		}
	}
	if srv != nil {
		_ = srv.Shutdown(dctx)
	}
	if opsSrv != nil {
		_ = opsSrv.Shutdown(dctx)
	}
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func newWorker(nc *nats.Conn, o Options, ops *Ops, log *slog.Logger) (*worker.Worker, error) {
	t := o.Transcriber
	cores := runtime.NumCPU()
	if err := t.Validate(cores); err != nil {
		return nil, err
	}
	if t.Engine == "standin" {
		return newStandInWorker(nc, o, ops, log)
	}
	loaded := map[string]transcriber.Model{}
	rss0 := transcriber.RSSBytes()
	for _, name := range t.Models {
		card, err := models.Lookup(name)
		if err == nil && card.Synthetic && !o.Gateway.AllowSynthetic {
			return nil, fmt.Errorf("model %s has random weights: start with --allow-synthetic-models to serve it (benchmarks only)", name)
		}
		path, err := models.Resolve(o.Common.ModelDir, name)
		if err != nil {
			return nil, err
		}
		if info, err := models.ReadGGMLInfo(path); err == nil && info.Synthetic && !o.Gateway.AllowSynthetic {
			return nil, fmt.Errorf("%s is a synthetic (random-weight) model: start with --allow-synthetic-models to serve it", path)
		}
		m, err := transcriber.LoadWhisper(path, transcriber.LoadOptions{Name: name, Threads: t.Threads, UseGPU: t.GPU,
			EstimateWordTimes: t.WordTimes == "estimate", Log: log})
		if err != nil {
			return nil, err
		}
		loaded[name] = m
	}
	vadPath, err := models.Resolve(o.Common.ModelDir, strings.TrimSuffix(strings.TrimPrefix(t.VADModel, "ggml-"), ".bin"))
	if err != nil {
		if _, serr := os.Stat(t.VADModel); serr == nil {
			vadPath = t.VADModel
		} else {
			return nil, fmt.Errorf("VAD model: %w", err)
		}
	}
	id := t.WorkerID
	if id == "" {
		host, _ := os.Hostname()
		id = fmt.Sprintf("%s-%d", strings.ReplaceAll(host, ".", "-"), os.Getpid())
	}
	turn, err := loadTurnModel(t.TurnModel, t.ORTLib, log)
	if err != nil {
		return nil, err
	}
	pool, err := transcriber.NewPool(transcriber.PoolConfig{
		TurnModel:        turn,
		Models:           loaded,
		NewVAD:           func() (transcriber.VAD, error) { return transcriber.NewSileroVAD(vadPath) },
		Worker:           bus.WorkerID(id),
		Slots:            t.SlotsFor(cores),
		ThreadsPerDecode: t.Threads,
		MaxSessions:      t.MaxSessions,
		Step:             t.Step,
		Warm:             true,
		Log:              log.With("component", "transcriber"),
	})
	if err != nil {
		return nil, err
	}
	if err := checkModelMemory(pool, loaded, rss0, t, log); err != nil {
		return nil, err
	}
	ops.AddCheck("models", func(context.Context) error {
		if len(loaded) == 0 {
			return errors.New("no model loaded")
		}
		return nil
	})
	return worker.New(nc, pool, worker.Config{
		ID: bus.WorkerID(id), Log: log.With("component", "worker"), Registerer: ops.Registry,
		DrainTimeout: o.Common.DrainTimeout,
	})
}

// loadTurnModel opens the end-of-turn model of turn-taking sessions (--turn-model): auto
// uses Smart Turn v3.2 when `make turn-model` installed it and says so when it did not
// (turns then end after 600 ms of silence, as with none); a path must load.
func loadTurnModel(spec, lib string, log *slog.Logger) (transcriber.TurnModel, error) {
	switch spec {
	case "none":
		log.Info("end of turn: VAD only (--turn-model none): a turn ends after 600 ms of silence")
		return nil, nil
	case "", "auto":
		p := smartturn.DefaultModelPath()
		if _, err := os.Stat(p); err != nil {
			log.Warn("end of turn: Smart Turn v3.2 is not installed, /v2/listen turns end after 600 ms of silence (VAD only); run `make turn-model` or scripts/smartturn.sh", "path", p)
			return nil, nil
		}
		spec = p
	}
	m, err := smartturn.Open(spec, smartturn.Options{LibPath: lib})
	if err != nil {
		return nil, fmt.Errorf("--turn-model %s: %w (install it with `make turn-model`, or start with --turn-model none for VAD-only turns)", spec, err)
	}
	log.Info("end of turn: Smart Turn v3.2", "path", spec)
	return m, nil
}

// checkModelMemory holds the worker to --model-memory-mb: with a budget it waits for the
// pool's warm-up (every model's weights and one decoder per model and slot in memory)
// and refuses to start when the process grew by more than the budget since before the
// models loaded, naming what it measured. Without one it returns at once.
func checkModelMemory(pool *transcriber.Pool, loaded map[string]transcriber.Model, rss0 int64, t config.Transcriber, log *slog.Logger) error {
	if t.ModelMemMB == 0 || rss0 == 0 {
		return nil
	}
	select {
	case <-pool.Warmed():
	case <-time.After(5 * time.Minute):
		pool.Close()
		return fmt.Errorf("--model-memory-mb: the models did not warm up within 5 minutes")
	}
	used := (transcriber.RSSBytes() - rss0) >> 20
	log.Info("model memory", "models", t.Models, "slots", t.SlotsFor(runtime.NumCPU()), "used_mb", used, "budget_mb", t.ModelMemMB)
	if used <= int64(t.ModelMemMB) {
		return nil
	}
	pool.Close()
	for _, m := range loaded {
		_ = m.Close()
	}
	return fmt.Errorf("--models %s take %d MB once loaded and warmed up on %d decode slots, more than --model-memory-mb %d: "+
		"load fewer or smaller models (e.g. base-q8_0 for base), use fewer --slots, or raise the budget",
		strings.Join(t.Models, ","), used, t.SlotsFor(runtime.NumCPU()), t.ModelMemMB)
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

func displayAddr(a net.Addr) string {
	t, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	if t.IP.IsUnspecified() {
		return fmt.Sprintf("localhost:%d", t.Port)
	}
	return t.String()
}

// newStandInWorker is a worker whose sessions are transcriber.StandIn: no model, no
// decoding, words at real-time pace. For transport and scale benchmarks only.
func newStandInWorker(nc *nats.Conn, o Options, ops *Ops, log *slog.Logger) (*worker.Worker, error) {
	t := o.Transcriber
	id := t.WorkerID
	if id == "" {
		host, _ := os.Hostname()
		id = fmt.Sprintf("%s-%d", strings.ReplaceAll(host, ".", "-"), os.Getpid())
	}
	log.Warn("stand-in engine: sessions get placeholder words at real-time pace, nothing is recognised (benchmarks only)",
		"models", t.Models, "max_sessions", t.MaxSessions)
	return worker.New(nc, transcriber.NewStandIn(t.Models, t.MaxSessions), worker.Config{
		ID: bus.WorkerID(id), Log: log.With("component", "worker"), Registerer: ops.Registry,
		DrainTimeout: o.Common.DrainTimeout,
	})
}
