package transcriber

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Units of text. The stream compares, commits and times text in units: a word between
// spaces, except that text written without spaces (whisper writes a Mandarin clause as
// one run) is one unit per CJK character, punctuation joined to what it follows and runs
// of other letters or digits kept whole. So LocalAgreement commits a Chinese partial
// character by character, as it commits English word by word, and Deepgram's per-
// character words fall out of the same split.

// isCJK reports whether r is written without spaces between words: Han, Hiragana,
// Katakana (Korean Hangul is written with spaces).
func isCJK(r rune) bool {
	return unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) || unicode.Is(unicode.Katakana, r)
}

// unitSpan is a unit's byte range in its field.
type unitSpan struct{ a, b int }

// cjkSpans splits one field (no spaces) into unit spans; a field without CJK is one.
func cjkSpans(field string) []unitSpan {
	if strings.IndexFunc(field, isCJK) < 0 {
		return []unitSpan{{0, len(field)}}
	}
	var parts []unitSpan
	for i, r := range field {
		_, n := utf8.DecodeRuneInString(field[i:])
		switch {
		case len(parts) == 0 || isCJK(r):
			parts = append(parts, unitSpan{i, i + n})
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			last := &parts[len(parts)-1]
			if prev, _ := utf8.DecodeLastRuneInString(field[:i]); !isCJK(prev) && (unicode.IsLetter(prev) || unicode.IsDigit(prev)) {
				last.b = i + n
			} else {
				parts = append(parts, unitSpan{i, i + n})
			}
		default: // punctuation and marks stay with what they follow
			parts[len(parts)-1].b = i + n
		}
	}
	return parts
}

// units splits text into units.
func units(text string) []string {
	var out []string
	for _, f := range strings.Fields(text) {
		for _, p := range cjkSpans(f) {
			out = append(out, f[p.a:p.b])
		}
	}
	return out
}

// joinUnits joins units back into text: with a space between them, but none where
// either side of the join is a CJK character.
func joinUnits(us []string) string {
	var b strings.Builder
	for i, u := range us {
		if i > 0 {
			prev, _ := utf8.DecodeLastRuneInString(us[i-1])
			next, _ := utf8.DecodeRuneInString(u)
			if !isCJK(prev) && !isCJK(next) && !isCJKPunct(prev) {
				b.WriteByte(' ')
			}
		}
		b.WriteString(u)
	}
	return b.String()
}

// isCJKPunct reports full-width punctuation (，。、！？ …), which takes no space after it.
func isCJKPunct(r rune) bool {
	return (r >= 0x3000 && r <= 0x303F) || (r >= 0xFF00 && r <= 0xFFEF && unicode.IsPunct(r))
}
