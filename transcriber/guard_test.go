package transcriber

import "testing"

func TestGuardText(t *testing.T) {
	confident := func(s string) Hypothesis { return Hypothesis{Text: s, AvgLogprob: -0.2, NoSpeechProb: 0.01} }
	unsure := func(s string) Hypothesis { return Hypothesis{Text: s, AvgLogprob: -0.9, NoSpeechProb: 0.3} }
	tests := []struct {
		name   string
		h      Hypothesis
		speech float64
		want   string
		why    string
	}{
		{"real speech passes", confident(" And so, my fellow Americans."), 3, "And so, my fellow Americans.", guardNone},
		{"no speech and low logprob dropped", Hypothesis{Text: "Hello there", NoSpeechProb: 0.7, AvgLogprob: -1.2}, 2, "", guardNoSpeech},
		{"no speech but confident kept", Hypothesis{Text: "Hello there", NoSpeechProb: 0.7, AvgLogprob: -0.3}, 2, "Hello there", guardNone},
		{"thanks for watching always dropped", confident("Thanks for watching!"), 3, "", guardBlocklist},
		{"subtitles by dropped", confident("Subtitles by the Amara.org community"), 3, "", guardBlocklist},
		{"thank you low confidence dropped", unsure("Thank you."), 2, "", guardBlocklist},
		{"thank you on very short speech dropped", confident("Thank you."), 0.3, "", guardBlocklist},
		{"thank you confident kept", confident("Thank you."), 1.2, "Thank you.", guardNone},
		{"you low confidence dropped", unsure("you"), 2, "", guardBlocklist},
		{"thank you inside a sentence kept", unsure("I said thank you to him"), 2, "I said thank you to him", guardNone},
		{"blank audio tag removed", confident("[BLANK_AUDIO]"), 2, "", guardNone},
		{"sound tags removed", confident("(music) Hello [Music] world ♪"), 2, "Hello world", guardNone},
		{"loop truncated at its start", confident("I think that I think that I think that I think that I think that"), 3, "I think that", guardLoop},
		{"word loop truncated", confident("so the the the the the the the"), 3, "so the", guardLoop},
		{"three repeats kept", confident("no no no"), 1, "no no no", guardNone},
		{"sentence said twice at the end truncated", confident("And so am I fellow Americans. And so am I fellow Americans."), 2, "And so am I fellow Americans.", guardLoop},
		{"sentence twice after other words truncated", confident("Ask not. Your country can do for you. Your country can do for you."), 2, "Ask not. Your country can do for you.", guardLoop},
		{"short phrase twice at the end kept", confident("thank you very much thank you very much"), 2, "thank you very much thank you very much", guardNone},
		{"phrase twice before more words kept", confident("I said it to him, I said it to him, and he left."), 3, "I said it to him, I said it to him, and he left.", guardNone},
		{"Chinese phrase twice at the end truncated", confident("他一定在家因为灯亮着他一定在家因为灯亮着"), 3, "他一定在家因为灯亮着", guardLoop},
		{"long phrase loop truncated", confident("the curtain on the left. With finish behind the curtain on the left. With finish behind the curtain on the left. With finish behind"), 5, "the curtain on the left. With finish behind", guardLoop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := guardText(tt.h, tt.speech)
			if got != tt.want || why != tt.why {
				t.Errorf("guardText(%q) = %q, %q; want %q, %q", tt.h.Text, got, why, tt.want, tt.why)
			}
		})
	}
}

func TestGuardCompressionRatio(t *testing.T) {
	// A loop with varying words that the n-gram check does not catch.
	loop := ""
	for i := 0; i < 12; i++ {
		loop += "and then we went to the market and then we came back home "
		if i%2 == 0 {
			loop += "again "
		}
	}
	if r := compressionRatio(loop); r <= maxCompression {
		t.Fatalf("compression ratio %.2f of a loop, want > %.1f", r, maxCompression)
	}
	if got, why := guardText(Hypothesis{Text: loop, AvgLogprob: -0.2}, 10); got != "" || why != guardCompression {
		t.Errorf("loop kept: %q, %q", got, why)
	}
	normal := "Printing, in the only sense with which we are at present concerned, differs from most if not from all the arts and crafts represented in the Exhibition"
	if r := compressionRatio(normal); r > maxCompression {
		t.Errorf("compression ratio %.2f of normal speech", r)
	}
}
