package twilio

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/internal/bus"
)

// Turn-taking on a call (docs/phone.md, "Turn-taking"). With it on, each track's
// session is a turn session (bus.StreamOptions.Turns): the worker's turn events become
// turn.* call events, and a caller turn that starts while the agent holds the floor is
// also a barge_in, with its latency measured against the arrival of the audio.
//
// The agent holds the floor at call time T (seconds of the call's audio, both tracks
// share that clock) when
//   - its turn is open (its turn.start came, its turn.end has not) and began at or
//     before T, unless a turn.eager said its speech ended more than BargeInHold before
//     T (and no turn.resumed followed), or
//   - one of its last ended turns spans T: from its speech onset to its speech end
//     (turn.end's speech_at) plus BargeInHold.
//
// It is decided when the caller's turn.start reaches the gateway, with T the caller's
// speech onset: what the gateway knows of the agent's turns by then.

// Custom parameters (start.customParameters) of turn-taking.
const (
	ParamTurns             = "turns"               // true/false: turn-taking on this call
	ParamEOTThreshold      = "eot_threshold"       // 0.5–1.0
	ParamEagerEOTThreshold = "eager_eot_threshold" // 0 (off) or 0.3–0.9, ≤ eot_threshold
	ParamEOTTimeoutMs      = "eot_timeout_ms"      // 500–60000
	ParamTurnUpdates       = "turn_updates"        // true/false: turn.update events
)

// Kept per track: how many ended turns the barge-in check looks back at, and how many
// chunk arrivals (2048 chunks of 20 ms: 41 s) latencies can be measured against.
const (
	endedTurnsKept   = 4
	arrivalsKept     = 2048
	bargeLatencyKept = 100
)

// turnConfig is a call's turn-taking: the end-of-turn knobs and whether turn.update
// events are sent.
type turnConfig struct {
	opts    bus.TurnOptions
	updates bool
}

// checkTurns fills Flux's defaults for zero knobs and checks their bounds.
func checkTurns(o bus.TurnOptions) (bus.TurnOptions, error) {
	if o.EOTThreshold == 0 {
		o.EOTThreshold = bus.DefaultEOTThreshold
	}
	if o.EOTTimeoutMs == 0 {
		o.EOTTimeoutMs = bus.DefaultEOTTimeoutMs
	}
	err := wire.Thresholds{EOTThreshold: o.EOTThreshold, EagerEOTThreshold: o.EagerEOTThreshold, EOTTimeoutMs: o.EOTTimeoutMs}.Check()
	var pe *wire.ParamError
	if errors.As(err, &pe) {
		return o, paramError(pe.Param, "%s", pe.Reason)
	}
	return o, err
}

func paramError(name, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrParameter, name, fmt.Sprintf(format, args...))
}

// turnParams reads the turn-taking parameters of a start message over the handler's
// defaults (Config.Turns, Config.TurnUpdates). nil: turn-taking is off. A knob given
// alone turns it on; with turns=false it is an error.
func turnParams(p map[string]string, cfg *Config) (*turnConfig, error) {
	on := cfg.Turns != nil
	tc := &turnConfig{updates: cfg.TurnUpdates}
	if cfg.Turns != nil {
		tc.opts = *cfg.Turns
	}
	boolean := func(name string, dst *bool) (bool, error) {
		v, ok := p[name]
		if !ok {
			return false, nil
		}
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return false, paramError(name, "%q is not true or false", clip(v))
		}
		*dst = b
		return true, nil
	}
	turnsGiven, err := boolean(ParamTurns, &on)
	if err != nil {
		return nil, err
	}
	var knobs []string
	if ok, err := boolean(ParamTurnUpdates, &tc.updates); err != nil {
		return nil, err
	} else if ok && tc.updates {
		knobs = append(knobs, ParamTurnUpdates)
	}
	float := func(name string, dst *float64, lo, hi float64) error {
		v, ok := p[name]
		if !ok {
			return nil
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return paramError(name, "%q is not a number (%v..%v)", clip(v), lo, hi)
		}
		*dst = f
		knobs = append(knobs, name)
		return nil
	}
	if err := float(ParamEOTThreshold, &tc.opts.EOTThreshold, wire.MinEOTThreshold, wire.MaxEOTThreshold); err != nil {
		return nil, err
	}
	if err := float(ParamEagerEOTThreshold, &tc.opts.EagerEOTThreshold, wire.MinEagerEOTThreshold, wire.MaxEagerEOTThreshold); err != nil {
		return nil, err
	}
	if v, ok := p[ParamEOTTimeoutMs]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return nil, paramError(ParamEOTTimeoutMs, "%q is not a whole number of milliseconds (%d..%d)", clip(v), wire.MinEOTTimeoutMs, wire.MaxEOTTimeoutMs)
		}
		if n == 0 { // 0 would mean the default: refuse it as out of range, as given
			n = -1
		}
		tc.opts.EOTTimeoutMs = n
		knobs = append(knobs, ParamEOTTimeoutMs)
	}
	if len(knobs) > 0 {
		if turnsGiven && !on {
			return nil, paramError(knobs[0], "given with turns=false; leave it out or set turns=true")
		}
		on = true
	}
	if !on {
		return nil, nil
	}
	if _, ok := p[ParamEOTThreshold]; ok && tc.opts.EOTThreshold == 0 {
		tc.opts.EOTThreshold = -1 // an explicit 0 is out of range, not the default
	}
	if tc.opts.EOTTimeoutMs < 0 {
		return nil, paramError(ParamEOTTimeoutMs, "%s is out of range %d..%d", strings.TrimSpace(p[ParamEOTTimeoutMs]), wire.MinEOTTimeoutMs, wire.MaxEOTTimeoutMs)
	}
	if tc.opts.EOTThreshold < 0 {
		return nil, paramError(ParamEOTThreshold, "0 is out of range %v..%v", wire.MinEOTThreshold, wire.MaxEOTThreshold)
	}
	if tc.opts, err = checkTurns(tc.opts); err != nil {
		return nil, err
	}
	return tc, nil
}

