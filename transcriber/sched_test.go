package transcriber

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
)

func TestSchedOrder(t *testing.T) {
	s := newScheduler(1)
	t0 := time.Unix(0, 0)
	a, b, c, d := &stream{}, &stream{}, &stream{}, &stream{}
	s.push(a, false, t0.Add(2*time.Second), t0)
	s.push(b, false, t0.Add(1*time.Second), t0.Add(time.Millisecond))
	s.push(c, false, t0.Add(3*time.Second), t0.Add(2*time.Millisecond))
	s.push(d, false, t0, t0.Add(3*time.Millisecond))
	s.push(c, true, t0, t0.Add(4*time.Millisecond)) // upgraded to a final, not queued twice
	want := []*stream{c, d, b, a}
	for i, w := range want {
		if got := s.next(); got != w {
			t.Fatalf("pick %d: wrong stream", i)
		}
		s.done(0)
	}
	if !s.idle() {
		t.Error("queue not empty: a stream was queued twice")
	}
}

// With one slot, three talking sessions and decodes of 200 ms, no session starves and
// each session's partial cadence widens beyond Step instead of queueing up work.
func TestSchedFairnessUnderLoad(t *testing.T) {
	const decode = 200 * time.Millisecond
	dec := &scriptedDecoder{Delay: decode}
	rig := newFakeRig(t, PoolConfig{Slots: 1, now: time.Now}, dec)
	var words []int
	for i := 0; i < 12; i++ { // 3.6 s of speech
		words = append(words, i%8)
	}
	pcm := speech(words...)
	const n = 3
	cs := make([]*collector, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		c := &collector{}
		cs[i] = c
		s, err := rig.pool.Open(bus.SessionRequest{Session: "s", Model: "fake", Channels: 1, Options: bus.StreamOptions{InterimResults: true}}, func(r bus.Result) {
			r.WorkerSentNs = time.Now().UnixNano()
			c.emit(r)
		})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := time.Now()
			for j := 0; j < len(pcm); j += 320 {
				if err := s.Write(&bus.AudioChunk{StartSample: uint64(j), PCM: pcm[j:min(j+320, len(pcm))]}); err != nil {
					t.Error(err)
					return
				}
				next = next.Add(20 * time.Millisecond)
				time.Sleep(time.Until(next))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if m := dec.maxIn.Load(); m != 1 {
		t.Errorf("%d concurrent decodes on 1 slot", m)
	}
	for i, c := range cs {
		ps := c.ofType(bus.ResultPartial)
		if len(ps) < 3 {
			t.Errorf("session %d starved: %d partials in %v", i, len(ps), elapsed)
			continue
		}
		var maxGap time.Duration
		for k := 1; k < len(ps); k++ {
			maxGap = max(maxGap, time.Duration(ps[k].WorkerSentNs-ps[k-1].WorkerSentNs))
		}
		mean := time.Duration(ps[len(ps)-1].WorkerSentNs-ps[0].WorkerSentNs) / time.Duration(len(ps)-1)
		t.Logf("session %d: %d partials, mean interval %v, max gap %v", i, len(ps), mean, maxGap)
		// Alone, a session's cadence would be Step + decode = 500 ms; three sessions need
		// 3 × 200 ms of the one slot per round.
		if mean < 550*time.Millisecond {
			t.Errorf("session %d: mean partial interval %v, want the cadence widened past 550 ms", i, mean)
		}
		if maxGap > 1500*time.Millisecond {
			t.Errorf("session %d: %v without a partial", i, maxGap)
		}
	}
}

// TestSchedPreemptsPartialForFinal: a final queued while every slot decodes a partial
// cancels the partial that started last (errPreempted), once.
func TestSchedPreemptsPartialForFinal(t *testing.T) {
	s := newScheduler(2)
	var cancelled [2]int
	cancel := func(i int) context.CancelCauseFunc {
		return func(err error) {
			if !errors.Is(err, errPreempted) {
				t.Errorf("slot %d cancelled with %v", i, err)
			}
			cancelled[i]++
		}
	}
	t0 := time.Unix(0, 0)
	a, b, c := &stream{}, &stream{}, &stream{}
	s.push(a, false, t0, t0)
	s.push(b, false, t0, t0)
	s.next()
	s.started(0, cancel(0))
	time.Sleep(time.Millisecond) // slot 1's decode starts later
	s.next()
	s.started(1, cancel(1))
	s.push(c, false, t0, t0) // a partial waits: nothing is preempted for it
	if cancelled != [2]int{} {
		t.Fatalf("preempted for a partial: %v", cancelled)
	}
	s.push(c, true, t0, t0) // now a final
	s.push(c, true, t0, t0) // queued again: already has the slot being freed
	if cancelled != [2]int{0, 1} {
		t.Fatalf("cancelled %v, want only the partial that started last", cancelled)
	}
	s.stopped(1)
	s.push(c, true, t0, t0) // the preempted slot counts as free until it is done
	if cancelled != [2]int{0, 1} {
		t.Fatalf("cancelled %v, want no second preemption while slot 1 finishes", cancelled)
	}
	s.done(1)
	if s.next() != c { // on slot 1
		t.Fatal("the final did not get the freed slot")
	}
	s.stopped(0) // slot 0's partial ends on its own
	s.done(0)
	// A final arriving between next and started preempts the partial when it starts.
	s.push(b, false, t0, t0)
	s.next() // b, on slot 0
	s.push(a, true, t0, t0)
	if cancelled != [2]int{0, 1} {
		t.Fatalf("cancelled %v before the partial started", cancelled)
	}
	s.started(0, cancel(0))
	if cancelled != [2]int{1, 1} {
		t.Fatalf("cancelled %v, want slot 0's new partial preempted when it started", cancelled)
	}
}

// TestStreamFinalPreemptsPartial: on one slot, a stream's final does not wait for
// another stream's partial decode: that decode is cancelled, the final runs, and the
// preempted stream goes on (its session does not fail) and ends with its own final.
func TestStreamFinalPreemptsPartial(t *testing.T) {
	dec := &scriptedDecoder{Delay: 400 * time.Millisecond}
	rig := newFakeRig(t, PoolConfig{Slots: 1, now: time.Now}, dec)
	open := func(name string) (Session, *collector) {
		c := &collector{}
		s, err := rig.pool.Open(bus.SessionRequest{Session: bus.SessionID(name), Model: "fake", Channels: 1,
			Options: bus.StreamOptions{InterimResults: true}}, c.emit)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s, c
	}
	write := func(s Session, pcm []int16, at uint64) uint64 {
		for j := 0; j < len(pcm); j += 320 {
			if err := s.Write(&bus.AudioChunk{StartSample: at, PCM: pcm[j:min(j+320, len(pcm))]}); err != nil {
				t.Fatal(err)
			}
			at += uint64(min(320, len(pcm)-j))
		}
		return at
	}
	sa, ca := open("a")
	sb, cb := open("b")
	// a talks and is decoding a partial; b's utterance then ends (its final is queued).
	posA := write(sa, speech(0, 1, 2, 3, 4, 5), 0)
	for deadline := time.Now().Add(5 * time.Second); dec.inFlight.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a's partial did not start")
		}
	}
	write(sb, cat(speech(6, 7), silence(1000)), 0)
	deadline := time.Now().Add(5 * time.Second)
	for len(cb.ofType(bus.ResultFinal)) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if f := cb.ofType(bus.ResultFinal); len(f) != 1 || f[0].Text != "golf hotel" {
		t.Fatalf("b's finals %+v", f)
	}
	if dec.aborted.Load() == 0 {
		t.Error("no decode was preempted for b's final")
	}
	// a's preempted partial is decoded again once the slot is free.
	for deadline := time.Now().Add(5 * time.Second); len(ca.ofType(bus.ResultPartial)) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a got no partial after its decode was preempted")
		}
	}
	write(sa, silence(1000), posA)
	rig.waitIdle()
	for _, r := range ca.results() {
		if r.Type == bus.ResultError {
			t.Fatalf("a failed: %+v", r)
		}
	}
	if f := ca.ofType(bus.ResultFinal); len(f) != 1 || f[0].Text != "alpha bravo charlie delta echo foxtrot" {
		t.Errorf("a's finals %+v", f)
	}
}

