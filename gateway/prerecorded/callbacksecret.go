package prerecorded

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/redis/go-redis/v9"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/internal/bus"
)

// CallbackSecrets gives each tenant the secret its callbacks are signed with (created
// on first use). Safe for concurrent use.
type CallbackSecrets interface {
	Secret(ctx context.Context, t bus.TenantID) (string, error)
}

// RedisCallbackSecrets keeps each tenant's callback signing secret in Redis at
// callbacksecret:{tenant}.
type RedisCallbackSecrets struct{ rdb redis.UniversalClient }

// NewRedisCallbackSecrets wraps a Redis client.
func NewRedisCallbackSecrets(rdb redis.UniversalClient) *RedisCallbackSecrets {
	return &RedisCallbackSecrets{rdb: rdb}
}

// Secret returns t's secret, creating a random one the first time.
func (s *RedisCallbackSecrets) Secret(ctx context.Context, t bus.TenantID) (string, error) {
	key := "callbacksecret:{" + string(t) + "}"
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	if err := s.rdb.SetNX(ctx, key, "cbsec_"+hex.EncodeToString(raw[:]), 0).Err(); err != nil {
		return "", fmt.Errorf("callback secret of %s: %w", t, err)
	}
	v, err := s.rdb.Get(ctx, key).Result()
	if err != nil {
		return "", fmt.Errorf("callback secret of %s: %w", t, err)
	}
	return v, nil
}

// getSecret serves GET /v1/callbacks/secret: the caller's tenant's callback signing
// secret (API keys only: the gateway mounts it behind KeyOnly).
func (h *Handler) getSecret(w http.ResponseWriter, r *http.Request) {
	id := bus.NewSessionID()
	tenant, _, err := h.cfg.Auth(r)
	if err != nil {
		writeErr(w, http.StatusUnauthorized, wire.CodeUnauthorized, "missing or invalid credentials", "", id)
		return
	}
	if h.cfg.CallbackSecrets == nil {
		writeErr(w, http.StatusNotFound, wire.CodeNotFound, "callbacks are not signed on this server", "", id)
		return
	}
	sec, err := h.cfg.CallbackSecrets.Secret(r.Context(), tenant)
	if err != nil {
		h.fail(w, err, id)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]string{"secret": sec, "header": "X-Earshot-Signature",
		"scheme": `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<unix seconds>.<body>")>`})
}
