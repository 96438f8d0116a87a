package app

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/earshot-dev/earshot/internal/config"
)

// newHTTPServer returns a server with the limits every Earshot listener has (docs/api.md
// "Connection limits"):
//
//   - headers (and the TLS handshake) within 10 s: slowloris is cut;
//   - an idle keep-alive connection closes after c.HTTPIdleTimeout;
//   - a request body must arrive at c.HTTPBodyMinRate bytes/s on average once
//     c.HTTPBodyGrace has passed. A fixed ReadTimeout would either let a trickle hold a
//     connection for its whole length or cut a legitimate 100 MiB upload on a slow link;
//     a minimum rate does neither (100 MiB at the 16 KiB/s default takes under 2 h);
//   - each response write must complete within c.HTTPWriteTimeout (a client that does
//     not read cannot hold a handler); a long-running handler is not cut, since the
//     deadline is renewed at every write.
//
// WebSocket upgrades get none of the per-request deadlines: net/http's read and write
// deadlines are left unset (no ReadTimeout or WriteTimeout on the server), so a hijacked
// stream runs under the gateway's own idle and write timeouts only.
func newHTTPServer(addr string, h http.Handler, c config.Common) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           boundRequests(h, c.HTTPBodyMinRate, c.HTTPBodyGrace, c.HTTPWriteTimeout),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       c.HTTPIdleTimeout,
	}
}

// boundRequests applies the body rate and write deadlines to every request but a
// WebSocket upgrade.
func boundRequests(next http.Handler, minRate int, grace, writeTimeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isUpgrade(r) {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &minRateBody{body: r.Body, rc: rc, start: time.Now(), grace: grace, rate: float64(minRate)}
		}
		pw := &progressWriter{ResponseWriter: w, rc: rc, d: writeTimeout}
		next.ServeHTTP(pw, r)
		// net/http flushes what is buffered after the handler returns: bound that too.
		pw.renew()
	})
}

func isUpgrade(r *http.Request) bool {
	for _, v := range r.Header.Values("Upgrade") {
		for _, p := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), "websocket") {
				return true
			}
		}
	}
	return false
}

// errBodyTooSlow is what a handler reads from a body that fell below the minimum rate.
var errBodyTooSlow = errors.New("request body arrived too slowly")

// minRateBody sets the connection's read deadline before every read so that the body
// must have arrived at rate bytes/s, on average, by grace after the request started.
type minRateBody struct {
	body  io.ReadCloser
	rc    *http.ResponseController
	start time.Time
	grace time.Duration
	rate  float64
	n     int64
	limit time.Time // LimitDeadline's; zero: none
}

// LimitDeadline makes every later read end by t at the latest, whatever the rate allows
// (a handler draining a refused upload for a bounded time).
func (b *minRateBody) LimitDeadline(t time.Time) { b.limit = t }

func (b *minRateBody) Read(p []byte) (int, error) {
	due := b.start.Add(b.grace + time.Duration(float64(b.n)/b.rate*float64(time.Second)))
	if !b.limit.IsZero() && b.limit.Before(due) {
		due = b.limit
	}
	_ = b.rc.SetReadDeadline(due)
	n, err := b.body.Read(p)
	b.n += int64(n)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		return n, fmt.Errorf("%w (%d bytes in %s; at least %.0f bytes/s after %s): %w",
			errBodyTooSlow, b.n, time.Since(b.start).Round(time.Millisecond), b.rate, b.grace, err)
	}
	return n, err
}

func (b *minRateBody) Close() error { return b.body.Close() }

// progressWriter renews the connection's write deadline before every write.
type progressWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *progressWriter) renew() { _ = w.rc.SetWriteDeadline(time.Now().Add(w.d)) }

func (w *progressWriter) WriteHeader(code int) { w.renew(); w.ResponseWriter.WriteHeader(code) }

func (w *progressWriter) Write(p []byte) (int, error) { w.renew(); return w.ResponseWriter.Write(p) }

func (w *progressWriter) Flush() { w.renew(); _ = w.rc.Flush() }

// Unwrap lets http.ResponseController reach the connection.
func (w *progressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack hands the connection over without the deadlines this wrapper set.
func (w *progressWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := w.rc.Hijack()
	if err == nil {
		_ = conn.SetDeadline(time.Time{})
	}
	return conn, rw, err
}

// listenOps listens on the ops address. The default address moves to a free loopback
// port when something else holds it (a second earshot on the machine, Prometheus
// itself on 9090); an address set by the operator must be free.
func listenOps(addr string, log *slog.Logger) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil && addr == config.DefaultOpsListen && errors.Is(err, syscall.EADDRINUSE) {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err == nil {
			log.Warn("ops address taken: serving /metrics on a free loopback port instead (set --ops-listen)",
				"wanted", addr, "url", "http://"+ln.Addr().String())
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ops listen on %s: %w (pick another with --ops-listen, or --ops-listen '' for none)", addr, err)
	}
	return ln, nil
}

// serveUntilClosed serves srv on ln until Shutdown.
func serveUntilClosed(srv *http.Server, ln net.Listener) error {
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