// clip shortens a parameter value quoted in an error.
func clip(v string) string {
	if len(v) > 32 {
		return v[:32] + "…"
	}
	return v
}

// arrivals maps a track's stream positions (16 kHz samples sent to its session) to
// when the media chunk that carried them arrived, as an offset from the call's start
// (monotonic). It keeps the last arrivalsKept chunks. Safe for concurrent use: the read
// loop adds, the result pump looks up.
type arrivals struct {
	mu   sync.Mutex
	ring []arrival
	n    int // chunks recorded in all
}

type arrival struct {
	pos uint64        // first sample of the chunk
	at  time.Duration // when it arrived, since the call started
}

// add records that the audio from pos on arrived at at. Positions must not decrease.
func (a *arrivals) add(pos uint64, at time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ring == nil {
		a.ring = make([]arrival, arrivalsKept)
	}
	a.ring[a.n%len(a.ring)] = arrival{pos, at}
	a.n++
}

// at returns when the chunk holding sample pos arrived; false when it is older than
// what is kept (or nothing arrived yet).
func (a *arrivals) at(pos uint64) (time.Duration, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n == 0 {
		return 0, false
	}
	first := max(0, a.n-len(a.ring))
	get := func(i int) arrival { return a.ring[(first+i)%len(a.ring)] }
	k := a.n - first
	// The last chunk starting at or before pos holds it.
	i := sort.Search(k, func(i int) bool { return get(i).pos > pos }) - 1
	if i < 0 {
		return 0, false
	}
	return get(i).at, true
}

// span is one ended turn: from its speech onset to its speech end, call seconds.
type span struct {
	start, end float64
	index      int
	text       string
}

// floor is one track's turn state for barge-in detection. Guarded by call.mu.
type floor struct {
	open     bool
	index    int     // the open (or last) turn's turn_index
	next     int     // turn_index of the next turn.start
	start    float64 // speech onset of the open turn
	pausedAt float64 // speech end of its turn.eager; 0: none since it (re)started
	text     string  // its transcript as last reported
	bargeIn  bool    // the open turn began as a barge-in
	ended    []span  // the last endedTurnsKept turns
}

// speakingAt reports whether the track held the floor at call time at (see the top of
// this file), and which turn.
func (f *floor) speakingAt(at, hold float64) (span, bool) {
	if f.open && at >= f.start && (f.pausedAt == 0 || at <= f.pausedAt+hold) {
		return span{start: f.start, index: f.index, text: f.text}, true
	}
	for i := len(f.ended) - 1; i >= 0; i-- {
		if s := f.ended[i]; at >= s.start && at <= s.end+hold {
			return s, true
		}
	}
	return span{}, false
}

func samplesToSec(n uint64) float64 { return float64(n) / bus.SampleRate }

