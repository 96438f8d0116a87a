package wire

import (
	"github.com/earshot-dev/earshot/internal/lang"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// KnownRedactions are the redact= values the workers implement (transcriber.Redact),
// by Deepgram's names; "true" is Deepgram's alias of "numbers".
var KnownRedactions = map[string]bool{"pci": true, "numbers": true, "true": true, "email": true, "phone": true}

// DefaultEndpointingMs is what an absent endpointing parameter means: 0, the server's
// own default (600 ms of silence). Deepgram's default is 10 ms; whisper needs longer
// utterances, so we differ here (docs/api.md).
const DefaultEndpointingMs = 0

// Params are the query parameters of GET /v1/listen after syntax checks. Whether a
// model, encoding or sample rate is actually supported is decided later, by the
// catalog and the audio decoder, which name the parameter in their errors too.
type Params struct {
	Model          string // "" means the server's default model
	Language       string // as given (a BCP-47 tag); lang.Multi with detect_language=true, a list (lang.Among) with detect_language=en&detect_language=zh
	Encoding       string // lower case; "" when absent
	SampleRate     int    // 0 when absent
	Channels       int    // 1 when absent
	Multichannel   bool   // transcribe each channel on its own (otherwise channels are mixed down)
	InterimResults bool
	EndpointingMs  int // -1 when endpointing=false
	UtteranceEndMs int // 0 when absent
	VADEvents      bool
	Punctuate      bool // accepted; whisper output is always punctuated (see docs/api.md)
	SmartFormat    bool // accepted; whisper writes numerals and formats anyway (docs/api.md)
	Numerals       bool // accepted; likewise
	// Keyterms are the terms of keyterm= (Nova-3 style, repeatable) and keywords=
	// (word[:boost]) that decoding is biased towards, in the order given, without
	// duplicates; at most MaxKeyterms, each at most MaxKeytermBytes, MaxKeytermsBytes in
	// all. The worker refuses a list longer than its token budget.
	Keyterms []string
	// Utterances, UttSplit and Paragraphs shape a pre-recorded response (Deepgram's
	// utterances, utt_split in seconds, default 0.8, and paragraphs); live streams
	// accept and ignore them.
	Utterances bool
	UttSplit   float64
	Paragraphs bool
	Redact     []string
	// Resume is the request_id of the stream this connection continues (a client
	// reconnecting after a dropped connection), and ResumeOffsetMs the time in that
	// stream of the first audio this connection sends. Billing counts the audio of both
	// connections once (docs/api.md). Both are empty/0 on a new stream.
	Resume         string
	ResumeOffsetMs int64
	// ResumeRunUpMs is how much of the resent audio the client already has finals for
	// (at most MaxResumeRunUpMs): it is resent as run-up so that the first new word is
	// decoded whole, is not transcribed again, and is not billed again (docs/api.md).
	ResumeRunUpMs int64
	// Ignored lists the names of parameters we do not know, sorted, for logging.
	Ignored []string
}

// Detecting reports whether a stream asked for its language to be found (among all
// the model's languages or among a list).
// Language is normalised by ParseQuery (lang.Multi, or lang.Among's list, which has a
// comma only when it names two languages or more), so a string test is enough here:
// the relay asks for every result.
func (p Params) Detecting() bool {
	return p.Language == lang.Multi || strings.Contains(p.Language, ",")
}

// detectParam reads detect_language: true or false once, or (Deepgram's restricted
// form) the languages to detect among, each given once (detect_language=en&
// detect_language=zh-CN) or comma-separated. It returns the language= value it implies:
// lang.Multi, a list for lang.Parse, one language, or "" for no detection.
func detectParam(vs []string) (string, error) {
	const name = "detect_language"
	if len(vs) == 1 {
		switch strings.ToLower(strings.TrimSpace(vs[0])) {
		case "true", "1":
			return lang.Multi, nil
		case "false", "0", "":
			return "", nil
		}
	}
	var tags []string
	for _, v := range vs {
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			if !validName(t, 35) {
				return "", BadParam(name, "%s is not a language tag: give true, or the languages to detect among (detect_language=en&detect_language=zh-CN)", clip(t))
			}
			if spec, err := lang.Parse(t); err != nil {
				return "", BadParam(name, "%s", err.Error())
			} else if spec.Detect {
				return "", BadParam(name, "%s is not a language: give true, or the languages to detect among", clip(t))
			}
			tags = append(tags, t)
		}
	}
	v, err := lang.Among(tags)
	if err != nil {
		return "", BadParam(name, "%s", err.Error())
	}
	return v, nil
}

// OutputChannels is the number of transcripts the stream produces.
func (p Params) OutputChannels() int {
	if p.Multichannel {
		return p.Channels
	}
	return 1
}

