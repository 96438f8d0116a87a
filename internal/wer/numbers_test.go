package wer

import (
	"strings"
	"testing"
)

func TestDigitsCompareEqualToSpelledNumbers(t *testing.T) {
	for in, want := range map[string]string{
		"10 of clubs":          "ten of clubs",
		"Go forward 21 meters": "go forward twenty one meters",
		"105":                  "one hundred five",
		"3000 people":          "three thousand people",
		"in 1961":              "in 1961",
		"007":                  "007",
	} {
		if got := strings.Join(Normalize(in), " "); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
	if w, _, _ := WER("TEN OF CLUBS", "10 of clubs."); w != 0 {
		t.Fatalf("WER = %v, want 0", w)
	}
}
