package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/gorilla/websocket"
)

// handleListen admits a stream on GET /v1/listen. Everything that can fail before
// audio flows — credentials, parameters, model, plan, quota, the tenant's stream
// limit and the transcriber's capacity (Backend.Open) — is checked BEFORE the
// WebSocket upgrade, so a client sees a plain HTTP status with a JSON body (and a
// dg-error header) instead of a socket that opens and closes at once.
//
// Browsers cannot read the status of a refused upgrade, so a plain (non-upgrade)
// GET with the same query and credentials is a probe: it runs the same checks and
// answers with their status and JSON body, or 426 Upgrade Required when they all
// pass. The probe opens no transcription stream and holds no stream slot (it takes
// the tenant's slot and gives it back at once), so it cannot tell 503 NO_CAPACITY:
// a probe that gets 426 after a refused upgrade most likely met a full transcriber.
func (s *Server) handleListen(w http.ResponseWriter, r *http.Request) { s.serveListen(w, r, false) }

// handleListenV2 admits a turn-taking stream on GET /v2/listen (Deepgram Flux's
// protocol, docs/api.md "Turn-taking"). Admission, credentials, limits, quotas,
// billing and resume are /v1/listen's, in the same code (serveListen); only the
// query, the model aliases, the client messages and the messages sent differ.
func (s *Server) handleListenV2(w http.ResponseWriter, r *http.Request) { s.serveListen(w, r, true) }

