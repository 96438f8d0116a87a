package transcriber

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testutil"
)

func TestPoolCapacityAndModels(t *testing.T) {
	rig := newFakeRig(t, PoolConfig{Slots: 2, MaxSessions: 2}, nil)
	if m := rig.pool.Models(); len(m) != 1 || m[0] != "fake" {
		t.Errorf("models %v", m)
	}
	if c := rig.pool.Capacity("fake"); c != (bus.Capacity{Slots: 2, Free: 2}) {
		t.Errorf("capacity %+v", c)
	}
	if _, err := rig.pool.Open(bus.SessionRequest{Model: "large"}, func(bus.Result) {}); !errors.Is(err, ErrUnknownModel) {
		t.Errorf("unknown model: %v", err)
	}
	var open []Session
	for i := 0; i < 2; i++ {
		s, err := rig.pool.Open(bus.SessionRequest{Model: "fake"}, func(bus.Result) {})
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, s)
	}
	if _, err := rig.pool.Open(bus.SessionRequest{Model: "fake"}, func(bus.Result) {}); !errors.Is(err, bus.ErrNoCapacity) {
		t.Errorf("third session: %v, want bus.ErrNoCapacity", err)
	}
	open[0].Close()
	open[0].Close() // idempotent
	if c := rig.pool.Capacity("fake"); c.Free != 1 {
		t.Errorf("capacity after one Close %+v", c)
	}
	open[1].Close()
}

func TestPoolTwentyConcurrentSessions(t *testing.T) {
	dec := &scriptedDecoder{Delay: time.Millisecond}
	rig := newFakeRig(t, PoolConfig{Slots: 2, MaxSessions: 20, now: time.Now}, dec)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := []int{i % 8, (i + 1) % 8, (i + 2) % 8}
			pcm := cat(speech(w...), silence(1000), speech(w[0]), silence(300))
			c := &collector{}
			done := make(chan struct{})
			s, err := rig.pool.Open(bus.SessionRequest{Session: bus.SessionID(fmt.Sprint(i)), Model: "fake", Channels: 1,
				Options: bus.StreamOptions{InterimResults: true, VADEvents: true}}, func(r bus.Result) {
				c.emit(r)
				if r.Type == bus.ResultClosed {
					close(done)
				}
			})
			if err != nil {
				t.Error(err)
				return
			}
			defer s.Close()
			for j := 0; j < len(pcm); j += 320 {
				ch := &bus.AudioChunk{StartSample: uint64(j), PCM: pcm[j:min(j+320, len(pcm))]}
				if j+320 >= len(pcm) {
					ch.Flags = bus.FlagEnd
				}
				if err := s.Write(ch); err != nil {
					t.Error(err)
					return
				}
				if j%3200 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Errorf("session %d: no closed result", i)
				return
			}
			var got []string
			for _, r := range c.ofType(bus.ResultFinal) {
				got = append(got, r.Text)
			}
			want := fakeVocab[w[0]] + " " + fakeVocab[w[1]] + " " + fakeVocab[w[2]] + "|" + fakeVocab[w[0]]
			if strings.Join(got, "|") != want {
				t.Errorf("session %d finals %q, want %q", i, got, want)
			}
			checkPartials(t, c.results())
		}()
	}
	wg.Wait()
	if m := dec.maxIn.Load(); m > 2 {
		t.Errorf("%d concurrent decodes on 2 slots", m)
	}
}

// With Warm, every slot decodes a second of silence on each model before it serves:
// the decodes happen with no session open, one per slot.
func TestPoolWarmDecodesOncePerSlot(t *testing.T) {
	r := newFakeRig(t, PoolConfig{Slots: 3, ThreadsPerDecode: 1, Warm: true}, nil)
	testutil.Eventually(t, 5*time.Second, "three warm-up decodes", func() bool { return r.dec.calls.Load() == 3 })
	time.Sleep(50 * time.Millisecond)
	if n := r.dec.calls.Load(); n != 3 {
		t.Fatalf("%d warm-up decodes for 3 slots", n)
	}
	r.dec.mu.Lock()
	defer r.dec.mu.Unlock()
	for _, q := range r.dec.reqs {
		if q.AudioCtx != audioCtx(bus.SampleRate, false, false) {
			t.Fatalf("warm-up request with audio_ctx %d, want %d (one second)", q.AudioCtx, audioCtx(bus.SampleRate, false, false))
		}
	}
}

