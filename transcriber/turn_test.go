package transcriber

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
)

// scriptedTurnModel is a deterministic stand-in for Smart Turn, for unit tests of the
// turn policy only (the real model: transcriber/smartturn and TestTurnLongformRealEngine).
// It "hears" the last fake word before the trailing silence: "hotel" ends a sentence
// (p 0.9), "golf" might (p 0.5), anything else does not (p 0.1). Fn, when set, replaces
// that rule.
type scriptedTurnModel struct {
	Fn    func(last string) float32
	calls atomic.Int64
	Err   error
}

func (m *scriptedTurnModel) Predict(pcm []float32) (float32, error) {
	m.calls.Add(1)
	if m.Err != nil {
		return 0, m.Err
	}
	ws := strings.Fields(recognise(pcm))
	last := ""
	if len(ws) > 0 {
		last = ws[len(ws)-1]
	}
	if m.Fn != nil {
		return m.Fn(last), nil
	}
	switch last {
	case "hotel":
		return 0.9, nil
	case "golf":
		return 0.5, nil
	}
	return 0.1, nil
}

// expectEvents fails the test unless the session's turn events (Updates left out) are want.
func expectEvents(t *testing.T, c *collector, want string) {
	t.Helper()
	if got := eventNames(turnEvents(c)); got != want {
		t.Fatalf("events\n got %s\nwant %s", got, want)
	}
}

func turnEvents(c *collector) []bus.Result {
	return c.ofType(bus.ResultTurn)
}

func eventNames(rs []bus.Result) string {
	var b []string
	for _, r := range rs {
		if r.Event == bus.TurnUpdate {
			continue
		}
		s := fmt.Sprintf("%s#%d", r.Event, r.TurnIndex)
		if r.Text != "" {
			s += "(" + r.Text + ")"
		}
		if r.Trigger != "" {
			s += "[" + r.Trigger + "]"
		}
		b = append(b, s)
	}
	return strings.Join(b, " ")
}

func openTurns(t *testing.T, m TurnModel, o bus.TurnOptions) (*fakeRig, Session, *collector) {
	t.Helper()
	rig := newFakeRig(t, PoolConfig{TurnModel: m}, nil)
	s, c := rig.open(bus.StreamOptions{Turns: &o})
	return rig, s, c
}

func TestTurnEndsWhenTheModelSaysSo(t *testing.T) {
	m := &scriptedTurnModel{}
	rig, s, c := openTurns(t, m, bus.TurnOptions{})
	rig.feed(s, c, cat(speech(1, 2, 7), silence(1000), speech(3, 7), silence(1000)), 0, 0)
	expectEvents(t, c, "StartOfTurn#0 EndOfTurn#0(bravo charlie hotel)[model] StartOfTurn#1 EndOfTurn#1(delta hotel)[model]")
	if f := c.ofType(bus.ResultFinal); len(f) != 2 {
		t.Errorf("%d finals, want one per turn: %+v", len(f), f)
	}
	// The turn ends on the model's first call in the pause, turnTail into it, not after
	// the 5 s timeout.
	rs, at := c.results(), c.at
	for i, r := range rs {
		if r.Type == bus.ResultTurn && r.Event == bus.TurnEnd {
			if lag := at[i] - r.SpeechAt; lag > turnTail+2*20*bus.SamplesPerMs+512 {
				t.Errorf("EndOfTurn %d came %d ms after the speech end", r.TurnIndex, lag/bus.SamplesPerMs)
			}
			if r.EOTConfidence < 0.7 {
				t.Errorf("EndOfTurn confidence %.2f", r.EOTConfidence)
			}
		}
	}
}

// TestTurnFinalsWithoutWordTimes: a turn session's final skips the DTW pass, which
// EndOfTurn would wait for (Flux's words carry no times), and its encoder context is
// rounded up to 128 frames (384 for this 3.6 s window) instead of 256 (512); an ordinary
// stream's final asks for word times and keeps 512. The stand-in decoder records what
// each decode asked; the final's decode is the last one.
func TestTurnFinalsWithoutWordTimes(t *testing.T) {
	for _, turns := range []bool{false, true} {
		var o *bus.TurnOptions
		ctx := 512
		if turns {
			o, ctx = &bus.TurnOptions{}, 384
		}
		rig := newFakeRig(t, PoolConfig{TurnModel: &scriptedTurnModel{}}, nil)
		s, c := rig.open(bus.StreamOptions{Turns: o, InterimResults: true})
		rig.feed(s, c, cat(speech(1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 7), silence(1000)), 0, 0)
		if f := c.ofType(bus.ResultFinal); len(f) != 1 || !strings.HasSuffix(f[0].Text, "hotel") {
			t.Fatalf("turns %v: finals %+v, want one", turns, f)
		}
		rig.dec.mu.Lock()
		last := rig.dec.reqs[len(rig.dec.reqs)-1]
		rig.dec.mu.Unlock()
		if secs := float64(len(last.Samples)) / bus.SampleRate; secs < 3.4 || secs > 4.1 {
			t.Fatalf("turns %v: the last decode's window is %.2f s, want the final's (3.6 s of speech and pad)", turns, secs)
		}
		if last.WordTimes == turns || last.AudioCtx != ctx {
			t.Errorf("turns %v: the final's decode asked word times %v at audio_ctx %d, want %v at %d", turns, last.WordTimes, last.AudioCtx, !turns, ctx)
		}
	}
}

