package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/earshot-dev/earshot/internal/bus"
)

// The audit stream is bus.AuditStream: one subject per tenant (bus.AuditSubject),
// deletes and purges denied.

// Audit actions recorded by this package (earshot keys adds key.created, key.revoked).
const (
	ActionPolicySet = "retention.policy_set"
	ActionRetained  = "retention.kept"
	ActionDeleted   = "retention.deleted"
	ActionErased    = "tenant.erased"
)

// Entry is one audit record. Target names what was acted on (a request id, a key id,
// counts); it never holds transcript text or audio.
type Entry struct {
	At     time.Time    `json:"at"`
	Actor  string       `json:"actor"`
	Action string       `json:"action"`
	Tenant bus.TenantID `json:"tenant"`
	Target string       `json:"target,omitempty"`
}

// Audit appends e to the tenant's audit log (At defaults to now).
func (s *Store) Audit(ctx context.Context, e Entry) error {
	if !bus.ValidToken(string(e.Tenant)) {
		return fmt.Errorf("%w: %q", ErrBadTenant, e.Tenant)
	}
	if e.At.IsZero() {
		e.At = s.now().UTC()
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := s.js.Publish(ctx, bus.AuditSubject(e.Tenant), b); err != nil {
		return fmt.Errorf("privacy: audit %s %s: %w", e.Action, e.Tenant, err)
	}
	return nil
}

// AuditLog returns every audit entry of tenant t, oldest first.
func (s *Store) AuditLog(ctx context.Context, t bus.TenantID) ([]Entry, error) {
	if !bus.ValidToken(string(t)) {
		return nil, fmt.Errorf("%w: %q", ErrBadTenant, t)
	}
	cons, err := s.js.OrderedConsumer(ctx, bus.AuditStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.AuditSubject(t)}, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("privacy: audit log of %s: %w", t, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("privacy: audit log of %s: %w", t, err)
	}
	var out []Entry
	for pending := int(info.NumPending); pending > 0; {
		batch, err := cons.Fetch(min(pending, 256), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("privacy: audit log of %s: %w", t, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			var e Entry
			if err := json.Unmarshal(m.Data(), &e); err == nil {
				out = append(out, e)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("privacy: audit log of %s: %w", t, err)
		}
		if got == 0 {
			break
		}
		pending -= got
	}
	return out, nil
}
