package gateway

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// A client controls how often its stream logs: 30,000 Finalize messages once wrote
// 17,984 ERROR lines. Each stream's logger therefore lets through at most
// logCapLines lines with the same level and message per logCapEvery, counts every
// line in earshot_gateway_stream_log_lines_total{level,msg} (messages are constants of
// this package, so the labels are bounded) and the dropped ones in
// earshot_gateway_stream_log_lines_suppressed_total, and writes one "suppressed similar
// log lines" line with the count when the next window opens or the stream ends.
const (
	logCapLines = 10
	logCapEvery = time.Minute
)

// logCapMetrics counts the lines of stream loggers.
type logCapMetrics struct {
	lines, suppressed *prometheus.CounterVec // level, msg
}

// logCapMetricsOf holds one logCapMetrics per Server (registered on its Registerer once).
var logCapMetricsOf sync.Map // *Server → *logCapMetrics

func (s *Server) logCapMetrics() *logCapMetrics {
	if m, ok := logCapMetricsOf.Load(s); ok {
		return m.(*logCapMetrics)
	}
	m := &logCapMetrics{
		lines: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "earshot", Subsystem: "gateway",
			Name: "stream_log_lines_total", Help: "Log lines of live streams, written or suppressed, by level and message."},
			[]string{"level", "msg"}),
		suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "earshot", Subsystem: "gateway",
			Name: "stream_log_lines_suppressed_total", Help: "Log lines of live streams not written (over the per-stream cap), by level and message."},
			[]string{"level", "msg"}),
	}
	if actual, loaded := logCapMetricsOf.LoadOrStore(s, m); loaded {
		return actual.(*logCapMetrics)
	}
	if reg := s.cfg.Metrics; reg != nil {
		m.lines = registerOrExisting(reg, m.lines)
		m.suppressed = registerOrExisting(reg, m.suppressed)
	}
	return m
}

func registerOrExisting(reg prometheus.Registerer, c *prometheus.CounterVec) *prometheus.CounterVec {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if ex, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return ex
			}
		}
	}
	return c
}

// cappedLogger returns log with the per-stream cap, and a flush that writes the
// pending "suppressed" counts (call it when the stream ends).
func (s *Server) cappedLogger(log *slog.Logger) (*slog.Logger, func()) {
	st := &capState{m: s.logCapMetrics(), lines: logCapLines, every: logCapEvery, now: time.Now, keys: map[capKey]*capCount{}}
	return slog.New(&capHandler{next: log.Handler(), st: st}), st.flush
}

type capKey struct {
	level slog.Level
	msg   string
}

type capCount struct {
	since      time.Time
	n          int
	suppressed int
	h          slog.Handler // the handler that saw the key last, for the summary's attributes
}

// capState is shared by a stream logger and every logger derived from it. Safe for
// concurrent use.
type capState struct {
	mu    sync.Mutex
	m     *logCapMetrics
	lines int
	every time.Duration
	now   func() time.Time
	keys  map[capKey]*capCount
}

type capHandler struct {
	next slog.Handler
	st   *capState
}

func (h *capHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *capHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &capHandler{next: h.next.WithAttrs(as), st: h.st}
}

func (h *capHandler) WithGroup(name string) slog.Handler {
	return &capHandler{next: h.next.WithGroup(name), st: h.st}
}

func (h *capHandler) Handle(ctx context.Context, r slog.Record) error {
	st := h.st
	k := capKey{r.Level, r.Message}
	st.m.lines.WithLabelValues(r.Level.String(), r.Message).Inc()
	st.mu.Lock()
	now := st.now()
	c := st.keys[k]
	if c == nil {
		c = &capCount{since: now}
		st.keys[k] = c
	}
	c.h = h.next
	var summary *slog.Record
	if now.Sub(c.since) >= st.every {
		summary = st.summaryLocked(k, c, now)
		c.since, c.n = now, 0
	}
	pass := c.n < st.lines
	if pass {
		c.n++
	} else {
		c.suppressed++
		st.m.suppressed.WithLabelValues(r.Level.String(), r.Message).Inc()
	}
	st.mu.Unlock()
	if summary != nil {
		_ = h.next.Handle(ctx, *summary)
	}
	if !pass {
		return nil
	}
	return h.next.Handle(ctx, r)
}

// summaryLocked returns the "suppressed" line for k and resets its count, or nil.
func (st *capState) summaryLocked(k capKey, c *capCount, now time.Time) *slog.Record {
	if c.suppressed == 0 {
		return nil
	}
	r := slog.NewRecord(now, k.level, "suppressed similar log lines", 0)
	r.AddAttrs(slog.String("message", k.msg), slog.Int("suppressed", c.suppressed),
		slog.Duration("interval", st.every), slog.Int("cap", st.lines))
	c.suppressed = 0
	return &r
}

// flush writes the pending summaries.
func (st *capState) flush() {
	type out struct {
		h slog.Handler
		r slog.Record
	}
	var outs []out
	st.mu.Lock()
	now := st.now()
	for k, c := range st.keys {
		if r := st.summaryLocked(k, c, now); r != nil {
			outs = append(outs, out{c.h, *r})
		}
	}
	st.mu.Unlock()
	for _, o := range outs {
		if o.h.Enabled(context.Background(), o.r.Level) {
			_ = o.h.Handle(context.Background(), o.r)
		}
	}
}
