package transcriber

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/wer"
	"github.com/earshot-dev/earshot/transcriber/smartturn"
)

// The turn set: the long-form recording's utterances, each one turn, with a thinking
// pause of turnSetPause inserted in each mid-sentence, where the sentence cannot end:
// after the first function word ("the", "of", "what", …) between 30 % and 70 % of its
// reference words, at that word's end by whisper's DTW alignment (dtwWordEnds), moved to
// the quietest VAD window within 64 ms. Such a pause is not a turn end. References come
// from Silero run over the whole set offline (speech onset: first window with p ≥ 0.5;
// speech end: end of the last window with p ≥ 0.35, 32 ms resolution).
const turnSetPause = 1000 * bus.SamplesPerMs

type turnRef struct {
	id          string
	reference   string
	onset, end  uint64   // speech, by the offline VAD
	pauses      []uint64 // where inserted pauses start
	start, stop uint64   // the utterance's span in the set (tsv bounds)
}

// buildTurnSet returns the set's audio and labels; n > 0 keeps the first n utterances.
func buildTurnSet(t *testing.T, n int) ([]int16, []turnRef) {
	t.Helper()
	lf, err := testdata.LoadLongform()
	if err != nil {
		t.Fatal(err)
	}
	src := readWAV(t, lf.WAV)
	us := lf.Utterances
	if n > 0 && n < len(us) {
		us = us[:n]
	}
	_, newVAD := realEngine(t)
	sm := newSpeechMap(t, newVAD, src)
	probs, win := sm.probs, uint64(512)
	ends := dtwWordEnds(t, src, lf, sm)
	roomTone := src[:bus.SampleRate] // the second before the first utterance
	var out []int16
	var refs []turnRef
	prevEnd := uint64(0)
	for _, u := range us {
		a, b := uint64(u.Start.Seconds()*bus.SampleRate), min(uint64(len(src)), uint64(u.End.Seconds()*bus.SampleRate))
		// The gap before the utterance as recorded (the set starts with the first second).
		out = append(out, src[prevEnd:a]...)
		prevEnd = b
		// Its speech span by the VAD, and the quietest window in its middle.
		on, off := b, a
		for i := a / win; i < b/win && int(i) < len(probs); i++ {
			if probs[i] >= vadStartThold && on == b {
				on = i * win
			}
			if probs[i] >= vadEndThold {
				off = (i + 1) * win
			}
		}
		ref := wer.Normalize(u.Reference)
		// The speech end: the end of the VAD's speech run holding the last word's end
		// (a breath after it can keep the VAD above its threshold for a while).
		if e := ends[u.ID]; len(e) == len(ref) && len(e) > 0 {
			for i := uint64(e[len(e)-1]*bus.SampleRate) / win; i < b/win && int(i) < len(probs); i++ {
				if probs[i] < vadEndThold {
					off = i * win
					break
				}
			}
		}
		at := -1
		for i := len(ref) * 3 / 10; i < len(ref)*7/10 && at < 0; i++ {
			if functionWords[ref[i]] {
				at = i
			}
		}
		if at < 0 || at >= len(ends[u.ID]) {
			t.Fatalf("%s: no function word in the middle of %q", u.ID, u.Reference)
		}
		wordEnd := uint64(ends[u.ID][at] * bus.SampleRate)
		cut, best := wordEnd, float32(2)
		for i := (wordEnd - 64*bus.SamplesPerMs) / win; i <= (wordEnd+64*bus.SamplesPerMs)/win && int(i) < len(probs); i++ {
			if probs[i] < best {
				cut, best = i*win+win/2, probs[i]
			}
		}
		t.Logf("turn set: %s: pause after %q (%d of %d words) at %.2f s", u.ID, ref[at], at+1, len(ref), sec(cut))
		base := uint64(len(out)) - a
		out = append(out, src[a:cut]...)
		pauseAt := uint64(len(out))
		for len(out) < int(pauseAt+turnSetPause) {
			out = append(out, roomTone[:min(len(roomTone), int(pauseAt+turnSetPause)-len(out))]...)
		}
		out = append(out, src[cut:b]...)
		shift := func(x uint64) uint64 {
			if x >= cut {
				return x + base + turnSetPause
			}
			return x + base
		}
		refs = append(refs, turnRef{id: u.ID, reference: u.Reference, onset: shift(on), end: shift(off),
			pauses: []uint64{pauseAt}, start: shift(a), stop: shift(b)})
	}
	out = append(out, silence(2000)...)
	return out, refs
}