// known lists every parameter ParseQuery reads. "token" carries a credential and is
// read by the authenticator.
var known = map[string]bool{
	"model": true, "language": true, "encoding": true, "sample_rate": true, "channels": true,
	"multichannel": true, "interim_results": true, "endpointing": true, "utterance_end_ms": true,
	"vad_events": true, "punctuate": true, "smart_format": true, "redact": true, "token": true,
	"resume": true, "resume_offset_ms": true, "resume_runup_ms": true, "keyterm": true, "keywords": true, "numerals": true,
	"utterances": true, "utt_split": true, "paragraphs": true, "detect_language": true,
}

// Bounds of keyterm= and keywords= together (Deepgram allows 500 tokens of keyterms;
// whisper's prompt holds 224 tokens, shared with the stream's earlier text: the worker
// allows the terms 150 tokens of its vocabulary).
const (
	MaxKeyterms      = 50
	MaxKeytermBytes  = 64
	MaxKeytermsBytes = 500
	DefaultUttSplit  = 0.8
)

// MaxResumeRunUpMs bounds resume_runup_ms.
const MaxResumeRunUpMs = 1000

// MaxResumeOffsetMs bounds resume_offset_ms: a day of audio.
const MaxResumeOffsetMs = 24 * 3600 * 1000

// ParseQuery parses and checks the query of GET /v1/listen. Errors are *ParamError.
func ParseQuery(q url.Values) (Params, error) {
	p := Params{Channels: 1, EndpointingMs: DefaultEndpointingMs}
	var err error
	one := singleParam(q)
	if p.Model, _, err = one("model"); err != nil {
		return Params{}, err
	}
	if p.Model != "" && !validName(p.Model, 128) {
		return Params{}, BadParam("model", "%s is not a model name", clip(p.Model))
	}
	if p.Language, _, err = one("language"); err != nil {
		return Params{}, err
	}
	if p.Language != "" && !validName(p.Language, 35) {
		return Params{}, BadParam("language", "%s is not a language tag", clip(p.Language))
	}
	if detect, err := detectParam(q["detect_language"]); err != nil {
		return Params{}, err
	} else if detect != "" {
		p.Language = detect // Deepgram: detection wins over a language given beside it
	}
	if spec, err := lang.Parse(p.Language); err != nil {
		return Params{}, BadParam("language", "%s", err.Error())
	} else if spec.Detect && len(spec.Among) == 0 {
		p.Language = lang.Multi
	}
	if p.Encoding, _, err = one("encoding"); err != nil {
		return Params{}, err
	}
	p.Encoding = strings.ToLower(p.Encoding)
	if p.Encoding != "" && !validName(p.Encoding, 32) {
		return Params{}, BadParam("encoding", "%s is not an encoding name", clip(p.Encoding))
	}
	if p.SampleRate, err = intParam(one, "sample_rate", 0, 1, 384000); err != nil {
		return Params{}, err
	}
	if p.Channels, err = intParam(one, "channels", 1, 1, 64); err != nil {
		return Params{}, err
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{
		{"multichannel", &p.Multichannel}, {"interim_results", &p.InterimResults},
		{"vad_events", &p.VADEvents}, {"punctuate", &p.Punctuate}, {"smart_format", &p.SmartFormat},
		{"numerals", &p.Numerals}, {"utterances", &p.Utterances}, {"paragraphs", &p.Paragraphs},
	} {
		if *b.dst, err = boolParam(one, b.name); err != nil {
			return Params{}, err
		}
	}
	if v, ok, err := one("endpointing"); err != nil {
		return Params{}, err
	} else if ok {
		switch strings.ToLower(v) {
		case "false":
			p.EndpointingMs = -1
		case "true":
		default:
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 60000 {
				return Params{}, BadParam("endpointing", "%s: want false, true or milliseconds 0..60000", clip(v))
			}
			p.EndpointingMs = n
		}
	}
	if p.UtteranceEndMs, err = intParam(one, "utterance_end_ms", 0, 0, 60000); err != nil {
		return Params{}, err
	}
	for _, v := range q["redact"] {
		for _, r := range strings.Split(v, ",") {
			r = strings.ToLower(strings.TrimSpace(r))
			switch {
			case r == "" || r == "false":
			case KnownRedactions[r]:
				p.Redact = append(p.Redact, r)
			default:
				return Params{}, BadParam("redact", "%s is not a redaction name: use pci, numbers (or true), email or phone", clip(r))
			}
		}
		if len(p.Redact) > 16 {
			return Params{}, BadParam("redact", "more than 16 values")
		}
	}
	p.UttSplit = DefaultUttSplit
	if v, ok, err := one("utt_split"); err != nil {
		return Params{}, err
	} else if ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || f < 0.1 || f > 30 {
			return Params{}, BadParam("utt_split", "%s: want seconds of pause between 0.1 and 30", clip(v))
		}
		p.UttSplit = f
	}
	if p.Keyterms, err = parseKeyterms(q); err != nil {
		return Params{}, err
	}
	if p.Resume, _, err = one("resume"); err != nil {
		return Params{}, err
	}
	if p.Resume != "" && !validName(p.Resume, 64) {
		return Params{}, BadParam("resume", "%s is not a request_id", clip(p.Resume))
	}
	if v, ok, err := one("resume_offset_ms"); err != nil {
		return Params{}, err
	} else if ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > MaxResumeOffsetMs {
			return Params{}, BadParam("resume_offset_ms", "%s: want milliseconds 0..%d", clip(v), MaxResumeOffsetMs)
		}
		if p.Resume == "" {
			return Params{}, BadParam("resume_offset_ms", "given without resume (the request_id of the stream it continues)")
		}
		p.ResumeOffsetMs = n
	} else if p.Resume != "" {
		return Params{}, BadParam("resume", "given without resume_offset_ms (where in that stream this connection's audio starts)")
	}
	if v, ok, err := one("resume_runup_ms"); err != nil {
		return Params{}, err
	} else if ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > MaxResumeRunUpMs {
			return Params{}, BadParam("resume_runup_ms", "%s: want milliseconds 0..%d", clip(v), MaxResumeRunUpMs)
		}
		if p.Resume == "" {
			return Params{}, BadParam("resume_runup_ms", "given without resume (the request_id of the stream it continues)")
		}
		p.ResumeRunUpMs = n
	}
	for k := range q {
		if !known[k] {
			p.Ignored = append(p.Ignored, clip(k))
			if len(p.Ignored) >= 32 {
				break
			}
		}
	}
	sort.Strings(p.Ignored)
	return p, nil
}