// turnEvent turns one ResultTurn of track t into call events (and a barge_in).
// It runs on t's pump.
func (c *call) turnEvent(t *track, r bus.Result) {
	tc := c.turnCfg
	if tc == nil {
		return
	}
	typ := map[string]string{bus.TurnStart: TypeTurnStart, bus.TurnUpdate: TypeTurnUpdate, bus.TurnEager: TypeTurnEager,
		bus.TurnResumed: TypeTurnResumed, bus.TurnEnd: TypeTurnEnd}[r.Event]
	if typ == "" {
		c.log.Debug("ignoring unknown turn event", "track", t.name, "event", r.Event)
		return
	}
	text := strings.TrimSpace(r.Text)
	// SpeechAt is a real position on StartOfTurn (0 is the first sample); elsewhere 0
	// means the worker did not say.
	hasAt := r.SpeechAt > 0 || r.Event == bus.TurnStart
	at := samplesToSec(r.SpeechAt)
	start, end := r.Start, r.Start+r.Duration
	if (r.Event == bus.TurnEager || r.Event == bus.TurnEnd) && hasAt && at > start {
		end = at // the turn's audio ends where its speech did
	}
	if r.Event == bus.TurnStart {
		end = start
	}

	// The track's floor, and on the caller's turn.start whether it barges in. The
	// gateway numbers the turns itself: a worker failover starts the worker's count
	// again, and may lose an open turn's end (the next turn.start then replaces it).
	var barge *Interrupted
	c.mu.Lock()
	f := t.floor
	if !f.open && r.Event != bus.TurnStart {
		c.mu.Unlock()
		c.log.Debug("turn event outside a turn", "track", t.name, "event", r.Event)
		return
	}
	if r.Event == bus.TurnUpdate && !tc.updates {
		f.text = text // for a barge_in's Interrupted
		c.mu.Unlock()
		return
	}
	if r.Event == bus.TurnStart {
		*f = floor{open: true, index: f.next, next: f.next + 1, start: at, ended: f.ended}
	}
	index := f.index
	switch r.Event {
	case bus.TurnStart:
		if t.name == TrackInbound && hasAt {
			if a := c.agent; a != nil {
				if s, ok := a.floor.speakingAt(at, c.h.cfg.BargeInHold.Seconds()); ok {
					barge = &Interrupted{Speaker: a.speaker, Track: a.name, TurnIndex: s.index, Text: s.text}
					f.bargeIn = true
				}
			}
		}
	case bus.TurnUpdate:
		f.text = text
	case bus.TurnEager:
		f.text = text
		if hasAt {
			f.pausedAt = at
		}
	case bus.TurnResumed:
		f.pausedAt = 0
	case bus.TurnEnd:
		f.ended = append(f.ended, span{start: f.start, end: max(f.start, end), index: index, text: text})
		if len(f.ended) > endedTurnsKept {
			f.ended = f.ended[1:]
		}
		if text != "" {
			c.turns = append(c.turns, Turn{Speaker: t.speaker, Start: start, End: end, Text: text, BargeIn: f.bargeIn})
		}
		f.open, f.pausedAt, f.bargeIn, f.text = false, 0, false, ""
	}
	c.mu.Unlock()

	fill := func(e *CallEvent, now time.Time) {
		e.At = now.UTC()
		e.TurnIndex = &index
		if hasAt {
			e.SpeechAt = &at
			if arr, ok := t.arr.at(r.SpeechAt); ok && r.Event != bus.TurnResumed && r.Event != bus.TurnUpdate {
				ms := max(0, now.Sub(c.startedAt)-arr).Milliseconds()
				e.LatencyMs = &ms
			}
		}
	}
	now := time.Now()
	_ = c.dlv.enqueue(c.event(typ, t, func(e *CallEvent) {
		fill(e, now)
		e.Text, e.Words, e.Start, e.End = text, r.Words, start, end
		if r.Event != bus.TurnStart && r.Event != bus.TurnResumed {
			p := r.EOTConfidence
			e.EOTConfidence = &p
		}
		if r.Event == bus.TurnEnd {
			e.Trigger, e.IsFinal = r.Trigger, true
		}
	}))
	if barge == nil {
		return
	}
	now = time.Now()
	ev := c.event(TypeBargeIn, t, func(e *CallEvent) {
		fill(e, now)
		e.Start, e.End, e.Interrupted = start, start, barge
	})
	c.mu.Lock()
	c.bargeIns++
	if ev.LatencyMs != nil && len(c.bargeLatency) < bargeLatencyKept {
		c.bargeLatency = append(c.bargeLatency, *ev.LatencyMs)
	}
	c.mu.Unlock()
	c.log.Info("barge-in", "turn", index, "agent_turn", barge.TurnIndex, "speech_at", at, "latency_ms", ev.LatencyMs)
	_ = c.dlv.enqueue(ev)
}