// TestPoolModelSessions: a model's own session count (its knee measured on this
// machine) overrides MaxSessions in what Capacity reports and what Open admits.
func TestPoolModelSessions(t *testing.T) {
	rig := newFakeRig(t, PoolConfig{Slots: 2, MaxSessions: 4, ModelSessions: map[string]int{"fake": 1}}, nil)
	if c := rig.pool.Capacity("fake"); c != (bus.Capacity{Slots: 1, Free: 1}) {
		t.Errorf("capacity %+v, want 1 slot, 1 free", c)
	}
	s, err := rig.pool.Open(bus.SessionRequest{Model: "fake"}, func(bus.Result) {})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rig.pool.Open(bus.SessionRequest{Model: "fake"}, func(bus.Result) {}); !errors.Is(err, bus.ErrNoCapacity) {
		t.Errorf("second session: %v, want bus.ErrNoCapacity", err)
	}
	s.Close()
	if c := rig.pool.Capacity("fake"); c.Free != 1 {
		t.Errorf("capacity after Close %+v", c)
	}
}

// TestPoolSharedModels: models whose session counts are knees measured on this machine
// share it: a session of a model with knee K takes 1/K of it, so together they never
// admit more than the machine held; a model outside the share counts on its own.
func TestPoolSharedModels(t *testing.T) {
	dec := &scriptedDecoder{}
	rig := newFakeRig(t, PoolConfig{Slots: 1, MaxSessions: 3,
		Models:        map[string]Model{"small": &scriptedModel{d: dec}, "big": &scriptedModel{d: dec}, "other": &scriptedModel{d: dec}},
		ModelSessions: map[string]int{"small": 4, "big": 2}, SharedModels: []string{"small", "big"}}, dec)
	open := func(model string) (Session, error) {
		return rig.pool.Open(bus.SessionRequest{Model: model}, func(bus.Result) {})
	}
	free := func() [3]int {
		return [3]int{rig.pool.Capacity("small").Free, rig.pool.Capacity("big").Free, rig.pool.Capacity("other").Free}
	}
	if f := free(); f != [3]int{4, 2, 3} {
		t.Fatalf("free %v, want the knees 4 and 2, and other's 3", f)
	}
	var live []Session
	for range 2 { // two small streams take half the machine
		s, err := open("small")
		if err != nil {
			t.Fatal(err)
		}
		live = append(live, s)
	}
	if f := free(); f != [3]int{2, 1, 3} {
		t.Errorf("after 2 small: free %v, want 2 small or 1 big; other untouched", f)
	}
	s, err := open("big") // the other half
	if err != nil {
		t.Fatal(err)
	}
	live = append(live, s)
	if f := free(); f != [3]int{0, 0, 3} {
		t.Errorf("after 2 small + 1 big: free %v, want the share full", f)
	}
	for _, m := range []string{"small", "big"} {
		if _, err := open(m); !errors.Is(err, bus.ErrNoCapacity) {
			t.Errorf("%s on a full share: %v, want bus.ErrNoCapacity", m, err)
		}
	}
	if s, err := open("other"); err != nil {
		t.Errorf("other, outside the share: %v", err)
	} else {
		s.Close()
	}
	live[2].Close() // the big stream ends: half the machine again
	if f := free(); f != [3]int{2, 1, 3} {
		t.Errorf("after the big stream ended: free %v", f)
	}
	for _, s := range live[:2] {
		s.Close()
	}
	if _, err := NewPool(PoolConfig{Models: rig.pool.cfg.Models, NewVAD: rig.pool.cfg.NewVAD, SharedModels: []string{"other"}}); err == nil {
		t.Error("a shared model without its own count was accepted")
	}
}

