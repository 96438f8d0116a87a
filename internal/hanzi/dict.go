package hanzi

import (
	_ "embed"
	"fmt"
	"math/bits"
	"strings"
	"unicode"
	"unicode/utf8"
)

// OpenCC's dictionaries, copied unchanged but for one line (see data/README.md).
// Embedded as strings, so the parsed tables point into the binary's read-only
// data instead of copying a megabyte of text onto the heap.
var (
	//go:embed data/TSPhrases.txt
	tsPhrases string
	//go:embed data/TSCharacters.txt
	tsCharacters string
	//go:embed data/STPhrases.txt
	stPhrases string
	//go:embed data/STCharacters.txt
	stCharacters string
	//go:embed data/TWVariants.txt
	twVariants string
)

type dictFile struct{ name, text string }

// configs is OpenCC's config/t2s.json and config/s2tw.json: a conversion is a
// chain of stages run one after the other, and a stage is a group of
// dictionaries applied together in one left-to-right pass.
var configs = map[string][][]dictFile{
	"t2s": {
		{{"TSPhrases.txt", tsPhrases}, {"TSCharacters.txt", tsCharacters}},
	},
	"s2tw": {
		{{"STPhrases.txt", stPhrases}, {"STCharacters.txt", stCharacters}},
		{{"TWVariants.txt", twVariants}},
	},
}

// maxKeyRunes bounds a key's length so that a stage can record, per first
// rune, which key lengths exist in one uint32. OpenCC's longest key is 16.
const maxKeyRunes = 32

// A converter is one conversion's chain of stages. It is read-only once
// built, so any number of goroutines may use it at once.
type converter struct{ stages []*stage }

// A stage maps every key of its dictionaries to the key's preferred
// replacement (the first value on its line) and finds, at each position, the
// longest key that starts there.
type stage struct {
	repl map[string]string
	// lens has bit k-1 set for rune r if some key of k runes starts with r, so
	// that matching probes only lengths that exist, and runes that start no
	// key cost one lookup.
	lens map[rune]uint32
}

func (c *converter) apply(s string) string {
	for _, st := range c.stages {
		s = st.apply(s)
	}
	return s
}

// apply replaces, left to right, the longest key that starts at each position
// by its value and copies every other byte as it is; it allocates only if a
// replacement differs from its key. Keys hold no ASCII and are valid UTF-8
// (checked by parseDict), so a match never spans ASCII or a broken byte and
// those are copied through unchanged.
func (st *stage) apply(s string) string {
	var (
		b    strings.Builder
		done int                  // s[:done] has been written to b; 0 while nothing changed
		ends [maxKeyRunes + 1]int // ends[k]: where the k-th rune from i ends
	)
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		mask := st.lens[r]
		if n == 1 || mask == 0 {
			i += n
			continue
		}
		k := 0
		for j, want := i, bits.Len32(mask); k < want && j < len(s) && s[j] >= utf8.RuneSelf; {
			_, m := utf8.DecodeRuneInString(s[j:])
			if m == 1 {
				break
			}
			j += m
			k++
			ends[k] = j
		}
		next := i + n // no key starts here: copy the rune
		for ; k > 0; k-- {
			if mask&(1<<(k-1)) == 0 {
				continue
			}
			key := s[i:ends[k]]
			v, ok := st.repl[key]
			if !ok {
				continue
			}
			next = ends[k]
			if v != key {
				if done == 0 {
					b.Grow(len(s) + len(s)/8)
				}
				b.WriteString(s[done:i])
				b.WriteString(v)
				done = next
			}
			break
		}
		i = next
	}
	if done == 0 {
		return s
	}
	b.WriteString(s[done:])
	return b.String()
}

// newStage merges a group of dictionaries into one table. OpenCC takes, at
// each position, the longest match of the first dictionary in the group that
// has one; a merged table gives the longest match over all of them. The two
// agree when every key of an earlier dictionary is longer than every key of a
// later one (phrases of two or more characters, then single characters), and
// newStage refuses a group where that does not hold.
func newStage(files []dictFile) (*stage, error) {
	lines := 0
	for _, f := range files {
		lines += strings.Count(f.text, "\n") + 1
	}
	st := &stage{repl: make(map[string]string, lines), lens: make(map[rune]uint32)}
	prevMin, prevName := 0, ""
	for _, f := range files {
		minLen, maxLen, err := parseDict(f, st)
		if err != nil {
			return nil, err
		}
		if prevName != "" && maxLen >= prevMin {
			return nil, fmt.Errorf("%s has keys of %d characters and %s of %d: longest match over the group would not be OpenCC's first-dictionary match", f.name, maxLen, prevName, prevMin)
		}
		prevMin, prevName = minLen, f.name
	}
	return st, nil
}

// parseDict adds the lines of an OpenCC text dictionary to st. Each line is a
// key, a tab and one or more values separated by spaces; the first value is
// the one used. A key repeated further down replaces the earlier line (the
// vendored files append corrections at the end). It returns the shortest and
// longest key length in runes. Keys and values point into f.text, which is
// embedded, so they cost no heap.
func parseDict(f dictFile, st *stage) (minLen, maxLen int, err error) {
	if !utf8.ValidString(f.text) {
		return 0, 0, fmt.Errorf("%s: not valid UTF-8", f.name)
	}
	text, line := f.text, 0
	for text != "" {
		var l string
		l, text, _ = strings.Cut(text, "\n")
		line++
		l = strings.TrimSuffix(l, "\r")
		if l == "" {
			continue
		}
		key, vals, ok := strings.Cut(l, "\t")
		val, _, _ := strings.Cut(vals, " ")
		var problem string
		switch {
		case !ok:
			problem = "no tab between key and values"
		case key == "" || val == "":
			problem = "empty key or first value"
		case !validKey(key):
			problem = "key holds ASCII or no Han character"
		case strings.ContainsFunc(val, func(r rune) bool { return r < utf8.RuneSelf }):
			problem = "first value holds ASCII"
		case utf8.RuneCountInString(key) > maxKeyRunes:
			problem = fmt.Sprintf("key longer than %d characters", maxKeyRunes)
		}
		if problem != "" {
			return 0, 0, fmt.Errorf("%s line %d: %s: %q", f.name, line, problem, l)
		}
		n := utf8.RuneCountInString(key)
		first, _ := utf8.DecodeRuneInString(key)
		st.repl[key] = val
		st.lens[first] |= 1 << (n - 1)
		if minLen == 0 || n < minLen {
			minLen = n
		}
		maxLen = max(maxLen, n)
	}
	if maxLen == 0 {
		return 0, 0, fmt.Errorf("%s: no entries", f.name)
	}
	return minLen, maxLen, nil
}

// validKey holds for a key with no ASCII and at least one Han character. This
// is what lets convert leave ASCII, broken bytes and text without Chinese
// alone without looking it up.
func validKey(key string) bool {
	han := false
	for _, r := range key {
		if r < utf8.RuneSelf {
			return false
		}
		han = han || unicode.Is(unicode.Han, r)
	}
	return han
}
