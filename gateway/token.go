package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
)

// TokenPrefix starts every signed token, so credentials can be told apart from keys.
const TokenPrefix = "est1."

// Claims are what a signed token asserts. Key is empty for demo tokens.
type Claims struct {
	Tenant  bus.TenantID `json:"t"`
	Key     bus.KeyID    `json:"k,omitempty"`
	Expires int64        `json:"e"` // unix seconds
	Nonce   string       `json:"n,omitempty"`
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

// Issue returns a token for tenant and key valid for ttl, and its expiry.
func (s *Signer) Issue(tenant bus.TenantID, key bus.KeyID, ttl time.Duration) (string, time.Time) {
	exp := s.now().Add(ttl)
	c := Claims{Tenant: tenant, Key: key, Expires: exp.Unix()}
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
	return c, nil
}
