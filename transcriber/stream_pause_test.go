package transcriber

import (
	"strings"
	"testing"

	"github.com/earshot-dev/earshot/internal/bus"
)

// TestStreamNoPartialDecodeInPause (issue 23): a pause inside an open utterance (shorter
// than the endpointing, or with endpointing off, so the pause does not end it) costs no
// partial decode once the decodes that cover the speech before it have run, however long
// it lasts, since the window holds no new speech; when the speaker goes on, decoding
// resumes and shows the new words. With endpointing off the guard is the VAD having seen
// no speech since the last partial (stream.partialDue); with endpointing raised the
// speculative final is the one decode of the pause.
func TestStreamNoPartialDecodeInPause(t *testing.T) {
	hangoverMs := int(DefaultEndpointSilence.Milliseconds())
	for _, c := range []struct {
		name          string
		endpointingMs int
		settleMs      int // silence after the speech during which decodes may still run
		pauseMs       int // then silence that must cost none
	}{
		// The VAD's hangover (DefaultEndpointSilence) ends the speech; a step more lets
		// the partial covering the speech's tail run.
		{"endpointing off", -1, hangoverMs + 300, 4000},
		// The speculative final decodes the utterance at Pad (200 ms) of silence.
		{"endpointing 3 s", 3000, 600, 2000},
	} {
		t.Run(c.name, func(t *testing.T) {
			rig := newFakeRig(t, PoolConfig{}, nil)
			s, col := rig.open(bus.StreamOptions{InterimResults: true, EndpointingMs: c.endpointingMs})
			pos := rig.feed(s, col, speech(0, 1, 2), 0, 0)
			pos = rig.feed(s, col, silence(c.settleMs), pos, 0)
			before, partials := rig.dec.calls.Load(), len(col.ofType(bus.ResultPartial))
			if before == 0 || partials == 0 {
				t.Fatalf("%d decodes, %d partials for the speech before the pause", before, partials)
			}
			pos = rig.feed(s, col, silence(c.pauseMs), pos, 0)
			if n := rig.dec.calls.Load(); n != before {
				t.Errorf("%d decodes during %d ms of silence inside the utterance, want none", n-before, c.pauseMs)
			}
			if n := len(col.ofType(bus.ResultPartial)); n != partials {
				t.Errorf("%d partials during the pause, want none", n-partials)
			}
			if f := col.ofType(bus.ResultFinal); len(f) != 0 {
				t.Fatalf("the pause ended the utterance: %+v", f)
			}
			pos = rig.feed(s, col, speech(3, 4), pos, 0)
			if n := rig.dec.calls.Load(); n == before {
				t.Fatal("no decode once speech resumed")
			}
			ps := col.ofType(bus.ResultPartial)
			if len(ps) == partials || !strings.Contains(ps[len(ps)-1].Text, "delta") {
				t.Errorf("partials after the pause %+v, want the resumed speech (delta)", ps[partials:])
			}
			rig.feed(s, col, silence(100), pos, bus.FlagEnd)
			if f := col.ofType(bus.ResultFinal); len(f) != 1 || f[0].Text != "alpha bravo charlie delta echo" {
				t.Errorf("finals %+v, want one with every word", f)
			}
			checkPartials(t, col.results())
		})
	}
}
