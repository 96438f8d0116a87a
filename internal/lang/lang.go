package lang

import (
	"fmt"
	"slices"
	"strings"
)

// Codes are whisper's language codes in the order of its language tokens: the code at
// index i is the token <|code|> = <|en|> + i. Multilingual models up to large-v2 know
// the first 99; large-v3 adds "yue" (Cantonese).
var Codes = []string{
	"en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv",
	"it", "id", "hi", "fi", "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no",
	"th", "ur", "hr", "bg", "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn", "sr",
	"az", "sl", "kn", "et", "mk", "br", "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw",
	"gl", "mr", "pa", "si", "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu",
	"am", "yi", "lo", "uz", "fo", "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl",
	"mg", "as", "tt", "haw", "ln", "ha", "ba", "jw", "su", "yue",
}

// ModelLanguages is how many of Codes a multilingual model of 99 languages knows (all
// but "yue").
const ModelLanguages = 99

// aliases are the ISO 639 codes whisper spells differently (its tokenizer keeps the
// older or shorter ones), and the Deepgram name of one of them.
var aliases = map[string]string{
	"jv":  "jw", // Javanese
	"iw":  "he", // Hebrew, the pre-1989 code
	"nb":  "no", // Norwegian Bokmål
	"fil": "tl", // Filipino → whisper's Tagalog
	"in":  "id", // Indonesian, the pre-1989 code
}

// Script is how Chinese text is written.
type Script string

const (
	Simplified  Script = "Hans"
	Traditional Script = "Hant"
)

// Multi is the language= value that asks for the language of each utterance to be
// found (Deepgram's multilingual mode).
const Multi = "multi"

// Spec is a client's language request, resolved.
type Spec struct {
	// Code is whisper's language code; empty when Detect.
	Code string
	// Detect asks whisper to find the language (of each utterance on a live stream).
	Detect bool
	// Among, when set with Detect, are the only languages detection may choose (whisper
	// codes, in the order given, without duplicates): Deepgram's detect_language=en&
	// detect_language=zh. Empty: any language the model knows.
	Among []string
	// Script is the script Chinese text is given in: Simplified unless the tag asks
	// for Traditional. Empty for other languages.
	Script Script
}

// MaxAmong bounds the languages of a restricted detection.
const MaxAmong = 16

// Parse reads a language= value. "" means English (Deepgram's default). The tag's
// letter case does not matter; "_" is taken for "-". A comma-separated list of two or
// more tags (what Among writes) asks for detection among those languages.
func Parse(tag string) (Spec, error) {
	tag = strings.TrimSpace(tag)
	if tag == "" {
		return Spec{Code: "en"}, nil
	}
	if strings.EqualFold(tag, Multi) {
		return Spec{Detect: true, Script: Simplified}, nil
	}
	if strings.Contains(tag, ",") {
		return parseAmong(strings.Split(tag, ","))
	}
	parts := strings.FieldsFunc(strings.ToLower(tag), func(r rune) bool { return r == '-' || r == '_' })
	if len(parts) == 0 || len(parts) > 4 {
		return Spec{}, fmt.Errorf("%q is not a language tag: give a BCP-47 tag such as en, en-US, zh-CN or zh-TW, or multi", tag)
	}
	code := parts[0]
	if a, ok := aliases[code]; ok {
		code = a
	}
	if !slices.Contains(Codes, code) {
		return Spec{}, fmt.Errorf("%q: no model here knows the language %q (whisper's 99 languages; multi finds it)", tag, parts[0])
	}
	s := Spec{Code: code}
	if code == "zh" || code == "yue" {
		s.Script = Simplified
		if code == "yue" {
			s.Script = Traditional // Cantonese is written in Traditional characters where it is spoken
		}
		for _, p := range parts[1:] {
			switch p {
			case "hant", "tw", "hk", "mo":
				s.Script = Traditional
			case "hans", "cn", "sg", "my":
				s.Script = Simplified
			}
		}
	}
	return s, nil
}

// Among is the language= value that restricts detection to tags (BCP-47 tags, at least
// two, at most MaxAmong, none of them multi): the tags joined with commas, which Parse
// reads back. Tags of one language (en, en-GB) are that language, without detection:
// the first tag.
func Among(tags []string) (string, error) {
	s, err := parseAmong(tags)
	if err != nil {
		return "", err
	}
	if !s.Detect {
		return tags[0], nil
	}
	return strings.Join(tags, ","), nil
}

func parseAmong(tags []string) (Spec, error) {
	if len(tags) > MaxAmong {
		return Spec{}, fmt.Errorf("%d languages to detect among: give at most %d", len(tags), MaxAmong)
	}
	s := Spec{Detect: true}
	for _, t := range tags {
		if strings.TrimSpace(t) == "" || strings.Contains(t, ",") {
			return Spec{}, fmt.Errorf("%q is not a list of language tags: give tags such as en and zh-CN, each once", strings.Join(tags, ","))
		}
		one, err := Parse(t)
		if err != nil {
			return Spec{}, err
		}
		if one.Detect {
			return Spec{}, fmt.Errorf("%q among the languages to detect: list languages (en, zh-CN, …), or ask for multi alone", t)
		}
		if !slices.Contains(s.Among, one.Code) {
			s.Among = append(s.Among, one.Code)
		}
		if s.Script == "" {
			s.Script = one.Script // the first Chinese tag decides the script
		}
	}
	if len(s.Among) == 1 {
		return Spec{Code: s.Among[0], Script: s.Script}, nil
	}
	return s, nil
}

// Index returns code's position in Codes (whisper's language id), or −1.
func Index(code string) int { return slices.Index(Codes, code) }

// Check says whether a model can serve s: an English-only model (tiny.en, base.en, …)
// serves English only, without detection; a multilingual model serves its first
// languages of Codes (ModelLanguages, or 100 for large-v3). model names the model in
// the error.
func (s Spec) Check(model string, multilingual bool, languages int) error {
	switch {
	case !multilingual && s.Detect:
		return fmt.Errorf("model %s knows English only and cannot detect a language: choose a multilingual model (e.g. base) or language=en", model)
	case !multilingual && s.Code != "en":
		return fmt.Errorf("model %s knows English only, not %q: choose a multilingual model (e.g. base)", model, s.Code)
	case multilingual && !s.Detect && Index(s.Code) >= languages:
		return fmt.Errorf("model %s does not know %q (it has %d languages)", model, s.Code, languages)
	}
	for _, c := range s.Among {
		if Index(c) >= languages {
			return fmt.Errorf("model %s does not know %q (it has %d languages), so cannot detect it", model, c, languages)
		}
	}
	return nil
}

// Wide reports whether text in s's language may be written without spaces (Chinese,
// Japanese, Cantonese) or is not known yet (Detect): it takes more tokens per second.
func (s Spec) Wide() bool {
	return s.Detect || s.Code == "zh" || s.Code == "ja" || s.Code == "yue"
}
