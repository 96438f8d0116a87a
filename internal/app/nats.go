package app

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/earshot-dev/earshot/internal/config"
)

// StartEmbeddedNATS runs nats-server in this process with JetStream on local disk under
// dataDir/nats, listening on loopback only (a random port unless port > 0).
func StartEmbeddedNATS(dataDir string, port int, log *slog.Logger) (*server.Server, error) {
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
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded nats did not start within 15s (store %s)", filepath.Join(dataDir, "nats"))
	}
	log.Info("embedded NATS ready", "url", s.ClientURL(), "jetstream_dir", filepath.Join(dataDir, "nats"))
	return s, nil
}

// ConnectNATS connects to url with the credentials and TLS settings of c, reconnecting
// forever (a restarted NATS server is picked up again).
func ConnectNATS(url, name string, c config.Common, log *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrl()) }),
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
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w (is nats-server running? set --nats/EARSHOT_NATS_URL)", url, err)
	}
	return nc, nil
}