// TestTurnSpeculativeFinalBeforeTheModel: a turn's speculative final starts at the first
// silent VAD window (specEarly), not when the model is asked (turnTail), so it decodes
// while the model waits and thinks.
func TestTurnSpeculativeFinalBeforeTheModel(t *testing.T) {
	var mu sync.Mutex
	var specs []uint64 // stream positions fed when each final-sized decode started
	var modelAt uint64
	m := &scriptedTurnModel{}
	rig, s, c := openTurns(t, m, bus.TurnOptions{})
	m.Fn = func(last string) float32 {
		mu.Lock()
		defer mu.Unlock()
		if modelAt == 0 {
			modelAt = c.fed.Load()
		}
		if last == "hotel" {
			return 0.9
		}
		return 0.1
	}
	rig.dec.OnDecode = func(req DecodeRequest) {
		if req.AudioCtx >= minFinalAudioCtx { // a speculative final (partials of short windows get 256)
			mu.Lock()
			specs = append(specs, c.fed.Load())
			mu.Unlock()
		}
	}
	words := speech(1, 2, 7)
	lastWordEnd := uint64(len(words) - fakeGapMs*bus.SamplesPerMs)
	rig.feed(s, c, cat(words, silence(1000)), 0, 0)
	expectEvents(t, c, "StartOfTurn#0 EndOfTurn#0(bravo charlie hotel)[model]")
	mu.Lock()
	defer mu.Unlock()
	var specAt uint64
	for _, at := range specs {
		if at > lastWordEnd && at <= modelAt {
			specAt = at
		}
	}
	if specAt == 0 || modelAt == 0 {
		t.Fatalf("speculative finals started at %v, model asked at %d, last word ended at %d", specs, modelAt, lastWordEnd)
	}
	if lead := (modelAt - specAt) / bus.SamplesPerMs; lead < 40 {
		t.Errorf("the speculative final started %d ms before the model was asked, want about %d ms",
			lead, (turnTail-specEarly)/bus.SamplesPerMs)
	}
}

func TestTurnStartOfTurnIsQuick(t *testing.T) {
	rig, s, c := openTurns(t, &scriptedTurnModel{}, bus.TurnOptions{})
	rig.feed(s, c, cat(silence(500), speech(1, 7)), 0, 0)
	rs := c.results()
	for i, r := range rs {
		if r.Event == bus.TurnStart {
			onset := uint64(500 * bus.SamplesPerMs)
			if r.SpeechAt < onset-512 || r.SpeechAt > onset+512 {
				t.Errorf("StartOfTurn speech at %d, want the onset %d", r.SpeechAt, onset)
			}
			if lag := c.at[i] - onset; lag > 150*bus.SamplesPerMs {
				t.Errorf("StartOfTurn %d ms after the onset, want ≤ 150", lag/bus.SamplesPerMs)
			}
			return
		}
	}
	t.Fatal("no StartOfTurn")
}

// A thinking pause mid-sentence: the model says "not finished" and the turn goes on;
// the VAD-only baseline (no model) ends the turn in the pause.
func TestTurnPauseMidSentence(t *testing.T) {
	audio := func(rig *fakeRig, s Session, c *collector) {
		rig.feed(s, c, cat(speech(1, 2), silence(900), speech(3, 7), silence(1000)), 0, 0)
	}
	rig, s, c := openTurns(t, &scriptedTurnModel{}, bus.TurnOptions{})
	audio(rig, s, c)
	if got, want := eventNames(turnEvents(c)), "StartOfTurn#0 EndOfTurn#0(bravo charlie delta hotel)[model]"; got != want {
		t.Errorf("with the model\n got %s\nwant %s", got, want)
	}
	rig, s, c = openTurns(t, nil, bus.TurnOptions{})
	audio(rig, s, c)
	if got, want := eventNames(turnEvents(c)), "StartOfTurn#0 EndOfTurn#0(bravo charlie)[model] StartOfTurn#1 EndOfTurn#1(delta hotel)[model]"; got != want {
		t.Errorf("VAD only\n got %s\nwant %s", got, want)
	}
}