// serveListen is GET /v1/listen (v2 false) and GET /v2/listen (v2 true).
func (s *Server) serveListen(w http.ResponseWriter, r *http.Request, v2 bool) {
	path := "/v1/listen"
	if v2 {
		path = "/v2/listen"
	}
	sid := bus.NewSessionID()
	reqID := string(sid)
	log := s.log.With("request_id", reqID, "remote", clientAddr(r))
	fail := func(status int, code wire.ErrorCode, msg, param string) {
		s.m.errors.WithLabelValues(string(code)).Inc()
		writeHTTPError(w, status, code, msg, param, reqID)
		log.Info("listen rejected", "status", status, "code", code, "param", param)
	}
	probe := !websocket.IsWebSocketUpgrade(r)
	if s.isDraining() {
		w.Header().Set("Retry-After", "5")
		fail(http.StatusServiceUnavailable, wire.CodeShuttingDown, "the gateway is restarting; reconnect", "")
		return
	}
	p, sub, ok := s.authRequest(w, r, reqID)
	if !ok {
		return
	}
	log = log.With("tenant", p.Tenant, "key", p.Key)
	if p.Visitor != "" {
		log = log.With("visitor", p.Visitor)
	}
	var params wire.Params
	var flux *fluxState
	var err error
	if v2 {
		var fp wire.FluxParams
		fp, err = wire.ParseFluxQuery(r.URL.Query())
		params = fp.Params
		if err == nil {
			if code, msg, param := s.resolveFluxModel(&params, fp.LanguageHints); code != "" {
				fail(http.StatusBadRequest, code, msg, param)
				return
			}
			flux = newFluxState(fp, params.Detecting())
		}
	} else {
		params, err = wire.ParseQuery(r.URL.Query())
	}
	if err != nil {
		var pe *wire.ParamError
		errors.As(err, &pe)
		fail(http.StatusBadRequest, wire.CodeBadRequest, err.Error(), pe.Param)
		return
	}
	if params.Model == "" {
		params.Model = s.cfg.DefaultModel
	}
	model, ok := s.cfg.Models.Lookup(params.Model)
	if !ok {
		fail(http.StatusBadRequest, wire.CodeUnknownModel, "no model named "+strconv.Quote(params.Model)+"; GET /v1/models lists them", "model")
		return
	}
	if p.Model != "" && model.Name != p.Model {
		fail(http.StatusForbidden, CodeTokenScope, "this token is bound to model "+strconv.Quote(p.Model)+"; get a token for "+strconv.Quote(model.Name), "model")
		return
	}
	if params.Encoding == "" {
		fail(http.StatusBadRequest, wire.CodeBadRequest,
			"parameter encoding: required on live streams (linear16, linear32/float32, mulaw, alaw) with sample_rate", "encoding")
		return
	}
	pipe, err := newPipeline(params)
	if err != nil {
		param := "encoding"
		var pe *wire.ParamError
		if errors.As(err, &pe) {
			param = pe.Param
		}
		fail(http.StatusBadRequest, wire.CodeBadRequest, err.Error(), param)
		return
	}
	ctx := r.Context()
	if s.cfg.Quota != nil {
		if err := s.cfg.Quota.Check(ctx, p.Tenant, model.Name); err != nil {
			status, code := quotaStatus(err)
			if code == wire.CodeInternal {
				log.Error("quota check", "err", err)
				fail(status, code, "quota service unavailable", "")
				return
			}
			fail(status, code, err.Error(), "")
			return
		}
	}
	info := SessionInfo{Session: sid, Tenant: p.Tenant, Key: p.Key, Model: model.Name, Billed: sid, Channels: 1}
	if params.Multichannel {
		info.Channels = max(1, params.OutputChannels())
	}
	if params.Resume != "" {
		info.Billed, info.OffsetMs, info.RunUpMs = bus.SessionID(params.Resume), params.ResumeOffsetMs, params.ResumeRunUpMs
	}
	if p.Token && !s.tokenFree(ctx, p, "", bus.SessionID(params.Resume), fail, log) {
		return
	}
	releaseSlot, err := s.live.Acquire(ctx, info)
	if err != nil {
		if errors.Is(err, ErrTooManyStreams) {
			fail(http.StatusTooManyRequests, wire.CodeTooManyStreams, err.Error(), "")
		} else {
			log.Error("live guard", "err", err)
			fail(http.StatusInternalServerError, wire.CodeInternal, "stream limiter unavailable", "")
		}
		return
	}
	if probe {
		releaseSlot()
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
		writeHTTPError(w, http.StatusUpgradeRequired, codeUpgradeRequired,
			"admission checks pass; GET "+path+" is a WebSocket endpoint: send an Upgrade request", "", reqID)
		return
	}
	if p.Token && !s.tokenFree(ctx, p, sid, bus.SessionID(params.Resume), fail, log) {
		releaseSlot()
		return
	}
	// What the tenant has left is shared by all its live streams on every gateway: this
	// one holds a share of it before a transcriber is asked for.
	bud, err := OpenBudget(ctx, s.cfg.Quota, info, log)
	if err != nil {
		releaseSlot()
		status, code := quotaStatus(err)
		fail(status, code, err.Error(), "")
		return
	}
	streamLog, flushLog := s.cappedLogger(log) // a client must not choose how much we log
	defer flushLog()
	cn := newConnection(s, info, params, model, pipe, streamLog)
	cn.budget = bud
	cn.flux = flux
	if bud != nil {
		defer func() { bud.Release(cn.billable()) }()
	}
	if err := s.admit(cn); err != nil {
		releaseSlot()
		w.Header().Set("Retry-After", "5")
		fail(http.StatusServiceUnavailable, wire.CodeShuttingDown, "the gateway is restarting; reconnect", "")
		return
	}
	defer s.release(cn)
	defer releaseSlot()
	defer cn.cancel()

	openCtx, cancelOpen := context.WithTimeout(cn.ctx, s.cfg.OpenTimeout)
	opts := bus.StreamOptions{Language: params.Language, InterimResults: params.InterimResults,
		EndpointingMs: params.EndpointingMs, UtteranceEndMs: params.UtteranceEndMs,
		VADEvents: params.VADEvents, Redact: params.Redact, Keyterms: params.Keyterms}
	if flux != nil {
		opts.Turns = flux.turnOptions()
	}
	stream, err := s.cfg.Backend.Open(openCtx, bus.SessionRequest{
		Session: sid, Tenant: p.Tenant, Key: p.Key, Model: model.Name, Channels: params.OutputChannels(),
		Priority: bus.PriorityLive, Options: opts,
		Committed: runUpCommitted(info.RunUpMs, params.OutputChannels()),
	})
	cancelOpen()
	if err != nil {
		if pe := BadRequestRefusal(err); pe != nil {
			if flux != nil && pe.Param == "language" {
				pe = &wire.ParamError{Param: "language_hint", Reason: pe.Reason} // its /v2 name
			}
			fail(http.StatusBadRequest, wire.CodeBadRequest, pe.Error(), pe.Param)
			return
		}
		if errors.Is(err, bus.ErrNoCapacity) || errors.Is(err, context.DeadlineExceeded) {
			w.Header().Set("Retry-After", "1")
			fail(http.StatusServiceUnavailable, wire.CodeNoCapacity, "no transcriber has a free slot for "+model.Name+"; retry shortly", "")
		} else {
			log.Error("open stream", "err", err)
			fail(http.StatusBadGateway, wire.CodeInternal, "could not open a transcription stream", "")
		}
		return
	}
	var meter Meter = nopMeter{}
	if s.cfg.Metering != nil {
		if meter, err = s.cfg.Metering.Start(ctx, info); err != nil {
			stream.Close()
			if errors.Is(err, ErrResumeRefused) {
				fail(http.StatusBadRequest, wire.CodeBadRequest, err.Error()+"; start a new stream without resume", "resume")
				return
			}
			log.Error("start meter", "err", err)
			fail(http.StatusServiceUnavailable, wire.CodeInternal, "metering unavailable", "")
			return
		}
	}
	hdr := http.Header{"dg-request-id": {reqID}}
	if sub != "" {
		hdr.Set("Sec-WebSocket-Protocol", sub)
	}
	conn, err := s.upgrader.Upgrade(w, r, hdr)
	if err != nil {
		stream.Close()
		closeMeter(meter, s.cfg.CloseTimeout)
		s.m.errors.WithLabelValues(string(wire.CodeBadRequest)).Inc()
		log.Info("upgrade failed", "err", err)
		return
	}
	cn.run(conn, stream, meter)
}

