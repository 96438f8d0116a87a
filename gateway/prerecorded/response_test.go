package prerecorded

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/internal/bus"
)

func ws(spec ...any) []wire.Word {
	var out []wire.Word
	for i := 0; i < len(spec); i += 3 {
		t := spec[i].(string)
		out = append(out, wire.Word{Word: strings.ToLower(strings.Trim(t, ".,?!")), PunctuatedWord: t,
			Start: spec[i+1].(float64), End: spec[i+2].(float64), Confidence: 0.9})
	}
	return out
}

// TestUtterances: words split at pauses of utt_split or more; ids are stable and
// distinct; confidence is the words' mean.
func TestUtterances(t *testing.T) {
	words := ws("Hello", 0.1, 0.4, "there.", 0.45, 0.9, "How", 1.8, 2.0, "are", 2.05, 2.2, "you?", 2.3, 2.6)
	words[0].Confidence = 0.5
	us := utterances("req1", 0, words, 0.8)
	if len(us) != 2 || us[0].Transcript != "Hello there." || us[1].Transcript != "How are you?" ||
		us[0].Start != 0.1 || us[0].End != 0.9 || us[1].Start != 1.8 || us[1].End != 2.6 {
		t.Fatalf("utterances = %+v", us)
	}
	if us[0].Confidence != 0.7 || us[1].Confidence != 0.9 {
		t.Errorf("confidences %v %v", us[0].Confidence, us[1].Confidence)
	}
	again := utterances("req1", 0, words, 0.8)
	if us[0].ID == us[1].ID || us[0].ID != again[0].ID || len(us[0].ID) != 36 {
		t.Errorf("ids %q %q %q", us[0].ID, us[1].ID, again[0].ID)
	}
	if us := utterances("req1", 0, words, 1.0); len(us) != 1 {
		t.Errorf("utt_split 1.0: %d utterances, want 1", len(us))
	}
	if us := utterances("req1", 0, nil, 0.8); len(us) != 0 {
		t.Errorf("no words: %+v", us)
	}
}

// TestParagraphs: sentences end at . ? !; a long pause starts a new paragraph; the
// transcript has Deepgram's newlines.
func TestParagraphs(t *testing.T) {
	words := ws("Hello", 0.1, 0.4, "there.", 0.45, 0.9, "How", 1.0, 1.2, "are", 1.25, 1.4, "you?", 1.5, 1.8,
		"Fine", 4.0, 4.3, "thanks", 4.35, 4.8)
	p := paragraphs(words, 0.8)
	if len(p.Paragraphs) != 2 || len(p.Paragraphs[0].Sentences) != 2 || len(p.Paragraphs[1].Sentences) != 1 {
		t.Fatalf("paragraphs = %+v", p)
	}
	if p.Transcript != "\nHello there. How are you?\n\nFine thanks" {
		t.Errorf("transcript %q", p.Transcript)
	}
	if p.Paragraphs[0].NumWords != 5 || p.Paragraphs[0].Start != 0.1 || p.Paragraphs[0].End != 1.8 ||
		p.Paragraphs[0].Sentences[1].Text != "How are you?" || p.Paragraphs[0].Sentences[1].Start != 1.0 {
		t.Errorf("first paragraph %+v", p.Paragraphs[0])
	}
	// A monologue without pauses is cut every paragraphSentences sentences.
	var long []any
	for i := 0; i < 2*paragraphSentences+1; i++ {
		long = append(long, "Yes.", float64(i), float64(i)+0.5)
	}
	if p := paragraphs(ws(long...), 0.8); len(p.Paragraphs) != 3 {
		t.Errorf("%d paragraphs for %d sentences", len(p.Paragraphs), 2*paragraphSentences+1)
	}
	// Chinese: no spaces between characters.
	zh := []wire.Word{{PunctuatedWord: "你", Start: 0, End: 0.2}, {PunctuatedWord: "好。", Start: 0.2, End: 0.4},
		{PunctuatedWord: "世", Start: 0.4, End: 0.5}, {PunctuatedWord: "界。", Start: 0.5, End: 0.6},
		{PunctuatedWord: "OK", Start: 0.7, End: 0.8}}
	if p := paragraphs(zh, 0.8); p.Transcript != "\n你好。世界。 OK" {
		t.Errorf("zh transcript %q", p.Transcript)
	}
	if b, _ := json.Marshal(paragraphs(nil, 0.8)); string(b) != `{"transcript":"","paragraphs":[]}` {
		t.Errorf("empty: %s", b)
	}
}

// TestDetectedLanguage: a file's language is the one of most of its finals' audio, with
// the duration-weighted probability; languages lists all, most first; each word gets its
// final's language; finals join without a space between Chinese characters.
func TestDetectedLanguage(t *testing.T) {
	finals := []bus.Result{
		{Start: 3, Duration: 1, Text: "Hello", Language: "en", LanguageConfidence: 0.9,
			Words: []bus.Word{{Word: "hello", Punctuated: "Hello", Start: 3, End: 3.5}}},
		{Start: 0, Duration: 3, Text: "你好", Language: "zh", LanguageConfidence: 0.8,
			Words: []bus.Word{{Word: "你", Start: 0, End: 1}, {Word: "好", Start: 1, End: 2}}},
		{Start: 5, Duration: 1, Text: "再见", Language: "zh", LanguageConfidence: 1.0,
			Words: []bus.Word{{Word: "再", Start: 5, End: 5.5}, {Word: "见", Start: 5.5, End: 6}}},
	}
	alt := assemble(finals)
	lang, conf := detected(finals, &alt)
	if lang != "zh" || conf != 0.85 || strings.Join(alt.Languages, ",") != "zh,en" {
		t.Fatalf("detected %s %.3f, languages %v", lang, conf, alt.Languages)
	}
	var got []string
	for _, w := range alt.Words {
		got = append(got, w.Word+":"+w.Language)
	}
	if strings.Join(got, " ") != "你:zh 好:zh hello:en 再:zh 见:zh" || alt.Transcript != "你好 Hello 再见" {
		t.Errorf("words %v, transcript %q", got, alt.Transcript)
	}
	none := []bus.Result{{Text: "hi", Duration: 1}}
	a := assemble(none)
	if l, c := detected(none, &a); l != "" || c != 0 || a.Languages != nil {
		t.Errorf("no language: %q %v %v", l, c, a.Languages)
	}
}
