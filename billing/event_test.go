package billing

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
)

func TestValidateEvent(t *testing.T) {
	good := usage("acme", "tiny.en", "s1", "", 0, 2000, time.Now(), false)
	cases := []struct {
		name string
		mod  func(*bus.UsageEvent)
		ok   bool
	}{
		{"good", func(*bus.UsageEvent) {}, true},
		{"zero final", func(e *bus.UsageEvent) { e.DurationMs, e.Final = 0, true }, true},
		{"one hour", func(e *bus.UsageEvent) { e.DurationMs = MaxEventMs }, true},
		{"negative duration", func(e *bus.UsageEvent) { e.DurationMs = -1 }, false},
		{"over one hour", func(e *bus.UsageEvent) { e.DurationMs = MaxEventMs + 1 }, false},
		{"negative start", func(e *bus.UsageEvent) { e.StartMs = -2000 }, false},
		{"start a year in", func(e *bus.UsageEvent) { e.StartMs = MaxStartMs }, true},
		{"start beyond a year", func(e *bus.UsageEvent) { e.StartMs = MaxStartMs + 1 }, false},
		{"no id", func(e *bus.UsageEvent) { e.ID = "" }, false},
		{"no tenant", func(e *bus.UsageEvent) { e.Tenant = "" }, false},
		{"tenant with dot", func(e *bus.UsageEvent) { e.Tenant = "a.b" }, false},
		{"tenant hash tag", func(e *bus.UsageEvent) { e.Tenant = "a{b}" }, false},
		{"reserved tenant", func(e *bus.UsageEvent) { e.Tenant = "dead" }, false},
		{"no model", func(e *bus.UsageEvent) { e.Model = "" }, false},
		{"model with pipe", func(e *bus.UsageEvent) { e.Model = "a|b" }, false},
		{"no session", func(e *bus.UsageEvent) { e.Session = "" }, false},
		{"track with space", func(e *bus.UsageEvent) { e.Track = "in bound" }, false},
		{"huge call", func(e *bus.UsageEvent) { e.Call = strings.Repeat("c", 300) }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := good
			c.mod(&ev)
			err := ValidateEvent(ev)
			if (err == nil) != c.ok {
				t.Fatalf("ValidateEvent = %v, want ok=%v", err, c.ok)
			}
			if err != nil && !errors.Is(err, ErrBadEvent) {
				t.Fatalf("error %v does not wrap ErrBadEvent", err)
			}
		})
	}
}

func TestBillingTimeClampsFutureAt(t *testing.T) {
	stored := time.Date(2026, 11, 30, 23, 59, 0, 0, time.UTC)
	if got := billingTime(stored.Add(2*time.Hour), stored); !got.Equal(stored) {
		t.Fatalf("future At not clamped: %v", got)
	}
	if got := billingTime(stored.Add(time.Minute), stored); got.Month() != time.December {
		t.Fatalf("small skew should be kept: %v", got)
	}
	past := time.Date(2026, 10, 31, 23, 0, 0, 0, time.FixedZone("x", -3600))
	if got := billingTime(past, stored); got.Format("2006-01-02") != "2026-11-01" {
		t.Fatalf("At not taken in UTC: %v", got)
	}
	if got := billingTime(time.Time{}, stored); !got.Equal(stored) {
		t.Fatalf("zero At: %v", got)
	}
}

func FuzzDecodeUsageEvent(f *testing.F) {
	good, _ := json.Marshal(usage("acme", "tiny.en", "s1", "inbound", 4000, 2000, time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC), true))
	f.Add(good)
	f.Add([]byte(`{"id":"s:0:0","tenant":"t","model":"m","session":"s","start_ms":0,"duration_ms":-5,"at":"2026-11-28T00:00:00Z"}`))
	f.Add([]byte(`{"id":"s:0:0","tenant":"t","model":"m","session":"s","duration_ms":3600001}`))
	f.Add([]byte(`{"id":"x"} {"id":"y"}`))
	f.Add([]byte(`{"duration_ms":1e30}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := DecodeUsageEvent(b)
		if err != nil {
			if !errors.Is(err, ErrBadEvent) {
				t.Fatalf("error %v does not wrap ErrBadEvent", err)
			}
			return
		}
		if ev.DurationMs < 0 || ev.DurationMs > MaxEventMs || ev.StartMs < 0 || ValidTenantID(ev.Tenant) != nil {
			t.Fatalf("accepted invalid event %+v", ev)
		}
		again, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		ev2, err := DecodeUsageEvent(again)
		if err != nil || ev2.ID != ev.ID || ev2.DurationMs != ev.DurationMs || ev2.Tenant != ev.Tenant {
			t.Fatalf("round trip changed the event: %v %+v %+v", err, ev, ev2)
		}
	})
}
