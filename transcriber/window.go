package transcriber

import (
	"math"

	"github.com/earshot-dev/earshot/internal/bus"
)

// Decode windows and their words: the estimated end of each word (spreadWords), the
// commit lag, and the trimming of a long utterance's window after committed words.

// spreadWords gives words times by linear interpolation over the speech span [from, to)
// in proportion to their length in characters (+1 for the gap). The decode runs with
// single_segment and no timestamps, so whisper gives no token times; interpolation is
// exact at the utterance edges (VAD) and typically within a few hundred ms inside.
func spreadWords(words []string, from, to uint64, conf float64) []bus.Word {
	if len(words) == 0 {
		return nil
	}
	total := 0
	for _, w := range words {
		total += len([]rune(w)) + 1
	}
	t0, span := sec(from), sec(to-min(to, from))
	out := make([]bus.Word, len(words))
	acc := 0
	for i, w := range words {
		start := t0 + span*float64(acc)/float64(total)
		acc += len([]rune(w)) + 1
		end := t0 + span*float64(acc-1)/float64(total)
		out[i] = bus.Word{Word: normWord(w), Punctuated: w, Start: start, End: end, Confidence: conf}
	}
	return out
}

// wordEnds is the estimated end sample of each word (spreadWords over [from, to)).
func wordEnds(words []string, from, to uint64) []uint64 {
	ws := spreadWords(words, from, to, 0)
	out := make([]uint64, len(ws))
	for i, w := range ws {
		out[i] = uint64(math.Round(w.End * bus.SampleRate))
	}
	return out
}

// Window trimming. A long utterance's window would grow with it: a 10 s window takes
// about 1 s to decode on 2 CPU threads, which every partial and the final wait for. The
// audio well before the last committed word need not be decoded again: once the last
// committed word is estimated to end trimMinStep + trimMargin after the window's start,
// the window moves to the quietest VAD window of the trimSearch before a point trimMargin
// ahead of that word's end, and the committed words estimated to end before the new
// start join the prompt. The window still begins with the last committed words, which
// continuation aligns (whisper_streaming trims its buffer at committed text in the same
// spirit; it cuts at segment ends, 15 s).
const (
	trimMargin  = bus.SampleRate     // 1 s
	trimSearch  = bus.SampleRate / 2 // 0.5 s
	trimMinStep = 3 * bus.SampleRate / 2
)

// retrim moves the open utterance's window start after a partial committed words.
func (st *stream) retrim() {
	a := &st.agree
	n := len(a.ends)
	if n == 0 || a.ends[n-1] < trimMargin {
		return
	}
	target := a.ends[n-1] - trimMargin
	from := max(st.uttStart-min(st.uttStart, st.sess.pad), st.winFrom)
	if target < from+trimMinStep {
		return
	}
	cut := st.quietest(target-min(target, trimSearch), target)
	skip := 0
	for skip < n && a.ends[skip] <= cut {
		skip++
	}
	if skip == 0 || cut <= from {
		return
	}
	st.winFrom, st.winSkip = cut, skip
	st.sess.log.Debug("window trimmed", "utterance_start", sec(st.uttStart), "from", sec(cut), "prompt_words", skip,
		"committed", n)
}

// quietest returns the start of the buffered VAD window with the lowest speech
// probability inside [a, b), or b when none is buffered there.
func (st *stream) quietest(a, b uint64) uint64 {
	best, bestP := b, float32(2)
	for i, p := range st.vadProbs {
		at := st.vadAt + uint64(i)*st.ep.win
		if at >= a && at+st.ep.win <= b && p < bestP {
			best, bestP = at, p
		}
	}
	return best
}

// commitLag is how much audio must follow a word (by spreadWords' estimate) before the
// agreement may commit it.
// Measured by TestAgreeCommitSim (deterministic replay of the partial decodes of
// longform_dev at every cadence of 1–4 steps): final WER 2.72 % with no lag, 2.66 % at
// 0.5 s, 2.49 % at 1.5 s, 2.14 % at 2 s, 1.73 % committing nothing (= offline). Words
// committed from short windows (an utterance's first words, a word at the window end)
// are what whisper revises most when it sees more audio, and the final must keep them.
const commitLag = 2 * bus.SampleRate

// commitable is the number of leading words whose estimated end (spreadWords over
// [from, to)) lies at least lag before to.
func commitable(words []string, from, to, lag uint64) int {
	ws := spreadWords(words, from, to, 0)
	limit := sec(to) - sec(lag)
	n := 0
	for n < len(ws) && ws[n].End <= limit {
		n++
	}
	return n
}
