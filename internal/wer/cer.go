package wer

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/earshot-dev/earshot/internal/hanzi"
)

// NormalizeZh splits Chinese (or Japanese, Korean) text into the tokens that
// a character error rate counts, so that a transcript is charged only for
// what a listener would hear differently:
//
//   - full-width ASCII (U+FF01–U+FF5E) and the ideographic space are folded
//     to half-width, then traditional characters to simplified (OpenCC t2s);
//   - each Han, kana or Hangul character is one token;
//   - each run of other letters (Latin, Cyrillic, …) is one lower-cased word,
//     apostrophes joined as in Normalize ("don't" → "dont");
//   - Arabic numerals become the characters they are read as: 26 → 二十六,
//     2024年 → 二零二四年, 3.5 → 三点五, 50% → 百分之五十 (see zhNumber);
//   - punctuation, spaces, symbols and broken UTF-8 are dropped.
//
// Two readings are folded that t2s leaves apart: 著 → 着 (OpenCC keeps 著
// because 著名 is simplified too, so a zh-TW transcript's 亮著 would count as
// an error against 亮着) and 〇 → 零 (the same spoken digit). 两 and 二 are
// not folded: they are different words, and numerals here always use 二.
func NormalizeZh(s string) []string {
	s = hanzi.ToSimplified(foldWidth(s))
	var toks []string
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r >= '0' && r <= '9':
			var num []string
			num, n = zhNumber(s[i:])
			toks = append(toks, num...)
		case perChar(r):
			if f, ok := zhFold[r]; ok {
				r = f
			}
			toks = append(toks, string(r))
		case unicode.IsLetter(r):
			var w string
			w, n = letterWord(s[i:])
			toks = append(toks, w)
		}
		i += n
	}
	return toks
}

var zhFold = map[rune]rune{'著': '着', '〇': '零'}

// CER returns the character-level edit between ref and hyp after NormalizeZh:
// Counts.Ref is the number of reference tokens (characters, plus whole words
// of Latin script) and Counts.Rate the character error rate.
func CER(ref, hyp string) Counts {
	return align(NormalizeZh(ref), NormalizeZh(hyp))
}

// CJK reports whether s holds a Han, kana or Hangul character: text that has
// no spaces between words, where a word error rate counts whole sentences.
func CJK(s string) bool {
	for _, r := range s {
		if perChar(r) {
			return true
		}
	}
	return false
}

// ErrorRate scores hyp against ref the way the language is written: by
// characters (CER) for Chinese, Cantonese, Japanese and Korean, by words
// (Compare) otherwise. lang is a BCP 47 or Whisper code ("zh", "zh-TW",
// "yue", "ja"); if it is empty or "multi" the reference text decides, via CJK.
func ErrorRate(lang, ref, hyp string) Counts {
	if byChar(lang) || ((lang == "" || strings.EqualFold(lang, "multi")) && CJK(ref)) {
		return CER(ref, hyp)
	}
	return Compare(ref, hyp)
}

// UsesCER reports whether ErrorRate scores lang by characters whatever the reference.
func UsesCER(lang string) bool { return byChar(lang) }

func byChar(lang string) bool {
	base, _, _ := strings.Cut(strings.ToLower(lang), "-")
	base, _, _ = strings.Cut(base, "_")
	switch base {
	case "zh", "cmn", "yue", "wuu", "ja", "ko":
		return true
	}
	return false
}

// AddZh is Add scored by CER: each utterance is compared with CER and the
// corpus rate becomes total character errors over total reference tokens.
// Do not mix Add and AddZh in one Corpus; their units differ.
func (c *Corpus) AddZh(ref, hyp string) Counts {
	return c.add(CER(ref, hyp))
}

func perChar(r rune) bool {
	return r >= 0x1100 && (unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul))
}

// foldWidth maps full-width ASCII to ASCII and U+3000 to a space, the part of
// NFKC that Chinese text needs: ２６ must read as 26, ＡＩ as ai.
func foldWidth(s string) string {
	if !strings.ContainsFunc(s, isWide) {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 0xFF01 && r <= 0xFF5E:
			return r - 0xFEE0
		case r == 0x3000:
			return ' '
		}
		return r
	}, s)
}

func isWide(r rune) bool { return r >= 0xFF01 && r <= 0xFF5E || r == 0x3000 }

// letterWord reads one word of non-CJK letters from the start of s; combining
// marks stay with their letter and an apostrophe between letters is dropped.
func letterWord(s string) (word string, n int) {
	var b strings.Builder
	for n < len(s) {
		r, size := utf8.DecodeRuneInString(s[n:])
		switch {
		case unicode.IsLetter(r) && !perChar(r), unicode.IsMark(r) && n > 0:
			b.WriteRune(r)
		case (r == '\'' || r == '’') && n > 0 && n+size < len(s):
			next, _ := utf8.DecodeRuneInString(s[n+size:])
			if !unicode.IsLetter(next) || perChar(next) {
				return strings.ToLower(b.String()), n
			}
		default:
			return strings.ToLower(b.String()), n
		}
		n += size
	}
	return strings.ToLower(b.String()), n
}
