package wer

import (
	"strings"
	"unicode"
)

// variants maps spellings that mean the same word to one form, so that a
// transcript is not charged for "Mr." against "mister" or British against
// American spelling.
var variants = map[string]string{
	"mister": "mr", "missus": "mrs", "misses": "mrs",
	"okay":   "ok",
	"colour": "color", "colours": "colors", "favourite": "favorite", "favour": "favor",
	"honour": "honor", "labour": "labor", "neighbour": "neighbor", "neighbours": "neighbors",
	"behaviour": "behavior", "centre": "center", "theatre": "theater", "metre": "meter",
	"grey": "gray", "realise": "realize", "realised": "realized", "recognise": "recognize",
	"recognised": "recognized", "organise": "organize", "organised": "organized",
	"programme": "program", "travelled": "traveled", "travelling": "traveling",
	"cancelled": "canceled", "defence": "defense", "licence": "license", "catalogue": "catalog",
}

// Normalize lowercases s and splits it into words: punctuation is dropped,
// hyphens and dashes separate words, apostrophes join ("don't" → "dont"), a
// '.' or ',' between digits is kept ("3.5", "1,000" → "1000"), numbers stay as
// written (no "twelve" ↔ "12"), and the spelling variants above are unified.
func Normalize(s string) []string {
	var b strings.Builder
	rs := []rune(strings.ToLower(s))
	for i, r := range rs {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		case r == '\'' || r == '’' || r == '‘':
			// joins: drop
		case r == '.' && between(rs, i, unicode.IsDigit):
			b.WriteRune(r)
		case r == ',' && between(rs, i, unicode.IsDigit):
			// thousands separator: drop
		default:
			b.WriteByte(' ')
		}
	}
	var words []string
	for _, w := range strings.Fields(b.String()) {
		if v, ok := variants[w]; ok {
			w = v
		}
		words = append(words, spellNumber(w)...)
	}
	return words
}

func between(rs []rune, i int, is func(rune) bool) bool {
	return i > 0 && i+1 < len(rs) && is(rs[i-1]) && is(rs[i+1])
}
