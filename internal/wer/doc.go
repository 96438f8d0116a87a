// Package wer measures word error rate: how far a transcript is from its
// reference, in word substitutions, deletions and insertions per reference
// word, after both are normalised the same way. Tests use it to assert that
// the transcriber gets the words right.
package wer
