package twilio

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/earshot-dev/earshot/internal/bus"
)

// TenantResolver maps a stream secret to its tenant. Safe for concurrent use.
// Resolve returns an error wrapping ErrSecretNotFound for an unknown secret.
type TenantResolver interface {
	Resolve(ctx context.Context, secret string) (bus.TenantID, error)
}

// SecretStore keeps per-tenant stream secrets in Redis, hashed:
// twilio:secret:{hex sha256(secret)} → tenant. The secret itself is shown once, by
// CreateSecret. Safe for concurrent use.
type SecretStore struct{ rdb redis.UniversalClient }

// NewSecretStore returns a store on rdb.
func NewSecretStore(rdb redis.UniversalClient) *SecretStore { return &SecretStore{rdb: rdb} }

// SecretPrefix marks Earshot stream secrets (so a leaked one is recognisable).
const SecretPrefix = "tw_"

func secretKey(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return "twilio:secret:" + hex.EncodeToString(h[:])
}

// CreateSecret makes a new stream secret for tenant and returns it (URL-safe, 32
// random bytes). A tenant may hold several (rotation: create, switch TwiML, revoke).
func (s *SecretStore) CreateSecret(ctx context.Context, tenant bus.TenantID) (string, error) {
	if !bus.ValidToken(string(tenant)) {
		return "", fmt.Errorf("%w: tenant %q is not a valid subject token", ErrConfig, tenant)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	secret := SecretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	if err := s.rdb.Set(ctx, secretKey(secret), string(tenant), 0).Err(); err != nil {
		return "", fmt.Errorf("store twilio secret: %w", err)
	}
	return secret, nil
}

// Revoke deletes a secret; calls already connected with it continue.
func (s *SecretStore) Revoke(ctx context.Context, secret string) error {
	n, err := s.rdb.Del(ctx, secretKey(secret)).Result()
	if err != nil {
		return fmt.Errorf("revoke twilio secret: %w", err)
	}
	if n == 0 {
		return ErrSecretNotFound
	}
	return nil
}

// Resolve returns the tenant owning secret.
func (s *SecretStore) Resolve(ctx context.Context, secret string) (bus.TenantID, error) {
	if secret == "" {
		return "", ErrSecretNotFound
	}
	t, err := s.rdb.Get(ctx, secretKey(secret)).Result()
	if errors.Is(err, redis.Nil) {
		return "", ErrSecretNotFound
	}
	if err != nil {
		return "", fmt.Errorf("resolve twilio secret: %w", err)
	}
	return bus.TenantID(t), nil
}

// Webhooks says where a tenant's call events go. Safe for concurrent use. An empty
// URL (and nil error) means the tenant has no webhook: events go to NATS only.
type Webhooks interface {
	WebhookFor(ctx context.Context, tenant bus.TenantID) (url, secret string, err error)
}

// RedisWebhooks keeps each tenant's webhook in the Redis hash webhook:{tenant}
// with fields url and secret.
type RedisWebhooks struct{ rdb redis.UniversalClient }

// NewRedisWebhooks returns a webhook registry on rdb.
func NewRedisWebhooks(rdb redis.UniversalClient) *RedisWebhooks { return &RedisWebhooks{rdb: rdb} }

func webhookKey(t bus.TenantID) string { return "webhook:" + string(t) }

// Set stores tenant's webhook URL and signing secret.
func (w *RedisWebhooks) Set(ctx context.Context, tenant bus.TenantID, url, secret string) error {
	if err := w.rdb.HSet(ctx, webhookKey(tenant), "url", url, "secret", secret).Err(); err != nil {
		return fmt.Errorf("set webhook of %s: %w", tenant, err)
	}
	return nil
}

// WebhookFor returns tenant's webhook, or "" when none is set.
func (w *RedisWebhooks) WebhookFor(ctx context.Context, tenant bus.TenantID) (string, string, error) {
	m, err := w.rdb.HGetAll(ctx, webhookKey(tenant)).Result()
	if err != nil {
		return "", "", fmt.Errorf("webhook of %s: %w", tenant, err)
	}
	return m["url"], m["secret"], nil
}
