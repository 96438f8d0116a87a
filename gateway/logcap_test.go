package gateway

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestCappedLoggerCapsSummarisesAndCounts(t *testing.T) {
	var buf bytes.Buffer
	reg := prometheus.NewRegistry()
	s := &Server{cfg: Config{Metrics: reg}}
	log, flush := s.cappedLogger(slog.New(slog.NewTextHandler(&buf, nil)).With("session", "s1"))
	st := log.Handler().(*capHandler).st
	now := time.Unix(1000, 0)
	st.now = func() time.Time { return now }
	for range 25 {
		log.Error("send finalize", "err", "replay full")
	}
	log.With("channel", 0).Info("stream open") // another key: its own budget
	if n := strings.Count(buf.String(), `msg="send finalize"`); n != logCapLines {
		t.Fatalf("25 lines, cap %d: %d written\n%s", logCapLines, n, buf.String())
	}
	now = now.Add(logCapEvery) // next window: the summary comes first, then the line
	log.Error("send finalize", "err", "replay full")
	if !strings.Contains(buf.String(), `msg="suppressed similar log lines" session=s1 message="send finalize" suppressed=15`) {
		t.Fatalf("no summary of 15 suppressed lines with the session:\n%s", buf.String())
	}
	for range 12 {
		log.Error("send finalize", "err", "replay full")
	}
	flush() // the stream ends: the pending count is written
	if !strings.Contains(buf.String(), `message="send finalize" suppressed=3`) {
		t.Fatalf("flush wrote no summary of 3:\n%s", buf.String())
	}
	m := s.logCapMetrics()
	if got := counterValue(m.lines.WithLabelValues("ERROR", "send finalize")); got != 38 {
		t.Errorf("lines_total = %v, want 38", got)
	}
	if got := counterValue(m.suppressed.WithLabelValues("ERROR", "send finalize")); got != 18 {
		t.Errorf("suppressed_total = %v, want 18", got)
	}
	if got := counterValue(m.lines.WithLabelValues("INFO", "stream open")); got != 1 {
		t.Errorf("stream open lines = %v, want 1", got)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
