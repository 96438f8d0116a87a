package transcriber

import (
	"testing"
	"time"
)

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

// SpeechRuns (with the deterministic energy stand-in for Silero) ends a run after the
// endpointing silence, at the last speech window; a shorter pause stays inside the run,
// a blip shorter than the minimum speech is no speech, and speech at the end of the
// recording is a run to the end.
func TestSpeechRuns(t *testing.T) {
	const w = 512
	loud := func(windows int) []float32 {
		x := make([]float32, windows*w)
		for i := range x {
			x[i] = 0.3
		}
		return x
	}
	quiet := func(windows int) []float32 { return make([]float32, windows*w) }
	var pcm []float32
	pcm = append(pcm, quiet(10)...) // 0–10
	pcm = append(pcm, loud(20)...)  // 10–30: speech
	pcm = append(pcm, quiet(5)...)  // 30–35: a 160 ms pause, inside the run
	pcm = append(pcm, loud(10)...)  // 35–45
	pcm = append(pcm, quiet(30)...) // 45–75: 960 ms, ends the run at 45
	pcm = append(pcm, loud(3)...)   // 75–78: 96 ms, under the minimum speech
	pcm = append(pcm, quiet(30)...) // 78–108
	pcm = append(pcm, loud(12)...)  // 108–120: to the end
	runs, err := SpeechRuns(&energyVAD{}, pcm, DefaultEndpointSilence)
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]int{{10 * w, 45 * w}, {108 * w, 120 * w}}
	if len(runs) != len(want) || runs[0] != want[0] || runs[1] != want[1] {
		t.Fatalf("runs %v, want %v", runs, want)
	}
}

// EndpointFor is the silence a stream asking for endpointing= gets from a default pool:
// the default for 0, the minimum for less than it, else what it asked.
func TestEndpointFor(t *testing.T) {
	for _, tc := range []struct {
		ms   int
		want time.Duration
	}{{0, DefaultEndpointSilence}, {10, DefaultMinEndpoint}, {500, 500 * time.Millisecond}, {800, 800 * time.Millisecond}} {
		if got := EndpointFor(tc.ms); got != tc.want {
			t.Errorf("EndpointFor(%d) = %v, want %v", tc.ms, got, tc.want)
		}
	}
}
