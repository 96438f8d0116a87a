package twilio

import (
	"fmt"
	"sort"
	"time"
)

// maxAhead is the furthest a chunk number may jump past the one expected (60 s of
// 20 ms chunks): a larger jump is not a lost packet but a broken sender, and filling
// it with silence would let one message allocate without bound.
const maxAhead = 3000

// mulawSilence is the µ-law code of a zero sample.
const mulawSilence = 0xFF

// silence is one 20 ms frame of µ-law silence: a lost chunk is filled with one frame,
// whatever size the chunks around it had. Shared and never written.
var silence = func() []byte {
	b := make([]byte, FrameBytes)
	for i := range b {
		b[i] = mulawSilence
	}
	return b
}()

// reorder puts one track's media chunks back in chunk order. A chunk that arrives
// early waits in a window of up to `window` chunks; a chunk at or below the last one
// released, or already waiting, is a duplicate and dropped. When the window overflows
// (or at Flush), the missing chunks before the earliest waiting one are given up on
// and replaced by one 20 ms frame of silence each (as long as fillBudget lasts), so
// the stream's clock (and every later word time) stays right. Not safe for concurrent use.
type reorder struct {
	window  int
	next    uint64                  // chunk number expected next
	pending map[uint64]pendingChunk // early chunks by number
	// fillBudget is how many 20 ms chunks of silence the next gap may be filled with
	// (the caller bounds it by wall time); the rest of a gap is skipped, not filled.
	fillBudget int

	duplicates, filled, skipped int // counters for logs and the summary
}

func newReorder(window int) *reorder {
	return &reorder{window: window, next: 1, pending: map[uint64]pendingChunk{}, fillBudget: maxAhead}
}

type pendingChunk struct {
	audio []byte
	at    time.Duration
}

// release is one piece of audio ready to decode, in order.
type release struct {
	audio  []byte
	filler bool          // silence standing in for a lost chunk (not billed)
	at     time.Duration // when the chunk arrived (a filler: when it was given up on)
}

// Add takes chunk n, arrived at at (any clock; it is handed back with the chunk), and
// returns what is now ready, in order. A chunk more than maxAhead past the expected one
// is an error wrapping ErrProtocol.
func (r *reorder) Add(n uint64, audio []byte, at time.Duration) ([]release, error) {
	if n < r.next {
		r.duplicates++
		return nil, nil
	}
	if _, dup := r.pending[n]; dup {
		r.duplicates++
		return nil, nil
	}
	if n-r.next > maxAhead {
		return nil, fmt.Errorf("%w: media chunk %d jumps %d chunks past the expected %d", ErrProtocol, n, n-r.next, r.next)
	}
	r.pending[n] = pendingChunk{audio, at}
	out := r.drain(nil)
	for len(r.pending) > r.window {
		out = r.skipGap(out, at)
	}
	return out, nil
}

// Flush gives up, at at, on every missing chunk and releases all that wait.
func (r *reorder) Flush(at time.Duration) []release {
	var out []release
	for len(r.pending) > 0 {
		out = r.skipGap(out, at)
	}
	return out
}

func (r *reorder) drain(out []release) []release {
	for {
		a, ok := r.pending[r.next]
		if !ok {
			return out
		}
		delete(r.pending, r.next)
		out = append(out, release{audio: a.audio, at: a.at})
		r.next++
	}
}

// skipGap fills the gap before the earliest waiting chunk with silence, then drains.
func (r *reorder) skipGap(out []release, at time.Duration) []release {
	keys := make([]uint64, 0, len(r.pending))
	for k := range r.pending {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	first := keys[0]
	for ; r.next < first; r.next++ {
		if r.fillBudget <= 0 {
			r.skipped += int(first - r.next)
			r.next = first
			break
		}
		r.fillBudget--
		out = append(out, release{audio: silence, filler: true, at: at})
		r.filled++
	}
	return r.drain(out)
}
