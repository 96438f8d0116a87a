package twilio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/internal/bus"
)

// Handler serves Twilio Media Streams: mount it on GET /v1/twilio/{secret} (and on
// GET /v1/twilio for secrets sent as customParameters["secret"]). Safe for
// concurrent use; each connection is one call.
type Handler struct {
	cfg      Config
	log      *slog.Logger
	upgrader websocket.Upgrader

	ctx    context.Context // cancelled by Shutdown
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[*websocket.Conn]struct{}
}

// New validates cfg and returns a Handler.
func New(cfg Config) (*Handler, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Handler{
		cfg: cfg, log: cfg.Log.With("component", "twilio"),
		upgrader: websocket.Upgrader{
			// Twilio's handshake has no Origin; the secret and signature authenticate it.
			CheckOrigin: func(*http.Request) bool { return true },
		},
		ctx: ctx, cancel: cancel, conns: map[*websocket.Conn]struct{}{},
	}, nil
}

// ServeHTTP authenticates the handshake and runs the call until stop, idle timeout,
// disconnect or Shutdown. Refusals before the upgrade are plain HTTP statuses: 403 for
// a bad X-Twilio-Signature, 401 for an unknown secret, 503 when the store fails.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.ctx.Err() != nil {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	if h.cfg.AuthToken != "" {
		if !ValidTwilioSignature(h.cfg.AuthToken, h.requestURL(r), nil, r.Header.Get("X-Twilio-Signature")) {
			http.Error(w, "invalid X-Twilio-Signature", http.StatusForbidden)
			return
		}
	}
	c := &call{h: h, log: h.log}
	if secret := pathSecret(r); secret != "" {
		tenant, err := h.cfg.Tenants.Resolve(r.Context(), secret)
		switch {
		case errors.Is(err, ErrSecretNotFound):
			http.Error(w, "unknown stream secret", http.StatusUnauthorized)
			return
		case err != nil:
			h.log.Error("resolve stream secret", "err", err)
			http.Error(w, "secret store unavailable", http.StatusServiceUnavailable)
			return
		}
		c.tenant = tenant
	} else if h.cfg.AuthToken == "" {
		// Without a secret in the path the caller is anonymous until its start message:
		// only a handshake Twilio signed may wait for it.
		http.Error(w, "no stream secret: connect to /v1/twilio/<secret> (earshot phone secret), or configure --twilio-auth-token so that Twilio's signed handshakes may carry the secret in customParameters", http.StatusUnauthorized)
		return
	}
	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered
	}
	conn.SetReadLimit(MaxMessageBytes)
	if !h.track(conn) {
		conn.Close()
		return
	}
	defer h.untrack(conn)
	h.wg.Add(1)
	defer h.wg.Done()
	c.conn = conn
	c.run()
}

func (h *Handler) track(c *websocket.Conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ctx.Err() != nil {
		return false
	}
	h.conns[c] = struct{}{}
	return true
}

// takeCall counts one more live call of tenant, unless it is at MaxCallsPerTenant
// (across gateways when Config.Calls is shared). release gives the place back.
func (h *Handler) takeCall(ctx context.Context, t bus.TenantID, callSid string) (release func(), err error) {
	release, err = h.cfg.Calls.Acquire(ctx, gateway.SessionInfo{Tenant: t, Session: bus.SessionID(callSid)})
	switch {
	case errors.Is(err, gateway.ErrTooManyStreams):
		return nil, fmt.Errorf("%w: the tenant has %d calls live; end one first", ErrTooManyCalls, h.cfg.MaxCallsPerTenant)
	case err != nil:
		return nil, fmt.Errorf("count the tenant's calls: %w", err)
	}
	return release, nil
}

func (h *Handler) untrack(c *websocket.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.conns, c)
}

// Shutdown stops taking calls, ends the live ones (each is finalised, billed and
// summarised with reason "shutdown") and waits for them until ctx ends.
func (h *Handler) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.cancel()
	for c := range h.conns {
		_ = c.NetConn().Close() // unblocks the call's read; the call then finalises
	}
	h.mu.Unlock()
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pathSecret is the {secret} of /v1/twilio/{secret}, from the mux pattern when it has
// one, else the last path segment under /twilio/.
func pathSecret(r *http.Request) string {
	if s := r.PathValue("secret"); s != "" {
		return s
	}
	if i := strings.Index(r.URL.Path, "/twilio/"); i >= 0 {
		return strings.Trim(r.URL.Path[i+len("/twilio/"):], "/")
	}
	return ""
}

// requestURL is the URL Twilio signed: PublicURL (or the scheme and host of the
// request) followed by the path and query.
func (h *Handler) requestURL(r *http.Request) string {
	base := strings.TrimRight(h.cfg.PublicURL, "/")
	if base == "" {
		scheme := "ws"
		if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
			scheme = "wss"
		}
		base = scheme + "://" + r.Host
	}
	return base + r.URL.RequestURI()
}
