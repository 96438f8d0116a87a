package gateway

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// addrLimiter is a token bucket per client address that only failures drain (failed
// authentications, demo grants): failLimiter in this process, redisLimiter across
// every gateway on one Redis.
type addrLimiter interface {
	// Fail takes one token from addr's bucket.
	Fail(addr string)
	// Blocked reports whether addr has no tokens left.
	Blocked(addr string) bool
	// RetryAfter is how long addr waits for its next token (0 when it is not blocked).
	RetryAfter(addr string) time.Duration
}

// redisLimiter keeps the buckets in Redis (hash <prefix>{addr}: tokens and the time of
// the last update, on Redis's clock), so an address blocked on one gateway is blocked
// on all of them. When Redis cannot be asked, the gateway's own failLimiter decides
// (and is fed every failure), so an outage never lifts the limit.
type redisLimiter struct {
	rdb           redis.UniversalClient
	prefix        string
	burst, perSec float64
	local         *failLimiter
	log           *slog.Logger
	warned        atomic.Int64 // unix seconds of the last "Redis unavailable" warning
}

func newRedisLimiter(rdb redis.UniversalClient, prefix string, burst int, perSec float64, log *slog.Logger) *redisLimiter {
	return &redisLimiter{rdb: rdb, prefix: prefix, burst: float64(burst), perSec: perSec,
		local: newFailLimiter(burst, perSec), log: log}
}

// bucketScript refills KEYS[1] to now, takes ARGV[3] tokens (0 or 1), and returns the
// tokens left (as a string: Lua numbers are truncated to integers on the way out). A
// full bucket is deleted; any other lives as long as it takes to refill.
// ARGV: burst, per second, take.
var bucketScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local burst, rate, take = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local v = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(v[1]), tonumber(v[2])
if not tokens then tokens, at = burst, now end
tokens = math.min(burst, tokens + (now - at) * rate)
tokens = math.max(0, tokens - take)
if tokens >= burst then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
  local ttl = 3600
  if rate > 0 then ttl = math.ceil((burst - tokens) / rate) + 1 end
  redis.call('EXPIRE', KEYS[1], ttl)
end
return tostring(tokens)
`)

func (l *redisLimiter) tokens(addr string, take int) (float64, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	f, err := bucketScript.Run(ctx, l.rdb, []string{l.prefix + "{" + addr + "}"}, l.burst, l.perSec, take).Float64()
	if err != nil {
		if now := time.Now().Unix(); l.warned.Swap(now) < now-60 {
			l.log.Warn("address limiter: Redis unavailable, this gateway's own counts apply", "err", err)
		}
		return 0, false
	}
	return f, true
}

func (l *redisLimiter) Fail(addr string) {
	l.local.Fail(addr)
	l.tokens(addr, 1)
}

func (l *redisLimiter) Blocked(addr string) bool {
	if f, ok := l.tokens(addr, 0); ok {
		return f < 1
	}
	return l.local.Blocked(addr)
}

func (l *redisLimiter) RetryAfter(addr string) time.Duration {
	f, ok := l.tokens(addr, 0)
	if !ok {
		return l.local.RetryAfter(addr)
	}
	if f >= 1 || l.perSec <= 0 {
		return 0
	}
	return time.Duration((1 - f) / l.perSec * float64(time.Second))
}