// runUpCommitted tells the worker that the first runUpMs of a resumed connection's
// audio were finalised before (nil: none).
func runUpCommitted(runUpMs int64, channels int) []uint64 {
	if runUpMs <= 0 {
		return nil
	}
	c := make([]uint64, max(1, channels))
	for i := range c {
		c[i] = uint64(runUpMs) * bus.SamplesPerMs
	}
	return c
}

// tokenFree enforces a token's single stream: the token may open a stream when it has
// opened none, or resume the stream it opened. With sid set it binds the token to sid
// (atomically: of two connections racing with one token, one wins); with sid empty
// it only looks. It writes the refusal itself (ok false).
func (s *Server) tokenFree(ctx context.Context, p principal, sid, resume bus.SessionID, fail func(int, wire.ErrorCode, string, string), log *slog.Logger) bool {
	var bound bus.SessionID
	var err error
	if sid == "" {
		bound, err = s.tokenUses.Bound(ctx, p.TokenID)
	} else {
		bound, err = s.tokenUses.Use(ctx, p.TokenID, sid, time.Unix(p.Expires, 0))
	}
	if err != nil {
		log.Error("token use", "err", err)
		fail(http.StatusInternalServerError, wire.CodeInternal, "token check unavailable", "")
		return false
	}
	if bound == "" || bound == sid || (resume != "" && bound == resume) {
		return true
	}
	fail(http.StatusForbidden, CodeTokenUsed, "this token already opened a stream ("+string(bound)+"); a token opens one stream and may only resume it: get a new token for a new stream", "")
	return false
}

// codeUpgradeRequired answers a probe (a plain GET /v1/listen) whose checks all pass.
const codeUpgradeRequired wire.ErrorCode = "UPGRADE_REQUIRED"

func quotaStatus(err error) (int, wire.ErrorCode) {
	switch {
	case errors.Is(err, ErrNoBalance):
		return http.StatusPaymentRequired, wire.CodeNoBalance
	case errors.Is(err, ErrQuotaExhausted):
		return http.StatusPaymentRequired, wire.CodeQuotaExhausted
	case errors.Is(err, ErrModelNotInPlan):
		return http.StatusForbidden, wire.CodeModelNotInPlan
	}
	return http.StatusInternalServerError, wire.CodeInternal
}

type nopMeter struct{}

func (nopMeter) Add(int64)                   {}
func (nopMeter) Close(context.Context) error { return nil }

func closeMeter(m Meter, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return m.Close(ctx)
}
