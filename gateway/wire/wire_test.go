package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/earshot-dev/earshot/internal/lang"
)

func TestParseControl(t *testing.T) {
	zero := 0
	cases := []struct {
		in   string
		want Control
		err  error
	}{
		{`{"type":"KeepAlive"}`, Control{Type: ControlKeepAlive}, nil},
		{` {"type":"CloseStream","extra":1} `, Control{Type: ControlCloseStream}, nil},
		{`{"type":"Finalize"}`, Control{Type: ControlFinalize}, nil},
		{`{"type":"Finalize","channel":0}`, Control{Type: ControlFinalize, Channel: &zero}, nil},
		{`{"type":"Finalize","channel":"x"}`, Control{}, ErrBadControl},
		{`{"type":"Finalize","channel":-1}`, Control{}, ErrBadControl},
		{`{"type":"Dance"}`, Control{}, ErrUnknownControl},
		{`{"type":5}`, Control{}, ErrBadControl},
		{`{}`, Control{}, ErrBadControl},
		{`[]`, Control{}, ErrBadControl},
		{`not json`, Control{}, ErrBadControl},
		{``, Control{}, ErrBadControl},
		{`{"type":"KeepAlive"`, Control{}, ErrBadControl},
		{`{"type":"KeepAlive","pad":"` + strings.Repeat("x", MaxControlBytes) + `"}`, Control{}, ErrControlTooLarge},
	}
	for _, c := range cases {
		t.Run(c.in[:min(len(c.in), 30)], func(t *testing.T) {
			got, err := ParseControl([]byte(c.in))
			if !errors.Is(err, c.err) || (c.err == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestParseQuery(t *testing.T) {
	p, err := ParseQuery(url.Values{
		"model": {"tiny.en"}, "encoding": {"LINEAR16"}, "sample_rate": {"16000"}, "channels": {"2"},
		"multichannel": {"true"}, "interim_results": {"true"}, "endpointing": {"false"},
		"utterance_end_ms": {"1000"}, "vad_events": {"true"}, "punctuate": {"true"},
		"redact": {"pci", "email,numbers"}, "tag": {"x"}, "token": {"t"},
		"resume": {"0b8e7c1e-5d2a-4c55-9d61-0d6c1f6f7a10"}, "resume_offset_ms": {"4520"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Params{Model: "tiny.en", Encoding: "linear16", SampleRate: 16000, Channels: 2, Multichannel: true,
		InterimResults: true, EndpointingMs: -1, UtteranceEndMs: 1000, VADEvents: true, Punctuate: true,
		Redact: []string{"pci", "email", "numbers"}, Ignored: []string{`"tag"`},
		Resume: "0b8e7c1e-5d2a-4c55-9d61-0d6c1f6f7a10", ResumeOffsetMs: 4520, UttSplit: DefaultUttSplit}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("got %+v\nwant %+v", p, want)
	}
	if p.OutputChannels() != 2 {
		t.Fatal(p.OutputChannels())
	}
	def, err := ParseQuery(url.Values{})
	if err != nil || def.Channels != 1 || def.EndpointingMs != DefaultEndpointingMs || def.OutputChannels() != 1 {
		t.Fatalf("defaults %+v %v", def, err)
	}

	bad := []struct{ q, param string }{
		{"sample_rate=abc", "sample_rate"},
		{"sample_rate=-5", "sample_rate"},
		{"sample_rate=1&sample_rate=2", "sample_rate"},
		{"channels=0", "channels"},
		{"interim_results=maybe", "interim_results"},
		{"endpointing=soon", "endpointing"},
		{"utterance_end_ms=99999999", "utterance_end_ms"},
		{"model=a%20b", "model"},
		{"language=en%20us", "language"},
		{"encoding=lin%2F16", "encoding"},
		{"redact=a*b", "redact"},
		{"resume=abc", "resume"},
		{"resume_offset_ms=10", "resume_offset_ms"},
		{"resume=abc&resume_offset_ms=-1", "resume_offset_ms"},
		{"resume=abc&resume_offset_ms=10&resume_runup_ms=1001", "resume_runup_ms"},
		{"resume_runup_ms=100", "resume_runup_ms"},
		{"resume=abc&resume_offset_ms=99999999999", "resume_offset_ms"},
		{"resume=a%20b&resume_offset_ms=1", "resume"},
		{"language=xx", "language"},
		{"language=klingon-US", "language"},
		{"detect_language=klingon", "detect_language"},
		{"detect_language=en&detect_language=multi", "detect_language"},
		{"detect_language=true&detect_language=zh", "detect_language"},
		{"detect_language=en,,zh", "detect_language"},
		{"detect_language=en%3Bzh", "detect_language"},
		{"detect_language=" + strings.Repeat("en,", lang.MaxAmong) + "zh", "detect_language"},
	}
	for _, b := range bad {
		t.Run(b.q, func(t *testing.T) {
			q, _ := url.ParseQuery(b.q)
			_, err := ParseQuery(q)
			var pe *ParamError
			if !errors.As(err, &pe) || pe.Param != b.param || !errors.Is(err, ErrBadParam) {
				t.Fatalf("err = %v, want a ParamError naming %s", err, b.param)
			}
			if !strings.Contains(err.Error(), b.param) {
				t.Fatalf("message %q does not name %s", err, b.param)
			}
		})
	}
}

// TestLanguageParams: language= takes BCP-47 tags and multi; detect_language=true is
// multi and wins over a language given beside it.
func TestLanguageParams(t *testing.T) {
	for q, want := range map[string]string{
		"language=zh-CN": "zh-CN", "language=MULTI": "multi", "detect_language=true": "multi",
		"detect_language=true&language=en": "multi", "detect_language=false&language=zh-TW": "zh-TW", "": "",
		"detect_language=en&detect_language=zh-CN": "en,zh-CN", "detect_language=zh-TW,en&language=fr": "zh-TW,en",
		"detect_language=en": "en", "detect_language=en,en-GB": "en",
	} {
		v, _ := url.ParseQuery(q)
		p, err := ParseQuery(v)
		if err != nil || p.Language != want || p.Detecting() != (want == "multi" || strings.Contains(want, ",")) {
			t.Errorf("%s: language %q detecting %v, %v; want %q", q, p.Language, p.Detecting(), err, want)
		}
	}
}

func TestResultsJSONShape(t *testing.T) {
	r := Results{Type: TypeResults, ChannelIndex: []int{0, 1}, IsFinal: true,
		Channel:  Channel{Alternatives: []Alternative{{Transcript: "hi", Words: []Word{{Word: "hi", PunctuatedWord: "Hi"}}}}},
		Metadata: ResultMetadata{RequestID: "r", ModelInfo: ModelInfo{Name: "m"}}}
	b, _ := json.Marshal(r)
	for _, k := range []string{`"type":"Results"`, `"channel_index":[0,1]`, `"is_final":true`, `"speech_final":false`,
		`"from_finalize":false`, `"channel":{"alternatives":[{"transcript":"hi"`, `"punctuated_word":"Hi"`,
		`"metadata":{"request_id":"r","model_info":{"name":"m"`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("%s lacks %s", b, k)
		}
	}
	if r.Transcript() != "hi" || (&Results{}).Transcript() != "" {
		t.Fatal("Transcript()")
	}
}

func FuzzParseControl(f *testing.F) {
	for _, s := range []string{`{"type":"KeepAlive"}`, `{"type":"Finalize","channel":1}`, `{"type":"CloseStream"}`,
		`{"type":null}`, `{`, `{"type":"Finalize","channel":1e99}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseControl(b)
		if err != nil {
			if !errors.Is(err, ErrBadControl) && !errors.Is(err, ErrUnknownControl) && !errors.Is(err, ErrControlTooLarge) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		switch c.Type {
		case ControlKeepAlive, ControlFinalize, ControlCloseStream:
		default:
			t.Fatalf("accepted type %q", c.Type)
		}
		if c.Channel != nil && (*c.Channel < 0 || *c.Channel > 255) {
			t.Fatalf("channel %d", *c.Channel)
		}
	})
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"model=tiny.en&encoding=linear16&sample_rate=16000&interim_results=true",
		"endpointing=false&redact=pci&redact=ssn", "channels=2&multichannel=true", "resume=r1&resume_offset_ms=2000", "resume=r1&resume_offset_ms=1500&resume_runup_ms=500", "sample_rate=%zz", "a=1&a=2&;",
		"keyterm=Montreal+Forced+Aligner&keywords=Kubernetes:2&keywords=x:-1", "utterances=true&utt_split=1.5&paragraphs=true&numerals=true", "language=zh-Hant-TW&detect_language=true", "language=multi", "detect_language=zh-CN&detect_language=en", "detect_language=en,fr,zh-TW"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw)
		p, err := ParseQuery(q)
		if err != nil {
			var pe *ParamError
			if !errors.As(err, &pe) || pe.Param == "" {
				t.Fatalf("error without a parameter name: %v", err)
			}
			return
		}
		if p.ResumeRunUpMs < 0 || p.ResumeRunUpMs > MaxResumeRunUpMs || (p.ResumeRunUpMs > 0 && p.Resume == "") {
			t.Fatalf("resume run-up out of range: %+v", p)
		}
		if p.Channels < 1 || p.Channels > 64 || p.SampleRate < 0 || p.EndpointingMs < -1 || p.OutputChannels() < 1 {
			t.Fatalf("out of range: %+v", p)
		}
		if p.Model != "" && !validName(p.Model, 128) {
			t.Fatalf("model %q", p.Model)
		}
		total := 0
		for _, k := range p.Keyterms {
			total += len(k)
			if k == "" || len(k) > MaxKeytermBytes || !utf8.ValidString(k) || strings.TrimSpace(k) != k {
				t.Fatalf("key term %q", k)
			}
		}
		if len(p.Keyterms) > MaxKeyterms || total > MaxKeytermsBytes || p.UttSplit < 0.1 || p.UttSplit > 30 {
			t.Fatalf("out of bounds: %d terms, %d bytes, utt_split %v", len(p.Keyterms), total, p.UttSplit)
		}
	})
}

// TestKeytermParams: keyterm= and keywords= merge into one bounded list; a boost of 0 or
// below, too many terms, too long a term and control characters are refused naming the
// parameter.
func TestKeytermParams(t *testing.T) {
	q := url.Values{"keyterm": {"Montreal Forced  Aligner", "kubernetes"}, "keywords": {"Kubernetes:3", "Siobhan", "Nakamura:1.5"}}
	p, err := ParseQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.Keyterms, "|"); got != "Montreal Forced Aligner|kubernetes|Siobhan|Nakamura" {
		t.Errorf("Keyterms = %q", got)
	}
	if p.UttSplit != DefaultUttSplit || p.Utterances || p.Paragraphs {
		t.Errorf("defaults: %+v", p)
	}
	many := make([]string, MaxKeyterms+1)
	for i := range many {
		many[i] = fmt.Sprintf("t%d", i)
	}
	for _, c := range []struct {
		q     url.Values
		param string
	}{
		{url.Values{"keywords": {"spam:-5"}}, "keywords"},
		{url.Values{"keywords": {"spam:0"}}, "keywords"},
		{url.Values{"keywords": {"spam:lots"}}, "keywords"},
		{url.Values{"keyterm": {"  "}}, "keyterm"},
		{url.Values{"keyterm": {"bad\x00term"}}, "keyterm"},
		{url.Values{"keyterm": {strings.Repeat("x", MaxKeytermBytes+1)}}, "keyterm"},
		{url.Values{"keyterm": many}, "keyterm"},
		{url.Values{"keyterm": {strings.Repeat("a", 60), strings.Repeat("b", 60), strings.Repeat("c", 60), strings.Repeat("d", 60),
			strings.Repeat("e", 60), strings.Repeat("f", 60), strings.Repeat("g", 60), strings.Repeat("h", 60), strings.Repeat("i", 60)}}, "keyterm"},
		{url.Values{"utt_split": {"0"}}, "utt_split"},
		{url.Values{"utt_split": {"NaN"}}, "utt_split"},
	} {
		_, err := ParseQuery(c.q)
		var pe *ParamError
		if !errors.As(err, &pe) || pe.Param != c.param {
			t.Errorf("ParseQuery(%v) = %v, want a %s error", c.q, err, c.param)
		}
	}
}