// TestTurnPromptIsTheTurnsOwnText: in a turn session a decode's prompt is the open
// turn's own earlier text, never an earlier turn's (promptHistory): the first turn ends
// ("bravo charlie hotel"); the second has a pause mid-sentence that the model holds, so
// it spans two utterances. Every decode of its first utterance goes without a prompt;
// the final of its second has the first's two words.
func TestTurnPromptIsTheTurnsOwnText(t *testing.T) {
	rig, s, c := openTurns(t, &scriptedTurnModel{}, bus.TurnOptions{})
	count := func() int {
		rig.dec.mu.Lock()
		defer rig.dec.mu.Unlock()
		return len(rig.dec.reqs)
	}
	pos := rig.feed(s, c, cat(speech(1, 2, 7), silence(1000)), 0, 0)
	n0 := count()
	pos = rig.feed(s, c, cat(speech(3, 4), silence(900)), pos, 0)
	n1 := count()
	rig.feed(s, c, cat(speech(5, 7), silence(1000)), pos, 0)
	expectEvents(t, c, "StartOfTurn#0 EndOfTurn#0(bravo charlie hotel)[model] StartOfTurn#1 EndOfTurn#1(delta echo foxtrot hotel)[model]")
	rig.dec.mu.Lock()
	defer rig.dec.mu.Unlock()
	first, second := rig.dec.reqs[n0:n1], rig.dec.reqs[n1:]
	if len(first) == 0 || len(second) == 0 {
		t.Fatalf("%d and %d decodes of the second turn's two utterances, want some of each", len(first), len(second))
	}
	for i, r := range first {
		if len(r.PromptTokens) > 0 {
			t.Errorf("decode %d of the second turn's first utterance has prompt %v: the first turn's text", i, r.PromptTokens)
		}
	}
	if last := second[len(second)-1]; len(last.PromptTokens) != 2 {
		t.Errorf("the second utterance's final has prompt %v, want the 2 words of the turn's first", last.PromptTokens)
	}
}

// cappedModel is the stand-in model that also keeps the decode thread cap the pool set
// last (ThreadCapper).
type cappedModel struct {
	scriptedModel
	mu  sync.Mutex
	now int
}

func (m *cappedModel) CapThreads(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = n
}

// cap is the cap in force now (0: none).
func (m *cappedModel) cap() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// TestTurnCallCapsDecodeThreads: while the end-of-turn model runs on a CPU that the
// decode slot's threads fill (1 slot × 2 threads on 2 cores), the decodes are capped at
// one thread, and the cap is lifted when the call returns (Pool.turnCall); with cores to
// spare (4) they keep their threads.
func TestTurnCallCapsDecodeThreads(t *testing.T) {
	for _, c := range []struct {
		cores, during int
	}{{2, 1}, {4, 0}} {
		t.Run(fmt.Sprintf("%d cores", c.cores), func(t *testing.T) {
			dec := &scriptedDecoder{}
			m := &cappedModel{scriptedModel: scriptedModel{d: dec}}
			var mu sync.Mutex
			var seen []int
			tm := &scriptedTurnModel{Fn: func(last string) float32 {
				mu.Lock()
				seen = append(seen, m.cap())
				mu.Unlock()
				if last == "hotel" {
					return 0.9
				}
				return 0.1
			}}
			rig := newFakeRig(t, PoolConfig{Models: map[string]Model{"fake": m}, TurnModel: tm, ThreadsPerDecode: 2, cores: c.cores}, dec)
			s, col := rig.open(bus.StreamOptions{Turns: &bus.TurnOptions{}})
			rig.feed(s, col, cat(speech(1, 2, 7), silence(1000)), 0, 0)
			expectEvents(t, col, "StartOfTurn#0 EndOfTurn#0(bravo charlie hotel)[model]")
			mu.Lock()
			defer mu.Unlock()
			if len(seen) == 0 {
				t.Fatal("the end-of-turn model was not asked")
			}
			for i, n := range seen {
				if n != c.during {
					t.Errorf("call %d ran beside decodes capped at %d threads, want %d", i, n, c.during)
				}
			}
			if n := m.cap(); n != 0 {
				t.Errorf("after the calls the decodes are capped at %d threads, want no cap", n)
			}
		})
	}
}

func TestTurnEagerAndResumed(t *testing.T) {
	rig, s, c := openTurns(t, &scriptedTurnModel{}, bus.TurnOptions{EagerEOTThreshold: 0.4})
	rig.feed(s, c, cat(speech(1, 6), silence(500), speech(3, 7), silence(1000)), 0, 0)
	expectEvents(t, c, "StartOfTurn#0 EagerEndOfTurn#0(bravo golf) TurnResumed#0 EagerEndOfTurn#0(bravo golf delta hotel) EndOfTurn#0(bravo golf delta hotel)[model]")
	checkTurnRules(t, turnEvents(c), true)
}

