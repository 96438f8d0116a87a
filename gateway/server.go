package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/gorilla/websocket"
)

// Server is the gateway's HTTP and WebSocket edge. Create it with New, serve
// Handler() from an http.Server, and call Shutdown to drain.
type Server struct {
	cfg        Config
	log        *slog.Logger
	mux        *http.ServeMux
	m          *metrics
	fails      addrLimiter
	demoGrants addrLimiter // POST /demo/grant, per address
	tokenUses  TokenUses
	live       LiveGuard
	upgrader   wsUpgrader

	mu       sync.Mutex
	draining bool
	conns    map[*connection]struct{}
	wg       sync.WaitGroup // one per connection, from admission to the end of its handler
}

// New validates cfg (after defaults) and returns a Server with its routes mounted:
//
//	GET  /v1/listen       live transcription (WebSocket)
//	GET  /v2/listen       turn-taking live transcription, Deepgram Flux's protocol (WebSocket)
//	POST /v1/auth/grant   short-lived token for the caller's key
//	GET  /v1/models       models the caller's plan allows
//	POST /demo/grant      demo token (only with Config.Demo.Enabled)
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("gateway metrics: %w", err)
	}
	s := &Server{
		cfg:        cfg,
		log:        cfg.Log.With("component", "gateway"),
		mux:        http.NewServeMux(),
		m:          m,
		fails:      newFailLimiter(cfg.AuthFailBurst, cfg.AuthFailPerSec),
		demoGrants: newFailLimiter(cfg.Demo.GrantBurst, cfg.Demo.GrantPerSec),
		tokenUses:  cfg.TokenUses,
		live:       cfg.Live,
		conns:      map[*connection]struct{}{},
	}
	if s.live == nil {
		s.live = newLocalGuard(cfg.MaxStreamsPerTenant)
	}
	if cfg.SharedLimits != nil {
		s.fails = newRedisLimiter(cfg.SharedLimits, "authfail:", cfg.AuthFailBurst, cfg.AuthFailPerSec, s.log)
		s.demoGrants = newRedisLimiter(cfg.SharedLimits, "demogrant:", cfg.Demo.GrantBurst, cfg.Demo.GrantPerSec, s.log)
	}
	if s.tokenUses == nil {
		s.tokenUses = newLocalTokenUses()
	}
	s.upgrader.Upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		// A small read buffer and a shared write-buffer pool: an idle stream holds 1 KiB
		// of buffers (internal/bench TestGatewayCapacity measures the memory per idle
		// connection). Frame headers and control frames are read through the buffer;
		// the payload of a larger frame is read straight into the caller's slice.
		ReadBufferSize:  1 << 10,
		WriteBufferSize: 16 << 10,
		WriteBufferPool: &sync.Pool{},
		// Browsers cannot send an Authorization header on a WebSocket, so cross-origin
		// pages authenticate with a token; credentials, not origins, guard the API.
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			writeHTTPError(w, status, wire.CodeBadRequest, reason.Error(), "", "")
		},
	}
	s.mux.HandleFunc("GET /v1/listen", s.handleListen)
	s.mux.HandleFunc("GET /v2/listen", s.handleListenV2)
	s.mux.HandleFunc("POST /v1/auth/grant", s.handleGrant)
	s.mux.HandleFunc("GET /v1/models", s.handleModels)
	if cfg.Demo.Enabled {
		s.mux.HandleFunc("POST /demo/grant", s.handleDemoGrant)
	}
	return s, nil
}

// wsUpgrader is websocket.Upgrader with one saving: a stream runs inside its HTTP
// handler, so net/http's connection state (with its 4 KiB read and write buffers)
// lives as long as the stream, although after the hijack nothing in net/http uses
// those buffers again. Upgrade drops them; the websocket.Conn has its own.
type wsUpgrader struct{ websocket.Upgrader }

func (u *wsUpgrader) Upgrade(w http.ResponseWriter, r *http.Request, h http.Header) (*websocket.Conn, error) {
	return u.Upgrader.Upgrade(releasingHijacker{w}, r, h)
}

// releasingHijacker hands out the hijacked connection with small stand-ins for
// net/http's buffers, which the hijacker owns from then on. A reader that holds data
// already is left as it is (websocket refuses such a handshake).
type releasingHijacker struct{ http.ResponseWriter }

func (h releasingHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("the response does not implement http.Hijacker")
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		return c, brw, err
	}
	// The websocket handshake reply is built in a buffer of its own when the writer's
	// is this small, and the websocket.Conn reads with its own buffer.
	*brw.Writer = *bufio.NewWriterSize(c, 16)
	if brw.Reader.Buffered() == 0 {
		*brw.Reader = *bufio.NewReaderSize(c, 16)
	}
	return c, brw, nil
}

// Handler returns the mux with the gateway's routes and whatever was Mounted.
func (s *Server) Handler() http.Handler { return s.mux }

// Mount adds a route (http.ServeMux pattern syntax) to the gateway's mux, for
// /healthz, /readyz, /metrics and the like.
func (s *Server) Mount(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// LiveStreams is the number of streams this server is running.
func (s *Server) LiveStreams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Shutdown drains: new streams get 503 SHUTTING_DOWN, every live stream is finalized
// (its remaining finals and Metadata are sent) and closed with 1012, and Shutdown
// waits for them until ctx ends; streams still open then are closed at once and
// ctx.Err() is returned. Stop the http.Server's listener first (or after: both orders
// work) — hijacked WebSockets are not tracked by http.Server.Shutdown.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	live := make([]*connection, 0, len(s.conns))
	for cn := range s.conns {
		live = append(live, cn)
	}
	s.mu.Unlock()
	s.log.Info("draining", "live_streams", len(live))
	for _, cn := range live {
		cn.drain()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for cn := range s.conns {
			cn.abort()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// admit registers a connection unless the server is draining.
func (s *Server) admit(cn *connection) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return ErrDraining
	}
	s.conns[cn] = struct{}{}
	s.wg.Add(1)
	return nil
}

func (s *Server) release(cn *connection) {
	s.mu.Lock()
	delete(s.conns, cn)
	s.mu.Unlock()
	s.wg.Done()
}

func (s *Server) isDraining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// writeHTTPError writes the JSON error body and Deepgram's dg-error header.
func writeHTTPError(w http.ResponseWriter, status int, code wire.ErrorCode, msg, param, reqID string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("dg-error", msg)
	if reqID != "" {
		h.Set("dg-request-id", reqID)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(wire.HTTPError{Code: code, Message: msg, Param: param, RequestID: reqID})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// clientAddr is the peer's IP address. Forwarding headers are not trusted.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
