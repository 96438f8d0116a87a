package bench

import (
	"context"
	"encoding/xml"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

func TestDistNearestRank(t *testing.T) {
	var v []float64
	for i := 100; i >= 1; i-- {
		v = append(v, float64(i))
	}
	d := distOf(v)
	if d.N != 100 || d.P50 != 50 || d.P95 != 95 || d.P99 != 99 || d.Max != 100 || d.Mean != 50.5 {
		t.Fatalf("%+v", d)
	}
	if (distOf(nil) != Dist{}) {
		t.Fatal("empty dist")
	}
	if d := distOf([]float64{7}); d.P50 != 7 || d.P99 != 7 {
		t.Fatalf("%+v", d)
	}
}

func TestSendClockMapsStreamTimeToTheFrameThatCompletesIt(t *testing.T) {
	c := &sendClock{chunkMs: 100}
	t0 := time.Unix(1000, 0)
	for k := 0; k < 5; k++ {
		c.mark(t0.Add(time.Duration(k) * 100 * time.Millisecond))
	}
	cases := []struct {
		sec  float64
		want time.Duration
		ok   bool
	}{
		{0, 0, true},       // nothing to wait for: the first frame
		{0.1, 0, true},     // completed by frame 0
		{0.15, 100, true},  // needs frame 1
		{0.5, 400, true},   // the last frame sent
		{0.51, 400, false}, // not sent yet: clamps to the latest
	}
	for _, tc := range cases {
		got, ok := c.sentAt(tc.sec)
		if got.Sub(t0) != tc.want*time.Millisecond || ok != tc.ok {
			t.Errorf("sentAt(%v) = %v, %v; want %v ms, %v", tc.sec, got.Sub(t0), ok, tc.want, tc.ok)
		}
	}
}

func TestProgramPlansTheSameClipsForEveryStream(t *testing.T) {
	clips := []Clip{{ID: "a", PCM: make([]byte, 32000), Reference: "alpha"},
		{ID: "b", PCM: make([]byte, 64000), Reference: "bravo"},
		{ID: "c", PCM: make([]byte, 32000), Reference: "charlie"}}
	for i := range clips {
		clips[i].PCM[0] = byte(i + 1) // tell the clips apart in the audio
	}
	p := newProgram(clips, 5*time.Second)
	// a(1 s)+gap, b(2 s)+gap = 5 s: the level's audio ends at that clip boundary.
	pcm, ref, _ := p.plan(0, 1, 5*time.Second)
	if len(pcm) != 5*32000 || ref != "alpha bravo" || pcm[0] != 1 || pcm[2*32000] != 2 {
		t.Fatalf("one stream: %d bytes, %q", len(pcm), ref)
	}
	pcm, ref, _ = p.plan(1, 2, 5*time.Second)
	if len(pcm) != 5*32000 || ref != "bravo alpha" || pcm[0] != 2 || pcm[3*32000] != 1 {
		t.Fatalf("stream 1 of 2 starts at the second clip: %d bytes, %q", len(pcm), ref)
	}
	pcm, ref, _ = p.plan(0, 2, 5*time.Second)
	if ref != "alpha bravo" || pcm[0] != 1 {
		t.Fatalf("stream 0 of 2: %q", ref)
	}
	// 6 s: a+gap, b+gap, c+gap; three streams each start on a different clip.
	for i, want := range []string{"alpha bravo charlie", "bravo charlie alpha", "charlie alpha bravo"} {
		pcm, ref, _ := p.plan(i, 3, 6*time.Second)
		if ref != want || len(pcm) != 7*32000 {
			t.Fatalf("stream %d of 3: %d bytes, %q; want %q", i, len(pcm), ref, want)
		}
	}
	// More streams than clips: they share starts, still the same clips.
	if _, ref, _ := p.plan(3, 4, 6*time.Second); ref != "charlie alpha bravo" {
		t.Fatalf("stream 3 of 4: %q", ref)
	}
}

func TestProcStatsOfThisProcess(t *testing.T) {
	pid := os.Getpid()
	if _, err := cpuTicks(pid); err != nil {
		t.Fatal(err)
	}
	if kb, err := rssKB(pid); err != nil || kb <= 0 {
		t.Fatalf("rss %d %v", kb, err)
	}
	s := startProcSampler([]int{pid}, 10*time.Millisecond)
	for i := 0; i < 3e7; i++ { // burn a little CPU
		_ = i * i
	}
	st := s.finish()
	if len(st) != 1 || st[0].PeakRSSMB <= 0 || st[0].CPUSec < 0 {
		t.Fatalf("%+v", st)
	}
	for _, p := range FindPids("earshot") {
		if p == pid {
			t.Fatal("FindPids lists the caller")
		}
	}
}

func TestReportFiles(t *testing.T) {
	billed := 3.2
	r := &Report{Target: "ws://x", Started: time.Now(), Clips: 2, Duration: 10, KneeP95Ms: 2000, Knee: 2, IdleRSSMB: 170,
		Levels: []Level{
			{Streams: 1, PartialMs: Dist{N: 3, P50: 300, P95: 900}, FinalMs: Dist{N: 1, P50: 700, P95: 700}, BilledSec: &billed,
				Procs:     []ProcStat{{Pid: 1, CPUPercent: 80, PeakRSSMB: 200}},
				PerStream: []StreamResult{{Transcript: "ask not", Reference: "ask not what"}},
				Languages: map[string]int{"en": 1, "zh": 3, "de": 1}},
			{Streams: 2, PartialMs: Dist{N: 3, P50: 500, P95: 2500}, OverKnee: "partial p95 2500 ms > 2s"},
		}}
	dir := t.TempDir()
	if err := WriteFiles(dir, r); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(dir + "/bench.md")
	for _, want := range []string{"| 1 | 300 / 900 /", "| 200 | 30.0 |", "| 0 | – |", "before the first level: 170 MB", "3.200", "n/a", "(partial p95 2500 ms > 2s)", "Knee: 2 concurrent",
		"Finals by detected_language at 1 streams: zh 3, de 1, en 1."} {
		if !strings.Contains(string(md), want) {
			t.Errorf("bench.md lacks %q:\n%s", want, md)
		}
	}
	// Each stream's transcript and reference, so that a WER can be read word by word.
	js, _ := os.ReadFile(dir + "/bench.json")
	for _, want := range []string{`"transcript": "ask not"`, `"reference": "ask not what"`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("bench.json lacks %s", want)
		}
	}
	for _, f := range []string{"latency.svg", "cpu.svg"} {
		b, _ := os.ReadFile(dir + "/" + f)
		if err := xml.Unmarshal(b, new(struct{})); err != nil {
			t.Errorf("%s is not well-formed XML: %v", f, err)
		}
		if !strings.Contains(string(b), "<polyline") {
			t.Errorf("%s has no line", f)
		}
	}
}