// TestTurnEagerBeforeTheFinal: with eagerFromPartial (a measurement knob, off by
// default), EagerEndOfTurn goes out when the model decides, with the newest partial as
// its transcript, not once the final is decoded. When the final's text differs (here
// the speculative final, held until the eager event is out, hears one word more),
// TurnResumed and an EagerEndOfTurn with the final text come as soon as it is known,
// and EndOfTurn repeats that one (Flux's rule). Without the knob the EagerEndOfTurn
// waits for the final.
func TestTurnEagerBeforeTheFinal(t *testing.T) {
	t.Cleanup(func() { eagerFromPartial = false })
	for _, tc := range []struct {
		name    string
		p       float32
		o       bus.TurnOptions
		trigger string
		early   bool // eagerFromPartial
	}{
		{"the end at once", 0.9, bus.TurnOptions{EagerEOTThreshold: 0.4}, bus.TriggerModel, true},
		{"eager, then the timeout", 0.5, bus.TurnOptions{EagerEOTThreshold: 0.4, EOTTimeoutMs: 1500}, bus.TriggerTimeout, true},
		{"the default: the end at once, eager with the final", 0.9, bus.TurnOptions{EagerEOTThreshold: 0.4}, bus.TriggerModel, false},
		{"the default: eager with the final, then the timeout", 0.5, bus.TurnOptions{EagerEOTThreshold: 0.4, EOTTimeoutMs: 1500}, bus.TriggerTimeout, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eagerFromPartial = tc.early
			c := &collector{}
			m := &scriptedTurnModel{Fn: func(string) float32 { return tc.p }}
			words := speech(1, 2, 7)
			lastWordEnd := uint64(len(words) - fakeGapMs*bus.SamplesPerMs)
			// Decodes that start after the last word (the speculative final) are held until
			// the EagerEndOfTurn is out, and hear one word more. One slot: one at a time.
			var specNow atomic.Bool
			var specsHeld atomic.Int64
			dec := &scriptedDecoder{}
			dec.OnDecode = func(DecodeRequest) {
				specNow.Store(c.fed.Load() > lastWordEnd)
				if !specNow.Load() {
					return
				}
				specsHeld.Add(1)
				// Until the model has decided and an EagerEndOfTurn is out, or 100 ms after
				// the decision when none comes (the default waits for this decode).
				for deadline := time.Now().Add(10 * time.Second); m.calls.Load() == 0 && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
				for deadline := time.Now().Add(100 * time.Millisecond); !hasEvent(c, bus.TurnEager) && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
			}
			dec.Override = func(text string) Hypothesis {
				if specNow.Load() && text != "" {
					text += " please"
				}
				return Hypothesis{Text: text, AvgLogprob: -0.1, NoSpeechProb: 0.01, Tokens: []Token{{ID: 1}}}
			}
			rig := newFakeRig(t, PoolConfig{TurnModel: m}, dec)
			s, err := rig.pool.Open(bus.SessionRequest{Session: "s", Model: "fake", Channels: 1,
				Options: bus.StreamOptions{Turns: &tc.o}}, c.emit)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			pos := rig.feed(s, c, words[:lastWordEnd], 0, 0)
			// The speculative final starts at the first silent window and is held; the
			// model is asked 96 ms into the pause meanwhile.
			pos = rig.write(s, c, cat(words[lastWordEnd:], silence(200)), pos, 0, false)
			for deadline := time.Now().Add(10 * time.Second); !hasEvent(c, bus.TurnEager); {
				if time.Now().After(deadline) {
					t.Fatalf("no EagerEndOfTurn while the speculative final was held: %s", eventNames(turnEvents(c)))
				}
				time.Sleep(time.Millisecond)
			}
			rig.waitIdle()
			rig.feed(s, c, silence(2000), pos, 0)
			const final = "bravo charlie hotel please"
			if !tc.early {
				expectEvents(t, c, fmt.Sprintf("StartOfTurn#0 EagerEndOfTurn#0(%s) EndOfTurn#0(%s)[%s]", final, final, tc.trigger))
				checkTurnRules(t, turnEvents(c), true)
				return
			}
			evs := turnEvents(c)
			var early string
			for _, r := range evs {
				if r.Event == bus.TurnEager {
					early = r.Text
					break
				}
			}
			if early == "" || strings.Contains(early, "please") {
				t.Fatalf("the first EagerEndOfTurn carries %q: want the partial's text, before the final's", early)
			}
			want := fmt.Sprintf("StartOfTurn#0 EagerEndOfTurn#0(%s) TurnResumed#0 EagerEndOfTurn#0(%s) EndOfTurn#0(%s)[%s]", early, final, final, tc.trigger)
			expectEvents(t, c, want)
			checkTurnRules(t, evs, true)
			if specsHeld.Load() == 0 {
				t.Fatal("no speculative final was decoded")
			}
			// The corrected EagerEndOfTurn came when the final's text was known, long
			// before a timeout.
			rs, at := c.results(), c.at
			for i, r := range rs {
				if r.Type == bus.ResultTurn && r.Event == bus.TurnEager && r.Text == final {
					if lag := (at[i] - uint64(len(words))) / bus.SamplesPerMs; lag > 400 {
						t.Errorf("the EagerEndOfTurn with the final text came %d ms into the pause", lag)
					}
				}
			}
		})
	}
}

