package transcriber

import (
	"errors"
	"testing"

	"github.com/earshot-dev/earshot/internal/bus"
)

// The stand-in engine turns 10 s of audio in 100 ms chunks into a partial every 0.5 s,
// a final every 3 s plus one at End, placeholder words with times on the stream's clock
// and finals that tile the audio (each starts where the last ended); it refuses a
// session past its capacity and an unknown model.
func TestStandInPacesWordsWithTheAudio(t *testing.T) {
	f := NewStandIn([]string{"tiny.en"}, 1)
	var got []bus.Result
	s, err := f.Open(bus.SessionRequest{Model: "tiny.en", Channels: 1}, func(r bus.Result) { got = append(got, r) })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Open(bus.SessionRequest{Model: "tiny.en"}, func(bus.Result) {}); !errors.Is(err, bus.ErrNoCapacity) {
		t.Fatalf("second session on capacity 1: %v", err)
	}
	if _, err := f.Open(bus.SessionRequest{Model: "base"}, func(bus.Result) {}); !errors.Is(err, ErrUnknownModel) {
		t.Fatalf("unknown model: %v", err)
	}
	for i := range 100 {
		c := &bus.AudioChunk{Seq: uint64(i + 1), StartSample: uint64(i * 1600), PCM: make([]int16, 1600)}
		if i == 99 {
			c.Flags = bus.FlagEnd
		}
		if err := s.Write(c); err != nil {
			t.Fatal(err)
		}
	}
	partials, finals := 0, []bus.Result{}
	for _, r := range got {
		switch r.Type {
		case bus.ResultPartial:
			partials++
		case bus.ResultFinal:
			finals = append(finals, r)
		}
	}
	if partials < 12 || partials > 20 || len(finals) != 4 || got[len(got)-1].Type != bus.ResultClosed {
		t.Fatalf("%d partials, %d finals, last %s", partials, len(finals), got[len(got)-1].Type)
	}
	var end uint64
	for _, r := range finals {
		if uint64(r.Start*bus.SampleRate+0.5) != end || len(r.Words) == 0 || r.Words[0].Start < r.Start {
			t.Fatalf("final %+v does not start at %d", r, end)
		}
		end = r.EndSample
	}
	if end != 160000 {
		t.Fatalf("finals end at %d, want 160000 (10 s)", end)
	}
	s.Close()
	if c := f.Capacity("tiny.en"); c.Free != 1 {
		t.Fatalf("capacity after close %+v", c)
	}
}
