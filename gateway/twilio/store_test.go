package twilio

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/earshot-dev/earshot/internal/testutil"
)

// TestSecretStoreAndWebhooksOnRealRedis: a created secret resolves to its tenant,
// is stored only hashed, and stops working when revoked; webhooks round-trip.
func TestSecretStoreAndWebhooksOnRealRedis(t *testing.T) {
	rdb := testutil.StartRedis(t).Client()
	ctx := context.Background()
	s := NewSecretStore(rdb)
	secret, err := s.CreateSecret(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, SecretPrefix) || len(secret) < 40 {
		t.Fatalf("secret %q", secret)
	}
	if got, err := s.Resolve(ctx, secret); err != nil || got != "acme" {
		t.Fatalf("resolve: %q %v", got, err)
	}
	keys, _ := rdb.Keys(ctx, "*").Result()
	for _, k := range keys {
		if strings.Contains(k, secret) {
			t.Fatalf("secret stored in clear in key %q", k)
		}
	}
	if err := s.Revoke(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Resolve(ctx, secret); !errors.Is(err, ErrSecretNotFound) {
		t.Fatalf("revoked secret resolves: %v", err)
	}
	if _, err := s.CreateSecret(ctx, "a.b"); err == nil {
		t.Fatal("tenant with a dot accepted")
	}

	w := NewRedisWebhooks(rdb)
	if u, _, err := w.WebhookFor(ctx, "acme"); err != nil || u != "" {
		t.Fatalf("unset webhook: %q %v", u, err)
	}
	if err := w.Set(ctx, "acme", "https://hooks.example.com/x", "whsec"); err != nil {
		t.Fatal(err)
	}
	if u, sec, err := w.WebhookFor(ctx, "acme"); err != nil || u != "https://hooks.example.com/x" || sec != "whsec" {
		t.Fatalf("webhook: %q %q %v", u, sec, err)
	}
}
