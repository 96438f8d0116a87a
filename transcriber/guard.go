package transcriber

import (
	"bytes"
	"compress/flate"
	"regexp"
	"strings"
)

// Hallucination guards. whisper invents text on silence, noise and very short input
// (see ../shared/notes/WHISPER_API.md §5): the VAD gate keeps silence away from the
// decoder; these checks clean what still comes back.
const (
	noSpeechThold    = 0.6  // whisper's own no_speech_thold …
	logprobThold     = -1.0 // … together with its logprob_thold
	maxCompression   = 2.4  // whisper's compression_ratio_threshold
	minLoopRepeats   = 4    // an n-gram repeated this often in a row is a decoding loop …
	minLoopRepeatsN3 = 3    // … or, for n ≥ 3 words, this often (a 3-word phrase said 3× in a row is whisper looping)
	maxLoopN         = 12   // longest n-gram checked for loops
	minTwiceN        = 5    // a phrase this long or longer said twice at the very end is a loop too (twiceAtEnd)
	lowConfLogprob   = -0.6 // below this a blocklisted phrase is treated as invented
	lowConfNoSpeech  = 0.2  // above this likewise
	shortSpeechForBL = 0.5  // seconds: a blocklisted phrase on less speech than this is dropped
)

// Guard reasons, for logs and tests.
const (
	guardNone        = ""
	guardNoSpeech    = "no_speech"
	guardBlocklist   = "blocklist"
	guardLoop        = "repetition_loop"
	guardCompression = "compression_ratio"
)

// soundTag matches whisper's bracketed or parenthesised non-speech annotations:
// "[BLANK_AUDIO]", "(music)", "[Music]", "*laughs*", "♪".
var soundTag = regexp.MustCompile(`\[[^\]]*\]|\([^)]*\)|\*[^*]*\*|[♪♫]+`)

// alwaysInvented are phrases that in a live stream are (almost) only ever whisper's
// training-data subtitles, matched as a prefix of the normalised text.
var alwaysInvented = []string{
	"thanks for watching", "thank you for watching", "thank you so much for watching",
	"please subscribe", "like and subscribe", "subtitles by", "subtitled by",
	"captions by", "transcription by", "transcribed by", "translated by", "amaraorg",
}

// weakInvented are phrases that are real speech sometimes, dropped only when the whole
// hypothesis is the phrase and the decode is short or low-confidence.
var weakInvented = map[string]bool{
	"you": true, "thank you": true, "thanks": true, "thank you very much": true,
	"bye": true, "bye bye": true, "okay": true, "so": true, "oh": true, "uh": true, "um": true,
	"i'm sorry": true, "hmm": true,
}

// guardText cleans one hypothesis. speechSec is the VAD speech in the decoded window.
// It returns the text to use ("" = drop everything) and why text was removed.
func guardText(h Hypothesis, speechSec float64) (string, string) {
	if h.NoSpeechProb > noSpeechThold && h.AvgLogprob < logprobThold {
		return "", guardNoSpeech
	}
	text := strings.Join(strings.Fields(soundTag.ReplaceAllString(h.Text, " ")), " ")
	if text == "" {
		return "", guardNone
	}
	reason := guardNone
	words := units(text)
	norm := normWords(words)
	if at := loopStart(norm); at >= 0 {
		words, norm, reason = words[:at], norm[:at], guardLoop
		text = joinUnits(words)
	}
	if at := twiceAtEnd(norm); at >= 0 {
		words, reason = words[:at], guardLoop
		text = joinUnits(words)
	}
	if compressionRatio(text) > maxCompression {
		return "", guardCompression
	}
	n := normText(text)
	for _, p := range alwaysInvented {
		if strings.HasPrefix(n, p) {
			return "", guardBlocklist
		}
	}
	lowConf := h.AvgLogprob < lowConfLogprob || h.NoSpeechProb > lowConfNoSpeech
	if weakInvented[n] && (lowConf || speechSec < shortSpeechForBL) {
		return "", guardBlocklist
	}
	return text, reason
}

// normWords is words as the loop checks compare them (normWord).
func normWords(words []string) []string {
	norm := make([]string, len(words))
	for i, w := range words {
		norm[i] = normWord(w)
	}
	return norm
}

// twiceAtEnd finds a phrase of minTwiceN to maxLoopN words (characters in Chinese) said
// twice in a row at the end of the hypothesis (normWords) and returns where its second
// copy starts,
// or -1. A decode whose window ends right after the speech can loop once and stop at the
// window's end: "And so am I fellow Americans. And so am I fellow Americans." for a
// speculative final that kept 32 ms of silence (BENCHMARKS.md, Density, "A long final's
// time"); loopStart wants three copies. Speakers do repeat themselves, but rarely five
// words or more verbatim as the last thing in a window.
func twiceAtEnd(norm []string) int {
	for n := min(maxLoopN, len(norm)/2); n >= minTwiceN; n-- {
		if at := len(norm) - n; equalRun(norm, at-n, at, n) {
			return at
		}
	}
	return -1
}

// loopStart finds the first n-gram (n ≤ maxLoopN) repeated minLoopRepeats times in a
// row (minLoopRepeatsN3 for n ≥ 3) in norm (normWords) and returns the index just after
// its first occurrence (the loop keeps one copy), or -1.
func loopStart(norm []string) int {
	best := -1
	for n := 1; n <= maxLoopN; n++ {
		need := minLoopRepeats
		if n >= 3 {
			need = minLoopRepeatsN3
		}
		for i := 0; i+n*need <= len(norm); i++ {
			reps := 1
			for j := i + n; j+n <= len(norm) && equalRun(norm, i, j, n); j += n {
				reps++
			}
			if reps >= need {
				if best < 0 || i+n < best {
					best = i + n
				}
				break
			}
		}
	}
	return best
}

func equalRun(w []string, i, j, n int) bool {
	for k := 0; k < n; k++ {
		if w[i+k] != w[j+k] {
			return false
		}
	}
	return true
}

// compressionRatio is len(text)/len(deflate(text)), whisper's repetition measure
// (whisper uses zlib; the 6-byte zlib framing is left out here, which matters only for
// short texts, where the ratio is below 1 anyway).
func compressionRatio(text string) float64 {
	if len(text) < 40 {
		return 0
	}
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestCompression)
	_, _ = w.Write([]byte(text))
	_ = w.Close()
	return float64(len(text)) / float64(b.Len()+6)
}
