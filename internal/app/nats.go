package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/earshot-dev/earshot/internal/config"
)

// StartEmbeddedNATS runs nats-server in this process with JetStream on local disk under
// dataDir/nats, listening on loopback only (a random port unless port > 0), without
// authentication: for the benchmark's own bus. `earshot serve` uses StartSecuredNATS.
func StartEmbeddedNATS(dataDir string, port int, log *slog.Logger) (*server.Server, error) {
	return startNATS(dataDir, port, NATSUser{}, log)
}

// NATSUser is a user name and password of the embedded NATS server.
type NATSUser struct{ Name, Password string }

// NATSURLFile is the file in the data dir that holds the embedded server's URL with its
// credentials (mode 0600), for tools outside the process: `earshot keys create --nats
// "$(cat data/nats.url)"`, tests. It is rewritten at every start and removed at exit.
const NATSURLFile = "nats.url"

// StartSecuredNATS is StartEmbeddedNATS with a user and password generated at this start
// (kept in memory, and in dataDir/nats.url, 0600): a connection without them is refused,
// so another local user cannot subscribe to the audio and transcripts on the bus. The
// caller connects with the returned user and calls the cleanup after Shutdown.
func StartSecuredNATS(dataDir string, log *slog.Logger) (*server.Server, NATSUser, func(), error) {
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, NATSUser{}, nil, err
	}
	u := NATSUser{Name: "earshot", Password: hex.EncodeToString(raw[:])}
	s, err := startNATS(dataDir, 0, u, log)
	if err != nil {
		return nil, NATSUser{}, nil, err
	}
	p := filepath.Join(dataDir, NATSURLFile)
	cu, _ := url.Parse(s.ClientURL())
	cu.User = url.UserPassword(u.Name, u.Password)
	// Written to a fresh file (never through an older one another user may have left).
	_ = os.Remove(p)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		_, err = f.WriteString(cu.String() + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		s.Shutdown()
		return nil, NATSUser{}, nil, fmt.Errorf("keep embedded NATS credentials in %s: %w", p, err)
	}
	return s, u, func() { _ = os.Remove(p) }, nil
}

func startNATS(dataDir string, port int, u NATSUser, log *slog.Logger) (*server.Server, error) {
	if port == 0 {
		port = server.RANDOM_PORT
	}
	s, err := server.NewServer(&server.Options{
		ServerName: "earshot-embedded",
		Host:       "127.0.0.1",
		Port:       port,
		NoSigs:     true,
		NoLog:      true,
		JetStream:  true,
		StoreDir:   filepath.Join(dataDir, "nats"),
		Username:   u.Name,
		Password:   u.Password,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded nats did not start within 15s (store %s)", filepath.Join(dataDir, "nats"))
	}
	log.Info("embedded NATS ready", "url", s.ClientURL(), "jetstream_dir", filepath.Join(dataDir, "nats"),
		"auth", u.Name != "")
	return s, nil
}

// ConnectNATS connects to url with the credentials and TLS settings of c, reconnecting
// forever (a restarted NATS server is picked up again).
// Extra options (the embedded server's user) come after those of c.
func ConnectNATS(url, name string, c config.Common, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		// A server that goes silent (a network partition, a frozen host) is given up
		// after 2 unanswered pings 1 s apart, and the client moves to another seed;
		// nats.go's default (2 min) would hold streams on a dead node for minutes.
		nats.PingInterval(time.Second),
		nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
	}
	if c.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(c.NATSCreds))
	}
	if c.NATSCA != "" {
		opts = append(opts, nats.RootCAs(c.NATSCA))
	}
	if c.NATSCert != "" {
		opts = append(opts, nats.ClientCert(c.NATSCert, c.NATSKey))
	}
	nc, err := nats.Connect(url, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w (is nats-server running? set --nats/EARSHOT_NATS_URL)", RedactURL(url), err)
	}
	return nc, nil
}

// RedactURL hides the password of every URL in a comma-separated NATS URL list, for logs
// and errors.
func RedactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			}
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// waitJetStream waits until JetStream answers and can place streams of replicas copies:
// a NATS cluster that has just started elects its meta leader first, and services
// started alongside it would otherwise fail to create their streams. It reports
// progress every 5 s and gives up after 2 minutes.
func waitJetStream(ctx context.Context, js jetstream.JetStream, replicas int, log *slog.Logger) error {
	start := time.Now()
	lastLog := start
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.AccountInfo(actx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Since(start) > 2*time.Minute {
			return fmt.Errorf("JetStream not available after %v: %w (is JetStream enabled on the NATS servers, and do at least %d of them run it?)",
				time.Since(start).Round(time.Second), err, replicas)
		}
		if time.Since(lastLog) >= 5*time.Second {
			lastLog = time.Now()
			log.Warn("waiting for JetStream (a new NATS cluster elects its leader first)", "err", err,
				"waited", time.Since(start).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// retryJS runs fn (creating or updating JetStream assets) until it succeeds, 5 s per
// try, for up to 2 minutes: on a NATS cluster that has just formed, or with several
// services creating the same stream at once, a try can time out where the next one
// finds the stream made and only updates it.
func retryJS(ctx context.Context, log *slog.Logger, what string, fn func(context.Context) error) error {
	start := time.Now()
	for {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := fn(tctx)
		cancel()
		if err == nil || ctx.Err() != nil || time.Since(start) > 2*time.Minute {
			return err
		}
		log.Warn("JetStream assets not ready yet, trying again", "what", what, "err", err,
			"waited", time.Since(start).Round(time.Second))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
