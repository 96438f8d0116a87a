package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testutil"
)

func TestKeyStore(t *testing.T) {
	r := testutil.StartRedis(t)
	rdb := r.Client()
	ks := NewKeyStore(rdb)
	ctx := context.Background()
	k1, s1, err := ks.Create(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	k2, s2, _ := ks.Create(ctx, "acme")
	ko, _, _ := ks.Create(ctx, "other")
	if !strings.HasPrefix(s1, KeySecretPrefix) || s1 == s2 || k1.ID == k2.ID {
		t.Fatalf("keys not distinct: %v %v", k1, k2)
	}
	if got, err := ks.Lookup(ctx, s1); err != nil || got.ID != k1.ID || got.Tenant != "acme" {
		t.Fatalf("lookup %+v %v", got, err)
	}
	// Secrets are stored only hashed.
	all, _ := rdb.Keys(ctx, "*").Result()
	for _, k := range all {
		dump, _ := rdb.Dump(ctx, k).Result()
		if strings.Contains(k, s1[len(KeySecretPrefix):]) || bytes.Contains([]byte(dump), []byte(s1[len(KeySecretPrefix):])) {
			t.Fatalf("secret stored in clear under %s", k)
		}
	}
	list, err := ks.List(ctx, "acme")
	if err != nil || len(list) != 2 {
		t.Fatalf("list %v %v", list, err)
	}
	if err := ks.Revoke(ctx, "acme", ko.ID); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("revoking another tenant's key: %v", err)
	}
	if err := ks.Revoke(ctx, "acme", k1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Lookup(ctx, s1); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("revoked key still works: %v", err)
	}
	if ok, _ := ks.Active(ctx, k1.ID); ok {
		t.Fatal("revoked key active")
	}
	if list, _ := ks.List(ctx, "acme"); len(list) != 1 || list[0].ID != k2.ID {
		t.Fatalf("list after revoke %v", list)
	}
	for _, bad := range []string{"", "esk_", "nope", KeySecretPrefix + strings.Repeat("x", 200)} {
		if _, err := ks.Lookup(ctx, bad); !errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("lookup %q: %v", bad, err)
		}
	}
	if _, _, err := ks.Create(ctx, "a.b"); err == nil {
		t.Fatal("tenant with a dot accepted")
	}
}

func TestSigner(t *testing.T) {
	if _, err := NewSigner([]byte("short")); !errors.Is(err, ErrConfig) {
		t.Fatal("short secret accepted")
	}
	s, _ := NewSigner(bytes.Repeat([]byte("s"), 32))
	now := time.Unix(1_700_000_000, 0)
	s.now = func() time.Time { return now }
	tok, exp := s.Issue("acme", "k1", 30*time.Second)
	if !exp.Equal(now.Add(30 * time.Second)) {
		t.Fatalf("expiry %v", exp)
	}
	c, err := s.Verify(tok)
	if err != nil || c.Tenant != "acme" || c.Key != bus.KeyID("k1") {
		t.Fatalf("verify %+v %v", c, err)
	}
	now = now.Add(30 * time.Second)
	if _, err := s.Verify(tok); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("expired token: %v", err)
	}
	now = now.Add(-time.Minute)
	i := strings.LastIndexByte(tok, '.')
	for _, bad := range []string{"", "est1.", "est1..", tok[:i] + ".AAAA", tok[:i-2] + tok[i:], "x" + tok, tok + "x"} {
		if _, err := s.Verify(bad); !errors.Is(err, ErrBadToken) {
			t.Errorf("Verify(%q) = %v", bad, err)
		}
	}
}

// signClaims signs raw claims JSON the way Issue does, for tokens Issue cannot make.
func signClaims(s *Signer, claims string) string {
	body := TokenPrefix + base64.RawURLEncoding.EncodeToString([]byte(claims))
	return body + "." + base64.RawURLEncoding.EncodeToString(s.mac(body))
}

// TestTokenScope: issued tokens carry the listen scope, a nonce of their own, and the
// model and visitor asked for; correctly signed tokens without a known scope or a
// nonce (those of older versions) are refused.
func TestTokenScope(t *testing.T) {
	s, _ := NewSigner(bytes.Repeat([]byte("s"), 32))
	a, _ := s.IssueClaims(Claims{Tenant: "acme", Key: "k", Model: "tiny.en"}, time.Minute)
	b, _ := s.IssueClaims(Claims{Tenant: "demo", Visitor: "v1"}, time.Minute)
	ca, err := s.Verify(a)
	if err != nil || ca.Scope != ScopeListen || ca.Model != "tiny.en" || ca.Nonce == "" {
		t.Fatalf("verify %+v %v", ca, err)
	}
	cb, err := s.Verify(b)
	if err != nil || cb.Visitor != "v1" || cb.Nonce == ca.Nonce {
		t.Fatalf("verify %+v %v (nonce of the other %q)", cb, err, ca.Nonce)
	}
	exp := time.Now().Add(time.Hour).Unix()
	for _, claims := range []string{
		fmt.Sprintf(`{"t":"acme","k":"k","e":%d}`, exp),                     // before scopes
		fmt.Sprintf(`{"t":"acme","k":"k","e":%d,"s":"listen"}`, exp),        // no nonce
		fmt.Sprintf(`{"t":"acme","k":"k","e":%d,"n":"x","s":"admin"}`, exp), // unknown scope
	} {
		if _, err := s.Verify(signClaims(s, claims)); !errors.Is(err, ErrBadToken) {
			t.Errorf("Verify(%s) = %v, want ErrBadToken", claims, err)
		}
	}
}

func FuzzVerifyToken(f *testing.F) {
	s, _ := NewSigner(bytes.Repeat([]byte("s"), 32))
	tok, _ := s.Issue("acme", "k", time.Hour)
	f.Add(tok)
	f.Add("est1.e30.")
	bound, _ := s.IssueClaims(Claims{Tenant: "demo", Model: "tiny.en", Visitor: "v"}, time.Hour)
	f.Add(bound)
	f.Add(signClaims(s, `{"t":"acme","e":9999999999,"n":"x","s":"listen","m":""}`))
	f.Add(signClaims(s, `{"t":"acme","e":9999999999}`))
	f.Fuzz(func(t *testing.T, in string) {
		c, err := s.Verify(in)
		if err == nil && (c.Tenant == "" || c.Scope != ScopeListen || c.Nonce == "") {
			t.Fatalf("accepted a token without tenant, scope or nonce: %+v", c)
		}
	})
}
