package gateway

import (
	"context"

	"github.com/earshot-dev/earshot/ingest/remote"
	"github.com/earshot-dev/earshot/internal/bus"
)

// RemoteBackend is the Backend of the service: sessions on transcriber workers over
// NATS through c. Its errors are c's (a full fleet's wraps bus.ErrNoCapacity).
func RemoteBackend(c *remote.Client) Backend { return remoteBackend{c} }

type remoteBackend struct{ c *remote.Client }

func (b remoteBackend) Open(ctx context.Context, req bus.SessionRequest) (Stream, error) {
	s, err := b.c.Open(ctx, req)
	if err != nil {
		return nil, err // not a nil *remote.Session in a non-nil Stream
	}
	return s, nil
}
