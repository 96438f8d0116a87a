package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/gorilla/websocket"
)

// principal is who a request acts for.
type principal struct {
	Tenant  bus.TenantID
	Key     bus.KeyID
	Token   bool   // authenticated with a signed token rather than a key
	TokenID string // the token's nonce (single use)
	Expires int64  // the token's expiry, unix seconds
	Model   string // the token is bound to this model ("" = any the plan allows)
	Visitor string // demo tokens: the visitor
}

// Wire codes of scope refusals (403).
const (
	// CodeTokenScope: a token was used on a route or model its scope does not cover.
	CodeTokenScope wire.ErrorCode = "TOKEN_SCOPE"
	// CodeTokenUsed: the token already opened its one stream.
	CodeTokenUsed wire.ErrorCode = "TOKEN_USED"
)

// tokenPrincipal is the principal of verified claims c.
func tokenPrincipal(c Claims) principal {
	return principal{Tenant: c.Tenant, Key: c.Key, Token: true, TokenID: c.Nonce, Expires: c.Expires, Model: c.Model, Visitor: c.Visitor}
}

// credential finds the credential of r: a WebSocket subprotocol pair ("token", X) or
// ("bearer", X) — the browser way, echoed back as the chosen subprotocol — then an
// Authorization header "Token X" or "Bearer X", then the query parameter token.
func credential(r *http.Request) (cred, subprotocol string) {
	if ps := websocket.Subprotocols(r); len(ps) >= 2 {
		if p := strings.ToLower(ps[0]); p == "token" || p == "bearer" {
			return ps[1], ps[0]
		}
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, v, _ := strings.Cut(strings.TrimSpace(h), " ")
		switch strings.ToLower(scheme) {
		case "token", "bearer":
			return strings.TrimSpace(v), ""
		}
		return "", ""
	}
	return r.URL.Query().Get("token"), ""
}

// authenticate resolves cred. Errors wrap ErrUnauthorized (the client's fault) or
// are internal (Redis down).
func (s *Server) authenticate(ctx context.Context, cred string) (principal, error) {
	if cred == "" {
		return principal{}, fmt.Errorf("%w: no credentials (Authorization: Token <key> or Bearer <token>)", ErrUnauthorized)
	}
	if strings.HasPrefix(cred, TokenPrefix) {
		c, err := s.cfg.Signer.Verify(cred)
		if err != nil {
			return principal{}, fmt.Errorf("%w: %w", ErrUnauthorized, err)
		}
		if c.Key == "" {
			if !s.cfg.Demo.Enabled || c.Tenant != s.cfg.Demo.Tenant {
				return principal{}, fmt.Errorf("%w: demo tokens are not accepted", ErrUnauthorized)
			}
			return tokenPrincipal(c), nil
		}
		ok, err := s.cfg.Keys.Active(ctx, c.Key)
		if err != nil {
			return principal{}, err
		}
		if !ok {
			return principal{}, fmt.Errorf("%w: the key of this token was revoked", ErrUnauthorized)
		}
		return tokenPrincipal(c), nil
	}
	k, err := s.cfg.Keys.Lookup(ctx, cred)
	if errors.Is(err, ErrKeyNotFound) {
		return principal{}, fmt.Errorf("%w: unknown or revoked API key", ErrUnauthorized)
	}
	if err != nil {
		return principal{}, err
	}
	return principal{Tenant: k.Tenant, Key: k.ID}, nil
}

// authRequest applies the failure rate limit and authenticates r, writing the HTTP
// error itself when it fails (ok false).
func (s *Server) authRequest(w http.ResponseWriter, r *http.Request, reqID string) (p principal, subprotocol string, ok bool) {
	addr := clientAddr(r)
	if d := s.fails.RetryAfter(addr); d > 0 {
		s.m.errors.WithLabelValues(string(wire.CodeRateLimited)).Inc()
		w.Header().Set("Retry-After", retryAfterHeader(d))
		writeHTTPError(w, http.StatusTooManyRequests, wire.CodeRateLimited, "too many failed authentications; retry later", "", reqID)
		return principal{}, "", false
	}
	cred, sub := credential(r)
	p, err := s.authenticate(r.Context(), cred)
	if err != nil {
		if errors.Is(err, ErrUnauthorized) {
			s.fails.Fail(addr)
			s.m.errors.WithLabelValues(string(wire.CodeUnauthorized)).Inc()
			writeHTTPError(w, http.StatusUnauthorized, wire.CodeUnauthorized, err.Error(), "", reqID)
		} else {
			s.log.Error("authenticate", "err", err, "request_id", reqID)
			s.m.errors.WithLabelValues(string(wire.CodeInternal)).Inc()
			writeHTTPError(w, http.StatusInternalServerError, wire.CodeInternal, "authentication is unavailable", "", reqID)
		}
		return principal{}, "", false
	}
	return p, sub, true
}

// Authenticate resolves the credentials of an HTTP request the way /v1/listen does
// (API key or token in the Authorization header, the subprotocol or ?token=), for routes
// other packages mount on the gateway (usage reports, pre-recorded requests). Failures
// count against the caller's address like any failed authentication; the error wraps
// ErrUnauthorized when the caller is at fault.
func (s *Server) Authenticate(r *http.Request) (bus.TenantID, bus.KeyID, error) {
	addr := clientAddr(r)
	if s.fails.Blocked(addr) {
		return "", "", fmt.Errorf("%w: too many failed attempts from %s", ErrUnauthorized, addr)
	}
	cred, _ := credential(r)
	p, err := s.authenticate(r.Context(), cred)
	if err != nil {
		if errors.Is(err, ErrUnauthorized) {
			s.fails.Fail(addr)
		}
		return "", "", err
	}
	return p.Tenant, p.Key, nil
}

// TenantFromRequest is Authenticate without the key, in the shape billing.UsageHandler takes.
func (s *Server) TenantFromRequest(r *http.Request) (bus.TenantID, error) {
	t, _, err := s.Authenticate(r)
	return t, err
}

// KeyOnly guards h, a route that needs an API key (usage, pre-recorded requests): a
// request with a signed token is refused with 403 TOKEN_SCOPE (401 when the token does
// not verify), before h runs. Requests with a key, or none, go to h, which
// authenticates them itself.
func (s *Server) KeyOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cred, _ := credential(r); !strings.HasPrefix(cred, TokenPrefix) {
			h.ServeHTTP(w, r)
			return
		}
		reqID := string(bus.NewSessionID())
		if _, _, ok := s.authRequest(w, r, reqID); !ok {
			return
		}
		s.m.errors.WithLabelValues(string(CodeTokenScope)).Inc()
		writeHTTPError(w, http.StatusForbidden, CodeTokenScope,
			"tokens only open live streams (GET /v1/listen); "+r.Method+" "+r.URL.Path+" needs an API key (Authorization: Token <key>)", "", reqID)
	})
}
