package billing

import (
	"context"
	"fmt"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/nats-io/nats.go/jetstream"
)

// Retention of the USAGE stream. The stream keeps every usage event (and dead letter)
// for StreamMaxAge so a month can be re-applied to a fresh Redis by replaying it;
// DedupeTTL, the life of the per-event dedupe markers in Redis, is longer, so a replay
// of anything the stream still holds is recognised as a duplicate.
const (
	StreamMaxAge      = 40 * 24 * time.Hour
	DedupeTTL         = 45 * 24 * time.Hour
	DuplicateWindow   = 10 * time.Minute
	streamDescription = "Earshot usage events (audio ms per tenant, session, track); billing consumer 'billing'"
)

// EnsureStream creates or updates the USAGE stream: subjects bus.UsageWildcard, file
// storage, limits retention for StreamMaxAge, a 10 minute duplicate window for the
// publishers' Nats-Msg-Id (the event id), replicas copies (at least 1; 3 in a NATS
// cluster, so that the stream survives the loss of a node).
func EnsureStream(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.Stream, error) {
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        bus.UsageStream,
		Description: streamDescription,
		Subjects:    []string{bus.UsageWildcard},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      StreamMaxAge,
		Duplicates:  DuplicateWindow,
		Replicas:    max(1, replicas),
	})
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", bus.UsageStream, err)
	}
	return s, nil
}
