package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultLeaseTTL is how long a live-stream lease outlives its gateway's last
// heartbeat: a crashed gateway's streams free their tenant's slots within it.
const DefaultLeaseTTL = 6 * time.Second

// RedisLiveGuard is the LiveGuard shared by every gateway through Redis, so the
// per-tenant limit holds across gateways: a tenant's live streams are leases in the
// sorted set live:{tenant} (member: session id and a random suffix; score: the lease's
// expiry on Redis's clock). The gateway holding a stream renews its lease every TTL/4;
// a lease nobody renews (its gateway crashed or lost Redis) expires after TTL and its
// slot is free again. Safe for concurrent use.
type RedisLiveGuard struct {
	rdb    redis.UniversalClient
	prefix string // key prefix: "live" for streams
	what   string // what is counted, for messages: "live streams"
	max    int
	ttl    time.Duration
	log    *slog.Logger
}

// NewRedisLiveGuard returns a guard of at most max live streams per tenant; ttl <= 0
// means DefaultLeaseTTL.
func NewRedisLiveGuard(rdb redis.UniversalClient, max int, ttl time.Duration, log *slog.Logger) *RedisLiveGuard {
	return NewRedisLeases(rdb, "live", "live streams", max, ttl, log)
}

// NewRedisLeases is a RedisLiveGuard for anything else a tenant may hold at most max of
// at once across gateways (phone calls, pre-recorded requests): its leases live in
// <prefix>:{tenant}, and what names them in errors ("phone calls").
func NewRedisLeases(rdb redis.UniversalClient, prefix, what string, max int, ttl time.Duration, log *slog.Logger) *RedisLiveGuard {
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &RedisLiveGuard{rdb: rdb, prefix: prefix, what: what, max: max, ttl: ttl, log: log}
}

// acquireLease drops the tenant's expired leases and adds one when fewer than ARGV[2]
// remain. Redis's own clock decides expiry, so gateways' clocks do not matter.
// KEYS[1] live:{tenant}; ARGV member, max, ttl ms. Returns {1, n} taken (n leases now)
// or {0, n} full.
var acquireLease = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[2]) then return {0, n} end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
return {1, n + 1}
`)

// renewLease pushes a lease's expiry on if it still exists: 1 renewed, 0 gone.
var renewLease = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return 1
`)

// Acquire takes a lease for s or returns an error wrapping ErrTooManyStreams; any other
// error means Redis could not be asked (the stream is refused: the limit cannot be
// checked). release ends the lease at once; it is safe to call more than once.
func (g *RedisLiveGuard) Acquire(ctx context.Context, s SessionInfo) (func(), error) {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	key, member := g.prefix+":{"+string(s.Tenant)+"}", string(s.Session)+":"+hex.EncodeToString(rnd[:])
	ttlMs := g.ttl.Milliseconds()
	res, err := acquireLease.Run(ctx, g.rdb, []string{key}, member, g.max, ttlMs).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("lease of tenant %s (%s): %w", s.Tenant, g.what, err)
	}
	if res[0] == 0 {
		return nil, fmt.Errorf("tenant %s has %d %s (the limit, across gateways): %w", s.Tenant, res[1], g.what, ErrTooManyStreams)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(g.ttl / 4)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			rctx, cancel := context.WithTimeout(context.Background(), g.ttl/4)
			ok, err := renewLease.Run(rctx, g.rdb, []string{key}, member, ttlMs).Int64()
			cancel()
			switch {
			case err != nil:
				// The stream goes on; if Redis stays away past the TTL, the slot is
				// counted free meanwhile (the limit errs towards serving).
				g.log.Warn("lease not renewed", "what", g.what, "tenant", s.Tenant, "session", s.Session, "err", err)
			case ok == 0:
				g.log.Warn("lease expired while held (Redis unreachable for longer than the lease TTL?)",
					"what", g.what, "tenant", s.Tenant, "session", s.Session, "ttl", g.ttl)
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(stop)
			<-done
			rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := g.rdb.ZRem(rctx, key, member).Err(); err != nil {
				g.log.Warn("lease not released: it expires by itself", "what", g.what, "tenant", s.Tenant, "session", s.Session, "err", err, "ttl", g.ttl)
			}
		})
	}, nil
}
