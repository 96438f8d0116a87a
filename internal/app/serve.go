package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/earshot-dev/earshot/billing"
	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/gateway/twilio"
	"github.com/earshot-dev/earshot/internal/config"
	"github.com/earshot-dev/earshot/internal/redislog"
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

// process is what the steps of Run share: the options, the ops server's checks and
// metrics, the clients they open (closed when Run returns, last first), the errgroup the
// services run in, and the servers Run drains.
type process struct {
	o       Options
	log     *slog.Logger
	ops     *Ops
	closers []func()

	nc  *nats.Conn
	js  jetstream.JetStream
	rdb redis.UniversalClient // with the gateway or billing

	g    *errgroup.Group
	gctx context.Context

	plans *billing.Plans
	store *billing.Store // with Redis

	gw     *gateway.Server // with the gateway
	phone  *twilio.Handler
	srv    *http.Server
	opsSrv *http.Server
	// The public and ops listeners, bound before anything else starts (bindListeners).
	gwLn, opsLn net.Listener
}

// Run runs the configured services until ctx is cancelled, then drains them.
func Run(ctx context.Context, o Options) error {
	c := o.Common
	// Private: it holds the token secret, the embedded NATS credentials and JetStream's
	// files (retained audio and transcripts).
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir %s: %w", c.DataDir, err)
	}
	p := &process{o: o, log: o.Log, ops: NewOps()}
	defer p.close()
	if err := p.bindListeners(); err != nil {
		return err
	}
	if err := p.connectNATS(ctx); err != nil {
		return err
	}
	if err := p.openRedis(); err != nil {
		return err
	}
	p.g, p.gctx = errgroup.WithContext(ctx)
	if err := p.startBilling(ctx); err != nil {
		return err
	}
	if o.Parts.Transcriber {
		if err := p.startWorker(); err != nil {
			return err
		}
	}
	if o.Parts.Gateway {
		if err := p.startGateway(ctx); err != nil {
			return err
		}
	}
	if err := p.serveOps(); err != nil {
		return err
	}
	if err := p.serveGateway(); err != nil {
		return err
	}
	<-p.gctx.Done()
	return p.drain()
}

// bindListeners binds the public and ops addresses first: a taken address fails the
// start at once, before models load, and nothing started later (the embedded NATS
// server's random port, an outgoing connection) can take a port the operator chose.
// Connections that arrive before the servers start wait in the listen backlog.
func (p *process) bindListeners() error {
	o, c := p.o, p.o.Common
	if o.Parts.Gateway {
		ln, err := net.Listen("tcp", o.Gateway.Listen)
		if err != nil {
			return fmt.Errorf("listen on %s: %w (is another earshot running? pick another with --listen)", o.Gateway.Listen, err)
		}
		p.gwLn = ln
		p.closers = append(p.closers, func() { _ = ln.Close() })
	}
	if opsAddr := c.OpsAddr(); opsAddr != "" {
		ln, err := listenOps(opsAddr, p.log)
		if err != nil {
			return err
		}
		p.opsLn = ln
		p.closers = append(p.closers, func() { _ = ln.Close() })
	}
	return nil
}

// close closes what the steps opened, last first.
func (p *process) close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
}

// connectNATS connects to NATS (embedded for one-machine use, else external) and waits
// for JetStream.
func (p *process) connectNATS(ctx context.Context) error {
	o, c, log, ops := p.o, p.o.Common, p.log, p.ops
	url := c.NATSURL
	var natsAuth []nats.Option
	if url == "" && o.Parts.Embedded {
		ns, user, cleanup, err := StartSecuredNATS(c.DataDir, log)
		if err != nil {
			return err
		}
		p.closers = append(p.closers, func() { ns.Shutdown(); ns.WaitForShutdown(); cleanup() })
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
	p.nc = nc
	p.closers = append(p.closers, func() { _ = nc.Drain() })
	ops.AddCheck("nats", func(context.Context) error {
		if !nc.IsConnected() {
			return fmt.Errorf("not connected to %s", RedactURL(url))
		}
		return nil
	})
	if p.js, err = jetstream.New(nc); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	return waitJetStream(ctx, p.js, c.JSReplicas, log)
}

// openRedis connects to Redis when the gateway or billing runs here.
func (p *process) openRedis() error {
	if !p.o.Parts.Gateway && !p.o.Parts.Billing {
		return nil
	}
	redislog.Route(p.log)
	rdb, err := p.o.Common.RedisClient()
	if err != nil {
		return err
	}
	p.rdb = rdb
	p.closers = append(p.closers, func() { _ = rdb.Close() })
	p.ops.AddCheck("redis", func(ctx context.Context) error { return rdb.Ping(ctx).Err() })
	return nil
}

// serveOps serves /healthz, /readyz and /metrics on the ops address, if there is one.
func (p *process) serveOps() error {
	o, c, log := p.o, p.o.Common, p.log
	ln := p.opsLn
	if ln == nil {
		return nil
	}
	mux := http.NewServeMux()
	p.ops.Mount(mux)
	opsSrv := newHTTPServer(c.OpsAddr(), mux, c)
	p.opsSrv = opsSrv
	p.g.Go(func() error { return serveUntilClosed(opsSrv, ln) })
	opsBase := "http://" + displayAddr(ln.Addr())
	log.Info("ops serving", "url", opsBase)
	if p.srv == nil && o.Ready != nil {
		o.Ready(opsBase)
	}
	return nil
}

// serveGateway serves the gateway's public address (HTTPS with --tls-cert), if it runs
// here.
func (p *process) serveGateway() error {
	o, log, srv := p.o, p.log, p.srv
	if srv == nil {
		return nil
	}
	ln := p.gwLn
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
		p.g.Go(func() error { return certs.Run(p.gctx) })
		base = "https://" + displayAddr(ln.Addr())
	}
	p.g.Go(func() error {
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
	return nil
}

// drain stops taking work (readiness fails, the phone bridge and the gateway end their
// calls and streams within --drain-timeout), closes the servers and waits for the
// services to return.
func (p *process) drain() error {
	c, log := p.o.Common, p.log
	p.ops.SetDraining()
	log.Info("draining", "timeout", c.DrainTimeout)
	dctx, cancel := context.WithTimeout(context.Background(), c.DrainTimeout)
	defer cancel()
	if p.phone != nil {
		if err := p.phone.Shutdown(dctx); err != nil {
			log.Warn("phone bridge drain", "err", err)
		}
	}
	if p.gw != nil {
		if err := p.gw.Shutdown(dctx); err != nil {
			log.Warn("gateway drain", "err", err)
		}
	}
	if p.srv != nil {
		_ = p.srv.Shutdown(dctx)
	}
	if p.opsSrv != nil {
		_ = p.opsSrv.Shutdown(dctx)
	}
	err := p.g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
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
