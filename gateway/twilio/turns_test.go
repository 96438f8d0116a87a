package twilio

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// tone is 20 ms of loud µ-law (a 400 Hz square wave): speech to the stand-in's turn
// engine. quiet is 20 ms of µ-law silence.
func tone() []byte {
	f := make([]byte, FrameBytes)
	for i := range f {
		v := int16(8000)
		if (i/10)%2 == 1 {
			v = -8000
		}
		f[i] = ingest.LinearToMulaw(v)
	}
	return f
}

func quiet() []byte { return append([]byte(nil), silence...) }

// play sends frames 1..n on both tracks (each loud where its speaks(k) is true), one
// pair every pace (0: as fast as possible), then stop, and waits for the summary.
func (hs *harness) play(tc *tconn, call string, n int, pace time.Duration, caller, agent func(k int) bool) *CallSummary {
	hs.t.Helper()
	t0 := time.Now()
	for k := 1; k <= n; k++ {
		for _, tr := range []struct {
			name  string
			speak func(int) bool
		}{{TrackInbound, caller}, {TrackOutbound, agent}} {
			f := quiet()
			if tr.speak(k) {
				f = tone()
			}
			tc.media(tr.name, k, f)
		}
		if pace > 0 {
			time.Sleep(time.Until(t0.Add(time.Duration(k) * pace)))
		}
	}
	tc.send(Message{Event: EventStop, Stop: &StopInfo{CallSID: call}})
	if msg, code := tc.closed(); msg != "" || code != websocket.CloseNormalClosure {
		hs.t.Fatalf("call ended with %q, close %d", msg, code)
	}
	testutil.Eventually(hs.t, 5*time.Second, "summary", func() bool { return hs.hook.summary() != nil })
	return hs.hook.summary().Summary
}

func between(k, from, to int) bool { return k >= from && k <= to }

func near(got *float64, want float64) bool { return got != nil && math.Abs(*got-want) <= 0.05 }

func ofSpeaker(evs []CallEvent, speaker string, types ...string) []CallEvent {
	var out []CallEvent
	for _, e := range evs {
		if e.Speaker == speaker && (len(types) == 0 || strings.Contains(strings.Join(types, ","), e.Type)) {
			out = append(out, e)
		}
	}
	return out
}

// checkTurnOrder checks each speaker's turn events: turn.start, then updates, eager
// and resumed, then turn.end, with turn_index counting from 0; and that a barge_in
// directly follows the caller's turn.start it belongs to.
func checkTurnOrder(t *testing.T, evs []CallEvent) {
	t.Helper()
	open, next := map[string]bool{}, map[string]int{}
	for i, e := range evs {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
		if !strings.HasPrefix(e.Type, "turn.") && e.Type != TypeBargeIn {
			continue
		}
		if e.TurnIndex == nil {
			t.Fatalf("%s without turn_index: %+v", e.Type, e)
		}
		switch e.Type {
		case TypeTurnStart:
			if open[e.Speaker] || *e.TurnIndex != next[e.Speaker] {
				t.Fatalf("%s turn.start #%d while open=%v, want #%d", e.Speaker, *e.TurnIndex, open[e.Speaker], next[e.Speaker])
			}
			open[e.Speaker] = true
		case TypeTurnEnd:
			if !open[e.Speaker] || *e.TurnIndex != next[e.Speaker] {
				t.Fatalf("%s turn.end #%d without its turn.start", e.Speaker, *e.TurnIndex)
			}
			open[e.Speaker] = false
			next[e.Speaker]++
		case TypeBargeIn:
			prev := evs[i-1]
			if e.Speaker != "caller" || prev.Type != TypeTurnStart || prev.Speaker != "caller" || *prev.TurnIndex != *e.TurnIndex {
				t.Fatalf("barge_in %+v does not follow the caller's turn.start (%+v)", e, prev)
			}
		default:
			if !open[e.Speaker] || *e.TurnIndex != next[e.Speaker] {
				t.Fatalf("%s %s #%d outside its turn", e.Speaker, e.Type, *e.TurnIndex)
			}
		}
	}
}