// functionWords cannot end an English sentence.
var functionWords = map[string]bool{"the": true, "a": true, "an": true, "of": true, "to": true, "and": true, "in": true,
	"for": true, "with": true, "from": true, "what": true, "his": true, "is": true, "are": true, "my": true, "if": true,
	"at": true, "by": true, "which": true, "but": true, "be": true, "we": true, "your": true}

// turnRun is one real-time pass over the turn set.
type turnRun struct {
	name                                 string
	turnEnds, falseEnds, missed, natural int
	eot, eager, start                    []time.Duration
	// eotAll is eot with each missed turn end counted at eot_timeout_ms, the soonest
	// it could have ended (it ends then, or merges with the next turn).
	eotAll []time.Duration
	// eagerFinal: the EagerEndOfTurn whose transcript the turn's EndOfTurn repeated;
	// revised: turn ends whose first EagerEndOfTurn (sent with a partial's text before
	// the final was decoded) was followed by TurnResumed and another one.
	eagerFinal []time.Duration
	revised    int
	wer        float64
	events     []bus.Result
	modelCalls int64
	decisions  []turnDecision
}

// turnDecision is one end-of-turn decision: the pause after speechEnd (stream
// seconds), the model's probability, and what the pause is: "end" (a turn end),
// "inserted" (a mid-sentence pause of the set) or "natural" (a pause in the speech).
type turnDecision struct {
	speechEnd, p float64
	kind         string
}

// sweep counts, for each eot_threshold, the pauses that would end a turn wrongly and the
// turn ends that would be missed, from one run that asked the model once per pause
// (every pause got exactly one decision whatever the threshold).
func sweep(ds []turnDecision) []string {
	var out []string
	for th := 0.30; th < 0.999; th += 0.05 {
		falseEnds, missed, ends := 0, 0, 0
		for _, d := range ds {
			switch {
			case d.kind == "end":
				ends++
				if d.p < th {
					missed++
				}
			case d.p >= th:
				falseEnds++
			}
		}
		out = append(out, fmt.Sprintf("| %.2f | %d | %d of %d |", th, falseEnds, missed, ends))
	}
	return out
}

// decisionLog is a slog.Handler that keeps the pool's "end of turn" debug records.
type decisionLog struct {
	mu   sync.Mutex
	recs []struct{ speechEnd, p float64 }
	tee  slog.Handler
}

func (h *decisionLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *decisionLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *decisionLog) WithGroup(string) slog.Handler            { return h }
func (h *decisionLog) Handle(ctx context.Context, r slog.Record) error {
	if h.tee != nil {
		_ = h.tee.Handle(ctx, r)
	}
	if r.Message != "end of turn" {
		return nil
	}
	var d struct{ speechEnd, p float64 }
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "speech_end":
			d.speechEnd = a.Value.Float64()
		case "p": // a float32, which slog keeps as a float64
			if a.Value.Kind() == slog.KindFloat64 {
				d.p = a.Value.Float64()
			}
		}
		return true
	})
	h.mu.Lock()
	h.recs = append(h.recs, d)
	h.mu.Unlock()
	return nil
}

