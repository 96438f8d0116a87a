package transcriber

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/earshot-dev/earshot/internal/bus"
)

// ErrUnknownRedaction means a redact= value names no redaction Earshot knows.
var ErrUnknownRedaction = errors.New("unknown redaction")

// Redaction kinds, by Deepgram's names ("true" is Deepgram's alias of "numbers").
const (
	RedactPCI     = "pci"     // payment card numbers: 13 to 19 digits, spoken or written
	RedactNumbers = "numbers" // any run of three or more digits
	RedactEmail   = "email"   // e-mail addresses, written or spoken ("john dot smith at example dot com")
	RedactPhone   = "phone"   // phone numbers: 7 to 15 digits, spoken or written
)

// redactLabels are the replacements of redacted spans, per kind.
var redactLabels = map[string]string{
	RedactPCI:     "[REDACTED_PCI]",
	RedactNumbers: "[REDACTED_NUMBER]",
	RedactEmail:   "[REDACTED_EMAIL]",
	RedactPhone:   "[REDACTED_PHONE]",
}

const validRedactions = "pci, numbers (or true), email, phone"

// ValidRedaction checks redact= values before a stream or request starts: nil, or an
// error wrapping ErrUnknownRedaction that names the bad value and the valid ones.
func ValidRedaction(kinds []string) error {
	_, err := redactKinds(kinds)
	return err
}

func redactKinds(kinds []string) (map[string]bool, error) {
	set := make(map[string]bool, len(kinds))
	for _, k := range kinds {
		k = strings.ToLower(strings.TrimSpace(k))
		switch k {
		case "", "false":
			continue
		case "true":
			k = RedactNumbers
		}
		if _, ok := redactLabels[k]; !ok {
			if len(k) > 40 {
				k = k[:40] + "…"
			}
			return nil, fmt.Errorf("%w %q: valid redactions are %s", ErrUnknownRedaction, k, validRedactions)
		}
		set[k] = true
	}
	return set, nil
}

// Redact replaces sensitive spans of a final's text and words with a label
// ("[REDACTED_PCI]", "[REDACTED_NUMBER]", "[REDACTED_EMAIL]", "[REDACTED_PHONE]").
// Text and words are scanned independently with the same rules, so that a text that
// is the words joined by spaces gets the same result in both. A redacted run of words
// becomes one word that spans their times (Start of the first, End of the last, the
// lowest confidence). Spoken forms are recognised ("four one one one …", "john dot
// smith at example dot com") as well as written ones ("4111 1111 1111 1111",
// "555-123-4567", "a@b.com"). With several kinds, a span is labelled with the most
// specific kind that matches: email, then pci, then phone, then numbers. Redact never
// changes its arguments; unknown kinds are an error wrapping ErrUnknownRedaction.
func Redact(text string, words []bus.Word, kinds []string) (string, []bus.Word, error) {
	set, err := redactKinds(kinds)
	if err != nil || len(set) == 0 {
		return text, words, err
	}
	toks := strings.Fields(text)
	if spans := findSpans(toks, set); len(spans) > 0 {
		out := make([]string, 0, len(toks))
		i := 0
		for _, s := range spans {
			out = append(out, toks[i:s.from]...)
			out = append(out, redactLabels[s.kind]+trailingPunct(toks[s.to-1]))
			i = s.to
		}
		text = strings.Join(append(out, toks[i:]...), " ")
	}
	if len(words) == 0 {
		return text, words, nil
	}
	wt := make([]string, len(words))
	for i, w := range words {
		wt[i] = w.Punctuated
		if wt[i] == "" {
			wt[i] = w.Word
		}
	}
	spans := findSpans(wt, set)
	if len(spans) == 0 {
		return text, words, nil
	}
	out := make([]bus.Word, 0, len(words))
	i := 0
	for _, s := range spans {
		out = append(out, words[i:s.from]...)
		w := bus.Word{Start: words[s.from].Start, End: words[s.to-1].End, Confidence: words[s.from].Confidence}
		for _, x := range words[s.from:s.to] {
			w.Confidence = min(w.Confidence, x.Confidence)
		}
		w.Word = redactLabels[s.kind]
		w.Punctuated = w.Word + trailingPunct(wt[s.to-1])
		out = append(out, w)
		i = s.to
	}
	return text, append(out, words[i:]...), nil
}

// span is tokens [from, to) to replace with the label of kind.
type span struct {
	from, to int
	kind     string
}

// findSpans returns the non-overlapping spans to redact, in order.
func findSpans(toks []string, set map[string]bool) []span {
	norm := make([]string, len(toks))
	for i, t := range toks {
		norm[i] = normToken(t)
	}
	var spans []span
	for i := 0; i < len(norm); {
		if set[RedactEmail] {
			if to, from, ok := emailAt(norm, i); ok && from == i {
				spans = append(spans, span{from, to, RedactEmail})
				i = to
				continue
			}
		}
		if to, digits := digitRun(norm, i); to > i {
			if k := numberKind(digits, set); k != "" {
				spans = append(spans, span{i, to, k})
			}
			i = to
			continue
		}
		i++
	}
	return spans
}