// TestSweepOverTheBus runs a real two-level sweep through Run over the bus (echo
// worker): every partial is counted, its latency is small, accepted equals sent.
func TestSweepOverTheBus(t *testing.T) {
	r := newTransportRig(t)
	cfg := Config{Clips: []Clip{{ID: "tone", PCM: make([]byte, 32000), Reference: "echo"}},
		Streams: []int{1, 2}, Duration: 2 * time.Second}
	cfg.UseBus(r.cl, echoModel, "bus test")
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Levels) != 2 || rep.Knee != 2 {
		t.Fatalf("levels %d knee %d: %+v", len(rep.Levels), rep.Knee, rep.Levels)
	}
	for _, l := range rep.Levels {
		if l.Errors != 0 || l.AudioSec != float64(2*l.Streams) || l.AcceptedSec != l.AudioSec {
			t.Errorf("level %d: errors %d, audio %.1f s, accepted %.1f s", l.Streams, l.Errors, l.AudioSec, l.AcceptedSec)
		}
		if l.PartialMs.N != 20*l.Streams || l.PartialMs.P95 > 500 {
			t.Errorf("level %d: %d partials (want one per frame), p95 %.1f ms", l.Streams, l.PartialMs.N, l.PartialMs.P95)
		}
		if l.BilledSec != nil {
			t.Errorf("billing over the bus should be unavailable")
		}
	}
}

