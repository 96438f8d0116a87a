package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/internal/bus"
)

// handleGrant: POST /v1/auth/grant, authenticated with an API key (not a token: a
// token cannot mint tokens), optional body {"ttl_seconds": N, "scope": "listen",
// "model": M}. The token opens one live stream (ScopeListen), of model M when given.
func (s *Server) handleGrant(w http.ResponseWriter, r *http.Request) {
	reqID := string(bus.NewSessionID())
	p, _, ok := s.authRequest(w, r, reqID)
	if !ok {
		return
	}
	if p.Token {
		s.m.errors.WithLabelValues(string(CodeTokenScope)).Inc()
		writeHTTPError(w, http.StatusForbidden, CodeTokenScope, "a token cannot grant tokens; POST /v1/auth/grant needs an API key (Authorization: Token <key>)", "", reqID)
		return
	}
	ttl := s.cfg.TokenTTL
	var req wire.GrantRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<10))
	if err == nil && len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || req.TTLSeconds < 0 || math.IsNaN(req.TTLSeconds) {
			writeHTTPError(w, http.StatusBadRequest, wire.CodeBadRequest, `body must be {"ttl_seconds": N, "scope": "listen", "model": "name"} (all optional)`, "", reqID)
			return
		}
		if req.TTLSeconds > 0 {
			if req.TTLSeconds > s.cfg.MaxTokenTTL.Seconds() {
				writeHTTPError(w, http.StatusBadRequest, wire.CodeBadRequest, "ttl_seconds is above the maximum "+s.cfg.MaxTokenTTL.String(), "ttl_seconds", reqID)
				return
			}
			ttl = time.Duration(math.Ceil(req.TTLSeconds)) * time.Second
		}
	}
	if req.Scope != "" && req.Scope != ScopeListen {
		writeHTTPError(w, http.StatusBadRequest, wire.CodeBadRequest, `scope must be "listen" (tokens open one live stream; other routes need an API key)`, "scope", reqID)
		return
	}
	if req.Model != "" {
		if _, ok := s.cfg.Models.Lookup(req.Model); !ok {
			writeHTTPError(w, http.StatusBadRequest, wire.CodeUnknownModel, "no model named "+strconv.Quote(req.Model)+"; GET /v1/models lists them", "model", reqID)
			return
		}
	}
	s.writeGrant(w, Claims{Tenant: p.Tenant, Key: p.Key, Scope: ScopeListen, Model: req.Model}, ttl)
	s.log.Info("grant", "request_id", reqID, "tenant", p.Tenant, "key", p.Key, "ttl", ttl, "model", req.Model)
}

// handleDemoGrant: POST /demo/grant, no credentials. Grants are rate-limited per
// address in their own bucket (Demo.GrantBurst, Demo.GrantPerSec), apart from the
// failed-authentication bucket, so demo visitors never lock out a key used from the
// same address. Each token carries a fresh visitor id.
func (s *Server) handleDemoGrant(w http.ResponseWriter, r *http.Request) {
	addr := clientAddr(r)
	if s.demoGrants.Blocked(addr) {
		s.m.errors.WithLabelValues(string(wire.CodeRateLimited)).Inc()
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(1/s.cfg.Demo.GrantPerSec))))
		writeHTTPError(w, http.StatusTooManyRequests, wire.CodeRateLimited, "too many demo grants from this address; retry later", "", "")
		return
	}
	s.demoGrants.Fail(addr)
	s.writeGrant(w, Claims{Tenant: s.cfg.Demo.Tenant, Scope: ScopeListen, Visitor: newID()}, s.cfg.TokenTTL)
}

func (s *Server) writeGrant(w http.ResponseWriter, c Claims, ttl time.Duration) {
	tok, exp := s.cfg.Signer.IssueClaims(c, ttl)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, wire.Grant{AccessToken: tok, ExpiresIn: time.Until(exp).Round(time.Second).Seconds()})
}

// handleModels: GET /v1/models, the catalog cards the caller's plan allows, as
// {"stt": [card, ...]}.
func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	reqID := string(bus.NewSessionID())
	p, _, ok := s.authRequest(w, r, reqID)
	if !ok {
		return
	}
	cards := []any{}
	for _, m := range s.cfg.Models.List() {
		if s.cfg.Quota != nil {
			if err := s.cfg.Quota.Check(r.Context(), p.Tenant, m.Name); errors.Is(err, ErrModelNotInPlan) {
				continue
			}
		}
		card := m.Card
		if card == nil {
			card = map[string]string{"name": m.Name, "version": m.Version, "architecture": m.Arch, "uuid": m.UUID}
		}
		cards = append(cards, card)
	}
	writeJSON(w, map[string]any{"stt": cards})
}
