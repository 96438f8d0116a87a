package transcriber

import "testing"

func TestEndpointHysteresis(t *testing.T) {
	const win = 512
	type step struct {
		p    float32
		want vadEvent
	}
	// 250 ms min speech = 8 windows of 32 ms; hangover 600 ms = 19 windows.
	var steps []step
	add := func(n int, p float32) {
		for i := 0; i < n; i++ {
			steps = append(steps, step{p: p})
		}
	}
	add(3, 0.1)
	add(4, 0.9) // a 128 ms blip: no speech
	add(2, 0.1)
	add(6, 0.9)
	add(1, 0.4) // still above the end threshold: the candidate lives on
	steps = append(steps, step{0.9, evSpeechStart})
	add(18, 0.2) // under the hangover
	add(1, 0.6)  // speech again resets the silence
	add(18, 0.2)
	steps = append(steps, step{0.2, evSpeechEnd})
	add(5, 0.2)

	e := newEndpointer(win, 1000, 600*16)
	for i, s := range steps {
		if got := e.push(s.p); got != s.want {
			t.Fatalf("window %d (p=%.1f): event %d, want %d", i, s.p, got, s.want)
		}
	}
	if want := uint64(1000 + 9*win); e.speechStart != want {
		t.Errorf("speech start %d, want %d", e.speechStart, want)
	}
	if want := uint64(1000 + (9+8+18+1)*win); e.speechEnd != want {
		t.Errorf("speech end %d, want %d", e.speechEnd, want)
	}
}
