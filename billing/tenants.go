package billing

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/redis/go-redis/v9"
)

// UnitsPerMinor is the number of price units (u) in one minor unit: one ms at a price
// of P minor units per hour costs exactly P u.
const UnitsPerMinor = 3_600_000

// Tenant is the billing record of one customer (hash tenant:{id}).
type Tenant struct {
	ID          bus.TenantID
	Plan        string
	PlanVersion int
	// BalanceU is the prepaid balance in price units (UnitsPerMinor per minor unit). It
	// may go below zero by the audio of streams that were live when it ran out.
	BalanceU int64
	Created  time.Time
}

// BalanceMinor is the balance in whole minor units, rounded toward minus infinity.
func (t Tenant) BalanceMinor() int64 {
	q := t.BalanceU / UnitsPerMinor
	if t.BalanceU%UnitsPerMinor < 0 {
		q--
	}
	return q
}

var createScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1`)

// CreateTenant creates tenant id on the latest version of plan with a zero balance.
func (s *Store) CreateTenant(ctx context.Context, id bus.TenantID, plan string) (Tenant, error) {
	if err := ValidTenantID(id); err != nil {
		return Tenant{}, err
	}
	p, err := s.plans.Get(plan, 0)
	if err != nil {
		return Tenant{}, err
	}
	now := s.now().UTC().Truncate(time.Second)
	ok, err := createScript.Run(ctx, s.rdb, []string{tenantKey(id)},
		"plan", p.ID, "plan_version", p.Version, "balance_u", 0, "rate", p.rate(),
		"round_ms", p.RoundMs, "min_ms", p.MinStreamMs, "created", now.Format(time.RFC3339)).Int()
	if err != nil {
		return Tenant{}, fmt.Errorf("create tenant %s: %w", id, err)
	}
	if ok == 0 {
		return Tenant{}, fmt.Errorf("%w: %s", ErrTenantExists, id)
	}
	s.log.Info("tenant created", "tenant", id, "plan", p.ID, "plan_version", p.Version)
	return Tenant{ID: id, Plan: p.ID, PlanVersion: p.Version, Created: now}, nil
}

// SetPlan moves tenant id to plan at version (0 = latest). Usage already applied keeps
// its debits; invoices are rated with the plan the tenant is on when they are made.
func (s *Store) SetPlan(ctx context.Context, id bus.TenantID, plan string, version int) error {
	p, err := s.plans.Get(plan, version)
	if err != nil {
		return err
	}
	if _, err := s.Get(ctx, id); err != nil {
		return err
	}
	err = s.rdb.HSet(ctx, tenantKey(id), "plan", p.ID, "plan_version", p.Version, "rate", p.rate(),
		"round_ms", p.RoundMs, "min_ms", p.MinStreamMs).Err()
	if err != nil {
		return fmt.Errorf("set plan of %s: %w", id, err)
	}
	s.log.Info("tenant plan set", "tenant", id, "plan", p.ID, "plan_version", p.Version)
	return nil
}

// TopUp adds amountMinor (> 0) to the prepaid balance and returns the new balance.
// It is not idempotent: callers dedupe payments by their own payment id.
func (s *Store) TopUp(ctx context.Context, id bus.TenantID, amountMinor int64) (Tenant, error) {
	if amountMinor <= 0 || amountMinor > (1<<62)/UnitsPerMinor {
		return Tenant{}, fmt.Errorf("top up of %d minor units: amount must be positive", amountMinor)
	}
	if _, err := s.Get(ctx, id); err != nil {
		return Tenant{}, err
	}
	if err := s.rdb.HIncrBy(ctx, tenantKey(id), "balance_u", amountMinor*UnitsPerMinor).Err(); err != nil {
		return Tenant{}, fmt.Errorf("top up %s: %w", id, err)
	}
	s.log.Info("tenant topped up", "tenant", id, "amount_minor", amountMinor)
	return s.Get(ctx, id)
}

// Get reads tenant id; ErrUnknownTenant when it does not exist.
func (s *Store) Get(ctx context.Context, id bus.TenantID) (Tenant, error) {
	if err := ValidTenantID(id); err != nil {
		return Tenant{}, err
	}
	m, err := s.rdb.HGetAll(ctx, tenantKey(id)).Result()
	if err != nil {
		return Tenant{}, fmt.Errorf("get tenant %s: %w", id, err)
	}
	if len(m) == 0 || m["plan"] == "" {
		return Tenant{}, fmt.Errorf("%w: %s", ErrUnknownTenant, id)
	}
	t := Tenant{ID: id, Plan: m["plan"]}
	t.PlanVersion, _ = strconv.Atoi(m["plan_version"])
	t.BalanceU, _ = strconv.ParseInt(m["balance_u"], 10, 64)
	t.Created, _ = time.Parse(time.RFC3339, m["created"])
	return t, nil
}

// tenantPlan returns the tenant and the plan version it is on.
func (s *Store) tenantPlan(ctx context.Context, id bus.TenantID) (Tenant, Plan, error) {
	t, err := s.Get(ctx, id)
	if err != nil {
		return Tenant{}, Plan{}, err
	}
	p, err := s.plans.Get(t.Plan, t.PlanVersion)
	return t, p, err
}
