package transcriber

import (
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/hanzi"
	"github.com/earshot-dev/earshot/internal/lang"
)

// Languages of a session. The client's language= (a BCP-47 tag or "multi", see
// internal/lang) is checked against the model when the session opens: an English-only
// model takes English only; a multilingual one its own languages. With "multi" (and
// detect_language) each utterance's language is found by whisper's detection: its
// first partial detects and the utterance's later partials decode in that language;
// its final detects again over the whole utterance. Detection is one encoder pass and
// one decoder step; the decode that follows reuses that encoder pass (whisper patch
// 0005), so a detecting decode costs about one decoder step more than a plain one. A
// list of languages (lang.Spec.Among: detect_language=zh&detect_language=en) restricts
// the choice to them. Chinese comes out in the script the tag asks for (zh-TW:
// Traditional, else Simplified) whatever whisper wrote: the text is converted before
// the stream compares it with earlier partials, so a decode that switches script does
// not read as a change of words.

// sessionLanguage resolves and checks req's language for model m.
func sessionLanguage(m Model, req bus.SessionRequest) (lang.Spec, error) {
	spec, err := lang.Parse(req.Options.Language)
	if err != nil {
		return lang.Spec{}, &OptionError{"language", err.Error()}
	}
	if lm, ok := m.(Languages); ok {
		n := lm.Languages()
		if err := spec.Check(req.Model, n > 1, n); err != nil {
			return lang.Spec{}, &OptionError{"language", err.Error()}
		}
	}
	return spec, nil
}

// script converts Chinese text (code: the language it was decoded in) to the script
// the session asked for; other text is returned as it is.
func (s *session) script(code, text string) string { return toScript(s.lang, code, text) }

// toScript converts Chinese text (code: the language it was decoded in) to spec's
// script; other text is returned as it is.
func toScript(spec lang.Spec, code, text string) string {
	if code != "zh" && code != "yue" {
		return text
	}
	switch spec.Script {
	case lang.Simplified:
		return hanzi.ToSimplified(text)
	case lang.Traditional:
		return hanzi.ToTraditional(text)
	}
	return text
}
