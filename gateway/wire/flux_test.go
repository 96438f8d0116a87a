package wire

import (
	"errors"
	"math"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/earshot-dev/earshot/internal/lang"
)

func TestParseFluxQuery(t *testing.T) {
	q, _ := url.ParseQuery("model=flux-general-en&encoding=linear16&sample_rate=16000&eot_threshold=0.8" +
		"&eager_eot_threshold=0.5&eot_timeout_ms=3000&keyterm=Earshot&keyterm=turn+taking&mip_opt_out=true&redact=numbers" +
		"&numerals=true&token=t")
	p, err := ParseFluxQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	if p.Model != FluxModelEnglish || p.Encoding != "linear16" || p.SampleRate != 16000 || p.Channels != 1 ||
		p.Turns != (Thresholds{EOTThreshold: 0.8, EagerEOTThreshold: 0.5, EOTTimeoutMs: 3000}) ||
		!reflect.DeepEqual(p.Keyterms, []string{"Earshot", "turn taking"}) || !reflect.DeepEqual(p.Redact, []string{"numbers"}) {
		t.Fatalf("%+v", p)
	}
	if l, err := ParseFluxQuery(url.Values{"eot_timeout_ms": {"60000"}, "eot_threshold": {"1.0"}}); err != nil ||
		l.Turns.EOTTimeoutMs != 60000 || l.Turns.EOTThreshold != 1.0 {
		t.Fatalf("Flux's longest timeout and eot_threshold 1.0: %+v %v", l.Turns, err)
	}
	d, err := ParseFluxQuery(url.Values{"language_hint": {"de"}})
	if err != nil || d.Turns != DefaultThresholds() || d.Language != "de" || !reflect.DeepEqual(d.LanguageHints, []string{"de"}) {
		t.Fatalf("defaults %+v %v", d, err)
	}
	d, err = ParseFluxQuery(url.Values{"language_hint": {"zh-CN", "en"}})
	if err != nil || d.Language != "zh-CN,en" || !d.Detecting() {
		t.Fatalf("two hints: detection among them: %+v %v", d, err)
	}
	if p, err := ParseFluxQuery(url.Values{"eot_threshold": {"1.0"}}); err != nil || p.Turns.EOTThreshold != 1 {
		t.Fatalf("eot_threshold=1.0 (ForceEndTurn only): %+v %v", p, err)
	}
	if p, err := ParseFluxQuery(url.Values{"resume": {"r1"}, "resume_offset_ms": {"1000"}, "resume_turn_index": {"2"}}); err != nil ||
		p.Resume != "r1" || p.ResumeTurnIndex != 2 {
		t.Fatalf("resume_turn_index: %+v %v", p, err)
	}

	for _, c := range []struct{ query, param, says string }{
		{"eot_threshold=0.49", "eot_threshold", "out of range"},
		{"eot_threshold=NaN", "eot_threshold", "not a number"},
		{"eot_threshold=0.7&eot_threshold=0.8", "eot_threshold", "once"},
		{"eager_eot_threshold=0.2", "eager_eot_threshold", "out of range"},
		{"eager_eot_threshold=0", "eager_eot_threshold", "leave it out"},
		{"eot_threshold=0.6&eager_eot_threshold=0.7", "eager_eot_threshold", "above eot_threshold"},
		{"eot_timeout_ms=499", "eot_timeout_ms", "out of range"},
		{"eot_timeout_ms=60001", "eot_timeout_ms", "out of range"},
		{"eot_timeout_ms=1.5", "eot_timeout_ms", "not an integer"},
		{"keywords=Earshot:2", "keywords", "keyterm"},
		{"tag=a", "tag", "not supported"},
		{"multichannel=true", "multichannel", "mono"},
		{"language=en", "language", "language_hint"},
		{"detect_language=true", "detect_language", "language_hint"},
		{"vad_events=true", "vad_events", "StartOfTurn"},
		{"whatever=1", "whatever", "not a /v2/listen parameter"},
		{"language_hint=multi", "language_hint", "detect"},
		{"language_hint=", "language_hint", "not a language"},
		{"language_hint=en&language_hint=multi", "language_hint", "detect"},
		{"redact=pci", "redact", "numbers"},
		{"redact=aggressive_numbers", "redact", "not supported"},
		{"profanity_filter=true", "profanity_filter", "not supported"},
		{"mip_opt_out=maybe", "mip_opt_out", "true or false"},
		{"sample_rate=x", "sample_rate", "not an integer"},
		{"model=a/b", "model", "not a model name"},
		{"keyterm=", "keyterm", "empty"},
		{"resume_turn_index=1", "resume_turn_index", "only with resume"},
		{"resume=r1&resume_offset_ms=0&resume_turn_index=-1", "resume_turn_index", "out of range"},
	} {
		q, _ := url.ParseQuery(c.query)
		_, err := ParseFluxQuery(q)
		var pe *ParamError
		if !errors.As(err, &pe) || pe.Param != c.param || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want param %s saying %q", c.query, err, c.param, c.says)
		}
	}
}

