package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/redis/go-redis/v9"
)

// TokenUses records the stream each token opened, so that a token opens one live
// stream: its first connection, and the reconnects that resume that stream. Safe for
// concurrent use.
type TokenUses interface {
	// Use binds token id to stream unless it is bound already, until the token expires,
	// and returns the stream the token is bound to (stream itself when it was free).
	Use(ctx context.Context, id string, stream bus.SessionID, until time.Time) (bus.SessionID, error)
	// Bound returns the stream token id is bound to, or "" when it has opened none.
	Bound(ctx context.Context, id string) (bus.SessionID, error)
}

// RedisTokenUses keeps used token ids in Redis (earshot:token:used:<id> → stream,
// expiring with the token), so single use holds across gateways.
type RedisTokenUses struct{ rdb redis.UniversalClient }

// NewRedisTokenUses returns TokenUses on rdb.
func NewRedisTokenUses(rdb redis.UniversalClient) *RedisTokenUses { return &RedisTokenUses{rdb: rdb} }

func usedKey(id string) string { return "earshot:token:used:" + id }

// Use implements TokenUses.
func (u *RedisTokenUses) Use(ctx context.Context, id string, stream bus.SessionID, until time.Time) (bus.SessionID, error) {
	ttl := time.Until(until) + time.Second
	ok, err := u.rdb.SetNX(ctx, usedKey(id), string(stream), ttl).Result()
	if err != nil {
		return "", fmt.Errorf("use token: %w", err)
	}
	if ok {
		return stream, nil
	}
	return u.Bound(ctx, id)
}

// Bound implements TokenUses.
func (u *RedisTokenUses) Bound(ctx context.Context, id string) (bus.SessionID, error) {
	v, err := u.rdb.Get(ctx, usedKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("token use: %w", err)
	}
	return bus.SessionID(v), nil
}

// localTokenUses is TokenUses in one process (tests, a single gateway).
type localTokenUses struct {
	mu   sync.Mutex
	used map[string]localUse
}

type localUse struct {
	stream bus.SessionID
	until  time.Time
}

func newLocalTokenUses() *localTokenUses { return &localTokenUses{used: map[string]localUse{}} }

func (u *localTokenUses) Use(_ context.Context, id string, stream bus.SessionID, until time.Time) (bus.SessionID, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	now := time.Now()
	if e, ok := u.used[id]; ok && now.Before(e.until) {
		return e.stream, nil
	}
	if len(u.used)%1024 == 1023 { // sweep now and then: expired tokens fail Verify anyway
		for k, e := range u.used {
			if !now.Before(e.until) {
				delete(u.used, k)
			}
		}
	}
	u.used[id] = localUse{stream: stream, until: until.Add(time.Second)}
	return stream, nil
}

func (u *localTokenUses) Bound(_ context.Context, id string) (bus.SessionID, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if e, ok := u.used[id]; ok && time.Now().Before(e.until) {
		return e.stream, nil
	}
	return "", nil
}
