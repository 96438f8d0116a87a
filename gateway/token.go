package gateway

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
)

// TokenPrefix starts every signed token, so credentials can be told apart from keys.
const TokenPrefix = "est1."

// ScopeListen is the one token scope: open one live stream (GET /v1/listen) — the
// first connection made with the token, and the reconnects that resume that stream.
// Every other route needs an API key.
const ScopeListen = "listen"

// Claims are what a signed token asserts. Key is empty for demo tokens, whose Visitor
// is a random id of the demo visitor the grant went to.
type Claims struct {
	Tenant  bus.TenantID `json:"t"`
	Key     bus.KeyID    `json:"k,omitempty"`
	Expires int64        `json:"e"`           // unix seconds
	Nonce   string       `json:"n,omitempty"` // the token's id: what single use is recorded under
	Scope   string       `json:"s,omitempty"` // ScopeListen; a token without one is refused
	Model   string       `json:"m,omitempty"` // when set, the only model the token may open
	Visitor string       `json:"v,omitempty"` // demo tokens: the visitor's id
}

// newID returns 16 random bytes in hex.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Signer issues and verifies short-lived tokens: "est1." + base64url(JSON claims) +
// "." + base64url(HMAC-SHA256(secret, "est1." + payload)). Safe for concurrent use.
type Signer struct {
	secret []byte
	now    func() time.Time
}

// NewSigner returns a signer; secret must be at least 32 bytes. Every gateway of a
// deployment shares it.
func NewSigner(secret []byte) (*Signer, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("%w: token secret of %d bytes, want at least 32", ErrConfig, len(secret))
	}
	return &Signer{secret: append([]byte(nil), secret...), now: time.Now}, nil
}

func (s *Signer) mac(msg string) []byte {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// Issue returns a listen-scoped token for tenant and key valid for ttl, and its expiry.
func (s *Signer) Issue(tenant bus.TenantID, key bus.KeyID, ttl time.Duration) (string, time.Time) {
	return s.IssueClaims(Claims{Tenant: tenant, Key: key}, ttl)
}

// IssueClaims returns a token asserting c valid for ttl, and its expiry. It sets
// Expires, a fresh Nonce, and Scope ScopeListen when c has none.
func (s *Signer) IssueClaims(c Claims, ttl time.Duration) (string, time.Time) {
	exp := s.now().Add(ttl)
	c.Expires = exp.Unix()
	c.Nonce = newID()
	if c.Scope == "" {
		c.Scope = ScopeListen
	}
	exp = time.Unix(c.Expires, 0)
	b, _ := json.Marshal(c)
	body := TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return body + "." + base64.RawURLEncoding.EncodeToString(s.mac(body)), exp
}

// Verify checks a token's signature and expiry. Errors wrap ErrBadToken or ErrTokenExpired.
func (s *Signer) Verify(tok string) (Claims, error) {
	if !strings.HasPrefix(tok, TokenPrefix) || len(tok) > 1024 {
		return Claims{}, fmt.Errorf("%w: not an Earshot token", ErrBadToken)
	}
	i := strings.LastIndexByte(tok, '.')
	if i <= len(TokenPrefix) {
		return Claims{}, fmt.Errorf("%w: no signature", ErrBadToken)
	}
	body, sig := tok[:i], tok[i+1:]
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(body)) {
		return Claims{}, fmt.Errorf("%w: signature does not verify", ErrBadToken)
	}
	raw, err := base64.RawURLEncoding.DecodeString(body[len(TokenPrefix):])
	if err != nil {
		return Claims{}, fmt.Errorf("%w: payload: %v", ErrBadToken, err)
	}
	var c Claims
	if err := json.Unmarshal(raw, &c); err != nil || c.Tenant == "" {
		return Claims{}, fmt.Errorf("%w: claims", ErrBadToken)
	}
	if s.now().Unix() >= c.Expires {
		return Claims{}, fmt.Errorf("%w: expired %s", ErrTokenExpired, time.Unix(c.Expires, 0).UTC().Format(time.RFC3339))
	}
	// Tokens from before scopes (no scope, no nonce) could not be held to one stream:
	// they are refused rather than given a scope they were not signed with.
	if c.Scope != ScopeListen || c.Nonce == "" {
		return Claims{}, fmt.Errorf("%w: token without a known scope (issued by an older version?); get a new one", ErrBadToken)
	}
	return c, nil
}
