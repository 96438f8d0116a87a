package bench

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A level is over the knee by issue 23's targets: any error, no partials, partial p95 above
// 1.5 s, final p95 above 1 s, or a stream that fell behind real time by more than 1 s.
func TestOverKnee(t *testing.T) {
	under := Level{Streams: 4, PartialMs: Dist{N: 10, P95: 500}, FinalMs: Dist{N: 10, P95: 800}, LagMaxSec: 0.1}
	with := func(f func(*Level)) Level { l := under; f(&l); return l }
	for _, tc := range []struct {
		name  string
		level Level
		want  string // in the reason; "" when under the knee
	}{
		{"under the rule", under, ""},
		{"errors", with(func(l *Level) { l.Errors = 2 }), "2 errors"},
		{"no partials", with(func(l *Level) { l.PartialMs = Dist{} }), "no partials"},
		{"partial p95 at 1.5 s", with(func(l *Level) { l.PartialMs.P95 = 1500 }), ""},
		{"partial p95 over 1.5 s", with(func(l *Level) { l.PartialMs.P95 = 1600 }), "partial p95 1600 ms > 1.5s"},
		{"final p95 over 1 s", with(func(l *Level) { l.FinalMs.P95 = 1200 }), "final p95 1200 ms > 1s"},
		{"one stream 0.9 s behind", with(func(l *Level) { l.LagMaxSec = 0.9 }), ""},
		// The pooled final p95 is fine, but one stream's results came 1.4 s after its
		// audio ended: it did not keep real time.
		{"one stream 1.4 s behind", with(func(l *Level) { l.LagMaxSec = 1.4 }), "fell behind real time: results 1.4 s after its audio ended > 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.level.overKnee(kneePartialRule, kneeFinalRule)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("overKnee = %q, want %q", got, tc.want)
			}
		})
	}
	var cfg Config
	cfg.Clips = []Clip{{ID: "c"}}
	if err := cfg.defaults(); err != nil || cfg.KneeP95 != 1500*time.Millisecond || cfg.KneeFinalP95 != time.Second {
		t.Errorf("default rule: partial %v, final %v, %v; want 1.5 s and 1 s", cfg.KneeP95, cfg.KneeFinalP95, err)
	}
}

// lagConn is a stand-in stream: a partial over every frame at once and, when the end is
// asked for, the final over it all at once; it closes lag later (a server still owing
// results: behind real time).
type lagConn struct {
	out  chan event
	sent float64 // seconds of audio received
	lag  time.Duration
	once sync.Once
}

func (c *lagConn) send(pcm []byte) error {
	from := c.sent
	c.sent += float64(len(pcm)) / 32000
	c.out <- event{kind: evPartial, start: from, dur: c.sent - from, text: "echo"}
	return nil
}

func (c *lagConn) closeStream() error {
	c.out <- event{kind: evFinal, dur: c.sent, text: "echo"}
	c.out <- event{kind: evMetadata, acceptedSec: c.sent}
	time.AfterFunc(c.lag, c.abort)
	return nil
}

func (c *lagConn) events() <-chan event { return c.out }
func (c *lagConn) err() error           { return nil }
func (c *lagConn) abort()               { c.once.Do(func() { close(c.out) }) }

// Run stops after the first level over the knee: streams from the 4th dial on close 0.6 s
// after their audio (over a 0.3 s final rule) while their partials and finals are
// prompt, so the level of 4 is over by the real-time rule alone, and 8 is never tried.
func TestSweepStopsAfterTheFirstLevelOverTheKnee(t *testing.T) {
	var dials atomic.Int32
	cfg := Config{Clips: []Clip{{ID: "tone", PCM: make([]byte, 6400), Reference: "echo"}},
		Streams: []int{1, 2, 4, 8}, Duration: 200 * time.Millisecond, KneeFinalP95: 300 * time.Millisecond,
		Target: "stand-in"}
	cfg.dial = func(context.Context) (conn, error) {
		c := &lagConn{out: make(chan event, 64)}
		if dials.Add(1) > 3 { // the levels of 1 and 2 streams dial 3
			c.lag = 600 * time.Millisecond
		}
		return c, nil
	}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Levels) != 3 || rep.Knee != 2 || dials.Load() != 7 {
		t.Fatalf("levels %d, knee %d, %d streams dialled; want 3 levels (8 never tried), knee 2, 7 streams: %+v",
			len(rep.Levels), rep.Knee, dials.Load(), rep.Levels)
	}
	for _, l := range rep.Levels[:2] {
		if l.OverKnee != "" || l.LagMaxSec > 0.2 {
			t.Errorf("level %d: over %q, worst lag %.2f s; want under, ≈ 0 s", l.Streams, l.OverKnee, l.LagMaxSec)
		}
	}
	last := rep.Levels[2]
	if !strings.Contains(last.OverKnee, "fell behind real time") || last.LagMaxSec < 0.5 || last.FinalMs.P95 > 300 {
		t.Errorf("level 4: over %q, worst lag %.2f s, final p95 %.0f ms; want behind real time by ≈ 0.6 s with prompt finals",
			last.OverKnee, last.LagMaxSec, last.FinalMs.P95)
	}
}
