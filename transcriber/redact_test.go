package transcriber

import (
	"errors"
	"strings"
	"testing"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/internal/bus"
)

func TestRedactText(t *testing.T) {
	cases := []struct {
		name  string
		kinds []string
		in    string
		want  string
	}{
		{"spoken card", []string{"pci"},
			"My card is four one one one one one one one one one one one one one one one, thanks.",
			"My card is [REDACTED_PCI], thanks."},
		{"written card groups", []string{"pci"},
			"Card number 4111 1111 1111 1111 expires soon.",
			"Card number [REDACTED_PCI] expires soon."},
		{"card with dashes", []string{"pci"},
			"It is 4111-1111-1111-1111.", "It is [REDACTED_PCI]."},
		{"card mixed spoken and written", []string{"pci"},
			"number 4111 one one one one 1111 one one one one", "number [REDACTED_PCI]"},
		{"short number is not a card", []string{"pci"},
			"I have 3 cats and 42 dogs.", "I have 3 cats and 42 dogs."},
		{"numbers three digits", []string{"numbers"},
			"Account 12345 and room 7.", "Account [REDACTED_NUMBER] and room 7."},
		{"true means numbers", []string{"true"},
			"code one two three", "code [REDACTED_NUMBER]"},
		{"spoken tens", []string{"numbers"},
			"born in nineteen eighty four ok", "born in [REDACTED_NUMBER] ok"},
		{"spoken email", []string{"email"},
			"Write to john dot smith at example dot com please.",
			"Write to [REDACTED_EMAIL] please."},
		{"spoken email at end", []string{"email"},
			"it is jane at mail dot example dot org.", "it is [REDACTED_EMAIL]."},
		{"written email", []string{"email"},
			"Mail john.smith@example.com, or call.", "Mail [REDACTED_EMAIL], or call."},
		{"spoken local, written domain", []string{"email"},
			"reach me at bob at example.com today", "reach me at [REDACTED_EMAIL] today"},
		{"at without domain is not an email", []string{"email"},
			"look at the sky", "look at the sky"},
		{"written phone", []string{"phone"},
			"Call (555) 123-4567 now.", "Call [REDACTED_PHONE] now."},
		{"international phone", []string{"phone"},
			"Call +1 555 123 4567.", "Call [REDACTED_PHONE]."},
		{"spoken phone", []string{"phone"},
			"call five five five one two three four five six seven", "call [REDACTED_PHONE]"},
		{"spoken phone with oh and dash", []string{"phone"},
			"call five oh five dash one two three four five six seven", "call [REDACTED_PHONE]"},
		{"card beats phone", []string{"phone", "pci"},
			"4111 1111 1111 1111 or 555-1234", "[REDACTED_PCI] or [REDACTED_PHONE]"},
		{"oh alone is not a number", []string{"numbers"},
			"oh oh oh", "oh oh oh"},
		{"nothing requested", nil, "4111 1111 1111 1111", "4111 1111 1111 1111"},
		{"false is nothing", []string{"false"}, "4111 1111 1111 1111", "4111 1111 1111 1111"},
		{"all kinds", []string{"pci", "numbers", "email", "phone"},
			"card 4111111111111111 mail a@b.io phone 555 123 4567 pin 1234",
			"card [REDACTED_PCI] mail [REDACTED_EMAIL] phone [REDACTED_PHONE] pin [REDACTED_NUMBER]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, _, err := Redact(c.in, nil, c.kinds)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("Redact(%q, %v)\n got %q\nwant %q", c.in, c.kinds, got, c.want)
			}
		})
	}
}

// wordsOf builds words the way the worker does (one per token, 0.5 s each).
func wordsOf(text string) []bus.Word {
	var out []bus.Word
	for i, f := range strings.Fields(text) {
		out = append(out, bus.Word{Word: strings.ToLower(strings.Trim(f, ".,?!")), Punctuated: f,
			Start: float64(i) * 0.5, End: float64(i)*0.5 + 0.4, Confidence: 0.9 - float64(i)*0.01})
	}
	return out
}

