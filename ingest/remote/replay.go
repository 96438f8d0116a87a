package remote

import (
	"errors"
	"fmt"

	"github.com/earshot-dev/earshot/internal/bus"
)

// ErrReplayFull: the audio since the last final exceeds the replay limit. The stream has
// gone too long without a final (endpointing off and no Finalize): the gateway tells the
// client to finalize or reconnect.
var ErrReplayFull = errors.New("replay buffer full: too much audio since the last final")

// ReplayBuffer keeps a session's audio since the last final, so that it can be replayed
// to another worker after a failover. It is bounded per channel in samples and in
// chunks. Not safe for concurrent use (RemoteSession guards it).
type ReplayBuffer struct {
	limit     int // samples per channel
	maxChunks int
	chunks    []bus.AudioChunk // in Seq order
	samples   map[int]int      // channel → buffered samples
}

// NewReplayBuffer returns a buffer holding at most limitSamples 16 kHz samples per
// channel (and at most one chunk per 10 ms of that, plus a few control chunks).
func NewReplayBuffer(limitSamples int) *ReplayBuffer {
	limitSamples = max(limitSamples, 1)
	return &ReplayBuffer{
		limit:     limitSamples,
		maxChunks: limitSamples/(10*bus.SamplesPerMs) + 16,
		samples:   make(map[int]int),
	}
}

// Add appends c (which the buffer keeps: the caller must not change c.PCM after).
// It returns an error wrapping ErrReplayFull, and keeps nothing, when c does not fit.
func (b *ReplayBuffer) Add(c *bus.AudioChunk) error {
	if b.samples[c.Channel]+len(c.PCM) > b.limit {
		return fmt.Errorf("%w: channel %d holds %d samples, limit %d", ErrReplayFull, c.Channel, b.samples[c.Channel], b.limit)
	}
	if len(b.chunks) >= b.maxChunks {
		return fmt.Errorf("%w: %d chunks", ErrReplayFull, len(b.chunks))
	}
	b.chunks = append(b.chunks, *c)
	b.samples[c.Channel] += len(c.PCM)
	return nil
}

// Trim drops the audio of channel before end (a final's EndSample): whole chunks that end
// at or before it go, a chunk that straddles it keeps only its samples from end on. A
// chunk carrying FlagEnd is kept (maybe empty) so that the end of the stream is replayed.
func (b *ReplayBuffer) Trim(channel int, end uint64) {
	out := b.chunks[:0]
	for _, c := range b.chunks {
		if c.Channel != channel || c.StartSample >= end {
			out = append(out, c)
			continue
		}
		cut := min(end-c.StartSample, uint64(len(c.PCM)))
		if cut == uint64(len(c.PCM)) && c.Flags&bus.FlagEnd == 0 {
			b.samples[channel] -= len(c.PCM)
			continue
		}
		b.samples[channel] -= int(cut)
		c.PCM = c.PCM[cut:]
		c.StartSample += cut
		if len(c.PCM) == 0 {
			c.Flags &^= bus.FlagFinalize // the final covered all of it
		}
		out = append(out, c)
	}
	clear(b.chunks[len(out):])
	b.chunks = out
}

// TrimKeeping is Trim to end − keep: the keep samples before end stay for a replay's
// run-up, but a Finalize at or before end is done and is not replayed.
func (b *ReplayBuffer) TrimKeeping(channel int, end, keep uint64) {
	b.Trim(channel, end-min(end, keep))
	for i := range b.chunks {
		if c := &b.chunks[i]; c.Channel == channel && c.EndSample() <= end {
			c.Flags &^= bus.FlagFinalize
		}
	}
}

// Chunks returns copies of the buffered chunks in Seq order (PCM is shared, read-only).
func (b *ReplayBuffer) Chunks() []bus.AudioChunk {
	return append([]bus.AudioChunk(nil), b.chunks...)
}

// Range returns copies of the buffered chunks with from ≤ Seq ≤ to, in Seq order (PCM
// shared, read-only): what a worker that saw a gap asks for again.
func (b *ReplayBuffer) Range(from, to uint64) []bus.AudioChunk {
	var out []bus.AudioChunk
	for _, c := range b.chunks {
		if c.Seq >= from && c.Seq <= to {
			out = append(out, c)
		}
	}
	return out
}

// Start is the stream position of the oldest buffered audio of channel; ok is false
// when nothing of channel is buffered.
func (b *ReplayBuffer) Start(channel int) (start uint64, ok bool) {
	for _, c := range b.chunks {
		if c.Channel == channel {
			return c.StartSample, true
		}
	}
	return 0, false
}

// Samples is the number of buffered samples of channel.
func (b *ReplayBuffer) Samples(channel int) int { return b.samples[channel] }

// Len is the number of buffered chunks.
func (b *ReplayBuffer) Len() int { return len(b.chunks) }