// TestThreadCap: the decodes' thread cap for the decodes and end-of-turn model calls
// running: nothing is capped when all fits the cores, else each decode gets an even
// share of what the calls leave, at least one.
func TestThreadCap(t *testing.T) {
	for _, c := range []struct{ decodes, threads, calls, cores, want int }{
		{1, 2, 0, 2, 0}, // one decode on this VM: both cores
		{2, 2, 0, 2, 1}, // two at once: one core each
		{1, 2, 1, 2, 1}, // this VM: one thread while Smart Turn runs
		{0, 2, 1, 2, 1}, // a call with no decode yet: the one that may start beside it
		{1, 2, 2, 2, 1}, // at least one
		{2, 2, 1, 2, 1},
		{1, 1, 1, 2, 0}, // fits
		{1, 2, 1, 4, 0}, // fits
		{2, 1, 1, 2, 0}, // one thread each already
		{2, 2, 0, 4, 0},
		{3, 2, 0, 4, 1},
		{8, 2, 0, 16, 0},
		{9, 2, 0, 16, 1},
		{4, 4, 1, 16, 3},
		{4, 4, 5, 16, 2},
		{2, 4, 1, 8, 3},
	} {
		if got := threadCap(c.decodes, c.threads, c.calls, c.cores); got != c.want {
			t.Errorf("threadCap(decodes %d, threads %d, calls %d, cores %d) = %d, want %d", c.decodes, c.threads, c.calls, c.cores, got, c.want)
		}
	}
}

// TestConcurrentDecodesShareTheCores: with 2 slots of 2 threads on 2 cores, a decode
// that runs alone keeps both threads, and while two run every graph that starts takes
// one (Pool.decodeCall); with 4 cores nothing is capped. The cap is lifted at the end.
func TestConcurrentDecodesShareTheCores(t *testing.T) {
	for _, c := range []struct{ cores, together int }{{2, 1}, {4, 0}} {
		t.Run(fmt.Sprintf("%d cores", c.cores), func(t *testing.T) {
			dec := &scriptedDecoder{Delay: 5 * time.Millisecond}
			m := &cappedModel{scriptedModel: scriptedModel{d: dec}}
			rig := newFakeRig(t, PoolConfig{Models: map[string]Model{"fake": m}, Slots: 2, ThreadsPerDecode: 2, cores: c.cores}, dec)
			var mu sync.Mutex
			seen := map[int][]int{} // decodes running as a decode started → the caps it saw
			dec.OnDecode = func(DecodeRequest) {
				rig.pool.capMu.Lock() // the count and the cap change together under it
				n, capNow := rig.pool.capDecodes, m.cap()
				rig.pool.capMu.Unlock()
				mu.Lock()
				seen[n] = append(seen[n], capNow)
				mu.Unlock()
			}
			var sessions []Session
			for i := range 2 {
				s, err := rig.pool.Open(bus.SessionRequest{Session: bus.SessionID(fmt.Sprint("s", i)), Model: "fake", Channels: 1,
					Options: bus.StreamOptions{InterimResults: true}}, (&collector{}).emit)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(s.Close)
				sessions = append(sessions, s)
			}
			pcm := cat(speech(1, 2, 3, 4, 5, 6, 7), silence(1000))
			const chunk = 20 * bus.SamplesPerMs
			for at := 0; at < len(pcm); at += chunk {
				rig.clock.Advance(20 * time.Millisecond)
				for i, s := range sessions {
					ch := &bus.AudioChunk{Session: bus.SessionID(fmt.Sprint("s", i)), Seq: uint64(at/chunk + 1), StartSample: uint64(at), PCM: pcm[at:min(at+chunk, len(pcm))]}
					if err := s.Write(ch); err != nil {
						t.Fatal(err)
					}
				}
				time.Sleep(time.Millisecond) // let the slots take what is due
			}
			rig.waitIdle()
			mu.Lock()
			defer mu.Unlock()
			if len(seen[2]) == 0 {
				t.Fatalf("no two decodes ran at once (decodes started alone: %d): the test did not test", len(seen[1]))
			}
			for n, want := range map[int]int{1: 0, 2: c.together} {
				for i, got := range seen[n] {
					if got != want {
						t.Errorf("decode %d started with %d running under a cap of %d threads, want %d", i, n, got, want)
					}
				}
			}
			if n := m.cap(); n != 0 {
				t.Errorf("after the decodes the cap is %d threads, want none", n)
			}
		})
	}
}
