package wer

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"And so, my fellow Americans: ask not!", "and so my fellow americans ask not"},
		{"MISTER QUILTER is the apostle", "mr quilter is the apostle"},
		{"Mr. Quilter", "mr quilter"},
		{"Call-Forward on No Answer.", "call forward on no answer"},
		{"don't  won’t", "dont wont"},
		{"Press 1 to list users, 2 to kick", "press one to list users two to kick"},
		{"It costs 3.5 dollars, or 1,000 cents.", "it costs 3.5 dollars or one thousand cents"},
		{"The colour of the theatre is grey", "the color of the theater is gray"},
		{"okay — OK", "ok ok"},
		{"twelve 12", "twelve twelve"},
		{"  ", ""},
		{"Café naïve", "café naïve"},
	} {
		if got := strings.Join(Normalize(tc.in), " "); got != tc.want {
			t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWER(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ref, hyp  string
		wantCount Counts
	}{
		{"identical after normalisation", "Mister Quilter is the apostle.", "mr quilter is the apostle", Counts{Ref: 5, Correct: 5}},
		{"one substitution", "ask not what your country can do", "ask not what our country can do", Counts{Ref: 7, Sub: 1, Correct: 6}},
		{"one deletion", "please enter your number", "please enter number", Counts{Ref: 4, Del: 1, Correct: 3}},
		{"one insertion", "press pound", "press the pound", Counts{Ref: 2, Ins: 1, Correct: 2}},
		{"empty hypothesis", "a b c", "", Counts{Ref: 3, Del: 3}},
		{"empty reference", "", "uh", Counts{Ins: 1}},
		{"both empty", "", "", Counts{}},
		{"ties prefer substitution", "the cat sat on the mat", "the cat sat on mat today", Counts{Ref: 6, Sub: 2, Correct: 4}},
		{"deletion and insertion", "a b c d", "b c d e", Counts{Ref: 4, Del: 1, Ins: 1, Correct: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Compare(tc.ref, tc.hyp)
			if got != tc.wantCount {
				t.Fatalf("Compare = %+v, want %+v", got, tc.wantCount)
			}
			w, errs, n := WER(tc.ref, tc.hyp)
			if errs != got.Errors() || n != got.Ref || w != got.Rate() {
				t.Fatalf("WER = %v %d %d, disagrees with %+v", w, errs, n, got)
			}
		})
	}
	if w, _, _ := WER("", "uh"); w != 1 {
		t.Errorf("empty reference with words: WER %v, want 1", w)
	}
	if w, _, _ := WER("a b", "c d e f"); w != 2 {
		t.Errorf("WER can exceed 1: got %v, want 2", w)
	}
}

// The edit distance equals a plain Levenshtein distance computed independently.
func TestAlignMatchesLevenshtein(t *testing.T) {
	words := []string{"a", "b", "c"}
	gen := func(seed, n int) []string {
		out := make([]string, n)
		for i := range out {
			seed = seed*1103515245 + 12345
			out[i] = words[(seed>>8)&0x7fffffff%3]
		}
		return out
	}
	for s := range 200 {
		r, h := gen(s, s%7), gen(s*31+1, (s/7)%6)
		if got, want := align(r, h).Errors(), lev(r, h); got != want {
			t.Fatalf("%v vs %v: %d errors, Levenshtein %d", r, h, got, want)
		}
	}
}

func lev(a, b []string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+c)
		}
	}
	return d[len(a)][len(b)]
}

func TestCorpus(t *testing.T) {
	var c Corpus
	c.Add("one two three four", "one two three four")
	c.Add("five", "six")
	if c.Utterances != 2 || c.Ref != 5 || c.Errors() != 1 || math.Abs(c.WER()-0.2) > 1e-12 {
		t.Fatalf("corpus %+v, WER %v; want 1 error in 5 words", c, c.WER())
	}
	if !slices.Equal(Normalize("Mr. Quilter"), Normalize("MISTER QUILTER")) {
		t.Fatal("mr/mister not unified")
	}
}
