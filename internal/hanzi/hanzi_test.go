package hanzi

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

func TestMain(m *testing.M) {
	if err := Err(); err != nil { // every test below would fail for this reason
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func TestToSimplified(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"這是一個測試", "这是一个测试"},
		{"後來我們去了臺灣", "后来我们去了台湾"},
		{"乾燥的天氣", "干燥的天气"},
		{"Hello 世界 123", "Hello 世界 123"},
		{"Hello 開放中文轉換 123!", "Hello 开放中文转换 123!"},
		{"我在滨海新区有房", "我在滨海新区有房"}, // already simplified
		{"電話：０１２３，好嗎？", "电话：０１２３，好吗？"},
		{"", ""},
	} {
		if got := ToSimplified(tc.in); got != tc.want {
			t.Errorf("ToSimplified(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestToTraditional(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"后来", "後來"},
		{"这是一个测试", "這是一個測試"},
		{"头发", "頭髮"}, // phrase: 发 is 髮 in hair, 發 elsewhere
		{"发展", "發展"},
		{"这里", "這裡"},     // Taiwan standard 裡, not 裏
		{"皇后来了", "皇后來了"}, // phrase 皇后 first, then 来 on its own
		{"头发很干", "頭髮很乾"},
		{"干燥", "乾燥"},
		{"干活", "幹活"},
		{"灯亮着", "燈亮著"}, // 着 is left by the first stage, made 著 by TWVariants
		{"塔什库尔干塔吉克自治县", "塔什庫爾干塔吉克自治縣"}, // an 11-character key: 干 stays in the place name
		{"Hello 世界 123", "Hello 世界 123"},
		{"他说：OK，没问题。", "他說：OK，沒問題。"},
	} {
		if got := ToTraditional(tc.in); got != tc.want {
			t.Errorf("ToTraditional(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Converting text already in the target script changes nothing, so a caller
// can convert every partial without checking which script the model chose.
func TestIdempotent(t *testing.T) {
	for _, s := range []string{
		"欢迎大家来体验达摩院推出的语音识别模型",
		"吃燕窝就选燕之屋，本节目由26年专注高品质燕窝的燕之屋冠名播出。",
		"he must be home now for the light is on他一定在家因为灯亮着",
	} {
		if got := ToSimplified(s); got != s {
			t.Errorf("ToSimplified(simplified %q) = %q", s, got)
		}
		tw := ToTraditional(s)
		if got := ToTraditional(tw); got != tw {
			t.Errorf("ToTraditional twice: %q then %q", tw, got)
		}
	}
}

// Text that needs no change is returned as it is, without allocating, so
// converting every partial of a stream costs nothing when the model already
// wrote the script the client reads.
func TestUnchangedDoesNotAllocate(t *testing.T) {
	for name, tc := range map[string]struct {
		conv func(string) string
		s    string
	}{
		"simplified to simplified":   {ToSimplified, "欢迎大家来体验达摩院推出的语音识别模型"},
		"traditional to traditional": {ToTraditional, "這並不是告別，這是一個篇章的結束，也是新篇章的開始。"},
		"English":                    {ToTraditional, "ask not what your country can do for you"},
	} {
		if got := tc.conv(tc.s); got != tc.s {
			t.Fatalf("%s: %q became %q", name, tc.s, got)
		}
		if n := testing.AllocsPerRun(100, func() { tc.conv(tc.s) }); n != 0 {
			t.Errorf("%s: %v allocations, want 0", name, n)
		}
	}
}

// A round trip is not the identity in general: 著 is a simplified character
// too (著名), so t2s keeps the 著 that s2tw wrote for 着 outside a known phrase.
// Scoring that folds scripts inherits this.
func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"欢迎大家来体验达摩院推出的语音识别模型", "欢迎大家来体验达摩院推出的语音识别模型"},
		{"后来头发干了", "后来头发干了"},
		{"灯亮着", "灯亮著"},
	} {
		if got := ToSimplified(ToTraditional(tc.in)); got != tc.want {
			t.Errorf("ToSimplified(ToTraditional(%q)) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Text with no Chinese in it comes back byte for byte, broken UTF-8 included.
func TestNonChineseUnchanged(t *testing.T) {
	for _, s := range []string{
		"",
		"The quick brown fox, 1,234.5 — “quoted” ¿qué? naïve",
		"emoji 🎤🔊 and symbols ©®™ ½ ①",
		"\xff\xfe broken \xc3 utf-8 \xe4\xb8",
		"Привет, мир. Γειά σου. こんにちは。안녕하세요",
		"\x00\t\r\n",
	} {
		for name, f := range map[string]func(string) string{"ToSimplified": ToSimplified, "ToTraditional": ToTraditional} {
			if got := f(s); got != s {
				t.Errorf("%s(%q) = %q, want it unchanged", name, s, got)
			}
		}
	}
}

// Bytes around the Chinese are kept even when they are not valid UTF-8, not
// turned into U+FFFD.
func TestInvalidBytesAroundChinese(t *testing.T) {
	in := "\xff這是\xc3測試\xe4\xb8"
	want := "\xff这是\xc3测试\xe4\xb8"
	if got := ToSimplified(in); got != want {
		t.Errorf("ToSimplified(%q) = %q, want %q", in, got, want)
	}
}

func TestConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if got := ToSimplified("這是一個測試"); got != "这是一个测试" {
					t.Errorf("concurrent ToSimplified = %q", got)
					return
				}
				if got := ToTraditional("后来"); got != "後來" {
					t.Errorf("concurrent ToTraditional = %q", got)
					return
				}
			}
		})
	}
	wg.Wait()
}

// Every guarantee above rests on what parseDict accepts, so each kind of bad
// line must fail the load, naming the file and the line.
func TestParseDictRejects(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"space for tab", "后\t後\n开户 開戶\n", "line 2: no tab"},
		{"empty value", "后\t\n", "line 1: empty key or first value"},
		{"empty key", "\t後\n", "line 1: empty key or first value"},
		{"value starts with a space", "后\t 後\n", "line 1: empty key or first value"},
		{"ASCII in key", "PN结\tPN接面\n", "line 1: key holds ASCII"},
		{"key without Han", "．\t。\n", "line 1: key holds ASCII or no Han"},
		{"ASCII in value", "后\t後a\n", "line 1: first value holds ASCII"},
		{"invalid UTF-8", "后\t\xff\n", "not valid UTF-8"},
		{"too long", strings.Repeat("后", maxKeyRunes+1) + "\t後\n", "longer than 32"},
		{"empty", "\n\n", "no entries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &stage{repl: map[string]string{}, lens: map[rune]uint32{}}
			_, _, err := parseDict(dictFile{"X.txt", tc.text}, st)
			if err == nil || !strings.Contains(err.Error(), "X.txt") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming X.txt and %q", err, tc.want)
			}
		})
	}
}

