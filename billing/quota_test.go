package billing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
)

func TestQuotaCheckNamesTheReason(t *testing.T) {
	s, _ := newStore(t, testPlans(t))
	ctx := context.Background()
	for id, plan := range map[bus.TenantID]string{"prepaid": "payg", "broke": "payg", "trial": "trial", "monthly": "monthly"} {
		if _, err := s.CreateTenant(ctx, id, plan); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateTenant(ctx, "prepaid", "payg"); !errors.Is(err, ErrTenantExists) {
		t.Fatalf("second create: %v", err)
	}
	if _, err := s.TopUp(ctx, "prepaid", 10); err != nil { // 10 cents at $10/h = 36 s
		t.Fatal(err)
	}
	// The trial's one included hour used up this month.
	now := time.Now()
	if _, err := s.Apply(ctx, usage("trial", "tiny.en", "x", "", 0, MaxEventMs, now, true), now); err != nil {
		t.Fatal(err)
	}
	q := NewQuota(s)
	cases := []struct {
		tenant bus.TenantID
		model  string
		want   error
		ms     int64
		unl    bool
	}{
		{"prepaid", "tiny.en", nil, 36000, false},
		{"broke", "tiny.en", ErrNoBalance, 0, false},
		{"trial", "tiny.en", ErrQuotaExhausted, 0, false},
		{"trial", "large-v3", ErrModelNotInPlan, 0, false},
		{"monthly", "large-v3", nil, 0, true},
		{"nobody", "tiny.en", ErrUnknownTenant, 0, false},
	}
	for _, c := range cases {
		t.Run(string(c.tenant)+"/"+c.model, func(t *testing.T) {
			err := q.Check(ctx, c.tenant, c.model)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("Check = %v, want %v", err, c.want)
			}
			ms, unl, _ := q.Remaining(ctx, c.tenant, c.model)
			if ms != c.ms || unl != c.unl {
				t.Fatalf("Remaining = %d %v, want %d %v", ms, unl, c.ms, c.unl)
			}
		})
	}
	if err := s.SetPlan(ctx, "broke", "monthly", 0); err != nil {
		t.Fatal(err)
	}
	if err := q.Check(ctx, "broke", "tiny.en"); err != nil {
		t.Fatalf("after moving to a monthly plan: %v", err)
	}
	if err := s.SetPlan(ctx, "broke", "gold", 0); !errors.Is(err, ErrUnknownPlan) {
		t.Fatalf("unknown plan: %v", err)
	}
}

func TestPlansFromFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "plans.json")
	os.WriteFile(good, []byte(`{"plans":[{"id":"pro","version":1,"kind":"monthly","currency":"EUR","price_per_hour_minor":50,
		"monthly_fee_minor":9900,"included_hours":100,"overage_allowed":true,"round_ms":1000},
		{"id":"pro","version":2,"kind":"monthly","currency":"EUR","price_per_hour_minor":40,"included_hours":120}]}`), 0o600)
	p, err := LoadPlans(good)
	if err != nil {
		t.Fatal(err)
	}
	if latest, _ := p.Get("pro", 0); latest.Version != 2 || latest.IncludedMs() != 120*3600000 {
		t.Fatalf("latest %+v", latest)
	}
	for name, body := range map[string]string{
		"unknown key": `{"plans":[{"id":"x","version":1,"kind":"payg","price_per_hour_minor":1,"colour":"red"}]}`,
		"bad kind":    `{"plans":[{"id":"x","version":1,"kind":"yearly"}]}`,
		"free payg":   `{"plans":[{"id":"x","version":1,"kind":"payg"}]}`,
		"duplicate":   `{"plans":[{"id":"x","version":1,"kind":"monthly"},{"id":"x","version":1,"kind":"monthly"}]}`,
	} {
		f := filepath.Join(dir, "bad.json")
		os.WriteFile(f, []byte(body), 0o600)
		if _, err := LoadPlans(f); !errors.Is(err, ErrBadPlan) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if ids := DefaultPlans().IDs(); len(ids) != 6 { // payg, payg-min, starter, team, trial, demo (v1, v2)
		t.Fatalf("default plans %v", ids)
	}
}

// TestPlanAllowsQuantizedCopies: a plan that allows tiny.en allows tiny.en-q8_0 (the same
// weights in 8 bits), but not another model that merely shares a prefix.
func TestPlanAllowsQuantizedCopies(t *testing.T) {
	trial, err := DefaultPlans().Get("trial", 0)
	if err != nil {
		t.Fatal(err)
	}
	for model, want := range map[string]bool{
		"tiny.en": true, "tiny.en-q8_0": true, "tiny-q5_1": true,
		"base.en": false, "base.en-q8_0": false, "tiny.en-qx": false, "tiny.en-q8_0-q8_0": false, "tiny.en-turbo": false,
	} {
		if got := trial.AllowsModel(model); got != want {
			t.Errorf("trial allows %s: %v, want %v", model, got, want)
		}
	}
}

// CheckFile refuses a file longer than the plan takes, or than the balance or the
// included hours still cover, and admits the rest.
func TestQuotaCheckFile(t *testing.T) {
	s, _ := newStore(t, DefaultPlans())
	ctx := context.Background()
	for id, plan := range map[bus.TenantID]string{"prepaid": "payg", "trial": "trial", "team": "team"} {
		if _, err := s.CreateTenant(ctx, id, plan); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.TopUp(ctx, "prepaid", 1); err != nil { // 1 cent at $0.72/h = 50 s
		t.Fatal(err)
	}
	q := NewQuota(s)
	cases := []struct {
		tenant bus.TenantID
		ms     int64
		want   error
	}{
		{"prepaid", 50_000, nil},
		{"prepaid", 50_001, ErrNoBalance},
		{"trial", 1800_000, nil},
		{"trial", 1800_001, ErrFileTooLong},
		{"team", 10 * 3600_000, nil}, // overage allowed, no file limit on the plan
	}
	for _, c := range cases {
		if err := q.CheckFile(ctx, c.tenant, "tiny.en", c.ms); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s, %d ms: %v, want %v", c.tenant, c.ms, err, c.want)
		}
	}
	// The trial's two included hours, less 10 minutes, used this month: a 15-minute
	// file is within the plan's length but not its remaining quota.
	now := time.Now()
	for i, d := range []int64{MaxEventMs, 50 * 60_000} {
		if _, err := s.Apply(ctx, usage("trial", "tiny.en", bus.SessionID(fmt.Sprint("y", i)), "", 0, d, now, true), now); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.CheckFile(ctx, "trial", "tiny.en", 15*60_000); !errors.Is(err, ErrQuotaExhausted) {
		t.Fatalf("15 min with 10 min left: %v, want ErrQuotaExhausted", err)
	}
}
