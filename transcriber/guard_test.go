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
		{"Amara credit in Chinese dropped", confident("字幕由Amara.org社区提供"), 3, "", guardBlocklist},
		{"Amara credit in traditional dropped", confident("字幕由Amara.org社區提供"), 3, "", guardBlocklist},
		{"Amara credit with spaces dropped", confident("中文字幕由 Amara.org 社群提供"), 3, "", guardBlocklist},
		{"明镜 appeal dropped", confident("请不吝点赞 订阅 转发 打赏支持明镜与点点栏目"), 3, "", guardBlocklist},
		{"明镜 appeal in traditional dropped", confident("請不吝點贊訂閱轉發打賞支持明鏡與點點欄目"), 3, "", guardBlocklist},
		{"谢谢观看 always dropped", confident("谢谢观看"), 3, "", guardBlocklist},
		{"謝謝觀看 always dropped", confident("謝謝觀看！"), 3, "", guardBlocklist},
		{"谢谢大家观看 always dropped", confident("谢谢大家观看。"), 3, "", guardBlocklist},
		{"感谢观看 always dropped", confident("感谢观看"), 3, "", guardBlocklist},
		{"subtitler credit dropped", confident("字幕by索兰娅"), 3, "", guardBlocklist},
		{"YoYo credit dropped", confident("优优独播剧场——YoYo Television Series Exclusive"), 3, "", guardBlocklist},
		{"volunteer credit dropped", confident("中文字幕志愿者 李宗盛"), 3, "", guardBlocklist},
		{"请订阅我的频道 dropped", confident("请订阅我的频道"), 3, "", guardBlocklist},
		{"credit after speech cut", confident("今天的会议就到这里。字幕由Amara.org社区提供"), 3, "今天的会议就到这里。", guardBlocklist},
		{"appeal after speech cut", confident("我们明天再讨论 请不吝点赞 订阅 转发 打赏支持明镜与点点栏目"), 3, "我们明天再讨论", guardBlocklist},
		{"sign-off after speech cut", confident("今天就讲到这里，谢谢观看。"), 3, "今天就讲到这里，", guardBlocklist},
		{"two inventions after speech cut", confident("好的，我们开始吧。谢谢观看 請訂閱我的頻道"), 3, "好的，我们开始吧。", guardBlocklist},
		{"sign-off inside a sentence kept", confident("观看的朋友们说谢谢观看的人很多"), 3, "观看的朋友们说谢谢观看的人很多", guardNone},
		{"谢谢 low confidence dropped", unsure("谢谢。"), 2, "", guardBlocklist},
		{"谢谢大家 on very short speech dropped", confident("谢谢大家"), 0.3, "", guardBlocklist},
		{"谢谢 confident kept", confident("谢谢。"), 1.2, "谢谢。", guardNone},
		{"谢谢大家 in a sentence kept", unsure("我想说谢谢大家的支持"), 2, "我想说谢谢大家的支持", guardNone},
		{"sign-off after a lone bracket cut", confident("我们下次再聊 《谢谢观看》"), 3, "我们下次再聊", guardBlocklist},
		{"Chinese with a lone mark at the end passes", confident("你好 ！"), 3, "你好 ！", guardNone},
		{"real Chinese speech passes", confident("我们今天讨论一下字幕的问题"), 3, "我们今天讨论一下字幕的问题", guardNone},
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
