package billing

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
)

// Limits of one usage event. An event outside them is not billed: the consumer sends it
// to bus.UsageDeadLetterSubject and acks it, so one bad producer cannot stall billing.
const (
	// MaxEventMs is the longest audio one event may carry (one hour). A Meter never
	// emits more; anything larger is a bug or an attack, not usage.
	MaxEventMs = int64(time.Hour / time.Millisecond)
	// MaxStartMs bounds where in its stream an event may start (a year of audio). The
	// ledger's interval arithmetic runs in Lua numbers (doubles): exact far beyond it.
	MaxStartMs = int64(366 * 24 * time.Hour / time.Millisecond)
	// MaxFieldLen bounds ids and names carried in an event.
	MaxFieldLen = 256
	// FutureSkew is how far in the future an event's At may be before it is clamped to
	// the time JetStream stored it (a gateway with a fast clock must not bill into next month).
	FutureSkew = 5 * time.Minute
)

// DecodeUsageEvent decodes one usage event from JSON (unknown fields are ignored for
// forward compatibility; trailing data is an error) and validates it.
func DecodeUsageEvent(b []byte) (bus.UsageEvent, error) {
	var ev bus.UsageEvent
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&ev); err != nil {
		return ev, fmt.Errorf("%w: json: %v", ErrBadEvent, err)
	}
	if dec.More() {
		return ev, fmt.Errorf("%w: trailing data after the event", ErrBadEvent)
	}
	return ev, ValidateEvent(ev)
}

// ValidateEvent checks what billing relies on: ids present and of sane size, a tenant
// id usable in subjects and keys, 0 <= StartMs <= MaxStartMs and 0 <= DurationMs <= MaxEventMs.
func ValidateEvent(ev bus.UsageEvent) error {
	switch {
	case ev.ID == "" || len(ev.ID) > 3*MaxFieldLen:
		return fmt.Errorf("%w: id of %d bytes", ErrBadEvent, len(ev.ID))
	case ValidTenantID(ev.Tenant) != nil:
		return fmt.Errorf("%w: tenant %q", ErrBadEvent, ev.Tenant)
	case !validName(ev.Model):
		return fmt.Errorf("%w: model %q", ErrBadEvent, ev.Model)
	case !validName(string(ev.Session)):
		return fmt.Errorf("%w: session %q", ErrBadEvent, ev.Session)
	case ev.Conn != "" && !validName(string(ev.Conn)):
		return fmt.Errorf("%w: conn %q", ErrBadEvent, ev.Conn)
	case ev.Key != "" && !validName(string(ev.Key)):
		return fmt.Errorf("%w: key %q", ErrBadEvent, ev.Key)
	case ev.Track != "" && !validName(ev.Track):
		return fmt.Errorf("%w: track %q", ErrBadEvent, ev.Track)
	case len(ev.Call) > MaxFieldLen:
		return fmt.Errorf("%w: call id of %d bytes", ErrBadEvent, len(ev.Call))
	case ev.StartMs < 0:
		return fmt.Errorf("%w: negative start_ms %d", ErrBadEvent, ev.StartMs)
	case ev.StartMs > MaxStartMs:
		return fmt.Errorf("%w: start_ms %d beyond a year of audio", ErrBadEvent, ev.StartMs)
	case ev.DurationMs < 0:
		return fmt.Errorf("%w: negative duration_ms %d", ErrBadEvent, ev.DurationMs)
	case ev.DurationMs > MaxEventMs:
		return fmt.Errorf("%w: duration_ms %d over the %d ms limit of one event", ErrBadEvent, ev.DurationMs, MaxEventMs)
	}
	return nil
}

// ValidTenantID reports whether t can name a tenant: a NATS subject token, no Redis
// hash-tag braces or field separator, and not the reserved "dead".
func ValidTenantID(t bus.TenantID) error {
	s := string(t)
	if !bus.ValidToken(s) || strings.ContainsAny(s, "{}|:") || s == bus.UsageDeadLetterToken {
		return fmt.Errorf("%w: %q", ErrBadTenantID, s)
	}
	return nil
}

// validName accepts model names ("tiny.en"), sessions, keys and tracks: 1..MaxFieldLen
// printable bytes without white space or the "|" used in stream fields.
func validName(s string) bool {
	if s == "" || len(s) > MaxFieldLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '|' {
			return false
		}
	}
	return true
}

// billingTime is the instant an event is billed at: its At in UTC, or the time
// JetStream stored it when At is zero or more than FutureSkew ahead of that. Both come
// from the message, so a redelivery lands in the same month and day.
func billingTime(at, stored time.Time) time.Time {
	if at.IsZero() || (!stored.IsZero() && at.After(stored.Add(FutureSkew))) {
		at = stored
	}
	return at.UTC()
}
