package billing

import (
	"context"
	_ "embed"
	"fmt"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/redis/go-redis/v9"
)

//go:embed hold.lua
var holdLua string

var holdScript = redis.NewScript(holdLua)

// HoldTTL is how long a live stream's hold outlives the gateway's last word about it:
// a crashed gateway's reservation is free again after it, and a finished stream's audio
// counts as in flight for as long while billing catches up.
const HoldTTL = 45 * time.Second

// SetHoldTTL changes how long holds live (tests); d <= 0 restores HoldTTL.
func (q *Quota) SetHoldTTL(d time.Duration) {
	if d <= 0 {
		d = HoldTTL
	}
	q.holdTTL = d
}

func (q *Quota) ttl() int64 {
	if q.holdTTL <= 0 {
		return HoldTTL.Milliseconds()
	}
	return q.holdTTL.Milliseconds()
}

func holdsKey(t bus.TenantID) string { return "hold:{" + string(t) + "}" }

// Hold reserves audio for one live connection so that a tenant's quota holds across
// every gateway. member names the connection (its own session id), sid the session its
// usage events bill (the same for a new stream, the resumed stream's otherwise). The
// connection has sent billable ms (all channels, what its events bill) and asks to send
// up to want ms more. The grant is what the tenant has left as of the ledger, minus
// what every other live connection of the tenant holds and has not yet had billed,
// minus this connection's own unbilled audio.
//
// It returns the connection's new limit (billable ms in all; ≥ billable) and unlimited
// for plans without a cap (monthly with overage: nothing is held). When nothing is left
// it returns grant == billable and an error wrapping ErrNoBalance or ErrQuotaExhausted;
// a partial grant (less than want) is not an error: to keep a grant, ask for what is
// left of it. Any other error means Redis could not be asked. The hold expires HoldTTL
// after its last call (its gateway died) unless Hold or Release renews it.
func (q *Quota) Hold(ctx context.Context, tenant bus.TenantID, model string, sid bus.SessionID, member string, billable, want int64) (grant int64, unlimited bool, err error) {
	t, p, err := q.s.tenantPlan(ctx, tenant)
	if err != nil {
		return billable, false, err
	}
	if !p.AllowsModel(model) {
		return billable, false, fmt.Errorf("%w: %q is not in plan %s (allowed: %v)", ErrModelNotInPlan, model, p.ID, p.Models)
	}
	mode, arg := "payg", p.PricePerHourMinor
	if p.Kind != PayAsYouGo {
		if p.OverageAllowed {
			return 0, true, nil
		}
		mode, arg = "monthly", p.IncludedMs()
	}
	month := q.s.now().UTC().Format("2006-01")
	res, err := holdScript.Run(ctx, q.s.rdb, []string{holdsKey(tenant), tenantKey(tenant), usageKey(tenant, "m", month)},
		member, string(sid), billable, max(0, want), q.ttl(), mode, arg, usageKey(tenant, "sess", "")).Int64Slice()
	if err != nil {
		return billable, false, fmt.Errorf("hold audio for %s: %w", tenant, err)
	}
	grant, free := res[0], res[1]
	if free > 0 {
		return grant, false, nil
	}
	if mode == "payg" {
		return grant, false, fmt.Errorf("%w: tenant %s balance %d minor units is held by its other live streams or used up",
			ErrNoBalance, tenant, t.BalanceMinor())
	}
	return grant, false, fmt.Errorf("%w: tenant %s's included hours of plan %s this month are used or held by its other live streams",
		ErrQuotaExhausted, tenant, p.ID)
}

// Release ends a stream's hold at billable ms: that much stays counted as in flight
// until billing has applied it (or HoldTTL passes), then the hold is gone.
func (q *Quota) Release(ctx context.Context, tenant bus.TenantID, sid bus.SessionID, member string, billable int64) error {
	err := holdScript.Run(ctx, q.s.rdb, []string{holdsKey(tenant), tenantKey(tenant), usageKey(tenant, "m", "-")},
		member, string(sid), billable, 0, q.ttl(), "release", 0, usageKey(tenant, "sess", "")).Err()
	if err != nil {
		return fmt.Errorf("release hold of %s: %w", tenant, err)
	}
	return nil
}