// hasEvent reports whether c holds a turn event of that kind.
func hasEvent(c *collector, event string) bool {
	for _, r := range turnEvents(c) {
		if r.Event == event {
			return true
		}
	}
	return false
}

// TestTurnEagerThenEnd: a pause that passed eager_eot_threshold but not eot_threshold
// is asked about again as it grows (TurnEagerRecheck, 250 ms by default), and the
// probability climbs: EagerEndOfTurn first, then EndOfTurn with the same transcript,
// long before eot_timeout_ms. Asked once (TurnEagerRecheck < 0), the turn waits for
// the timeout; a pause below eager_eot_threshold is asked once either way.
func TestTurnEagerThenEnd(t *testing.T) {
	for _, c := range []struct {
		recheck time.Duration
		first   float32
		want    string
		calls   int64
	}{
		{0, 0.5, "StartOfTurn#0 EagerEndOfTurn#0(bravo charlie delta) EndOfTurn#0(bravo charlie delta)[model]", 2},
		{-1, 0.5, "StartOfTurn#0 EagerEndOfTurn#0(bravo charlie delta)", 1},
		{0, 0.2, "StartOfTurn#0", 1},
	} {
		var calls atomic.Int64
		m := &scriptedTurnModel{Fn: func(string) float32 {
			if calls.Add(1) == 1 {
				return c.first
			}
			return 0.8
		}}
		rig := newFakeRig(t, PoolConfig{TurnModel: m, TurnEagerRecheck: c.recheck}, nil)
		s, col := rig.open(bus.StreamOptions{Turns: &bus.TurnOptions{EagerEOTThreshold: 0.4}})
		rig.feed(s, col, cat(speech(1, 2, 3), silence(1000)), 0, 0)
		if got := eventNames(turnEvents(col)); got != c.want {
			t.Errorf("recheck %v, first p %.1f: events\n got %s\nwant %s", c.recheck, c.first, got, c.want)
		}
		if n := calls.Load(); n != c.calls {
			t.Errorf("recheck %v, first p %.1f: the model ran %d times in a 1 s pause, want %d", c.recheck, c.first, n, c.calls)
		}
		// The EndOfTurn comes at the second call, 250 ms after the first.
		rs, at := col.results(), col.at
		for i, r := range rs {
			if r.Type == bus.ResultTurn && r.Event == bus.TurnEnd {
				if lag := at[i] - r.SpeechAt; lag > turnTail+uint64(DefaultTurnEagerRecheck.Milliseconds())*bus.SamplesPerMs+2*20*bus.SamplesPerMs+512 {
					t.Errorf("EndOfTurn came %d ms after the speech end", lag/bus.SamplesPerMs)
				}
			}
		}
	}
}

func TestTurnTimeout(t *testing.T) {
	for _, recheck := range []time.Duration{0, 200 * time.Millisecond} {
		m := &scriptedTurnModel{Fn: func(string) float32 { return 0.1 }}
		rig := newFakeRig(t, PoolConfig{TurnModel: m, TurnRecheck: recheck}, nil)
		s, c := rig.open(bus.StreamOptions{Turns: &bus.TurnOptions{EOTTimeoutMs: 800}})
		rig.feed(s, c, cat(speech(1, 2), silence(1500)), 0, 0)
		if got, want := eventNames(turnEvents(c)), "StartOfTurn#0 EndOfTurn#0(bravo charlie)[timeout]"; got != want {
			t.Fatalf("recheck %v: events\n got %s\nwant %s", recheck, got, want)
		}
		if n := m.calls.Load(); (recheck == 0 && n != 1) || (recheck > 0 && n < 3) {
			t.Errorf("recheck %v: the model ran %d times in an 800 ms pause", recheck, n)
		}
	}
}

// TestTurnLongTimeout: Flux's longest eot_timeout_ms (60 s) ends a turn after a minute of
// silence and not before, and the stream holds only the model's last seconds of that pause.
func TestTurnLongTimeout(t *testing.T) {
	m := &scriptedTurnModel{Fn: func(string) float32 { return 0.1 }}
	rig := newFakeRig(t, PoolConfig{TurnModel: m}, nil)
	s, c := rig.open(bus.StreamOptions{Turns: &bus.TurnOptions{EOTTimeoutMs: bus.MaxEOTTimeoutMs}})
	at := rig.feed(s, c, cat(speech(1, 2), silence(59_000)), 0, 0)
	if got, want := eventNames(turnEvents(c)), "StartOfTurn#0"; got != want {
		t.Fatalf("after 59 s of silence: %s, want %s", got, want)
	}
	ss := s.(*session)
	ss.mu.Lock()
	held := len(ss.streams[0].buf)
	ss.mu.Unlock()
	if limit := turnAudio + 3*bus.SampleRate; held > limit {
		t.Errorf("%.1f s of audio held in the pause, want at most %.1f s", sec(uint64(held)), sec(uint64(limit)))
	}
	rig.feed(s, c, silence(2000), at, 0)
	if got, want := eventNames(turnEvents(c)), "StartOfTurn#0 EndOfTurn#0(bravo charlie)[timeout]"; got != want {
		t.Fatalf("after 61 s of silence: %s, want %s", got, want)
	}
}

