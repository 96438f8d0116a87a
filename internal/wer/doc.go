// Package wer measures word error rate: how far a transcript is from its
// reference, in word substitutions, deletions and insertions per reference
// word, after both are normalised the same way. Tests use it to assert that
// the transcriber gets the words right.
//
// Chinese, Japanese and Korean are written without spaces, so a word error
// rate would count a whole sentence as one word. For them CER scores each
// character as a token instead (NormalizeZh: punctuation dropped, traditional
// folded to simplified, digits read as the numerals a speaker says), with
// English words in code-switched speech still counted as words. ErrorRate
// picks one or the other from the language code.
package wer
