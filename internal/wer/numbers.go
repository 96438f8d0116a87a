package wer

import "strconv"

var ones = []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
	"eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"}

var tens = []string{"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"}

// spellNumber writes a whole number below one million as English words ("21" → "twenty
// one", "105" → "one hundred five"), so that a recogniser writing digits and a reference
// spelling the number compare equal. Other tokens are returned as they are. Years and
// decimals are left alone: their spoken forms vary too much to guess.
func spellNumber(w string) []string {
	if len(w) == 0 || len(w) > 6 || (len(w) > 1 && w[0] == '0') {
		return []string{w}
	}
	n, err := strconv.Atoi(w)
	if err != nil || (n >= 1100 && n <= 2099 && len(w) == 4) {
		return []string{w}
	}
	return spell(n)
}

func spell(n int) []string {
	switch {
	case n < 20:
		return []string{ones[n]}
	case n < 100:
		out := []string{tens[n/10]}
		if n%10 != 0 {
			out = append(out, ones[n%10])
		}
		return out
	case n < 1000:
		out := []string{ones[n/100], "hundred"}
		if n%100 != 0 {
			out = append(out, spell(n%100)...)
		}
		return out
	default:
		out := append(spell(n/1000), "thousand")
		if n%1000 != 0 {
			out = append(out, spell(n%1000)...)
		}
		return out
	}
}
