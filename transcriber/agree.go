package transcriber

import (
	"strings"
	"unicode"
)

// agreement is LocalAgreement-2 (Macháček et al., whisper_streaming) over the word
// sequences of the successive hypotheses of one utterance: a word is committed once two
// consecutive hypotheses agree on it and on every word before it. Committed words never
// change. Words are compared normalised (case and punctuation ignored) but kept as
// whisper wrote them.
type agreement struct {
	committed []string   // whisper's spelling, in order
	ends      []uint64   // estimated end (stream sample) of each committed word
	times     []wordTime // each committed word's times and confidence, from the decode that committed it
	prev      []string   // the previous hypothesis, words after the committed ones
	unaligned bool       // the last hypothesis was a trimmed window that did not align
}

// maxShift bounds how far a new hypothesis may be shifted (inserted or dropped words)
// against the committed words when aligning it.
const maxShift = 2

// update takes the words of a new hypothesis and returns the unstable tail: the
// hypothesis words after the committed ones. The hypothesis covers the utterance's
// window after the first skip committed words (0: the whole utterance; see
// stream.retrim); times are its words' times (the model's or estimated) and ends their
// estimated end samples (the commit and trim policy's, measured with them). Only the
// first commitable words of hyp may be committed (the rest lie too close to the end of
// the window, where whisper still changes its mind); commitable < 0 means all.
func (a *agreement) update(hyp []string, times []wordTime, ends []uint64, skip, commitable int) (tail []string) {
	rest, found := align(a.committed, hyp, skip)
	a.unaligned = !found && skip > 0
	if a.unaligned {
		// A trimmed window whose words cannot be joined to the committed ones, taken by
		// position, may repeat committed words or lack new ones: nothing is committed from
		// it, and the next hypothesis cannot commit by agreeing with it.
		a.prev = nil
		return rest
	}
	// A decode with the model's word times refreshes the committed words it holds: a
	// window long enough to be trimmed next is decoded with word times (wordTimesFrom),
	// so every committed word has the model's times before the audio under it leaves it.
	if found {
		a.refreshTimes(a.times, hyp[:len(hyp)-len(rest)], times)
	}
	if a.prev != nil {
		n := commonPrefix(a.prev, rest)
		if commitable >= 0 {
			n = min(n, max(0, commitable-(len(hyp)-len(rest))))
		}
		a.committed = append(a.committed, rest[:n]...)
		at := len(hyp) - len(rest)
		for i := range n {
			var e uint64
			if at+i < len(ends) {
				e = ends[at+i]
			}
			a.ends = append(a.ends, e)
			var t wordTime
			if at+i < len(times) {
				t = times[at+i]
			}
			a.times = append(a.times, t)
		}
		rest = rest[n:]
	}
	a.prev = rest
	return rest
}

// settled reports whether the last two hypotheses agreed on every word: nothing is left
// in the unstable tail, so a final may reuse the last hypothesis without decoding again.
func (a *agreement) settled() bool { return len(a.committed) > 0 && a.prev != nil && len(a.prev) == 0 }

// stable is the number of committed words.
func (a *agreement) stable() int { return len(a.committed) }

// finish merges the final decode of the utterance with the committed words. The
// committed words are kept as they are, whatever the final decode says about them
// (two consecutive hypotheses agreed on them; one more decode is not better evidence,
// and measured on longform_dev it was sometimes worse); the final decode's words after
// the aligned end of the committed ones are appended. When it does not align (whisper
// changed its mind or dropped words), the continuation is taken by word position.
// aligned reports whether the end of the committed words was found in hyp (see align).
// The words' times come with them (hypTimes are hyp's): a committed word that the final
// decode also holds, matched back from the aligned end, takes the final decode's times
// when the model gave them (it saw more of the utterance than the decode that committed
// it); the rest keep the times they were committed with.
func (a *agreement) finish(hyp []string, hypTimes []wordTime, skip int) (words []string, times []wordTime, aligned bool) {
	rest, aligned := align(a.committed, hyp, skip)
	if len(hypTimes) < len(hyp) { // times unknown: estimated later
		hypTimes = append(append([]wordTime(nil), hypTimes...), make([]wordTime, len(hyp)-len(hypTimes))...)
	}
	words = append(append([]string(nil), a.committed...), rest...)
	times = append(append(make([]wordTime, 0, len(words)), a.times...), hypTimes[len(hyp)-len(rest):]...)
	if aligned {
		a.refreshTimes(times[:len(a.committed)], hyp[:len(hyp)-len(rest)], hypTimes)
	}
	return words, times, aligned
}