func TestParseFluxControl(t *testing.T) {
	for _, typ := range []string{ControlKeepAlive, ControlCloseStream, ControlForceEndTurn} {
		c, err := ParseFluxControl([]byte(`{"type":"` + typ + `","extra":1}`))
		if err != nil || c.Type != typ || c.Configure != nil {
			t.Fatalf("%s: %+v %v", typ, c, err)
		}
	}
	c, err := ParseFluxControl([]byte(`{"type":"Configure","thresholds":{"eot_threshold":0.9,"eager_eot_threshold":"0.4","eot_timeout_ms":3000},"numerals":true}`))
	if err != nil || c.Configure == nil {
		t.Fatalf("%+v %v", c, err)
	}
	got, err := c.Configure.Apply(DefaultThresholds())
	if err != nil || got != (Thresholds{EOTThreshold: 0.9, EagerEOTThreshold: 0.4, EOTTimeoutMs: 3000}) || c.Configure.HasKeyterms {
		t.Fatalf("applied %+v %v", got, err)
	}
	c, _ = ParseFluxControl([]byte(`{"type":"Configure","thresholds":{"eot_timeout_ms":2000},"keyterms":"Kafka"}`))
	if got, _ := c.Configure.Apply(Thresholds{EOTThreshold: 0.8, EOTTimeoutMs: 5000}); got.EOTThreshold != 0.8 || got.EOTTimeoutMs != 2000 {
		t.Fatalf("partial thresholds %+v", got)
	}
	if !c.Configure.HasKeyterms || !reflect.DeepEqual(c.Configure.Keyterms, []string{"Kafka"}) {
		t.Fatalf("keyterms %+v", c.Configure)
	}
	c, _ = ParseFluxControl([]byte(`{"type":"Configure","thresholds":{"eager_eot_threshold":0}}`))
	if got, err := c.Configure.Apply(Thresholds{EOTThreshold: 0.8, EagerEOTThreshold: 0.5, EOTTimeoutMs: 5000}); err != nil || got.EagerEOTThreshold != 0 {
		t.Fatalf("eager off: %+v %v", got, err)
	}
	c, _ = ParseFluxControl([]byte(`{"type":"Configure","thresholds":{"eot_threshold":0.6}}`))
	if _, err := c.Configure.Apply(Thresholds{EOTThreshold: 0.8, EagerEOTThreshold: 0.7, EOTTimeoutMs: 5000}); err == nil {
		t.Fatal("eot_threshold below the eager threshold accepted")
	}

	for _, c := range []struct {
		msg  string
		want error
	}{
		{`{"type":"Finalize"}`, ErrUnknownControl},
		{`{"type":"Speak"}`, ErrUnknownControl},
		{`[]`, ErrBadControl},
		{`{"type":1}`, ErrBadControl},
		{`{"thresholds":{}}`, ErrBadControl},
		{`{"type":"Configure","thresholds":[0.5]}`, ErrBadControl},
		{`{"type":"Configure","thresholds":{"eot_threshold":"high"}}`, ErrBadControl},
		{`{"type":"Configure","thresholds":{"eot_timeout_ms":1000.5}}`, ErrBadControl},
		{`{"type":"Configure","thresholds":{"eot_thresold":0.5}}`, ErrBadControl},
		{`{"type":"Configure","keyterms":5}`, ErrBadControl},
		{`{"type":"Configure","numerals":"yes"}`, ErrBadControl},
		{`{"type":"Configure","threshold":{"eot_threshold":0.5}}`, ErrBadControl},
		{`{"type":"Configure","thresholds":{"eot_threshold":0.5},"eot_timeout_ms":3000}`, ErrBadControl},
		{`{"type":"Configure","pad":"` + strings.Repeat("x", MaxControlBytes) + `"}`, ErrControlTooLarge},
	} {
		if _, err := ParseFluxControl([]byte(c.msg)); !errors.Is(err, c.want) {
			t.Errorf("%.60s: %v, want %v", c.msg, err, c.want)
		}
	}
}