// Values after the first are alternatives that OpenCC ignores; a key repeated
// further down wins, which is how the vendored files correct entries (厘米
// stays 厘米, not 釐米); a missing final newline and CRLF are fine.
func TestParseDict(t *testing.T) {
	st := &stage{repl: map[string]string{}, lens: map[rune]uint32{}}
	minLen, maxLen, err := parseDict(dictFile{"X.txt", "干\t幹 乾 干\r\n厘米\t釐米\n\n厘米\t厘米"}, st)
	if err != nil {
		t.Fatal(err)
	}
	if minLen != 1 || maxLen != 2 || st.repl["干"] != "幹" || st.repl["厘米"] != "厘米" || st.lens['厘'] != 0b10 {
		t.Fatalf("min %d max %d repl %q lens %b", minLen, maxLen, st.repl, st.lens['厘'])
	}
	if got := ToTraditional("厘米"); got != "厘米" {
		t.Fatalf("ToTraditional(厘米) = %q: the correction at the end of STPhrases.txt is not used", got)
	}
}

// A stage merges its group into one table and takes the longest match, which
// is OpenCC's rule (first dictionary with a match) only while every key of an
// earlier dictionary is longer than every key of a later one.
func TestStageRefusesOverlappingGroup(t *testing.T) {
	_, err := newStage([]dictFile{{"P.txt", "头发\t頭髮\n"}, {"C.txt", "发\t發\n头发\t頭發\n"}})
	if err == nil || !strings.Contains(err.Error(), "C.txt") {
		t.Fatalf("err = %v, want a refusal naming C.txt", err)
	}
}

func TestLoadFailureIsAnError(t *testing.T) {
	if _, err := load("no-such-config"); err == nil || !strings.Contains(err.Error(), "no-such-config") {
		t.Fatalf("load of an unknown config: err = %v", err)
	}
	broken := func() (*converter, error) { return load("no-such-config") }
	if got := convert("這是", broken); got != "這是" {
		t.Fatalf("convert with a failed load = %q, want the input", got)
	}
}

func FuzzHanzi(f *testing.F) {
	for _, s := range []string{"這是一個測試", "后来", "Hello 世界 123", "\xff這\xc3", "頭髮髮", "乔治．布希", "🎤中", "塔什库尔干塔吉克自治县", "先天下之忧而忧\xff后天下之乐而乐"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		t2sConv, _ := t2s()
		s2twConv, _ := s2tw()
		for name, conv := range map[string]func(string) string{
			"ToSimplified": ToSimplified, "ToTraditional": ToTraditional,
			// without convert's recover, so that a panic fails the fuzzer
			"t2s.apply": t2sConv.apply, "s2tw.apply": s2twConv.apply,
		} {
			got := conv(s)
			if utf8.ValidString(s) && !utf8.ValidString(got) {
				t.Fatalf("%s(%q) = %q: not valid UTF-8", name, s, got)
			}
			if isASCII(s) && got != s {
				t.Fatalf("%s(%q) = %q: ASCII changed", name, s, got)
			}
			if !hasHan(s) && got != s {
				t.Fatalf("%s(%q) = %q: text without Chinese changed", name, s, got)
			}
		}
	})
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// A typical partial of a Chinese stream: about 20 characters, mixed punctuation.
const partial = "這並不是告別，這是一個篇章的結束，也是新篇章的開始。"

// BenchmarkLoad measures what the first call of a process pays.
func BenchmarkLoad(b *testing.B) {
	for _, config := range []string{"t2s", "s2tw"} {
		b.Run(config, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := load(config); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The cost grows with the text: tens of nanoseconds a character (see the
// package doc) and one allocation for the result.
func BenchmarkToSimplified(b *testing.B) {
	for _, n := range []int{1, 8} {
		s := strings.Repeat(partial, n)
		b.Run(fmt.Sprintf("%dchars", utf8.RuneCountInString(s)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ToSimplified(s)
			}
		})
	}
}

func BenchmarkToTraditional(b *testing.B) {
	for _, n := range []int{1, 8} {
		s := ToSimplified(strings.Repeat(partial, n))
		b.Run(fmt.Sprintf("%dchars", utf8.RuneCountInString(s)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ToTraditional(s)
			}
		})
	}
}

func BenchmarkEnglish(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		ToTraditional("and so my fellow Americans, ask not what your country can do for you")
	}
}
