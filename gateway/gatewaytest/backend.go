package gatewaytest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/gateway/internal/standin"
	"github.com/earshot-dev/earshot/ingest/remote"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testutil"
	"github.com/earshot-dev/earshot/transcriber"
	"github.com/earshot-dev/earshot/transcriber/worker"
)

// Backend is the stand-in gateway.Backend: deterministic words ("w1", "w2", ... one
// per 0.5 s of audio per channel), configured by the fields of standin.Backend
// (OpenErr, MaxStreams, Flood, FailWith, FailFirstAt, KeepAudio), which it also
// reports through (Opened, Streams, Live). The zero value is ready.
type Backend struct{ standin.Backend }

// Open opens a stand-in stream. On an error the Stream is to be ignored.
func (b *Backend) Open(ctx context.Context, req bus.SessionRequest) (gateway.Stream, error) {
	return b.Backend.Open(ctx, req)
}

// ServeWorker runs a real worker (worker.New) serving f on the NATS server ns until
// the test ends.
func ServeWorker(t testing.TB, ns *server.Server, f transcriber.SessionFactory, cfg worker.Config) {
	t.Helper()
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = time.Second // sessions a test leaves open must not hold its cleanup
	}
	w, err := worker.New(testutil.Connect(t, ns), f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// NATSBackend is the service's backend on the NATS server ns: gateway.RemoteBackend
// over a remote.Client with opts, closed when the test ends.
func NATSBackend(t testing.TB, ns *server.Server, opts remote.ClientOptions) gateway.Backend {
	t.Helper()
	c, err := remote.NewClient(testutil.Connect(t, ns), nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return gateway.RemoteBackend(c)
}