func TestRedactWordsKeepTimings(t *testing.T) {
	text := "My email is john dot smith at example dot com and card four one one one one one one one one one one one one one one one."
	words := wordsOf(text)
	gotText, got, err := Redact(text, words, []string{"pci", "email"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "My email is [REDACTED_EMAIL] and card [REDACTED_PCI]."; gotText != want {
		t.Fatalf("text %q, want %q", gotText, want)
	}
	var joined []string
	for _, w := range got {
		joined = append(joined, w.Punctuated)
	}
	if strings.Join(joined, " ") != gotText {
		t.Fatalf("words %q differ from text %q", joined, gotText)
	}
	// "john" is word 3, "com" word 9: the redacted word spans their times.
	email := got[3]
	if email.Word != "[REDACTED_EMAIL]" || email.Start != words[3].Start || email.End != words[9].End {
		t.Fatalf("email word %+v, want start %v end %v", email, words[3].Start, words[9].End)
	}
	if email.Confidence != words[9].Confidence {
		t.Fatalf("confidence %v, want the lowest %v", email.Confidence, words[9].Confidence)
	}
	card := got[len(got)-1]
	if card.Punctuated != "[REDACTED_PCI]." || card.End != words[len(words)-1].End {
		t.Fatalf("card word %+v", card)
	}
	for _, w := range got {
		for _, secret := range []string{"john", "smith", "example", "four"} {
			if strings.Contains(strings.ToLower(w.Word+w.Punctuated), secret) {
				t.Fatalf("word %+v still holds %q", w, secret)
			}
		}
	}
	if words[3].Word != "john" {
		t.Fatal("Redact changed its input")
	}
}

func TestRedactUnknownKind(t *testing.T) {
	for _, kinds := range [][]string{{"ssn"}, {"pci", "bogus"}, {"PII"}} {
		err := ValidRedaction(kinds)
		if !errors.Is(err, ErrUnknownRedaction) {
			t.Fatalf("ValidRedaction(%v) = %v, want ErrUnknownRedaction", kinds, err)
		}
		if !strings.Contains(err.Error(), "pci, numbers") {
			t.Fatalf("error %q does not list the valid redactions", err)
		}
		if _, _, err := Redact("x", nil, kinds); !errors.Is(err, ErrUnknownRedaction) {
			t.Fatalf("Redact accepted %v", kinds)
		}
	}
	if err := ValidRedaction([]string{"PCI", " numbers ", "email", "phone", "true", "false"}); err != nil {
		t.Fatal(err)
	}
}

func FuzzRedact(f *testing.F) {
	f.Add("four one one one 4111 1111 john dot smith at example dot com (555) 123-4567", "pci,email,phone,numbers")
	f.Add("at at dot dot dash", "email,phone")
	f.Fuzz(func(t *testing.T, text, kinds string) {
		out, words, err := Redact(text, wordsOf(text), strings.Split(kinds, ","))
		if err != nil {
			return
		}
		if len(out) > len(text)+20*len(strings.Fields(text))+1 {
			t.Fatalf("output grew: %q → %q", text, out)
		}
		for i := 1; i < len(words); i++ {
			if words[i].Start < words[i-1].Start {
				t.Fatalf("word times out of order: %+v", words)
			}
		}
	})
}

// TestRedactionNamesMatchTheGateway: every redact= value the gateway accepts at
// negotiation is one the worker implements, and the reverse for the documented names.
func TestRedactionNamesMatchTheGateway(t *testing.T) {
	for name := range wire.KnownRedactions {
		if err := ValidRedaction([]string{name}); err != nil {
			t.Errorf("gateway accepts redact=%s but the worker refuses it: %v", name, err)
		}
	}
	for _, name := range []string{RedactPCI, RedactNumbers, RedactEmail, RedactPhone} {
		if !wire.KnownRedactions[name] {
			t.Errorf("worker implements redact=%s but the gateway refuses it", name)
		}
	}
}
