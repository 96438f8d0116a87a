package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"time"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/internal/bus"
)

// handleGrant: POST /v1/auth/grant, authenticated with an API key (not a token: a
// token cannot extend itself), optional body {"ttl_seconds": N}.
func (s *Server) handleGrant(w http.ResponseWriter, r *http.Request) {
	reqID := string(bus.NewSessionID())
	p, _, ok := s.authRequest(w, r, reqID)
	if !ok {
		return
	}
	if p.Token {
		writeHTTPError(w, http.StatusForbidden, wire.CodeUnauthorized, "a token cannot grant tokens; use an API key", "", reqID)
		return
	}
	ttl := s.cfg.TokenTTL
	var req wire.GrantRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<10))
	if err == nil && len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil || req.TTLSeconds < 0 || math.IsNaN(req.TTLSeconds) {
			writeHTTPError(w, http.StatusBadRequest, wire.CodeBadRequest, "body must be {\"ttl_seconds\": N}", "ttl_seconds", reqID)
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
	s.writeGrant(w, p.Tenant, p.Key, ttl)
	s.log.Info("grant", "request_id", reqID, "tenant", p.Tenant, "key", p.Key, "ttl", ttl)
}

// handleDemoGrant: POST /demo/grant, no credentials; each grant drains the caller's
// failure bucket so the endpoint cannot mint tokens faster than AuthFailPerSec.
func (s *Server) handleDemoGrant(w http.ResponseWriter, r *http.Request) {
	addr := clientAddr(r)
	if s.fails.Blocked(addr) {
		w.Header().Set("Retry-After", "1")
		writeHTTPError(w, http.StatusTooManyRequests, wire.CodeRateLimited, "too many demo grants; retry later", "", "")
		return
	}
	s.fails.Fail(addr)
	s.writeGrant(w, s.cfg.Demo.Tenant, "", s.cfg.TokenTTL)
}

func (s *Server) writeGrant(w http.ResponseWriter, t bus.TenantID, k bus.KeyID, ttl time.Duration) {
	tok, exp := s.cfg.Signer.Issue(t, k, ttl)
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