func TestTurnParams(t *testing.T) {
	on := &bus.TurnOptions{EOTThreshold: 0.8}
	cases := []struct {
		name    string
		params  map[string]string
		def     *bus.TurnOptions
		updates bool
		want    *turnConfig // nil: off
		err     string
	}{
		{"off by default", nil, nil, false, nil, ""},
		{"turns=true takes Flux's defaults", map[string]string{"turns": "true"}, nil, false,
			&turnConfig{opts: bus.TurnOptions{EOTThreshold: 0.7, EOTTimeoutMs: 5000}}, ""},
		{"a knob alone turns it on", map[string]string{"eot_threshold": "0.8", "eager_eot_threshold": "0.5", "eot_timeout_ms": "2000"}, nil, false,
			&turnConfig{opts: bus.TurnOptions{EOTThreshold: 0.8, EagerEOTThreshold: 0.5, EOTTimeoutMs: 2000}}, ""},
		{"turn_updates", map[string]string{"turn_updates": "1"}, nil, false,
			&turnConfig{opts: bus.TurnOptions{EOTThreshold: 0.7, EOTTimeoutMs: 5000}, updates: true}, ""},
		{"config default", nil, on, true, &turnConfig{opts: bus.TurnOptions{EOTThreshold: 0.8, EOTTimeoutMs: 5000}, updates: true}, ""},
		{"a call turns the default off", map[string]string{"turns": "false"}, on, false, nil, ""},
		{"a call overrides a default knob", map[string]string{"eot_timeout_ms": "1000", "turn_updates": "false"}, on, true,
			&turnConfig{opts: bus.TurnOptions{EOTThreshold: 0.8, EOTTimeoutMs: 1000}}, ""},
		{"eager 0 is off", map[string]string{"turns": "true", "eager_eot_threshold": "0"}, &bus.TurnOptions{EagerEOTThreshold: 0.5}, false,
			&turnConfig{opts: bus.TurnOptions{EOTThreshold: 0.7, EOTTimeoutMs: 5000}}, ""},
		{"turns not a boolean", map[string]string{"turns": "maybe"}, nil, false, nil, `turns: "maybe" is not true or false`},
		{"turn_updates not a boolean", map[string]string{"turn_updates": "often"}, nil, false, nil, `turn_updates: "often" is not true or false`},
		{"eot_threshold too high", map[string]string{"turns": "true", "eot_threshold": "1.5"}, nil, false, nil, "eot_threshold: 1.5 is out of range 0.5..1"},
		{"eot_threshold 0", map[string]string{"eot_threshold": "0"}, nil, false, nil, "eot_threshold: 0 is out of range 0.5..1"},
		{"eot_threshold not a number", map[string]string{"eot_threshold": "high"}, nil, false, nil, `eot_threshold: "high" is not a number (0.5..1)`},
		{"eot_threshold NaN", map[string]string{"eot_threshold": "NaN"}, nil, false, nil, `eot_threshold: "NaN" is not a number`},
		{"eager too high", map[string]string{"eager_eot_threshold": "0.95"}, nil, false, nil, "eager_eot_threshold: 0.95 is out of range 0.3..0.9"},
		{"eager above eot", map[string]string{"eot_threshold": "0.6", "eager_eot_threshold": "0.8"}, nil, false, nil, "eager_eot_threshold: 0.8 is above eot_threshold 0.6"},
		{"timeout too short", map[string]string{"eot_timeout_ms": "100"}, nil, false, nil, "eot_timeout_ms: 100 is out of range 500..60000"},
		{"timeout 0", map[string]string{"eot_timeout_ms": "0"}, nil, false, nil, "eot_timeout_ms: 0 is out of range 500..60000"},
		{"timeout not whole", map[string]string{"eot_timeout_ms": "1.5"}, nil, false, nil, `eot_timeout_ms: "1.5" is not a whole number of milliseconds (500..60000)`},
		{"knob with turns=false", map[string]string{"turns": "false", "eot_threshold": "0.8"}, nil, false, nil, "eot_threshold: given with turns=false"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := turnParams(c.params, &Config{Turns: c.def, TurnUpdates: c.updates})
			switch {
			case c.err != "":
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), ErrParameter.Error()) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
			case err != nil:
				t.Fatal(err)
			case (got == nil) != (c.want == nil) || got != nil && *got != *c.want:
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
	if _, err := New(Config{Backend: &standInBackend{}, Tenants: mapTenants{}, Metering: &recMetering{},
		Turns: &bus.TurnOptions{EOTTimeoutMs: 20}}); err == nil || !strings.Contains(err.Error(), "eot_timeout_ms") {
		t.Fatalf("config with eot_timeout_ms 20: %v", err)
	}
}

// TestBadTurnParameterEndsTheCallWithCallError: the TwiML's bad value reaches the
// tenant as a call.error naming the parameter and its range (then the summary), and
// Twilio's side gets an error event and close 1008; no session is opened.
func TestBadTurnParameterEndsTheCallWithCallError(t *testing.T) {
	hs := newHarness(t, nil)
	tc := hs.dial(testSecret, nil)
	tc.start("CAT1", map[string]string{"turns": "true", "eot_threshold": "1.5"})
	const want = "eot_threshold: 1.5 is out of range 0.5..1"
	if msg, code := tc.closed(); !strings.Contains(msg, want) || code != websocket.ClosePolicyViolation {
		t.Fatalf("error event %q close %d", msg, code)
	}
	testutil.Eventually(t, 5*time.Second, "summary", func() bool { return hs.hook.summary() != nil })
	evs := hs.hook.got()
	if evs[0].Type != TypeError || !strings.Contains(evs[0].Error, want) || evs[1].Summary.Reason != "error" {
		t.Fatalf("events %+v", evs)
	}
	if n := len(hs.backend.all()); n != 0 {
		t.Fatalf("%d sessions opened", n)
	}
}

// TestTurnEventsPerTrack: the caller speaks 1 s, then the agent 1 s. Each track's turn
// events map onto turn.* call events with their fields, in order; turn.update only
// when asked for; the summary's turns are the ended turns.
func TestTurnEventsPerTrack(t *testing.T) {
	for _, updates := range []bool{false, true} {
		hs := newHarness(t, nil)
		tc := hs.dial(testSecret, nil)
		params := map[string]string{"eot_threshold": "0.8", "eager_eot_threshold": "0.5", "eot_timeout_ms": "2000"}
		if updates {
			params["turn_updates"] = "true"
		}
		tc.start("CAT2", params)
		sum := hs.play(tc, "CAT2", 200, 0, func(k int) bool { return between(k, 1, 50) }, func(k int) bool { return between(k, 101, 150) })
		for _, s := range hs.backend.all() {
			if o := s.req.Options.Turns; o == nil || *o != (bus.TurnOptions{EOTThreshold: 0.8, EagerEOTThreshold: 0.5, EOTTimeoutMs: 2000}) {
				t.Fatalf("session options %+v", s.req.Options)
			}
		}
		evs := hs.hook.got()
		checkTurnOrder(t, evs)
		for sp, onset := range map[string]float64{"caller": 0, "agent": 2} {
			var types []string
			for _, e := range ofSpeaker(evs, sp, TypeTurnStart, TypeTurnUpdate, TypeTurnEager, TypeTurnResumed, TypeTurnEnd) {
				if e.Type != TypeTurnUpdate {
					types = append(types, e.Type)
				}
			}
			if strings.Join(types, " ") != "turn.start turn.eager turn.end" {
				t.Fatalf("%s: %v", sp, types)
			}
			st, end := ofSpeaker(evs, sp, TypeTurnStart)[0], ofSpeaker(evs, sp, TypeTurnEnd)[0]
			if !near(st.SpeechAt, onset) || st.LatencyMs == nil || st.Start != *st.SpeechAt || st.Text != "" || st.EOTConfidence != nil {
				t.Fatalf("%s turn.start %+v", sp, st)
			}
			if end.Text != "t0w1 t0w2" || len(end.Words) != 2 || end.Trigger != bus.TriggerModel || end.EOTConfidence == nil ||
				*end.EOTConfidence != 0.9 || !near(end.SpeechAt, onset+1) || end.End != *end.SpeechAt || end.Start != st.Start ||
				!end.IsFinal || end.LatencyMs == nil || end.Track != map[string]string{"caller": TrackInbound, "agent": TrackOutbound}[sp] {
				t.Fatalf("%s turn.end %+v", sp, end)
			}
			if n := len(ofSpeaker(evs, sp, TypeTurnUpdate)); updates != (n > 0) {
				t.Fatalf("%s: %d turn.update events with turn_updates=%v", sp, n, updates)
			}
			for _, u := range ofSpeaker(evs, sp, TypeTurnUpdate) {
				if u.Text == "" || u.EOTConfidence == nil {
					t.Fatalf("turn.update %+v", u)
				}
			}
		}
		if n := len(ofSpeaker(evs, "caller", TypeBargeIn)); n != 0 {
			t.Fatalf("%d barge-ins in a call without overlap", n)
		}
		if len(sum.Turns) != 2 || sum.Transcript != "caller: t0w1 t0w2\nagent: t0w1 t0w2" || sum.TurnTaking == nil ||
			!reflect.DeepEqual(*sum.TurnTaking, TurnTaking{EOTThreshold: 0.8, EagerEOTThreshold: 0.5, EOTTimeoutMs: 2000, Updates: updates}) {
			t.Fatalf("summary %+v (%+v)", sum, sum.TurnTaking)
		}
		if !near(&sum.Turns[0].End, 1) || sum.Turns[0].Speaker != "caller" {
			t.Fatalf("turns %+v", sum.Turns)
		}
	}
}

// TestBargeIn plays in real time: the agent speaks 0–2 s and the caller talks over it
// from 1 s: a barge_in follows the caller's turn.start, naming the agent's turn, with
// its latency (the stand-in opens a turn after 100 ms of speech, so about 100 ms).
// Later the agent speaks 3–4 s and the caller only answers at 4.6 s, after the
// agent's turn ended: no barge_in.
func TestBargeIn(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.Turns = &bus.TurnOptions{} })
	tc := hs.dial(testSecret, nil)
	tc.start("CAT3", nil)
	sum := hs.play(tc, "CAT3", 300, 20*time.Millisecond,
		func(k int) bool { return between(k, 51, 90) || between(k, 231, 260) },
		func(k int) bool { return between(k, 1, 100) || between(k, 151, 200) })
	evs := hs.hook.got()
	checkTurnOrder(t, evs)
	bi := ofSpeaker(evs, "caller", TypeBargeIn)
	if len(bi) != 1 {
		t.Fatalf("%d barge_in events, want 1: %+v", len(bi), bi)
	}
	b := bi[0]
	if *b.TurnIndex != 0 || b.Track != TrackInbound || !near(b.SpeechAt, 1.0) || b.Interrupted == nil ||
		*b.Interrupted != (Interrupted{Speaker: "agent", Track: TrackOutbound, TurnIndex: 0, Text: "t0w1 t0w2"}) {
		t.Fatalf("barge_in %+v (%+v)", b, b.Interrupted)
	}
	if b.LatencyMs == nil || *b.LatencyMs < 60 || *b.LatencyMs > 1000 {
		t.Fatalf("barge_in latency %v ms, want about 100", b.LatencyMs)
	}
	t.Logf("barge_in latency %d ms (stand-in: turn opens 100 ms after the onset)", *b.LatencyMs)
	tt := sum.TurnTaking
	if tt == nil || tt.BargeIns != 1 || len(tt.BargeInLatencyMs) != 1 || tt.BargeInLatencyMs[0] != *b.LatencyMs {
		t.Fatalf("summary turn_taking %+v", tt)
	}
	var barged []bool
	for _, turn := range sum.Turns {
		if turn.Speaker == "caller" {
			barged = append(barged, turn.BargeIn)
		}
	}
	if len(sum.Turns) != 4 || len(barged) != 2 || !barged[0] || barged[1] {
		t.Fatalf("turns %+v", sum.Turns)
	}
}

