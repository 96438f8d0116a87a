package billing

import (
	"context"
	"fmt"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
)

// Quota answers the gateway's two questions: may this tenant open a stream of this
// model, and for how long may it stream. Safe for concurrent use.
type Quota struct {
	s       *Store
	holdTTL time.Duration // SetHoldTTL
}

// NewQuota reads quotas from s.
func NewQuota(s *Store) *Quota { return &Quota{s: s} }

// Check returns nil when tenant may start streaming model, else an error wrapping
// ErrUnknownTenant, ErrModelNotInPlan, ErrNoBalance or ErrQuotaExhausted.
func (q *Quota) Check(ctx context.Context, tenant bus.TenantID, model string) error {
	_, _, err := q.Remaining(ctx, tenant, model)
	return err
}

// Remaining is how many ms of audio tenant may still stream with model as of the billed
// ledger (audio in flight is the caller's to subtract, see Hold). unlimited is true
// for monthly plans that allow overage. err is non-nil exactly when Check would refuse.
//
// Prepaid: balance_u / price (floor). Monthly: included ms − this month's billed ms.
func (q *Quota) Remaining(ctx context.Context, tenant bus.TenantID, model string) (ms int64, unlimited bool, err error) {
	t, p, err := q.s.tenantPlan(ctx, tenant)
	if err != nil {
		return 0, false, err
	}
	if !p.AllowsModel(model) {
		return 0, false, fmt.Errorf("%w: %q is not in plan %s (allowed: %v)", ErrModelNotInPlan, model, p.ID, p.Models)
	}
	switch p.Kind {
	case PayAsYouGo:
		if t.BalanceU <= 0 {
			return 0, false, fmt.Errorf("%w: tenant %s balance %d minor units", ErrNoBalance, tenant, t.BalanceMinor())
		}
		ms = t.BalanceU / p.PricePerHourMinor
		if ms < 1 {
			return 0, false, fmt.Errorf("%w: tenant %s balance below 1 ms of audio", ErrNoBalance, tenant)
		}
		return ms, false, nil
	default:
		if p.OverageAllowed {
			return 0, true, nil
		}
		used, err := q.s.MonthUsage(ctx, tenant, q.s.now().UTC().Format("2006-01"))
		if err != nil {
			return 0, false, err
		}
		ms = p.IncludedMs()
		for _, v := range used {
			ms -= v
		}
		if ms <= 0 {
			return 0, false, fmt.Errorf("%w: tenant %s used the %d included hours of plan %s this month",
				ErrQuotaExhausted, tenant, p.IncludedHours, p.ID)
		}
		return ms, false, nil
	}
}

// CheckFile admits a pre-recorded file of ms milliseconds: Check's rules, then the
// plan's longest file (ErrFileTooLong) and what the balance or included hours still
// cover (ErrNoBalance, ErrQuotaExhausted): a file is refused whole rather than
// transcribed past what is paid for. Files in flight at once are not summed.
func (q *Quota) CheckFile(ctx context.Context, tenant bus.TenantID, model string, ms int64) error {
	left, unlimited, err := q.Remaining(ctx, tenant, model)
	if err != nil {
		return err
	}
	_, p, err := q.s.tenantPlan(ctx, tenant)
	if err != nil {
		return err
	}
	secs := func(ms int64) string { return fmt.Sprintf("%.1f s", float64(ms)/1000) }
	switch {
	case p.MaxFileSeconds > 0 && ms > p.MaxFileSeconds*1000:
		return fmt.Errorf("%w: the file holds %s of audio; plan %s takes files up to %d s: split it",
			ErrFileTooLong, secs(ms), p.ID, p.MaxFileSeconds)
	case unlimited || ms <= left:
		return nil
	case p.Kind == PayAsYouGo:
		return fmt.Errorf("%w: the file holds %s of audio; tenant %s's balance covers %s", ErrNoBalance, secs(ms), tenant, secs(left))
	default:
		return fmt.Errorf("%w: the file holds %s of audio; %s of plan %s's included hours are left this month",
			ErrQuotaExhausted, secs(ms), secs(left), p.ID)
	}
}
