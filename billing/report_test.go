package billing

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
)

// testPlans: round numbers so the invoices can be worked out by hand.
func testPlans(t *testing.T) *Plans {
	t.Helper()
	p, err := NewPlans([]Plan{
		{ID: "payg", Version: 1, Kind: PayAsYouGo, Currency: "USD", PricePerHourMinor: 1000, RoundMs: 1000},
		{ID: "payg-min", Version: 1, Kind: PayAsYouGo, Currency: "USD", PricePerHourMinor: 1000, RoundMs: 1000, MinStreamMs: 15000},
		{ID: "monthly", Version: 1, Kind: Monthly, Currency: "USD", MonthlyFeeMinor: 5000, IncludedHours: 1,
			PricePerHourMinor: 600, OverageAllowed: true, RoundMs: 1000},
		{ID: "trial", Version: 1, Kind: Monthly, Currency: "USD", IncludedHours: 1, RoundMs: 1000, Models: []string{"tiny.en"}},
		{ID: "live", Version: 1, Kind: PayAsYouGo, Currency: "USD", PricePerHourMinor: 360},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// applyMonth applies one synthetic November 2026 to tenant:
//
//	S1 tiny.en           2000+2000+500 = 4500 ms   → 5000 billed (per second), 15000 with minimum
//	S2 tiny.en           5 × 2000      = 10000 ms  → 10000, 15000 with minimum
//	S3 base.en           one hour      = 3600000   → 3600000
//	S4 base.en           1 ms                      → 1000, 15000 with minimum
//	S5 tiny.en inbound   7250 ms, outbound 7250 ms → 8000 each, 15000 each with minimum
//
// plus one December event and one far-future event (clamped to its receive time in
// December): neither is in November's invoice.
func applyMonth(t *testing.T, s *Store, tenant bus.TenantID) {
	t.Helper()
	nov := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	var evs []bus.UsageEvent
	add := func(sid bus.SessionID, track, model string, durs ...int64) {
		var start int64
		for i, d := range durs {
			evs = append(evs, usage(tenant, model, sid, track, start, d, nov.Add(time.Duration(start)*time.Millisecond), i == len(durs)-1))
			start += d
		}
	}
	add("S1", "", "tiny.en", 2000, 2000, 500)
	add("S2", "", "tiny.en", 2000, 2000, 2000, 2000, 2000, 0)
	add("S3", "", "base.en", MaxEventMs)
	add("S4", "", "base.en", 1)
	add("S5", "inbound", "tiny.en", 2000, 2000, 2000, 1250)
	add("S5", "outbound", "tiny.en", 2000, 2000, 2000, 1250)
	for _, ev := range evs {
		if out, err := s.Apply(context.Background(), ev, nov); err != nil || out != Applied {
			t.Fatalf("apply %s: %v %v", ev.ID, out, err)
		}
	}
	dec := time.Date(2026, 12, 1, 0, 0, 1, 0, time.UTC)
	if _, err := s.Apply(context.Background(), usage(tenant, "tiny.en", "S6", "", 0, 2000, dec, true), dec); err != nil {
		t.Fatal(err)
	}
	future := usage(tenant, "tiny.en", "S7", "", 0, 2000, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), true)
	if _, err := s.Apply(context.Background(), future, dec); err != nil {
		t.Fatal(err)
	}
}

func TestInvoiceForASyntheticMonth(t *testing.T) {
	s, _ := newStore(t, testPlans(t))
	ctx := context.Background()
	type line struct {
		model           string
		ms, billed, inc int64
		over, amount    int64
	}
	cases := []struct {
		plan  string
		lines []line
		fee   int64
		total int64
		// prepaid debit in u when every stream's Final arrived: Σ billed ms × price
		debitU int64
	}{
		// base.en: 3601000 ms × 1000/3.6e6 = 1000.28 → 1000; tiny.en: 31000 ms → 8.61 → 9
		{"payg", []line{{"base.en", 3600001, 3601000, 0, 3601000, 1000}, {"tiny.en", 29000, 31000, 0, 31000, 9}}, 0, 1009, (3601000 + 31000) * 1000},
		// base.en: 3615000 → 1004.17 → 1004; tiny.en: 4 streams × 15000 = 60000 → 16.67 → 17
		{"payg-min", []line{{"base.en", 3600001, 3615000, 0, 3615000, 1004}, {"tiny.en", 29000, 60000, 0, 60000, 17}}, 0, 1021, (3615000 + 60000) * 1000},
		// one included hour goes to base.en first (name order): 1000 ms over → 0.17 → 0;
		// tiny.en all over: 31000 × 600/3.6e6 = 5.17 → 5; plus the 5000 fee
		{"monthly", []line{{"base.en", 3600001, 3601000, 3600000, 1000, 0}, {"tiny.en", 29000, 31000, 0, 31000, 5}}, 5000, 5005, 0},
	}
	for _, c := range cases {
		t.Run(c.plan, func(t *testing.T) {
			tenant := bus.TenantID("t-" + c.plan)
			if _, err := s.CreateTenant(ctx, tenant, c.plan); err != nil {
				t.Fatal(err)
			}
			if _, err := s.TopUp(ctx, tenant, 100_000); err != nil {
				t.Fatal(err)
			}
			applyMonth(t, s, tenant)
			inv, err := s.Report(ctx, tenant, "2026-11")
			if err != nil {
				t.Fatal(err)
			}
			if len(inv.Lines) != len(c.lines) {
				t.Fatalf("lines %+v", inv.Lines)
			}
			for i, w := range c.lines {
				g := inv.Lines[i]
				if g.Model != w.model || g.Ms != w.ms || g.BilledMs != w.billed || g.IncludedMs != w.inc ||
					g.OverageMs != w.over || g.AmountMinor != w.amount {
					t.Errorf("line %d = %+v, want %+v", i, g, w)
				}
			}
			if inv.FeeMinor != c.fee || inv.TotalMinor != c.total {
				t.Errorf("fee %d total %d, want %d %d", inv.FeeMinor, inv.TotalMinor, c.fee, c.total)
			}
			tn, err := s.Get(ctx, tenant)
			if err != nil {
				t.Fatal(err)
			}
			// December: S6 and S7 (clamped) are 2000 ms each, billed per second, minimum 15 s.
			decU := int64(0)
			if c.debitU != 0 {
				per := int64(2000)
				if c.plan == "payg-min" {
					per = 15000
				}
				decU = 2 * per * 1000
			}
			if want := 100_000*int64(UnitsPerMinor) - c.debitU - decU; tn.BalanceU != want {
				t.Errorf("balance %d u, want %d u (debits must equal price × billed ms exactly)", tn.BalanceU, want)
			}
			if got := monthTotal(t, s, tenant, "2026-12"); got != 4000 {
				t.Errorf("December %d ms, want 4000 (one event plus one clamped from 2027)", got)
			}
			var tbl, csvb bytes.Buffer
			if err := inv.WriteTable(&tbl); err != nil {
				t.Fatal(err)
			}
			if err := inv.WriteCSV(&csvb); err != nil {
				t.Fatal(err)
			}
			total := formatMinor(c.total)
			if !strings.Contains(tbl.String(), "TOTAL") || !strings.Contains(tbl.String(), total) || !strings.Contains(tbl.String(), "tiny.en") {
				t.Errorf("table lacks the total %s:\n%s", total, tbl.String())
			}
			if !strings.Contains(csvb.String(), ",total,") || strings.Count(csvb.String(), "\n") < 4 {
				t.Errorf("csv:\n%s", csvb.String())
			}
			t.Logf("\n%s", tbl.String())
		})
	}
	if _, err := s.Report(ctx, "t-payg", "2026-13"); !errors.Is(err, ErrBadMonth) {
		t.Fatalf("bad month: %v", err)
	}
	if _, err := s.Report(ctx, "nobody", "2026-11"); !errors.Is(err, ErrUnknownTenant) {
		t.Fatalf("unknown tenant: %v", err)
	}
}

func TestMoneyHelpers(t *testing.T) {
	cases := []struct{ ms, round, min, want int64 }{
		{0, 1000, 15000, 0}, {1, 1000, 0, 1000}, {1000, 1000, 0, 1000}, {1001, 1000, 0, 2000},
		{1, 1000, 15000, 15000}, {15001, 1000, 15000, 16000}, {7, 0, 0, 7}, {7, 1, 5, 7},
	}
	for _, c := range cases {
		if got := billableMs(c.ms, c.round, c.min); got != c.want {
			t.Errorf("billableMs(%d,%d,%d) = %d, want %d", c.ms, c.round, c.min, got, c.want)
		}
	}
	if amountMinor(1800000, 1) != 1 || amountMinor(1799999, 1) != 0 || amountMinor(3600000, 72) != 72 {
		t.Fatal("half-up rounding")
	}
	if formatHours(5400000) != "1.5000" || formatMinor(-105) != "-1.05" {
		t.Fatal(formatHours(5400000), formatMinor(-105))
	}
}