// numberKind picks the label of a run of n digits among the requested kinds.
func numberKind(n int, set map[string]bool) string {
	switch {
	case set[RedactPCI] && n >= 13 && n <= 19:
		return RedactPCI
	case set[RedactPhone] && n >= 7 && n <= 15:
		return RedactPhone
	case set[RedactNumbers] && n >= 3:
		return RedactNumbers
	}
	return ""
}

// normToken lower-cases t and strips the punctuation around it (keeping what can be
// part of an address or a number inside it).
func normToken(t string) string {
	return strings.Trim(strings.ToLower(t), ",;:!?\"'()[]{}<>+*…")
}

// trailingPunct returns the sentence punctuation that ends t ("." "," "?" ...).
func trailingPunct(t string) string {
	i := len(t)
	for i > 0 && strings.ContainsRune(".,;:!?", rune(t[i-1])) {
		i--
	}
	return t[i:]
}

var (
	unitWords = map[string]int{"zero": 0, "oh": 0, "o": 0, "one": 1, "two": 2, "three": 3, "four": 4,
		"five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}
	teenWords = map[string]bool{"ten": true, "eleven": true, "twelve": true, "thirteen": true, "fourteen": true,
		"fifteen": true, "sixteen": true, "seventeen": true, "eighteen": true, "nineteen": true}
	tensWords = map[string]bool{"twenty": true, "thirty": true, "forty": true, "fifty": true,
		"sixty": true, "seventy": true, "eighty": true, "ninety": true}
	writtenNumber = regexp.MustCompile(`^[0-9][0-9.,/-]*$`)
	emailToken    = regexp.MustCompile(`^[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)+$`)
	namePart      = regexp.MustCompile(`^[a-z0-9][a-z0-9_%+-]*$`)
	domainToken   = regexp.MustCompile(`^[a-z0-9-]+(\.[a-z0-9-]+)+$`)
)

// digitRun returns the end of the run of number tokens starting at i (i when none)
// and how many digits it holds. Spoken digits ("four", "oh"), teens and tens count as
// one and two digits; "forty one" counts two; "dash" and "hyphen" may join groups.
// A run of only "oh"s is not a number.
func digitRun(norm []string, i int) (end, digits int) {
	end = i
	prevTens, real := false, false
	for j := i; j < len(norm); j++ {
		t := strings.TrimRight(norm[j], ".")
		n, isTens := 0, false
		switch u, ok := unitWords[t]; {
		case writtenNumber.MatchString(t):
			for _, c := range t {
				if c >= '0' && c <= '9' {
					n++
				}
			}
		case ok:
			if t == "oh" || t == "o" {
				n = 1
			} else {
				real = true
				n = 1
				if prevTens && u > 0 {
					n = 0
				}
			}
		case teenWords[t]:
			n = 2
		case tensWords[t] || strings.Contains(t, "-") && tensWords[t[:strings.IndexByte(t, '-')]]:
			n, isTens = 2, !strings.Contains(t, "-")
		case (t == "dash" || t == "hyphen") && j > i && j+1 < len(norm):
			if e, _ := digitRun(norm, j+1); e > j+1 {
				prevTens = false
				continue
			}
			return finishRun(i, end, digits, real)
		default:
			return finishRun(i, end, digits, real)
		}
		if n > 0 && (t != "oh" && t != "o") {
			real = true
		}
		digits += n
		prevTens = isTens
		end = j + 1
		if strings.HasSuffix(norm[j], ".") && !writtenNumber.MatchString(norm[j]) {
			break // a sentence ended after this spoken digit
		}
	}
	return finishRun(i, end, digits, real)
}

func finishRun(i, end, digits int, real bool) (int, int) {
	if !real {
		return i, 0
	}
	return end, digits
}

// emailAt finds an address that starts at token i: written ("john@example.com") or
// spoken ("john dot smith at example dot com", "john at example.com"). It returns the
// end of the address and where it starts (i when found).
func emailAt(norm []string, i int) (to, from int, ok bool) {
	t := strings.TrimRight(norm[i], ".")
	if emailToken.MatchString(t) {
		return i + 1, i, true
	}
	// Spoken: local ((dot|underscore) local)* at domain ((dot) domain)+, or a
	// written domain token after "at".
	j := i
	if !localPart(norm[j]) {
		return 0, 0, false
	}
	for j+2 < len(norm) && isJoiner(norm[j+1]) && localPart(norm[j+2]) {
		j += 2
	}
	if j+2 >= len(norm) || norm[j+1] != "at" {
		return 0, 0, false
	}
	k := j + 2
	if d := strings.TrimRight(norm[k], "."); domainToken.MatchString(d) {
		return k + 1, i, true
	}
	if !namePart.MatchString(norm[k]) {
		return 0, 0, false
	}
	dots := 0
	for k+2 < len(norm) && norm[k+1] == "dot" && namePart.MatchString(strings.TrimRight(norm[k+2], ".")) {
		k += 2
		dots++
		if strings.HasSuffix(norm[k], ".") {
			break
		}
	}
	if dots == 0 {
		return 0, 0, false
	}
	return k + 1, i, true
}

func localPart(t string) bool {
	return namePart.MatchString(t) || domainToken.MatchString(t) // "john.smith" written
}

func isJoiner(t string) bool {
	return t == "dot" || t == "underscore" || t == "dash" || t == "hyphen"
}
