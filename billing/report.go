package billing

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
)

// InvoiceLine is the usage and charge of one model in a month.
type InvoiceLine struct {
	Model            string `json:"model"`
	Streams          int    `json:"streams"`
	Ms               int64  `json:"ms"`        // audio applied
	BilledMs         int64  `json:"billed_ms"` // after per-stream rounding and minimum
	IncludedMs       int64  `json:"included_ms"`
	OverageMs        int64  `json:"overage_ms"`
	RateMinorPerHour int64  `json:"rate_minor_per_hour"`
	AmountMinor      int64  `json:"amount_minor"`
}

// Hours is BilledMs in hours, 4 decimals.
func (l InvoiceLine) Hours() string { return formatHours(l.BilledMs) }

// Invoice is one tenant's month, rated with the plan the tenant is on.
type Invoice struct {
	Tenant      bus.TenantID  `json:"tenant"`
	Month       string        `json:"month"`
	Plan        string        `json:"plan"`
	PlanVersion int           `json:"plan_version"`
	Kind        PlanKind      `json:"kind"`
	Currency    string        `json:"currency"`
	FeeMinor    int64         `json:"fee_minor"`
	IncludedMs  int64         `json:"included_ms"`
	Lines       []InvoiceLine `json:"lines"`
	TotalMinor  int64         `json:"total_minor"`
}

// ParseMonth checks "YYYY-MM".
func ParseMonth(month string) (time.Time, error) {
	t, err := time.Parse("2006-01", month)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %q", ErrBadMonth, month)
	}
	return t, nil
}

// Report rates tenant's month (YYYY-MM, UTC). Each stream's ms is rounded per the
// plan; payg lines cost billed ms × price; monthly plans add the fee, give the included
// ms to models in name order and charge the rest at the overage price. Each line's
// amount is rounded half up to a minor unit.
func (s *Store) Report(ctx context.Context, tenant bus.TenantID, month string) (*Invoice, error) {
	if _, err := ParseMonth(month); err != nil {
		return nil, err
	}
	t, p, err := s.tenantPlan(ctx, tenant)
	if err != nil {
		return nil, err
	}
	streams, err := s.scanInts(ctx, usageKey(tenant, "s", month))
	if err != nil {
		return nil, err
	}
	byModel := map[string]*InvoiceLine{}
	for f, ms := range streams {
		model, _, _ := strings.Cut(f, "|")
		l := byModel[model]
		if l == nil {
			l = &InvoiceLine{Model: model, RateMinorPerHour: p.PricePerHourMinor}
			byModel[model] = l
		}
		l.Streams++
		l.Ms += ms
		l.BilledMs += billableMs(ms, p.RoundMs, p.MinStreamMs)
	}
	inv := &Invoice{Tenant: t.ID, Month: month, Plan: p.ID, PlanVersion: p.Version, Kind: p.Kind, Currency: p.Currency}
	if p.Kind == Monthly {
		inv.FeeMinor, inv.IncludedMs = p.MonthlyFeeMinor, p.IncludedMs()
	}
	models := make([]string, 0, len(byModel))
	for m := range byModel {
		models = append(models, m)
	}
	sort.Strings(models)
	left := inv.IncludedMs
	inv.TotalMinor = inv.FeeMinor
	for _, m := range models {
		l := *byModel[m]
		l.IncludedMs = min(left, l.BilledMs)
		left -= l.IncludedMs
		l.OverageMs = l.BilledMs - l.IncludedMs
		l.AmountMinor = amountMinor(l.OverageMs, p.PricePerHourMinor)
		inv.TotalMinor += l.AmountMinor
		inv.Lines = append(inv.Lines, l)
	}
	return inv, nil
}

// WriteTable writes the invoice for people.
func (inv *Invoice) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "Invoice %s  tenant %s  plan %s v%d (%s, %s)\n", inv.Month, inv.Tenant, inv.Plan, inv.PlanVersion, inv.Kind, inv.Currency)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "MODEL\tSTREAMS\tAUDIO MS\tBILLED HOURS\tINCLUDED HOURS\tOVERAGE HOURS\tRATE/H\tAMOUNT\t")
	for _, l := range inv.Lines {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t\n", l.Model, l.Streams, l.Ms, l.Hours(),
			formatHours(l.IncludedMs), formatHours(l.OverageMs), formatMinor(l.RateMinorPerHour), formatMinor(l.AmountMinor))
	}
	if inv.FeeMinor != 0 {
		fmt.Fprintf(tw, "monthly fee (%s h included)\t\t\t\t\t\t\t%s\t\n", formatHours(inv.IncludedMs), formatMinor(inv.FeeMinor))
	}
	fmt.Fprintf(tw, "TOTAL\t\t\t\t\t\t\t%s\t\n", formatMinor(inv.TotalMinor))
	return tw.Flush()
}

// WriteCSV writes one row per line plus fee and total rows; amounts in minor units.
func (inv *Invoice) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	_ = cw.Write([]string{"tenant", "month", "plan", "plan_version", "currency", "item", "streams", "audio_ms",
		"billed_ms", "billed_hours", "included_ms", "overage_ms", "rate_minor_per_hour", "amount_minor"})
	head := []string{string(inv.Tenant), inv.Month, inv.Plan, strconv.Itoa(inv.PlanVersion), inv.Currency}
	for _, l := range inv.Lines {
		_ = cw.Write(append(head[:5:5], "model:"+l.Model, strconv.Itoa(l.Streams), i(l.Ms), i(l.BilledMs), l.Hours(),
			i(l.IncludedMs), i(l.OverageMs), i(l.RateMinorPerHour), i(l.AmountMinor)))
	}
	if inv.FeeMinor != 0 {
		_ = cw.Write(append(head[:5:5], "monthly_fee", "", "", "", "", i(inv.IncludedMs), "", "", i(inv.FeeMinor)))
	}
	_ = cw.Write(append(head[:5:5], "total", "", "", "", "", "", "", "", i(inv.TotalMinor)))
	cw.Flush()
	return cw.Error()
}

// scanInts reads a possibly large hash of integers with HSCAN.
func (s *Store) scanInts(ctx context.Context, key string) (map[string]int64, error) {
	out := map[string]int64{}
	var cursor uint64
	for {
		kv, next, err := s.rdb.HScan(ctx, key, cursor, "", 1000).Result()
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", key, err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			n, err := strconv.ParseInt(kv[i+1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("scan %s field %s: %w", key, kv[i], err)
			}
			out[kv[i]] = n
		}
		if cursor = next; cursor == 0 {
			return out, nil
		}
	}
}
