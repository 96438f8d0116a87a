package lang

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		tag  string
		want Spec
	}{
		{"", Spec{Code: "en"}},
		{"en", Spec{Code: "en"}},
		{"en-US", Spec{Code: "en"}},
		{"EN_gb", Spec{Code: "en"}},
		{"zh", Spec{Code: "zh", Script: Simplified}},
		{"zh-CN", Spec{Code: "zh", Script: Simplified}},
		{"zh-Hans", Spec{Code: "zh", Script: Simplified}},
		{"zh-TW", Spec{Code: "zh", Script: Traditional}},
		{"zh-HK", Spec{Code: "zh", Script: Traditional}},
		{"zh-Hant-TW", Spec{Code: "zh", Script: Traditional}},
		{"multi", Spec{Detect: true, Script: Simplified}},
		{"MULTI", Spec{Detect: true, Script: Simplified}},
		{"pt-BR", Spec{Code: "pt"}},
		{"jv", Spec{Code: "jw"}},
		{"nb", Spec{Code: "no"}},
		{"es-419", Spec{Code: "es"}},
		{"zh-CN,en", Spec{Detect: true, Among: []string{"zh", "en"}, Script: Simplified}},
		{"en,zh-TW,en-GB", Spec{Detect: true, Among: []string{"en", "zh"}, Script: Traditional}},
		{"en,fr", Spec{Detect: true, Among: []string{"en", "fr"}}},
		{"zh-HK,zh-CN", Spec{Code: "zh", Script: Traditional}}, // one language: no detection
	} {
		got, err := Parse(c.tag)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", c.tag, got, err, c.want)
		}
	}
	for _, bad := range []string{"xx", "english", "-", "zh-a-b-c-d", "klingon-US", "\xff",
		"en,multi", "en,", ",", "en,,zh", "en,xx", strings.Repeat("en,", MaxAmong) + "zh"} {
		if s, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", bad, s)
		}
	}
}

func TestCodes(t *testing.T) {
	if len(Codes) != ModelLanguages+1 || Codes[0] != "en" || Codes[1] != "zh" || Codes[ModelLanguages] != "yue" {
		t.Fatalf("Codes: %d codes, %v…", len(Codes), Codes[:3])
	}
	seen := map[string]bool{}
	for _, c := range Codes {
		if seen[c] {
			t.Errorf("code %q twice", c)
		}
		seen[c] = true
	}
}

func TestCheck(t *testing.T) {
	en, _ := Parse("en-US")
	zh, _ := Parse("zh-CN")
	multi, _ := Parse("multi")
	yue, _ := Parse("yue")
	if err := en.Check("tiny.en", false, 1); err != nil {
		t.Error(err)
	}
	for _, s := range []Spec{zh, multi} {
		if err := s.Check("tiny.en", false, 1); err == nil || !strings.Contains(err.Error(), "English only") {
			t.Errorf("%+v on tiny.en: %v", s, err)
		}
	}
	for _, s := range []Spec{en, zh, multi} {
		if err := s.Check("base", true, ModelLanguages); err != nil {
			t.Error(err)
		}
	}
	if err := yue.Check("base", true, ModelLanguages); err == nil {
		t.Error("yue on a 99-language model accepted")
	}
	if err := yue.Check("large-v3", true, ModelLanguages+1); err != nil {
		t.Error(err)
	}
	among, _ := Parse("en,zh")
	if err := among.Check("tiny.en", false, 1); err == nil {
		t.Error("detection among en,zh accepted on tiny.en")
	}
	if err := among.Check("base", true, ModelLanguages); err != nil {
		t.Error(err)
	}
	withYue, _ := Parse("zh,yue")
	if err := withYue.Check("base", true, ModelLanguages); err == nil || !strings.Contains(err.Error(), "yue") {
		t.Errorf("detection among zh,yue on base: %v", err)
	}
}

func TestAmong(t *testing.T) {
	v, err := Among([]string{"zh-CN", "en-US"})
	if err != nil || v != "zh-CN,en-US" {
		t.Fatalf("Among = %q, %v", v, err)
	}
	if s, err := Parse(v); err != nil || !reflect.DeepEqual(s.Among, []string{"zh", "en"}) {
		t.Fatalf("Parse(Among) = %+v, %v", s, err)
	}
	if v, err := Among([]string{"zh-HK", "zh-CN"}); err != nil || v != "zh-HK" {
		t.Fatalf("Among of one language = %q, %v; want the first tag, no list", v, err)
	}
	for _, bad := range [][]string{{"en", "multi"}, {"en", "x,y"}, {"en", ""}, {"en", "klingon"}} {
		if v, err := Among(bad); err == nil {
			t.Errorf("Among(%q) = %q, want an error", bad, v)
		}
	}
}

func TestWide(t *testing.T) {
	for tag, wide := range map[string]bool{"en-US": false, "zh-CN": true, "fr": false, "multi": true, "ja": true} {
		if s, err := Parse(tag); err != nil || s.Wide() != wide {
			t.Errorf("%s: %+v %v: Wide %v", tag, s, err, s.Wide())
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "en", "zh-TW", "multi", "pt_BR", "x-klingon", "zh-CN,en", "en,en", "en,multi"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tag string) {
		s, err := Parse(tag)
		if err != nil {
			return
		}
		if s.Detect == (s.Code != "") {
			t.Fatalf("Parse(%q) = %+v: exactly one of Code and Detect", tag, s)
		}
		if !s.Detect && Index(s.Code) < 0 {
			t.Fatalf("Parse(%q) = %+v: code not whisper's", tag, s)
		}
		if len(s.Among) == 1 || len(s.Among) > MaxAmong || len(s.Among) > 0 && !s.Detect {
			t.Fatalf("Parse(%q) = %+v: Among holds 2..%d languages, with Detect", tag, s, MaxAmong)
		}
		for i, c := range s.Among {
			if Index(c) < 0 || slices.Index(s.Among, c) != i {
				t.Fatalf("Parse(%q) = %+v: Among has an unknown or repeated code", tag, s)
			}
		}
	})
}
