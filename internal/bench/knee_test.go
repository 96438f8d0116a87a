package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/models"
)

func kneeReport(final ...float64) *Report {
	r := &Report{Started: time.Date(2026, 12, 5, 17, 30, 0, 0, time.UTC), Duration: 60, KneeFinalMs: 1000, KneeP95Ms: 1500, FinalFrom: FinalFromSpeechEnd}
	for i, f := range final {
		l := Level{Streams: 1 << i, FinalMs: Dist{N: 10, P95: f}, PartialMs: Dist{N: 10, P95: 500}}
		l.OverKnee = l.overKnee(kneePartialRule, kneeFinalRule)
		r.Levels = append(r.Levels, l)
		if l.OverKnee != "" {
			break
		}
		r.Knee = l.Streams
	}
	return r
}

func TestKneeRecord(t *testing.T) {
	key := models.KneeKey{Model: "tiny.en", CPU: "Test CPU", Cores: 2, Arch: "amd64", Threads: 2, Slots: 1}
	cfg := Config{Duration: 60 * time.Second, KneeP95: 1500 * time.Millisecond, KneeFinalP95: time.Second}

	// 1, 2, 4 streams under the rule, 8 over: the knee is 4, with 4's final p95.
	k, err := KneeRecord(kneeReport(300, 500, 900, 1800), cfg, key, "earshot bench --serve")
	if err != nil {
		t.Fatal(err)
	}
	if k.Streams != 4 || k.FinalP95Ms != 900 || k.AtLeast || !strings.Contains(k.Over, "8 streams: final p95 1800 ms") {
		t.Errorf("record %+v: want knee 4 at 900 ms, over at 8", k)
	}
	if k.Key() != key || k.Date != "2026-12-05T17:30:00Z" || len(k.Levels) != 4 || k.Command != "earshot bench --serve" || !k.Current() {
		t.Errorf("record %+v: key, date, levels or command wrong", k)
	}
	// Every level under the rule: the knee is the largest tried, marked as a lower bound.
	if k, err = KneeRecord(kneeReport(300, 500), cfg, key, ""); err != nil || k.Streams != 2 || !k.AtLeast || k.Over != "" {
		t.Errorf("all under: %+v, %v; want at least 2", k, err)
	}
	// Even one stream over: knee 0 (a worker then admits one).
	if k, err = KneeRecord(kneeReport(1500), cfg, key, ""); err != nil || k.Streams != 0 || k.Sessions() != 1 || k.FinalP95Ms != 0 {
		t.Errorf("none under: %+v, %v", k, err)
	}

	short := cfg
	short.Duration = 10 * time.Second
	loose := cfg
	loose.KneeFinalP95 = 2 * time.Second
	loosePartial := cfg
	loosePartial.KneeP95 = 2 * time.Second // the rule before issue 23's 1.5 s
	noCPU := key
	noCPU.CPU = ""
	fromEndpoint := kneeReport(300)
	fromEndpoint.FinalFrom = FinalFromEndpoint
	otherEndpointing := kneeReport(300)
	otherEndpointing.EndpointingMs = 500
	for name, tc := range map[string]struct {
		r    *Report
		cfg  Config
		key  models.KneeKey
		want string
	}{
		"too short":         {kneeReport(300), short, key, "too short"},
		"looser rule":       {kneeReport(300), loose, key, "looser"},
		"looser partials":   {kneeReport(300), loosePartial, key, "looser"},
		"no CPU name":       {kneeReport(300), cfg, noCPU, "no model name"},
		"no level":          {&Report{}, cfg, key, "no level"},
		"from the endpoint": {fromEndpoint, cfg, key, "not from the speech end"},
		"endpointing 500":   {otherEndpointing, cfg, key, "default endpointing"},
	} {
		if _, err := KneeRecord(tc.r, tc.cfg, tc.key, ""); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
	}
}