func TestTurnForceEndAndClose(t *testing.T) {
	m := &scriptedTurnModel{Fn: func(string) float32 { return 0.1 }}
	rig, s, c := openTurns(t, m, bus.TurnOptions{})
	pos := rig.feed(s, c, speech(1, 2), 0, bus.FlagFinalize) // ForceEndTurn while speaking
	pos = rig.feed(s, c, silence(300), pos, 0)
	rig.feed(s, c, speech(3, 4), pos, bus.FlagEnd) // the stream ends inside a turn
	expectEvents(t, c, "StartOfTurn#0 EndOfTurn#0(bravo charlie)[manual] StartOfTurn#1 EndOfTurn#1(delta echo)[close]")
	rs := c.results()
	if last := rs[len(rs)-1]; last.Type != bus.ResultClosed {
		t.Errorf("last result %s, want closed after the EndOfTurn", last.Type)
	}
}

func TestTurnUpdates(t *testing.T) {
	rig, s, c := openTurns(t, &scriptedTurnModel{}, bus.TurnOptions{})
	rig.feed(s, c, cat(speech(1, 2, 3, 4, 5, 6), speech(7)), 0, 0)
	var ups []bus.Result
	for _, r := range turnEvents(c) {
		if r.Event == bus.TurnUpdate {
			ups = append(ups, r)
		}
	}
	// 2.1 s of speech: an Update every 0.25 s of audio after StartOfTurn.
	if len(ups) < 6 || len(ups) > 9 {
		t.Fatalf("%d Updates in 2.1 s of a turn", len(ups))
	}
	last := ups[len(ups)-1]
	if !strings.HasPrefix(last.Text, "bravo charlie delta") {
		t.Errorf("last Update %q: want the partial transcript", last.Text)
	}
}

func TestTurnOptionsChecked(t *testing.T) {
	for _, o := range []bus.TurnOptions{
		{EOTThreshold: 0.4}, {EOTThreshold: 1.1}, {EagerEOTThreshold: 0.2}, {EagerEOTThreshold: 0.95},
		{EOTThreshold: 0.6, EagerEOTThreshold: 0.7}, {EOTTimeoutMs: 100}, {EOTTimeoutMs: 60001},
	} {
		_, err := CheckTurnOptions(o)
		var oe *OptionError
		if !errors.As(err, &oe) {
			t.Errorf("%+v: %v, want an OptionError", o, err)
		}
		rig := newFakeRig(t, PoolConfig{}, nil)
		if _, err := rig.pool.Open(bus.SessionRequest{Session: "s", Model: "fake", Channels: 1, Options: bus.StreamOptions{Turns: &o}}, func(bus.Result) {}); !errors.As(err, &oe) {
			t.Errorf("open %+v: %v, want an OptionError", o, err)
		}
	}
	o, err := CheckTurnOptions(bus.TurnOptions{})
	if err != nil || o.EOTThreshold != 0.7 || o.EOTTimeoutMs != 5000 || o.EagerEOTThreshold != 0 {
		t.Errorf("defaults %+v %v", o, err)
	}
}

func TestTurnConfigureMidStream(t *testing.T) {
	m := &scriptedTurnModel{Fn: func(string) float32 { return 0.8 }}
	rig, s, c := openTurns(t, m, bus.TurnOptions{})
	pos := rig.feed(s, c, speech(1, 2), 0, 0)
	pos = rig.feed(s, c, silence(600), pos, 0)
	// eot_threshold 1.0: only the timeout ends a turn now (Flux's "bring your own").
	if err := s.(Configurer).Configure(bus.TurnOptions{EOTThreshold: 1.0, EOTTimeoutMs: 700}); err != nil {
		t.Fatal(err)
	}
	pos = rig.feed(s, c, speech(3, 4), pos, 0)
	rig.feed(s, c, silence(1200), pos, 0)
	expectEvents(t, c, "StartOfTurn#0 EndOfTurn#0(bravo charlie)[model] StartOfTurn#1 EndOfTurn#1(delta echo)[timeout]")
	if err := s.(Configurer).Configure(bus.TurnOptions{EOTTimeoutMs: 1}); err == nil {
		t.Error("Configure accepted eot_timeout_ms 1")
	}
}