// parseKeyterms reads keyterm= (each value one term, a word or a phrase) and keywords=
// (word or word:boost; the boost must be positive: Earshot biases towards a term or not,
// whatever its size, and cannot suppress one). Terms are trimmed, inner spaces collapsed,
// and a repeat of an earlier term (ignoring case) is dropped.
func parseKeyterms(q url.Values) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	total := 0
	add := func(param, term string) error {
		term = strings.Join(strings.Fields(term), " ")
		switch {
		case term == "":
			return BadParam(param, "an empty term")
		case !utf8.ValidString(term) || strings.IndexFunc(term, func(r rune) bool { return unicode.IsControl(r) }) >= 0:
			return BadParam(param, "%s: a term must be printable UTF-8 text", clip(strconv.Quote(term)))
		case len(term) > MaxKeytermBytes:
			return BadParam(param, "%s is %d bytes; a term may have at most %d", clip(term), len(term), MaxKeytermBytes)
		}
		if seen[strings.ToLower(term)] {
			return nil
		}
		seen[strings.ToLower(term)] = true
		total += len(term)
		out = append(out, term)
		if len(out) > MaxKeyterms {
			return BadParam(param, "more than %d terms (keyterm and keywords together)", MaxKeyterms)
		}
		if total > MaxKeytermsBytes {
			return BadParam(param, "the terms are more than %d bytes together (keyterm and keywords)", MaxKeytermsBytes)
		}
		return nil
	}
	for _, v := range q["keyterm"] {
		if err := add("keyterm", v); err != nil {
			return nil, err
		}
	}
	for _, v := range q["keywords"] {
		term := v
		if i := strings.LastIndexByte(v, ':'); i >= 0 {
			b, err := strconv.ParseFloat(strings.TrimSpace(v[i+1:]), 64)
			switch {
			case err != nil || math.IsNaN(b) || math.IsInf(b, 0):
				return nil, BadParam("keywords", "%s: want word or word:boost with a number", clip(v))
			case b <= 0:
				return nil, BadParam("keywords", "%s: a boost of 0 or below (suppressing a word) is not supported; give a positive boost or use keyterm", clip(v))
			}
			term = v[:i]
		}
		if err := add("keywords", term); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// oneFunc reads a parameter given at most once: its trimmed value and whether it was given.
type oneFunc func(string) (string, bool, error)

// singleParam is the oneFunc of q: a parameter given more than once is a *ParamError.
func singleParam(q url.Values) oneFunc {
	return func(name string) (string, bool, error) {
		vs, ok := q[name]
		if !ok {
			return "", false, nil
		}
		if len(vs) != 1 {
			return "", false, BadParam(name, "given %d times; give it once", len(vs))
		}
		return strings.TrimSpace(vs[0]), true, nil
	}
}

func intParam(one oneFunc, name string, def, lo, hi int) (int, error) {
	v, ok, err := one(name)
	if err != nil || !ok {
		return def, err
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, BadParam(name, "%s is not an integer", clip(v))
	}
	if n < lo || n > hi {
		return 0, BadParam(name, "%d is out of range %d..%d", n, lo, hi)
	}
	return n, nil
}

func boolParam(one oneFunc, name string) (bool, error) {
	v, ok, err := one(name)
	if err != nil || !ok {
		return false, err
	}
	switch strings.ToLower(v) {
	case "true", "1":
		return true, nil
	case "false", "0", "":
		return false, nil
	}
	return false, BadParam(name, "%s: want true or false", clip(v))
}

// validName accepts 1..max characters of [A-Za-z0-9._-].
func validName(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// clip quotes s for an error message, cut to 40 bytes.
func clip(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strconv.Quote(s)
}