// refreshTimes gives the committed words whose times are dst the model's times from a
// decode that holds them: head is the decode's words up to the aligned end of the
// committed ones (hypTimes are the decode's times), matched back word by word from there.
func (a *agreement) refreshTimes(dst []wordTime, head []string, hypTimes []wordTime) {
	for i, k := len(a.committed)-1, len(head)-1; i >= 0 && k >= 0 && sameWord(a.committed[i], head[k]); i, k = i-1, k-1 {
		if k < len(hypTimes) && hypTimes[k].model {
			dst[i] = hypTimes[k]
		}
	}
}

// continuation returns the words of hyp after the point aligned with the end of
// committed, where hyp was decoded from audio that starts after the first skip committed
// words (so it should hold the other committed words, then new ones). It looks for the
// shift from the expected position at which the last one or two committed words appear
// in hyp, preferring small shifts: up to maxShift words either way, or maxTrimShift for
// a trimmed window (skip > 0), whose start is only estimated. Without a match it uses
// the expected position.
func continuation(committed, hyp []string, skip int) []string {
	rest, _ := align(committed, hyp, skip)
	return rest
}

// align is continuation that also reports whether the end of committed was found in
// hyp (true when nothing is committed); without a match the rest is taken by position.
func align(committed, hyp []string, skip int) (rest []string, found bool) {
	n := len(committed)
	if n == 0 {
		return hyp, true
	}
	k := max(0, n-skip) // expected index in hyp just after the last committed word
	reach := maxShift
	if skip > 0 {
		reach = maxTrimShift
	}
	for d := 0; d <= 2*reach; d++ {
		j := around(k, d)
		if j < 1 || j > len(hyp) {
			continue
		}
		if !sameWord(hyp[j-1], committed[n-1]) {
			continue
		}
		// The committed word before it must match too, unless that falls on a trimmed
		// window's first word, which whisper often hears cut off ("look impressions" for
		// "…took impressions": by position the rest lost a word there).
		if n >= 2 && j >= 2 && !sameWord(hyp[j-2], committed[n-2]) && (skip == 0 || j > 2) {
			continue
		}
		return hyp[j:], true
	}
	if skip > 0 && n >= 3 {
		// Farther out, a trimmed window's words count as aligned only where the last three
		// committed words stand in a row, the nearest such place first. whisper may say a
		// window's prompt again, or a pause in the speech may have put the estimated word
		// ends (and so the window's start) further off than maxTrimShift words: "It was not
		// so much the loss" committed, the window trimmed after its fifth word, and the
		// decode "It was not so much the loss of the carton itself"; by position the rest
		// would have begun at "not so much the loss" again.
		for d := 2*reach + 1; d <= 2*len(hyp); d++ {
			if j := around(k, d); j >= 3 && j <= len(hyp) && sameWord(hyp[j-1], committed[n-1]) &&
				sameWord(hyp[j-2], committed[n-2]) && sameWord(hyp[j-3], committed[n-3]) {
				return hyp[j:], true
			}
		}
	}
	if k >= len(hyp) {
		return nil, false
	}
	return hyp[k:], false
}

// around is the d-th position tried around k, nearest first: k, k+1, k−1, k+2, k−2, …
func around(k, d int) int {
	if d%2 == 0 {
		return k - d/2
	}
	return k + (d+1)/2
}

// maxTrimShift is maxShift for a trimmed window: its start is placed by estimated word
// times (spreadWords), which can be a few words off.
const maxTrimShift = 4

func commonPrefix(a, b []string) int {
	n := 0
	for n < len(a) && n < len(b) && sameWord(a[n], b[n]) {
		n++
	}
	return n
}

func sameWord(a, b string) bool { return normWord(a) == normWord(b) }

// normWord lower-cases a word and drops everything but letters, digits and inner
// apostrophes: "America," and "america" are the same word.
func normWord(w string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(w) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\'' {
			b.WriteRune(r)
		}
	}
	return strings.Trim(b.String(), "'")
}

// normText normalises a whole text to space-separated normalised words.
func normText(s string) string {
	f := strings.Fields(s)
	out := f[:0]
	for _, w := range f {
		if n := normWord(w); n != "" {
			out = append(out, n)
		}
	}
	return strings.Join(out, " ")
}