func TestTurnModelErrorFailsTheSession(t *testing.T) {
	m := &scriptedTurnModel{Err: errors.New("onnx: boom")}
	rig, s, c := openTurns(t, m, bus.TurnOptions{})
	pos := rig.feed(s, c, speech(1, 2), 0, 0)
	pcm := silence(300)
	for i := 0; i < len(pcm); i += 320 { // the session fails in the pause
		_ = s.Write(&bus.AudioChunk{Session: "s", Seq: pos/320 + 1, StartSample: pos, PCM: pcm[i : i+320]})
		pos += 320
		rig.waitIdle()
	}
	e := c.ofType(bus.ResultError)
	if len(e) != 1 || !strings.Contains(e[0].Message, "end-of-turn model") {
		t.Fatalf("errors %+v", e)
	}
}

// feedFast writes pcm without waiting for decodes (fakeRig.write).
func feedFast(rig *fakeRig, s Session, pcm []int16, start uint64, flags bus.ChunkFlag) uint64 {
	return rig.write(s, nil, pcm, start, flags, false)
}

// A decoder slower than the audio, and the stream ends inside the second turn while
// the first one's final is still decoding: both turns end, in order, the second with
// trigger close, before the session's closed result.
func TestTurnStreamEndsWhileDecodingLags(t *testing.T) {
	rig := newFakeRig(t, PoolConfig{TurnModel: &scriptedTurnModel{}}, &scriptedDecoder{Delay: 150 * time.Millisecond})
	s, c := rig.open(bus.StreamOptions{Turns: &bus.TurnOptions{EagerEOTThreshold: 0.4}})
	pos := feedFast(rig, s, cat(speech(1, 2, 7), silence(300)), 0, 0)
	for rig.pool.turnInFlight.Load() > 0 { // the model has ended turn 0; its final is decoding
		time.Sleep(time.Millisecond)
	}
	feedFast(rig, s, speech(3, 4), pos, bus.FlagEnd)
	deadline := time.Now().Add(5 * time.Second)
	for len(c.ofType(bus.ResultClosed)) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	rs := turnEvents(c)
	checkTurnRules(t, rs, true)
	var ends []bus.Result
	for _, r := range rs {
		if r.Event == bus.TurnEnd {
			ends = append(ends, r)
		}
	}
	if len(ends) != 2 || ends[1].Trigger != bus.TriggerClose || ends[1].Text != "delta echo" {
		t.Fatalf("EndOfTurns %s", eventNames(rs))
	}
	all := c.results()
	if last := all[len(all)-1]; last.Type != bus.ResultClosed {
		t.Errorf("last result %s", last.Type)
	}
	for _, e := range ends {
		if e.Duration > 3 {
			t.Errorf("EndOfTurn %d window %.2f s long: it must end where the turn ended", e.TurnIndex, e.Duration)
		}
	}
}

// Chunks longer than a VAD window (a client sending 250 ms at a time): speech and the
// start of a pause in one chunk still move the turn's speech end, so the pause is
// judged from where the speech really ended and the timeout does not come early.
func TestTurnLongChunks(t *testing.T) {
	m := &scriptedTurnModel{Fn: func(string) float32 { return 0.1 }}
	rig, s, c := openTurns(t, m, bus.TurnOptions{EOTTimeoutMs: 1000})
	pcm := cat(speech(1, 2), silence(700), speech(3, 4, 5, 6, 1, 2, 3), silence(1500))
	const chunk = 250 * bus.SamplesPerMs
	for i := 0; i < len(pcm); i += chunk {
		j := min(i+chunk, len(pcm))
		rig.clock.Advance(250 * time.Millisecond)
		c.fed.Store(uint64(j))
		if err := s.Write(&bus.AudioChunk{Session: "s", Seq: uint64(i/chunk + 1), StartSample: uint64(i), PCM: pcm[i:j]}); err != nil {
			t.Fatal(err)
		}
		rig.waitIdle()
	}
	expectEvents(t, c, "StartOfTurn#0 EndOfTurn#0(bravo charlie delta echo foxtrot golf bravo charlie delta)[timeout]")
	speechEnd := uint64(len(cat(speech(1, 2), silence(700), speech(3, 4, 5, 6, 1, 2, 3))) - fakeGapMs*bus.SamplesPerMs)
	for i, r := range c.results() {
		if r.Event == bus.TurnEnd {
			if r.SpeechAt+64*bus.SamplesPerMs < speechEnd || r.SpeechAt > speechEnd+64*bus.SamplesPerMs {
				t.Errorf("EndOfTurn's speech end %d ms, want the last word's end %d ms", r.SpeechAt/bus.SamplesPerMs, speechEnd/bus.SamplesPerMs)
			}
			if silent := c.at[i] - speechEnd; silent < 1000*bus.SamplesPerMs {
				t.Errorf("EndOfTurn (timeout) after %d ms of silence, want ≥ 1000", silent/bus.SamplesPerMs)
			}
		}
	}
}

