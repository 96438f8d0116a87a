package transcriber

import (
	"sync"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
)

func TestSchedOrder(t *testing.T) {
	s := newScheduler()
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
		s.done()
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
