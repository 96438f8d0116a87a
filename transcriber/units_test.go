package transcriber

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestUnits(t *testing.T) {
	for _, c := range []struct {
		text string
		want []string
	}{
		{"And so my Quilter", []string{"And", "so", "my", "Quilter"}},
		{"他一定在家，因为灯亮着。", []string{"他", "一", "定", "在", "家，", "因", "为", "灯", "亮", "着。"}},
		{"He must be home now, 他一定在家", []string{"He", "must", "be", "home", "now,", "他", "一", "定", "在", "家"}},
		{"用GPU跑26年", []string{"用", "GPU", "跑", "26", "年"}},
		{"", nil},
	} {
		got := units(c.text)
		if !slices.Equal(got, c.want) {
			t.Errorf("units(%q) = %q, want %q", c.text, got, c.want)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"And so my Quilter", "And so my Quilter"},
		{"他一定在家，因为灯亮着。", "他一定在家，因为灯亮着。"},
		{"He must be home now, 他一定在家", "He must be home now,他一定在家"},
		{"你好。 Hello world", "你好。Hello world"},
		{"用 GPU 跑", "用GPU跑"},
	} {
		if got := joinUnits(units(c.in)); got != c.want {
			t.Errorf("joinUnits(units(%q)) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzUnits: units never split a character, lose a non-space byte or return an empty
// unit; joining them back gives the text without (some of) its spaces.
func FuzzUnits(f *testing.F) {
	for _, s := range []string{"And so", "他一定在家，因为", "on,他 GPU", "\xe4\xbd", "a\xffb 你"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		us := units(text)
		for _, u := range us {
			if u == "" || strings.ContainsFunc(u, func(r rune) bool { return r == ' ' || r == '\n' || r == '\t' }) {
				t.Fatalf("units(%q): bad unit %q", text, u)
			}
			if utf8.ValidString(text) && !utf8.ValidString(u) {
				t.Fatalf("units(%q): unit %q splits a character", text, u)
			}
		}
		strip := func(s string) string { return strings.Join(strings.Fields(s), "") }
		if got := strip(joinUnits(us)); got != strip(text) {
			t.Fatalf("joinUnits(units(%q)) = %q", text, joinUnits(us))
		}
	})
}
