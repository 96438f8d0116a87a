package transcriber

import (
	"bytes"
	"compress/flate"
	"regexp"
	"strings"

	"github.com/earshot-dev/earshot/internal/hanzi"
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

// Chinese inventions. whisper learned these from the credits and sign-offs of Chinese
// subtitles in its training data and writes them on silence and noise, alone or after
// real speech (openai/whisper discussions #928, on the Amara.org credits in every
// language, and #2015, on 明镜与点点; the "中文字幕由 Amara.org 社群提供" of pull request
// #1838's logs). They are matched per character on cjkNorm text: no spaces or
// punctuation, simplified characters (謝謝觀看 is 谢谢观看), Latin lower-cased.
var (
	// cjkCredits are never said in a live stream: a text that has one at a unit
	// boundary loses it and everything after it (a volunteer's name follows it, or
	// another credit).
	cjkCredits = []string{
		"字幕由amaraorg", "中文字幕由amaraorg", "字幕by索兰娅", "中文字幕志愿者",
		"请不吝点赞", "明镜与点点栏目", "明镜需要您的支持", "优优独播剧场",
	}
	// cjkSignOffs are alwaysInvented: a text that starts with one is dropped, and one
	// that is the whole rest of the text after real speech is cut off.
	cjkSignOffs = map[string]bool{
		"谢谢观看": true, "谢谢大家观看": true, "感谢观看": true, "请订阅我的频道": true,
	}
	// weakCJK are weakInvented: dropped only when they are the whole text and the
	// decode is short or low-confidence.
	weakCJK = map[string]bool{"谢谢": true, "谢谢大家": true, "谢谢你": true, "嗯": true}
)

// cjkNorm is a unit as the Chinese blocklists compare it: normWord in simplified
// characters.
func cjkNorm(u string) string { return hanzi.ToSimplified(normWord(u)) }

// cjkInvented finds where whisper's Chinese inventions start in words (units) and
// returns how many units to keep (0: drop everything) and the kept units' cjkNorm text
// joined without spaces, for weakCJK.
func cjkInvented(words []string) (int, string) {
	norm := make([]string, len(words))
	off := make([]int, len(words)+1) // off[i]: where unit i starts in compact
	for i, w := range words {
		norm[i] = cjkNorm(w)
		off[i+1] = off[i] + len(norm[i])
	}
	compact := strings.Join(norm, "")
	end := len(words)
	for i := 0; i < end; i++ {
		if hasAnyPrefix(compact[off[i]:off[end]], cjkCredits) {
			end = i
			break
		}
	}
	for cut := true; cut && end > 0; {
		cut = false
		for i := end - 1; i >= 0; i-- {
			if cjkSignOffs[compact[off[i]:off[end]]] {
				end, cut = i, true
				break
			}
		}
		for cut && end > 0 && norm[end-1] == "" { // a lone "《" or "——" before what was cut
			end--
		}
	}
	kept := compact[:off[end]]
	for p := range cjkSignOffs {
		if strings.HasPrefix(kept, p) {
			return 0, ""
		}
	}
	return end, kept
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
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
	var cjk string
	if strings.IndexFunc(text, isCJK) >= 0 {
		var keep int
		keep, cjk = cjkInvented(words)
		switch {
		case keep == 0:
			return "", guardBlocklist
		case keep < len(words):
			text, reason = joinUnits(words[:keep]), guardBlocklist
			n = normText(text)
		}
	}
	lowConf := h.AvgLogprob < lowConfLogprob || h.NoSpeechProb > lowConfNoSpeech
	if (weakInvented[n] || weakCJK[cjk]) && (lowConf || speechSec < shortSpeechForBL) {
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