// runTurnSet streams pcm in real time (20 ms chunks) through a Pool on real tiny.en and
// Silero with turns on, and scores the events against refs.
func runTurnSet(t *testing.T, name string, m TurnModel, recheck, eagerRecheck time.Duration, o bus.TurnOptions, pcm []int16, refs []turnRef) turnRun {
	t.Helper()
	model, newVAD := realEngine(t)
	dl := &decisionLog{}
	if os.Getenv("EARSHOT_STREAM_DEBUG") != "" { // every end-of-turn decision
		dl.tee = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	cfg := PoolConfig{Models: map[string]Model{"tiny.en": model}, NewVAD: newVAD, Slots: 1, ThreadsPerDecode: 2, TurnModel: m, TurnRecheck: recheck, TurnEagerRecheck: eagerRecheck,
		Log: slog.New(dl)}
	pool, err := NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	got, writeAt := streamRealTime(t, pool, bus.SessionRequest{Session: "turns", Model: "tiny.en", Channels: 1,
		Options: bus.StreamOptions{Turns: &o}}, pcm)
	// The wall time at which audio up to sample x had reached the engine.
	wall := func(x uint64) time.Time { return writeAt[min(len(writeAt)-1, int(x/realTimeChunk))] }
	run := turnRun{name: name, modelCalls: pool.turnCalls.Load()}
	near := func(x, y uint64) bool { return max(x, y)-min(x, y) <= 300*bus.SamplesPerMs }
	// A turn's end decided at its speech end, or later, before the next utterance (a
	// breath after the last word can delay the engine's speech end).
	atEnd := func(x uint64, ref turnRef) bool {
		return x+300*bus.SamplesPerMs >= ref.end && x < ref.stop+300*bus.SamplesPerMs
	}
	ended := make([]bool, len(refs))
	firstEager, lastEager := make([]time.Time, len(refs)), make([]time.Time, len(refs))
	for _, g := range got {
		r := g.r
		if r.Type != bus.ResultTurn {
			continue
		}
		run.events = append(run.events, r)
		for k, ref := range refs {
			switch {
			case r.Event == bus.TurnStart && near(r.SpeechAt, ref.onset):
				run.start = append(run.start, g.at.Sub(wall(ref.onset)))
			case r.Event == bus.TurnEager && atEnd(r.SpeechAt, ref) && !ended[k]:
				if firstEager[k].IsZero() {
					firstEager[k] = g.at
				}
				lastEager[k] = g.at
			case r.Event == bus.TurnEnd && r.SpeechAt >= ref.start && r.SpeechAt < ref.stop+300*bus.SamplesPerMs:
				if atEnd(r.SpeechAt, ref) && !ended[k] {
					ended[k] = true
					run.turnEnds++
					run.eot = append(run.eot, g.at.Sub(wall(ref.end)))
					if !firstEager[k].IsZero() {
						run.eager = append(run.eager, firstEager[k].Sub(wall(ref.end)))
						run.eagerFinal = append(run.eagerFinal, lastEager[k].Sub(wall(ref.end)))
						if lastEager[k] != firstEager[k] {
							run.revised++
						}
					}
				} else if !atEnd(r.SpeechAt, ref) {
					run.falseEnds++
					inserted := false
					for _, p := range ref.pauses {
						inserted = inserted || (r.SpeechAt+400*bus.SamplesPerMs >= p && r.SpeechAt <= p+turnSetPause)
					}
					if !inserted {
						run.natural++
					}
					t.Logf("%s: EndOfTurn inside %s at %.2f s (%s): %q", name, ref.id, sec(r.SpeechAt), r.Trigger, r.Text)
				}
			}
		}
		switch r.Event {
		case bus.TurnEnd:
			t.Logf("%s: EndOfTurn #%d at %.2f s p=%.2f %-7s %q", name, r.TurnIndex, sec(r.SpeechAt), r.EOTConfidence, r.Trigger, r.Text)
		case bus.TurnEager, bus.TurnResumed:
			t.Logf("%s: %s #%d at %.2f s %q", name, r.Event, r.TurnIndex, sec(r.SpeechAt), r.Text)
		}
	}
	var refText, hypText []string
	for k, ref := range refs {
		if !ended[k] {
			run.missed++
			timeout := o.EOTTimeoutMs
			if timeout == 0 {
				timeout = bus.DefaultEOTTimeoutMs
			}
			run.eotAll = append(run.eotAll, time.Duration(timeout)*time.Millisecond)
		}
		refText = append(refText, ref.reference)
	}
	for _, r := range run.events {
		if r.Event == bus.TurnEnd {
			hypText = append(hypText, r.Text)
		}
	}
	dl.mu.Lock()
	for _, d := range dl.recs {
		kind := "natural"
		for _, ref := range refs {
			switch at := uint64(d.speechEnd * bus.SampleRate); {
			case atEnd(at, ref):
				kind = "end"
			case at+400*bus.SamplesPerMs >= ref.pauses[0] && at <= ref.pauses[0]+turnSetPause:
				kind = "inserted"
			}
		}
		run.decisions = append(run.decisions, turnDecision{d.speechEnd, d.p, kind})
	}
	dl.mu.Unlock()
	run.eotAll = append(run.eotAll, run.eot...)
	run.wer, _, _ = wer.WER(strings.Join(refText, " "), strings.Join(hypText, " "))
	checkTurnRules(t, run.events, o.EagerEOTThreshold > 0)
	return run
}

func (r turnRun) String() string {
	return fmt.Sprintf("%s: turn ends %d, missed %d, false EndOfTurn %d (%d at natural pauses), EndOfTurn p50 %v p95 %v (every turn end, a missed one at eot_timeout_ms: p50 %v p95 %v), Eager p50 %v p95 %v (revised at %d of %d turn ends; the one EndOfTurn repeated: p50 %v), StartOfTurn p50 %v p95 %v, WER %.1f%%, model calls %d; each EndOfTurn at a turn end (ms): %v",
		r.name, r.turnEnds, r.missed, r.falseEnds, r.natural, pct(r.eot, 0.5), pct(r.eot, 0.95), pct(r.eotAll, 0.5), pct(r.eotAll, 0.95), pct(r.eager, 0.5), pct(r.eager, 0.95),
		r.revised, len(r.eager), pct(r.eagerFinal, 0.5), pct(r.start, 0.5), pct(r.start, 0.95), 100*r.wer, r.modelCalls, msList(r.eot))
}

// msList is ds in milliseconds, in the order given.
func msList(ds []time.Duration) []int64 {
	out := make([]int64, len(ds))
	for i, d := range ds {
		out[i] = d.Milliseconds()
	}
	return out
}

func smartTurn(t *testing.T) TurnModel {
	t.Helper()
	p := smartturn.DefaultModelPath()
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Smart Turn required in CI: %v (run `make turn-model`)", err)
		}
		t.Skipf("SKIPPING: Smart Turn missing: %v (run `make turn-model`)", err)
	}
	m, err := smartturn.Open(p, smartturn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// TestTurnRealEngine streams the first three long-form utterances (about 36 s with the
// inserted pauses) in real time through real tiny.en, Silero and Smart Turn v3.2 with
// eager turns on, and checks what a voice agent relies on: Flux's event rules, the turn
// ends found (at most one of three missed), the transcripts, and fewer turns ended in the
// inserted mid-sentence pauses than by the silence rule. Latency figures are logged, not
// asserted (the 2 cores are shared with other tests here); `make bench-turns` measures
// them on an idle machine.
func TestTurnRealEngine(t *testing.T) {
	m := smartTurn(t)
	pcm, refs := buildTurnSet(t, 3)
	run := runTurnSet(t, "smart-turn", m, 0, 0, bus.TurnOptions{EagerEOTThreshold: 0.4}, pcm, refs)
	t.Log(run)
	// The model's probabilities depend on the CPU's int8 kernels (transcriber/smartturn,
	// reference.json): JFK's end scores about 0.86 on the AVX-512 Xeon and 0.59 on the
	// AVX2-only EPYC, below eot_threshold 0.7, so there that turn runs into the next
	// utterance (4 s later, within eot_timeout_ms). One miss in three is allowed; over the
	// whole set both machines miss 2-3 of 8 (BENCHMARKS.md, Turn-taking).
	if run.missed > 1 {
		t.Errorf("%d of %d turn ends missed", run.missed, len(refs))
	}
	if run.wer > 0.15 {
		t.Errorf("WER %.1f%% of the turns' finals", 100*run.wer)
	}
	// Every inserted pause is 1 s of silence, so the VAD-only rule (600 ms) ends a turn in
	// each of them; the model must let at least one go on (on this subset it ends the
	// turn after "what" and "at" and not after "of": BENCHMARKS.md, Turn-taking).
	if inserted := run.falseEnds - run.natural; inserted >= len(refs) {
		t.Errorf("the model ended a turn in all %d inserted mid-sentence pauses, as the silence rule does", inserted)
	}
	// A StartOfTurn at every onset that begins a turn: after a missed turn end the next
	// utterance continues the open turn (Flux sends no StartOfTurn inside a turn).
	if len(run.start) < len(refs)-run.missed || len(run.start) > len(refs) {
		t.Errorf("%d StartOfTurn at the %d speech onsets (%d turn ends missed)", len(run.start), len(refs), run.missed)
	}
}

// TestTurnBenchmark is `make bench-turns`: the whole set (8 turns, 8 inserted pauses),
// EARSHOT_TURN_RUNS passes (default 3) with Smart Turn and with the VAD-only baseline
// (600 ms of silence), on an idle machine. It writes bench/out/turns.md.
func TestTurnBenchmark(t *testing.T) {
	if os.Getenv("EARSHOT_TURN_BENCH") == "" {
		t.Skip("the turn benchmark runs with EARSHOT_TURN_BENCH=1 (make bench-turns)")
	}
	m := smartTurn(t)
	pcm, refs := buildTurnSet(t, 0)
	if os.Getenv("EARSHOT_TURN_EAGER_PARTIAL") == "1" { // the knob's experiment (eagerFromPartial)
		eagerFromPartial = true
		defer func() { eagerFromPartial = false }()
	}
	runs := 3
	if n, err := fmt.Sscan(os.Getenv("EARSHOT_TURN_RUNS"), &runs); n != 1 || err != nil {
		runs = 3
	}
	var lines []string
	for i := range runs {
		for _, c := range []struct {
			name                  string
			m                     TurnModel
			recheck, eagerRecheck time.Duration
			o                     bus.TurnOptions
		}{
			{"smart-turn", m, 0, 0, bus.TurnOptions{EagerEOTThreshold: 0.4}},
			{"smart-turn-eager-once", m, 0, -1, bus.TurnOptions{EagerEOTThreshold: 0.4}},
			{"smart-turn, again every 200 ms of pause", m, 200 * time.Millisecond, 0, bus.TurnOptions{EagerEOTThreshold: 0.4}},
			{"vad-only-600ms", nil, 0, 0, bus.TurnOptions{}},
		} {
			if v := os.Getenv("EARSHOT_TURN_ONLY"); v != "" && !slices.Contains(strings.Split(v, ","), c.name) {
				continue
			}
			r := runTurnSet(t, c.name, c.m, c.recheck, c.eagerRecheck, c.o, pcm, refs)
			line := fmt.Sprintf("run %d %s", i+1, r)
			t.Log(line)
			lines = append(lines, line)
			if c.m != nil && c.recheck == 0 && c.eagerRecheck < 0 {
				sw := append([]string{"| eot_threshold | false EndOfTurn | missed turn ends |", "|---|---|---|"}, sweep(r.decisions)...)
				t.Log("threshold sweep (once per pause):\n" + strings.Join(sw, "\n"))
				lines = append(lines, sw...)
			}
		}
	}
	if err := os.MkdirAll("../bench/out", 0o755); err == nil {
		_ = os.WriteFile("../bench/out/turns.md", []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	}
}
