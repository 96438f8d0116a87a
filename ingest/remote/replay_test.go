package remote_test

import (
	"errors"
	"testing"

	"github.com/earshot-dev/earshot/ingest/remote"
	"github.com/earshot-dev/earshot/internal/bus"
)

func replayChunk(seq uint64, ch int, start uint64, n int, flags bus.ChunkFlag) *bus.AudioChunk {
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(start) + int16(i) // sample value = position, to check splits
	}
	return &bus.AudioChunk{Session: "s", Seq: seq, Channel: ch, StartSample: start, Flags: flags, PCM: pcm}
}

func TestReplayBufferBoundedPerChannel(t *testing.T) {
	b := remote.NewReplayBuffer(1000)
	for i := range 10 {
		if err := b.Add(replayChunk(uint64(i+1), 0, uint64(i*100), 100, 0)); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
	}
	err := b.Add(replayChunk(11, 0, 1000, 1, 0))
	if !errors.Is(err, remote.ErrReplayFull) {
		t.Fatalf("11th chunk over the limit: %v", err)
	}
	if b.Samples(0) != 1000 || b.Len() != 10 {
		t.Fatalf("a refused chunk was kept: %d samples, %d chunks", b.Samples(0), b.Len())
	}
	// Another channel has its own bound.
	if err := b.Add(replayChunk(11, 1, 0, 1000, 0)); err != nil {
		t.Fatal(err)
	}
	// A final frees room.
	b.Trim(0, 250)
	if b.Samples(0) != 750 {
		t.Fatalf("after trim at 250: %d samples", b.Samples(0))
	}
	if err := b.Add(replayChunk(12, 0, 1000, 250, 0)); err != nil {
		t.Fatal(err)
	}
}

func TestReplayBufferChunkCountBounded(t *testing.T) {
	b := remote.NewReplayBuffer(16000) // one second: 100 chunks of 10 ms plus a few
	var err error
	for i := 1; i < 1000 && err == nil; i++ {
		err = b.Add(replayChunk(uint64(i), 0, uint64(i), 0, bus.FlagFinalize)) // empty control chunks
	}
	if !errors.Is(err, remote.ErrReplayFull) || b.Len() > 200 {
		t.Fatalf("empty chunks grow the buffer without bound: %d chunks, %v", b.Len(), err)
	}
}

func TestReplayBufferTrim(t *testing.T) {
	cases := []struct {
		name      string
		trimCh    int
		trimAt    uint64
		wantStart uint64 // of channel 0
		wantLen   int
		wantSamps int
	}{
		{"nothing", 0, 0, 0, 4, 300},
		{"whole first chunk", 0, 100, 100, 3, 200},
		{"mid chunk", 0, 150, 150, 3, 150},
		{"everything but the end chunk", 0, 10_000, 300, 1, 0},
		{"other channel", 1, 10_000, 0, 4, 300},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := remote.NewReplayBuffer(16000)
			for _, c := range []*bus.AudioChunk{replayChunk(1, 0, 0, 100, 0), replayChunk(2, 0, 100, 100, bus.FlagFinalize),
				replayChunk(3, 0, 200, 100, 0), replayChunk(4, 0, 300, 0, bus.FlagEnd)} {
				if err := b.Add(c); err != nil {
					t.Fatal(err)
				}
			}
			b.Trim(tc.trimCh, tc.trimAt)
			start, ok := b.Start(0)
			if !ok || start != tc.wantStart || b.Len() != tc.wantLen || b.Samples(0) != tc.wantSamps {
				t.Fatalf("start %d (%v), %d chunks, %d samples", start, ok, b.Len(), b.Samples(0))
			}
			cs := b.Chunks()
			if c := cs[0]; len(c.PCM) > 0 && uint64(c.PCM[0]) != c.StartSample {
				t.Fatalf("split chunk starts at %d with sample %d", c.StartSample, c.PCM[0])
			}
			if last := cs[len(cs)-1]; last.Flags&bus.FlagEnd == 0 {
				t.Fatal("the end of the stream was trimmed away: a failover would never end the stream")
			}
			for i := 1; i < len(cs); i++ {
				if cs[i].Seq <= cs[i-1].Seq {
					t.Fatal("chunks out of seq order")
				}
			}
		})
	}
}
