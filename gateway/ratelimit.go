package gateway

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/internal/bus"
)

// failLimiter is a token bucket per client address that only failed authentications
// drain: an address with an empty bucket gets 429 until it refills. The table is
// bounded: full buckets are dropped on a sweep, and at maxEntries the oldest
// half is dropped. Safe for concurrent use.
type failLimiter struct {
	mu      sync.Mutex
	burst   float64
	perSec  float64
	buckets map[string]*bucket
	now     func() time.Time
	lastGC  time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

const maxLimiterEntries = 100_000

func newFailLimiter(burst int, perSec float64) *failLimiter {
	return &failLimiter{burst: float64(burst), perSec: perSec, buckets: map[string]*bucket{}, now: time.Now}
}

func (l *failLimiter) refill(b *bucket, now time.Time) {
	b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.perSec)
	b.at = now
}

// Blocked reports whether addr has no tokens left.
func (l *failLimiter) Blocked(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[addr]
	if !ok {
		return false
	}
	l.refill(b, l.now())
	return b.tokens < 1
}

// RetryAfter returns how long addr waits for its next token (0 when it is not blocked).
func (l *failLimiter) RetryAfter(addr string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[addr]
	if !ok {
		return 0
	}
	l.refill(b, l.now())
	if b.tokens >= 1 || l.perSec <= 0 {
		return 0
	}
	return time.Duration((1 - b.tokens) / l.perSec * float64(time.Second))
}

// retryAfterHeader is d in whole seconds, at least 1, for a Retry-After header.
func retryAfterHeader(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// LimitFailedAuth guards a route that authenticates with Authenticate (usage reports,
// pre-recorded requests): an address that the failed-authentication limiter blocks gets
// 429 RATE_LIMITED with Retry-After, as /v1/listen and /v1/auth/grant give, before h
// runs, instead of the 401 that h would write for its refused credentials.
func (s *Server) LimitFailedAuth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := s.fails.RetryAfter(clientAddr(r)); d > 0 {
			s.m.errors.WithLabelValues(string(wire.CodeRateLimited)).Inc()
			w.Header().Set("Retry-After", retryAfterHeader(d))
			writeHTTPError(w, http.StatusTooManyRequests, wire.CodeRateLimited,
				"too many failed authentications from your address; retry after Retry-After seconds with a valid key", "",
				string(bus.NewSessionID()))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Fail takes one token from addr's bucket.
func (l *failLimiter) Fail(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[addr]
	if !ok {
		l.gc(now)
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[addr] = b
	}
	l.refill(b, now)
	b.tokens = max(0, b.tokens-1)
}

// gc drops full buckets once a minute, and half the table when it is too large.
func (l *failLimiter) gc(now time.Time) {
	if now.Sub(l.lastGC) > time.Minute {
		l.lastGC = now
		for k, b := range l.buckets {
			l.refill(b, now)
			if b.tokens >= l.burst {
				delete(l.buckets, k)
			}
		}
	}
	if len(l.buckets) >= maxLimiterEntries {
		n := 0
		for k := range l.buckets {
			delete(l.buckets, k)
			if n++; n >= maxLimiterEntries/2 {
				break
			}
		}
	}
}

// localGuard is the in-process LiveGuard: at most max live streams per tenant in
// this gateway.
type localGuard struct {
	mu   sync.Mutex
	max  int
	live map[string]int
}

func newLocalGuard(max int) *localGuard { return &localGuard{max: max, live: map[string]int{}} }

// NewLocalGuard is a LiveGuard of at most max per tenant in this process (what one
// gateway alone counts: RedisLiveGuard shares the count across gateways).
func NewLocalGuard(max int) LiveGuard { return newLocalGuard(max) }

// Acquire takes a slot of s.Tenant or returns ErrTooManyStreams.
func (g *localGuard) Acquire(_ context.Context, s SessionInfo) (func(), error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := string(s.Tenant)
	if g.live[t] >= g.max {
		return nil, fmt.Errorf("tenant %s has %d live streams: %w", t, g.live[t], ErrTooManyStreams)
	}
	g.live[t]++
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			if g.live[t]--; g.live[t] <= 0 {
				delete(g.live, t)
			}
		})
	}, nil
}