func FuzzParseFluxQuery(f *testing.F) {
	for _, s := range []string{
		"model=flux-general-en&encoding=linear16&sample_rate=16000&eot_threshold=0.8&eager_eot_threshold=0.5&eot_timeout_ms=3000",
		"model=flux-general-multi&language_hint=de&keyterm=Earshot&mip_opt_out=true",
		"eot_threshold=1.0&redact=numbers&numerals=false", "resume=r1&resume_offset_ms=2000&resume_runup_ms=500",
		"resume=r1&resume_offset_ms=2000&resume_turn_index=3", "resume_turn_index=2", "resume=r1&resume_offset_ms=0&resume_turn_index=-1",
		"tag=x", "eager_eot_threshold=0.9&eot_threshold=0.5", "eot_timeout_ms=1e3", "language_hint=zh-Hant-TW", "language_hint=zh-CN&language_hint=en", "a=1&a=2&;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw)
		p, err := ParseFluxQuery(q)
		if err != nil {
			var pe *ParamError
			if !errors.As(err, &pe) || pe.Param == "" {
				t.Fatalf("error without a parameter name: %v", err)
			}
			return
		}
		if err := p.Turns.Check(); err != nil {
			t.Fatalf("accepted thresholds out of range: %+v: %v", p.Turns, err)
		}
		if p.ResumeTurnIndex < 0 || p.ResumeTurnIndex > MaxResumeTurnIndex || (p.ResumeTurnIndex > 0 && p.Resume == "") {
			t.Fatalf("resume_turn_index %d (resume %q)", p.ResumeTurnIndex, p.Resume)
		}
		if p.Channels != 1 || p.Multichannel || p.InterimResults || len(p.LanguageHints) > lang.MaxAmong {
			t.Fatalf("accepted what /v2 refuses: %+v", p)
		}
		// The hints become a language the worker reads: one language, or detection
		// among at most as many as were given.
		if spec, err := lang.Parse(p.Language); err != nil || len(spec.Among) > len(p.LanguageHints) {
			t.Fatalf("language %q of hints %q: %+v %v", p.Language, p.LanguageHints, spec, err)
		}
		for k := range q {
			if k != "" && !fluxShared[k] && !fluxOwn[k] {
				t.Fatalf("accepted parameter %q", k)
			}
		}
	})
}

func FuzzParseFluxControl(f *testing.F) {
	for _, s := range []string{`{"type":"KeepAlive"}`, `{"type":"CloseStream"}`, `{"type":"ForceEndTurn"}`,
		`{"type":"Configure","thresholds":{"eot_threshold":0.9,"eager_eot_threshold":"0.4","eot_timeout_ms":3000}}`,
		`{"type":"Configure","keyterms":["a","b"],"language_hints":"de","numerals":true}`,
		`{"type":"Configure","thresholds":{"eot_timeout_ms":1e300}}`, `{"type":"Finalize"}`, `{`, `{"type":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseFluxControl(b)
		if err != nil {
			if !errors.Is(err, ErrBadControl) && !errors.Is(err, ErrUnknownControl) && !errors.Is(err, ErrControlTooLarge) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		switch c.Type {
		case ControlKeepAlive, ControlCloseStream, ControlForceEndTurn:
			if c.Configure != nil {
				t.Fatalf("%s with a Configure", c.Type)
			}
		case ControlConfigure:
			if c.Configure == nil {
				t.Fatal("Configure without its values")
			}
			got, err := c.Configure.Apply(DefaultThresholds())
			if err == nil && (got.Check() != nil || math.IsNaN(got.EOTThreshold)) {
				t.Fatalf("applied out of range: %+v", got)
			}
		default:
			t.Fatalf("accepted type %q", c.Type)
		}
	})
}