// TestAudioCtx: the encoder context of each kind of decode (frames of 20 ms; see
// audioCtx). A 3.4 s window holds 170 frames: +128 of margin is 298, rounded up to 512
// for a partial and a /v1/listen final, to 384 for a turn session's English final.
func TestAudioCtx(t *testing.T) {
	sec := func(s float64) int { return int(s * bus.SampleRate) }
	for _, tc := range []struct {
		samples      int
		final, tight bool
		want         int
	}{
		{sec(1), false, false, 256},
		{sec(1), true, true, minFinalAudioCtx},
		{sec(1), true, false, minFinalAudioCtx},
		{sec(3.4), false, false, 512},
		{sec(3.4), true, true, 384},
		{sec(3.4), true, false, 512},
		{sec(6), true, true, 512},
		{sec(6), true, false, 512},
		{sec(30), true, true, 1500},
		{sec(30), false, false, 1500},
	} {
		if got := audioCtx(tc.samples, tc.final, tc.tight); got != tc.want {
			t.Errorf("audioCtx(%.1f s, final %v, tight %v) = %d, want %d", float64(tc.samples)/bus.SampleRate, tc.final, tc.tight, got, tc.want)
		}
	}
	for _, tc := range []struct {
		req  DecodeRequest
		want bool
	}{
		{DecodeRequest{}, true},
		{DecodeRequest{Language: "en"}, true},
		{DecodeRequest{Language: "zh"}, false},
		{DecodeRequest{DetectLanguage: true}, false},
	} {
		if got := tc.req.english(); got != tc.want {
			t.Errorf("%+v: english() = %v, want %v", tc.req, got, tc.want)
		}
	}
}