func TestFloorSpeakingAt(t *testing.T) {
	const hold = 0.3
	ended := []span{{start: 1, end: 2, index: 0}}
	cases := []struct {
		name string
		f    floor
		at   float64
		want bool
	}{
		{"nothing said", floor{}, 1, false},
		{"inside the open turn", floor{open: true, start: 1, index: 1}, 1.5, true},
		{"before the open turn began", floor{open: true, start: 1}, 0.9, false},
		{"open, long after its eager end", floor{open: true, start: 1, pausedAt: 2}, 2.5, false},
		{"open, within the hold of its eager end", floor{open: true, start: 1, pausedAt: 2}, 2.2, true},
		{"inside an ended turn", floor{ended: ended}, 1.5, true},
		{"within the hold after an ended turn", floor{ended: ended}, 2.29, true},
		{"after the hold", floor{ended: ended}, 2.31, false},
		{"before an ended turn", floor{ended: ended}, 0.5, false},
	}
	for _, c := range cases {
		if _, got := c.f.speakingAt(c.at, hold); got != c.want {
			t.Errorf("%s: speaking at %v = %v, want %v", c.name, c.at, got, c.want)
		}
	}
}

func TestArrivalsMapPositionsToChunks(t *testing.T) {
	var a arrivals
	if _, ok := a.at(0); ok {
		t.Fatal("an empty map answered")
	}
	for i := 0; i < 3*arrivalsKept; i++ {
		a.add(uint64(i)*320, time.Duration(i)*20*time.Millisecond)
		if i == 10 {
			for pos, want := range map[uint64]time.Duration{0: 0, 319: 0, 320: 20 * time.Millisecond, 3199: 180 * time.Millisecond, 1 << 40: 200 * time.Millisecond} {
				if got, ok := a.at(pos); !ok || got != want {
					t.Fatalf("at(%d) = %v %v, want %v", pos, got, ok, want)
				}
			}
		}
	}
	oldest := uint64(2*arrivalsKept) * 320
	if _, ok := a.at(oldest - 1); ok {
		t.Fatal("a position older than the kept chunks answered")
	}
	if got, ok := a.at(oldest + 5); !ok || got != time.Duration(2*arrivalsKept)*20*time.Millisecond {
		t.Fatalf("oldest kept: %v %v", got, ok)
	}
}

