package billing

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/redis/go-redis/v9"
)

//go:embed apply.lua
var applyLua string

var applyScript = redis.NewScript(applyLua)

// Outcome is what applying one event did.
type Outcome string

const (
	Applied       Outcome = "applied"   // counted (and debited) now
	Duplicate     Outcome = "duplicate" // already counted before: nothing changed
	UnknownTenant Outcome = "unknown"   // counted, but no tenant:{t} exists; flagged
)

// Store is billing's Redis: tenants, the usage ledger, reports. Safe for concurrent use.
type Store struct {
	rdb   redis.UniversalClient
	plans *Plans
	log   *slog.Logger
	now   func() time.Time

	waitReplicas int           // SetReplicaWait
	waitTimeout  time.Duration // SetReplicaWait
}

// ErrNotReplicated: a ledger write did not reach the replicas SetReplicaWait asks for
// in time. The event is not acknowledged, so JetStream redelivers it; applying it again
// is a no-op wherever the first write survived.
var ErrNotReplicated = errors.New("billing: ledger write not replicated in time")

// SetReplicaWait makes Apply return only once its write has reached n replicas (Redis
// WAIT on the same connection, at most timeout), else ErrNotReplicated. With Sentinel
// or Redis Cluster failover, an event acknowledged to JetStream is then on a replica
// that can be promoted, so a failover neither loses nor doubles it: exactly once.
// n 0: no wait.
func (s *Store) SetReplicaWait(n int, timeout time.Duration) {
	s.waitReplicas, s.waitTimeout = n, timeout
}

// NewStore wraps a Redis client. plans nil means DefaultPlans(); log nil discards.
func NewStore(rdb redis.UniversalClient, plans *Plans, log *slog.Logger) *Store {
	if plans == nil {
		plans = DefaultPlans()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{rdb: rdb, plans: plans, log: log.With("component", "billing"), now: time.Now}
}

// Plans is the store's plan catalog.
func (s *Store) Plans() *Plans { return s.plans }

func tenantKey(t bus.TenantID) string { return "tenant:{" + string(t) + "}" }

func usageKey(t bus.TenantID, kind, period string) string {
	return "usage:{" + string(t) + "}:" + kind + ":" + period
}

// streamField names one stream (session track) of one model in the month's stream hash.
func streamField(model string, s bus.SessionID, track string) string {
	if track == "" {
		track = "0"
	}
	return model + "|" + string(s) + "|" + track
}

const noKey = "-" // key field for usage without an API key (tokens, admin)

// Apply applies ev, stored by JetStream at stored, to the ledger atomically and exactly
// once per event id. ev must have passed ValidateEvent. The month and day are those of
// billingTime(ev.At, stored).
func (s *Store) Apply(ctx context.Context, ev bus.UsageEvent, stored time.Time) (Outcome, error) {
	if err := ValidateEvent(ev); err != nil {
		return "", err
	}
	at := billingTime(ev.At, stored)
	month, day := at.Format("2006-01"), at.Format("2006-01-02")
	key := string(ev.Key)
	if key == "" {
		key = noKey
	}
	t := ev.Tenant
	keys := []string{
		usageKey(t, "ev", ev.ID),
		tenantKey(t),
		usageKey(t, "m", month),
		usageKey(t, "d", day),
		usageKey(t, "k", month),
		usageKey(t, "dk", day),
		usageKey(t, "s", month),
		usageKey(t, "sess", string(ev.Session)),
		"usage:{" + string(t) + "}:unknown",
		usageKey(t, "sc", month),
	}
	final := "0"
	if ev.Final {
		final = "1"
	}
	track := ev.Track
	if track == "" {
		track = "0"
	}
	args := []any{int64(DedupeTTL / time.Second), ev.DurationMs,
		ev.Model, key, streamField(ev.Model, ev.Session, ev.Track), final, ev.StartMs, track}
	var res string
	var err error
	if s.waitReplicas <= 0 {
		res, err = applyScript.Run(ctx, s.rdb, keys, args...).Text()
	} else {
		// The script and WAIT on one connection (a pipeline): WAIT counts the replicas
		// that have this connection's writes. In a Redis Cluster that is a connection
		// to the master of the tenant's slot (every key above is on it): a cluster
		// client would send the keyless WAIT to any node.
		var conn redis.Cmdable = s.rdb
		cc, inCluster := s.rdb.(*redis.ClusterClient)
		if inCluster {
			master, err := cc.MasterForKey(ctx, tenantKey(t))
			if err != nil {
				return "", fmt.Errorf("apply usage %s: master of tenant %s: %w", ev.ID, t, err)
			}
			conn = master
		}
		pipe := conn.Pipeline()
		applied := applyScript.Eval(ctx, pipe, keys, args...)
		waited := pipe.Do(ctx, "WAIT", s.waitReplicas, s.waitTimeout.Milliseconds())
		if _, err = pipe.Exec(ctx); err == nil {
			res, err = applied.Text()
		}
		if n, werr := waited.Int64(); err == nil && (werr != nil || n < int64(s.waitReplicas)) {
			err = fmt.Errorf("%w: %d of %d replicas within %v (%v)", ErrNotReplicated, n, s.waitReplicas, s.waitTimeout, werr)
		}
		if inCluster && err != nil {
			// The slot may have moved (a failover, a reshard): the redelivered event
			// goes to the master the cluster names now.
			cc.ReloadState(ctx)
		}
	}
	if err != nil {
		return "", fmt.Errorf("apply usage %s: %w", ev.ID, err)
	}
	out := Outcome(res)
	if out == UnknownTenant {
		s.log.Warn("usage for unknown tenant counted and flagged", "tenant", t, "event", ev.ID, "ms", ev.DurationMs)
	}
	return out, nil
}

// MonthUsage returns the ms per model of tenant t in month (YYYY-MM).
func (s *Store) MonthUsage(ctx context.Context, t bus.TenantID, month string) (map[string]int64, error) {
	return s.hashInts(ctx, usageKey(t, "m", month))
}

// UnknownMs is the audio counted for t while no tenant record existed.
func (s *Store) UnknownMs(ctx context.Context, t bus.TenantID) (int64, error) {
	v, err := s.rdb.Get(ctx, "usage:{"+string(t)+"}:unknown").Int64()
	if err == redis.Nil {
		return 0, nil
	}
	return v, err
}

// SessionMs is the audio billed for session sid of tenant t (all tracks).
func (s *Store) SessionMs(ctx context.Context, t bus.TenantID, sid bus.SessionID) (int64, error) {
	v, err := s.rdb.HGet(ctx, usageKey(t, "sess", string(sid)), "ms").Int64()
	if err == redis.Nil {
		return 0, nil
	}
	return v, err
}

func (s *Store) hashInts(ctx context.Context, key string) (map[string]int64, error) {
	m, err := s.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	out := make(map[string]int64, len(m))
	for f, v := range m {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("read %s field %s: %w", key, f, err)
		}
		out[f] = n
	}
	return out, nil
}