// checkTurnRules asserts Flux's documented state machine over one session's events.
func checkTurnRules(t *testing.T, rs []bus.Result, eager bool) {
	t.Helper()
	phase, index, lastEager := turnIdle, 0, ""
	for i, r := range rs {
		fail := func(why string) {
			t.Fatalf("event %d %s#%d %q: %s\n%s", i, r.Event, r.TurnIndex, r.Text, why, eventNames(rs))
		}
		if r.TurnIndex != index {
			fail(fmt.Sprintf("turn_index, want %d", index))
		}
		switch r.Event {
		case bus.TurnStart:
			if phase != turnIdle {
				fail("StartOfTurn inside a turn")
			}
			phase = turnOngoing
		case bus.TurnUpdate:
			if phase != turnOngoing {
				fail("Update outside TurnOngoing")
			}
		case bus.TurnEager:
			if !eager {
				fail("EagerEndOfTurn without eager_eot_threshold")
			}
			if phase != turnOngoing || r.Text == "" {
				fail("EagerEndOfTurn must come in a turn and have a transcript")
			}
			phase, lastEager = turnAwaiting, r.Text
		case bus.TurnResumed:
			if phase != turnAwaiting {
				fail("TurnResumed without an EagerEndOfTurn before it")
			}
			phase, lastEager = turnOngoing, ""
		case bus.TurnEnd:
			switch {
			case phase == turnIdle:
				fail("EndOfTurn outside a turn")
			case eager && r.Text != "" && (phase != turnAwaiting || r.Text != lastEager):
				fail(fmt.Sprintf("EndOfTurn must repeat the EagerEndOfTurn just before it (%q)", lastEager))
			}
			phase, lastEager = turnIdle, ""
			index++
		default:
			fail("unknown event")
		}
	}
}

// TestTurnPropertyRandomPauses: random words, pauses (0–1.5 s), end-of-turn
// probabilities, thresholds, ForceEndTurn and stream ends; Flux's state-machine rules
// hold in every run, and every final's words are in exactly one EndOfTurn, in order.
func TestTurnPropertyRandomPauses(t *testing.T) {
	runs := 60
	if testing.Short() {
		runs = 15
	}
	for run := range runs {
		rng := rand.New(rand.NewPCG(uint64(run), 7))
		probs := map[string]float32{}
		for _, w := range fakeVocab {
			probs[w] = rng.Float32()
		}
		m := &scriptedTurnModel{Fn: func(last string) float32 { return probs[last] }}
		o := bus.TurnOptions{EOTThreshold: 0.5 + 0.5*rng.Float64(), EOTTimeoutMs: 500 + rng.IntN(1500)}
		if rng.IntN(2) == 0 {
			o.EagerEOTThreshold = 0.3 + (min(o.EOTThreshold, 0.9)-0.3)*rng.Float64()
		}
		lag := rng.IntN(3) == 0 // a decoder slower than the audio
		var dec *scriptedDecoder
		if lag {
			dec = &scriptedDecoder{Delay: time.Duration(5+rng.IntN(40)) * time.Millisecond}
		}
		rig := newFakeRig(t, PoolConfig{TurnModel: m}, dec)
		s, c := rig.open(bus.StreamOptions{Turns: &o})
		feed := rig.feed
		if lag {
			feed = func(s Session, _ *collector, pcm []int16, start uint64, flags bus.ChunkFlag) uint64 {
				return feedFast(rig, s, pcm, start, flags)
			}
		}
		pos := uint64(0)
		segs := 2 + rng.IntN(5)
		for k := range segs {
			var ws []int
			for range 1 + rng.IntN(4) {
				ws = append(ws, rng.IntN(len(fakeVocab)))
			}
			var flags bus.ChunkFlag
			if rng.IntN(6) == 0 {
				flags = bus.FlagFinalize
			}
			if k == segs-1 && rng.IntN(2) == 0 {
				flags = bus.FlagEnd
			}
			pos = feed(s, c, speech(ws...), pos, flags)
			if flags == bus.FlagEnd {
				break
			}
			pos = feed(s, c, silence(rng.IntN(1500)), pos, 0)
		}
		rig.waitIdle()
		rs := turnEvents(c)
		t.Run(fmt.Sprint(run), func(t *testing.T) {
			checkTurnRules(t, rs, o.EagerEOTThreshold > 0)
			var finals, ended []string
			for _, f := range c.ofType(bus.ResultFinal) {
				finals = append(finals, f.Text)
			}
			for _, r := range rs {
				if r.Event == bus.TurnEnd {
					ended = append(ended, r.Text)
				}
			}
			// Words still in an open turn (no EndOfTurn yet) are not in ended.
			f, e := strings.Fields(strings.Join(finals, " ")), strings.Fields(strings.Join(ended, " "))
			if len(e) > len(f) || strings.Join(f[:len(e)], " ") != strings.Join(e, " ") {
				t.Errorf("EndOfTurn transcripts %q are not the finals %q", ended, finals)
			}
		})
	}
}