// recPublisher records what is published on NATS.
type recPublisher struct {
	mu   sync.Mutex
	evs  []CallEvent
	subj []string
}

func (p *recPublisher) Publish(subject string, data []byte) error {
	var e CallEvent
	if err := json.Unmarshal(data, &e); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.evs, p.subj = append(p.evs, e), append(p.subj, subject)
	return nil
}

// TestTurnEventMapping drives the mapping directly with worker results: barge-in
// latency against known chunk arrivals, renumbered turns after a lost turn end (a
// worker failover), updates withheld unless asked for, events outside a turn dropped.
func TestTurnEventMapping(t *testing.T) {
	pub := &recPublisher{}
	c := &call{h: &Handler{cfg: Config{BargeInHold: DefaultBargeInHold}}, log: slog.New(slog.DiscardHandler),
		start: &StartInfo{CallSID: "CAM", StreamSID: "MZ"}, startedAt: time.Now().Add(-10 * time.Second),
		turnCfg: &turnConfig{opts: bus.TurnOptions{EOTThreshold: 0.7, EOTTimeoutMs: 5000}}}
	c.dlv = newDelivery(DeliveryOptions{}, pub, c.log, "acme", "CAM", "", "")
	in := &track{name: TrackInbound, speaker: "caller", arr: &arrivals{}, floor: &floor{}}
	out := &track{name: TrackOutbound, speaker: "agent", arr: &arrivals{}, floor: &floor{}}
	c.agent = out
	// The caller's chunk holding sample 16000 (1 s) arrived 9.9 s into the call: 100 ms ago.
	in.arr.add(15680, 9880*time.Millisecond)
	in.arr.add(16000, 9900*time.Millisecond)
	in.arr.add(16320, 9920*time.Millisecond)
	turn := func(tr *track, event string, index int, speechAt uint64, text string) {
		c.turnEvent(tr, bus.Result{Type: bus.ResultTurn, Event: event, TurnIndex: index, SpeechAt: speechAt, Text: text,
			Start: 0.5, Duration: 1, EOTConfidence: 0.8, Trigger: bus.TriggerModel})
	}
	turn(in, bus.TurnEnd, 0, 100, "stray")              // outside a turn: dropped
	turn(out, bus.TurnStart, 0, 8000, "")               // agent from 0.5 s
	turn(out, bus.TurnUpdate, 0, 0, "hello there")      // withheld, remembered
	turn(in, bus.TurnStart, 0, 16100, "")               // caller at 1.006 s: barge-in
	turn(out, bus.TurnEnd, 0, 24000, "hello there sir") // agent's speech ended at 1.5 s
	turn(in, bus.TurnStart, 0, 40000, "")               // failover: a new worker's turn 0, the old end lost
	turn(in, bus.TurnEnd, 0, 48000, "yes")
	var got []string
	for _, e := range pub.evs {
		got = append(got, fmt.Sprintf("%s/%s#%d", e.Type, e.Speaker, *e.TurnIndex))
	}
	want := "turn.start/agent#0 turn.start/caller#0 barge_in/caller#0 turn.end/agent#0 turn.start/caller#1 turn.end/caller#1"
	if strings.Join(got, " ") != want {
		t.Fatalf("events %v\nwant %s", got, want)
	}
	b := pub.evs[2]
	if b.LatencyMs == nil || *b.LatencyMs < 100 || *b.LatencyMs > 150 || !near(b.SpeechAt, 1.006) ||
		*b.Interrupted != (Interrupted{Speaker: "agent", Track: TrackOutbound, TurnIndex: 0, Text: "hello there"}) {
		t.Fatalf("barge_in %+v latency %v interrupted %+v", b, b.LatencyMs, b.Interrupted)
	}
	if e := pub.evs[3]; e.End != 1.5 || e.Text != "hello there sir" || e.Trigger != "model" || *e.EOTConfidence != 0.8 || !e.IsFinal {
		t.Fatalf("agent turn.end %+v", e)
	}
	for i, s := range pub.subj {
		if s != bus.CallSubject("acme", "CAM") || pub.evs[i].Seq != uint64(i+1) {
			t.Fatalf("event %d on %s seq %d", i, s, pub.evs[i].Seq)
		}
	}
	if c.bargeIns != 1 || len(c.turns) != 2 || c.turns[0].Speaker != "agent" || c.turns[1].Text != "yes" || c.turns[1].BargeIn {
		t.Fatalf("barge-ins %d turns %+v", c.bargeIns, c.turns)
	}
}
