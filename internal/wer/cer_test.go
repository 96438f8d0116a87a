package wer

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/earshot-dev/earshot/internal/hanzi"
	"github.com/earshot-dev/earshot/internal/testdata"
)

func TestNormalizeZh(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"我认为跑步最重要的就是给我带来了身体健康。", "我 认 为 跑 步 最 重 要 的 就 是 给 我 带 来 了 身 体 健 康"},
		{"這並不是告別，這是一個篇章的結束", "这 并 不 是 告 别 这 是 一 个 篇 章 的 结 束"},
		{"he must be home now for the light is on他一定在家", "he must be home now for the light is on 他 一 定 在 家"},
		{"ＯＫ，Ｉ don't know！", "ok i dont know"},
		{"Hello　世界", "hello 世 界"},
		{"本节目由26年专注", "本 节 目 由 二 十 六 年 专 注"},
		{"9点开会", "九 点 开 会"},
		{"２０２４年", "二 零 二 四 年"},
		{"二〇二四年", "二 零 二 四 年"},
		{"灯亮著", "灯 亮 着"},
		{"涨了50%，约3.5倍", "涨 了 百 分 之 五 十 约 三 点 五 倍"},
		{"5G手机", "五 g 手 机"},
		{"こんにちは、世界", "こ ん に ち は 世 界"},
		{"안녕 하세요", "안 녕 하 세 요"},
		{"…… —— 🎤 \xff", ""},
	} {
		if got := strings.Join(NormalizeZh(tc.in), " "); got != tc.want {
			t.Errorf("NormalizeZh(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

func TestZhNumber(t *testing.T) {
	for in, want := range map[string]string{
		"0": "零", "7": "七", "10": "十", "12": "十二", "20": "二十", "26": "二十六",
		"105": "一百零五", "110": "一百一十", "200": "二百", "1000": "一千", "1005": "一千零五",
		"1010": "一千零一十", "1050": "一千零五十", "1500": "一千五百", "10000": "一万",
		"10005": "一万零五", "12000": "一万二千", "20000": "二万", "100500": "十万零五百",
		"101000": "十万一千", "120034": "十二万零三十四", "1000000": "一百万",
		"100000000": "一亿", "100005000": "一亿零五千", "100010000": "一亿零一万",
		"1,000": "一千", "1,234,567": "一百二十三万四千五百六十七", "1,23": "一二十三",
		"3.5": "三点五", "0.05": "零点零五", "10.5": "十点五",
		"50%": "百分之五十", "3.5%": "百分之三点五", "100%": "百分之一百",
		"2024年": "二零二四年", "1999年代": "一九九九年代", "26年": "二十六年", "1000年": "一零零零年",
		"2024": "二千零二十四", "2024.5年": "二千零二十四点五年", "1,999年": "一千九百九十九年",
		"007": "零零七", "13800138000": "一百三十八亿零一十三万八千",
		"12345678901234567": "一二三四五六七八九零一二三四五六七",
	} {
		var got []string
		for rest := in; rest != ""; { // what follows the number, commas dropped
			if isDigit(rest[0]) {
				toks, n := zhNumber(rest)
				got = append(got, toks...)
				rest = rest[n:]
				continue
			}
			r, n := utf8.DecodeRuneInString(rest)
			if r != ',' {
				got = append(got, string(r))
			}
			rest = rest[n:]
		}
		if g := strings.Join(got, ""); g != want {
			t.Errorf("%s → %s, want %s", in, g, want)
		}
	}
}

// Real references from the speech-zh dev set, scored against what a
// transcriber could write for the same speech.
func TestCER(t *testing.T) {
	if err := hanzi.Err(); err != nil {
		t.Fatal(err)
	}
	const (
		sponsor = "吃燕窝就选燕之屋，本节目由26年专注高品质燕窝的燕之屋冠名播出。豆奶牛奶换着喝，营养更均衡，本节目由豆本豆豆奶特约播出。"
		code    = "he must be home now for the light is on他一定在家因为灯亮着就是有一种推理或者解释的那种感觉"
		tingt   = "那等我们到海洋馆之后，给妈妈买个礼物，好不好呀？"
	)
	for _, tc := range []struct {
		name     string
		ref, hyp string
		want     Counts
	}{
		{"digits against the spoken numeral", sponsor,
			"吃燕窝就选燕之屋本节目由二十六年专注高品质燕窝的燕之屋冠名播出豆奶牛奶换着喝营养更均衡本节目由豆本豆豆奶特约播出",
			Counts{Ref: 56, Correct: 56}},
		{"traditional hypothesis", sponsor, hanzi.ToTraditional(sponsor), Counts{Ref: 56, Correct: 56}},
		{"traditional code-switch with 著", code, hanzi.ToTraditional(code), Counts{Ref: 36, Correct: 36}},
		{"punctuation and spaces only", tingt, "那等我们到海洋馆之后 给妈妈买个礼物 好不好呀", Counts{Ref: 21, Correct: 21}},
		{"full-width and English case", code, "HE MUST BE HOME NOW, FOR THE LIGHT IS ON。他一定在家，因为灯亮着，就是有一种推理或者解释的那种感觉",
			Counts{Ref: 36, Correct: 36}},
		{"an English word is one token", code, strings.Replace(code, "light", "night", 1), Counts{Ref: 36, Sub: 1, Correct: 35}},
		{"one character substituted", "我想问我在滨海新区有房", "我想问我在滨海新区有方", Counts{Ref: 11, Sub: 1, Correct: 10}},
		{"one character dropped", "广州市房地产中介协会分析", "广州市房地产中介协会分", Counts{Ref: 12, Del: 1, Correct: 11}},
		{"filler inserted", "我认为跑步最重要的就是给我带来了身体健康。", "嗯我认为跑步最重要的就是给我带来了身体健康", Counts{Ref: 20, Ins: 1, Correct: 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CER(tc.ref, tc.hyp); got != tc.want {
				t.Fatalf("CER = %+v, want %+v\nref %q\nhyp %q", got, tc.want, NormalizeZh(tc.ref), NormalizeZh(tc.hyp))
			}
		})
	}
	// The English word error rate of unspaced Chinese counts a sentence as one word.
	if c := Compare("我想问我在滨海新区有房", "我想问我在滨海新区有方"); c.Ref != 1 {
		t.Fatalf("Compare on Chinese: %+v; expected one 'word', which is why CER exists", c)
	}
}

func TestErrorRate(t *testing.T) {
	ref, hyp := "我想问我在滨海新区有房", "我想问我在滨海新区有方"
	for _, lang := range []string{"zh", "zh-TW", "ZH_cn", "yue", "ja", "ko", ""} {
		if got := ErrorRate(lang, ref, hyp); got.Ref != 11 || got.Sub != 1 {
			t.Errorf("ErrorRate(%q) = %+v, want CER with 11 characters", lang, got)
		}
	}
	if got := ErrorRate("en", "ask not what your country", "ask not what our country"); got != (Counts{Ref: 5, Sub: 1, Correct: 4}) {
		t.Errorf("ErrorRate(en) = %+v, want WER", got)
	}
	if got := ErrorRate("", "Press 1 to list users", "press one to list users"); got != (Counts{Ref: 5, Correct: 5}) {
		t.Errorf("ErrorRate(\"\") on English = %+v, want WER", got)
	}
	if !CJK("hello 世界") || CJK("hello world 123") || !CJK("カタカナ") {
		t.Error("CJK misclassifies")
	}
}

func TestCorpusAddZh(t *testing.T) {
	var c Corpus
	c.AddZh("我想问我在滨海新区有房", "我想问我在滨海新区有方")
	c.AddZh("广州市房地产中介协会分析", "廣州市房地產中介協會分析")
	if c.Utterances != 2 || c.Ref != 23 || c.Errors() != 1 {
		t.Fatalf("corpus %+v; want 1 error in 23 characters", c)
	}
}

// Every reference of the Mandarin dev set scores 0 against itself written in
// traditional characters and against itself stripped of punctuation.
func TestSpeechZhReferences(t *testing.T) {
	path, err := testdata.Path("speech-zh", "manifest.tsv")
	if err != nil {
		testdata.Require(t)
	}
	items, err := testdata.LoadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		toks := NormalizeZh(it.Reference)
		if len(toks) == 0 {
			t.Errorf("%s: no tokens", it.ID)
		}
		for _, tok := range toks { // one character, or a lower-case English word
			if r, n := utf8.DecodeRuneInString(tok); unicode.Is(unicode.Han, r) && n != len(tok) ||
				!unicode.Is(unicode.Han, r) && strings.Trim(tok, "abcdefghijklmnopqrstuvwxyz") != "" {
				t.Errorf("%s: token %q", it.ID, tok)
			}
		}
		stripped := strings.Map(func(r rune) rune {
			if unicode.IsPunct(r) {
				return -1
			}
			return r
		}, it.Reference)
		for name, hyp := range map[string]string{"traditional": hanzi.ToTraditional(it.Reference), "unpunctuated": stripped} {
			if c := CER(it.Reference, hyp); c.Errors() != 0 {
				t.Errorf("%s, %s: CER %+v\nref %q\nhyp %q", it.ID, name, c, toks, NormalizeZh(hyp))
			}
		}
	}
}

func FuzzNormalizeZh(f *testing.F) {
	for _, s := range []string{
		"本节目由26年专注", "２０２４年", "1,234.5%", "he must be home now for the light is on他一定在家",
		"這並不是告別", "don't", "a'", "'b", "0.", "1,", "99999999999999999", "é\u0301", "\xff年", "ー", "〇著",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, tok := range NormalizeZh(s) {
			if tok == "" || !utf8.ValidString(tok) {
				t.Fatalf("NormalizeZh(%q): token %q", s, tok)
			}
		}
	})
}

func BenchmarkNormalizeZh(b *testing.B) {
	s := "吃燕窝就选燕之屋，本节目由26年专注高品质燕窝的燕之屋冠名播出。豆奶牛奶换着喝，营养更均衡。"
	b.ReportAllocs()
	for b.Loop() {
		NormalizeZh(s)
	}
}