// With the clips' speech known, a sweep times finals from the speech end: the echo
// worker's one final covers the whole stream (1 s clip, 1 s gap), so it comes 1.5 s
// after the speech (which ends at 0.5 s) and just after its own end; without it, from
// the final's own end, and the report says which.
func TestSweepTimesFinalsFromTheSpeechEnd(t *testing.T) {
	r := newTransportRig(t)
	for _, speech := range [][]Span{{{From: 0.2, To: 0.5}}, nil} {
		cfg := Config{Clips: []Clip{{ID: "tone", PCM: make([]byte, 32000), Reference: "echo", Speech: speech}},
			Streams: []int{1}, Duration: 2 * time.Second}
		cfg.UseBus(r.cl, echoModel, "bus test")
		rep, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		l := rep.Levels[0]
		if l.FinalMs.N != 1 || l.FinalEndMs.N != 1 || l.FinalEndMs.P50 > 300 {
			t.Fatalf("speech %v: finals %+v, after the endpoint %+v; want one, soon after its end", speech, l.FinalMs, l.FinalEndMs)
		}
		if speech == nil {
			if rep.FinalFrom != FinalFromEndpoint || l.FinalMs.P50 != l.FinalEndMs.P50 {
				t.Errorf("no speech: from %q, final %.0f ms, after the endpoint %.0f ms; want the same", rep.FinalFrom, l.FinalMs.P50, l.FinalEndMs.P50)
			}
			continue
		}
		if d := l.FinalMs.P50 - l.FinalEndMs.P50; rep.FinalFrom != FinalFromSpeechEnd || d < 1400 || d > 1600 {
			t.Errorf("from %q: final %.0f ms after the speech end, %.0f ms after its own end; want 1 500 ms apart", rep.FinalFrom, l.FinalMs.P50, l.FinalEndMs.P50)
		}
	}
}

// A final is timed from the end of the speech it holds: the last speech span that starts
// before the final's end, cut at that end when the speech runs past it.
func TestSpeechEnd(t *testing.T) {
	speech := []Span{{0.5, 2.0}, {3.0, 4.5}, {6.0, 9.0}}
	for _, tc := range []struct{ end, want float64 }{
		{2.6, 2.0},  // endpoint 600 ms after the first span
		{5.1, 4.5},  // after the second
		{7.0, 7.0},  // cut while speech goes on (maximum utterance, Finalize)
		{0.3, 0.3},  // before any speech: its own end
		{12.0, 9.0}, // the stream's end
	} {
		if got := speechEnd(speech, tc.end); got != tc.want {
			t.Errorf("speechEnd(%v) = %v, want %v", tc.end, got, tc.want)
		}
	}
	if got := speechEnd(nil, 1.5); got != 1.5 {
		t.Errorf("no speech: %v, want the final's end", got)
	}
}

// plan shifts each clip's speech to where the clip lies in the stream, and drops it all
// when a clip's speech was not measured.
func TestPlanSpeech(t *testing.T) {
	clips := []Clip{{ID: "a", PCM: make([]byte, 32000), Speech: []Span{{0.1, 0.9}}},
		{ID: "b", PCM: make([]byte, 64000), Speech: []Span{{0.2, 0.8}, {1.2, 1.9}}}}
	p := newProgram(clips, 5*time.Second)
	_, _, speech := p.plan(1, 2, 5*time.Second) // b+gap (3 s), then a
	want := []Span{{0.2, 0.8}, {1.2, 1.9}, {3.1, 3.9}}
	if len(speech) != len(want) {
		t.Fatalf("speech %v, want %v", speech, want)
	}
	for i := range want {
		if math.Abs(speech[i].From-want[i].From) > 1e-9 || math.Abs(speech[i].To-want[i].To) > 1e-9 {
			t.Fatalf("speech %v, want %v", speech, want)
		}
	}
	clips[0].Speech = nil
	if _, _, speech := newProgram(clips, 5*time.Second).plan(0, 1, 5*time.Second); speech != nil {
		t.Errorf("a clip without speech spans: %v, want none", speech)
	}
}
