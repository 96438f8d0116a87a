package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/earshot-dev/earshot/internal/bus"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/earshot-dev/earshot/internal/lang"
)

// GET /v2/listen speaks Deepgram Flux's turn-taking protocol (docs/api.md,
// "Turn-taking"). Its query, client messages and server messages are here.

// Flux server message types (besides TypeError).
const (
	TypeConnected        = "Connected"
	TypeTurnInfo         = "TurnInfo"
	TypeConfigureSuccess = "ConfigureSuccess"
	TypeConfigureFailure = "ConfigureFailure"
)

// Flux client message types (besides ControlCloseStream and ControlKeepAlive).
const (
	ControlForceEndTurn = "ForceEndTurn"
	ControlConfigure    = "Configure"
)

// Deepgram's Flux model names, accepted as aliases: FluxModelEnglish of the server's
// default model (decoding English), FluxModelMulti of its default multilingual model.
const (
	FluxModelEnglish = "flux-general-en"
	FluxModelMulti   = "flux-general-multi"
)

// End-of-turn bounds and defaults (internal/bus: the workers check the same).
const (
	MinEOTThreshold      = bus.MinEOTThreshold
	MaxEOTThreshold      = bus.MaxEOTThreshold
	MinEagerEOTThreshold = bus.MinEagerEOTThreshold
	MaxEagerEOTThreshold = bus.MaxEagerEOTThreshold
	MinEOTTimeoutMs      = bus.MinEOTTimeoutMs
	MaxEOTTimeoutMs      = bus.MaxEOTTimeoutMs
	DefaultEOTThreshold  = bus.DefaultEOTThreshold
	DefaultEOTTimeoutMs  = bus.DefaultEOTTimeoutMs
)

// Thresholds are a turn-taking stream's end-of-turn knobs.
type Thresholds struct {
	EOTThreshold      float64
	EagerEOTThreshold float64 // 0: no EagerEndOfTurn/TurnResumed events
	EOTTimeoutMs      int
}

// DefaultThresholds are what a stream gets without eot_* parameters.
func DefaultThresholds() Thresholds {
	return Thresholds{EOTThreshold: DefaultEOTThreshold, EOTTimeoutMs: DefaultEOTTimeoutMs}
}

// Check reports the first knob out of range as a *ParamError naming it.
func (t Thresholds) Check() error {
	if param, reason := (bus.TurnOptions{EOTThreshold: t.EOTThreshold, EagerEOTThreshold: t.EagerEOTThreshold,
		EOTTimeoutMs: t.EOTTimeoutMs}).Check(); param != "" {
		return BadParam(param, "%s", reason)
	}
	return nil
}

// FluxParams are the query parameters of GET /v2/listen after syntax checks.
type FluxParams struct {
	// Params holds what /v2 shares with /v1 (model as given, maybe a Flux alias;
	// encoding, sample_rate, keyterm, numerals, redact, resume…), with one channel.
	Params
	Turns Thresholds
	// LanguageHints are the language_hint values: one is the stream's language, several
	// the languages each utterance's detection chooses among (Params.Language is
	// lang.Among of them).
	LanguageHints []string
	// ResumeTurnIndex is the turn_index a resumed connection's first turn gets
	// (resume_turn_index, with resume): the turns of the stream it continues keep
	// counting instead of starting at 0 again.
	ResumeTurnIndex int
}

// MaxResumeTurnIndex bounds resume_turn_index.
const MaxResumeTurnIndex = 1_000_000

// fluxShared are the /v2 parameters whose syntax ParseQuery checks as for /v1.
var fluxShared = map[string]bool{
	"model": true, "encoding": true, "sample_rate": true, "keyterm": true, "numerals": true, "token": true,
	"resume": true, "resume_offset_ms": true, "resume_runup_ms": true,
}

// fluxOwn are the /v2 parameters read here.
var fluxOwn = map[string]bool{
	"eot_threshold": true, "eager_eot_threshold": true, "eot_timeout_ms": true, "language_hint": true,
	"redact": true, "mip_opt_out": true, "profanity_filter": true, "resume_turn_index": true,
}

// fluxRefused explains parameters Deepgram or /v1 know that /v2/listen does not take.
var fluxRefused = map[string]string{
	"tag":              "usage tags are not supported: Earshot reports usage per API key",
	"channels":         "turn-taking streams are mono; mix the audio down (or use /v1/listen with multichannel)",
	"multichannel":     "turn-taking streams are mono; use /v1/listen for multichannel audio",
	"language":         "on /v2/listen the language is given with language_hint",
	"detect_language":  "on /v2/listen a multilingual model without language_hint detects the language",
	"interim_results":  "turn-taking streams send TurnInfo Update events instead of interim results",
	"endpointing":      "turns end by eot_threshold and eot_timeout_ms on /v2/listen",
	"utterance_end_ms": "turns end by eot_threshold and eot_timeout_ms on /v2/listen",
	"vad_events":       "StartOfTurn takes the place of SpeechStarted on /v2/listen",
	"keywords":         "/v2/listen takes keyterm (plain terms, no boosts)",
}

// ParseFluxQuery parses and checks the query of GET /v2/listen. Every parameter it does
// not implement is refused, naming it. Errors are *ParamError.
func ParseFluxQuery(q url.Values) (FluxParams, error) {
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	sort.Strings(names)
	shared := url.Values{}
	for _, k := range names {
		switch {
		case k == "": // "…&=&…": no parameter to refuse
		case fluxShared[k]:
			shared[k] = q[k]
		case fluxOwn[k]:
		case fluxRefused[k] != "":
			return FluxParams{}, BadParam(k, "not supported on /v2/listen: %s", fluxRefused[k])
		default:
			return FluxParams{}, BadParam(clipName(k), "not a /v2/listen parameter (docs/api.md, Turn-taking, lists them)")
		}
	}
	p, err := ParseQuery(shared)
	if err != nil {
		return FluxParams{}, err
	}
	fp := FluxParams{Params: p, Turns: DefaultThresholds()}
	one := singleParam(q)
	float := func(name string, dst *float64) error {
		v, ok, err := one(name)
		if err != nil || !ok {
			return err
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return BadParam(name, "%s is not a number", clip(v))
		}
		*dst = f
		return nil
	}
	if err := float("eot_threshold", &fp.Turns.EOTThreshold); err != nil {
		return FluxParams{}, err
	}
	if err := float("eager_eot_threshold", &fp.Turns.EagerEOTThreshold); err != nil {
		return FluxParams{}, err
	}
	if _, ok := q["eager_eot_threshold"]; ok && fp.Turns.EagerEOTThreshold == 0 {
		return FluxParams{}, BadParam("eager_eot_threshold", "0 is out of range %v..%v (leave it out for no eager end of turn)", MinEagerEOTThreshold, MaxEagerEOTThreshold)
	}
	if fp.Turns.EOTTimeoutMs, err = intParam(one, "eot_timeout_ms", DefaultEOTTimeoutMs, MinEOTTimeoutMs, MaxEOTTimeoutMs); err != nil {
		return FluxParams{}, err
	}
	if err := fp.Turns.Check(); err != nil {
		return FluxParams{}, err
	}
	if fp.ResumeTurnIndex, err = intParam(one, "resume_turn_index", 0, 0, MaxResumeTurnIndex); err != nil {
		return FluxParams{}, err
	}
	if _, ok := q["resume_turn_index"]; ok && fp.Resume == "" {
		return FluxParams{}, BadParam("resume_turn_index", "only with resume")
	}
	for _, v := range q["language_hint"] {
		v = strings.TrimSpace(v)
		if v == "" || !validName(v, 35) {
			return FluxParams{}, BadParam("language_hint", "%s is not a language code", clip(v))
		}
		if spec, err := lang.Parse(v); err != nil {
			return FluxParams{}, BadParam("language_hint", "%s", err.Error())
		} else if spec.Detect {
			return FluxParams{}, BadParam("language_hint", "%s is not a language; leave language_hint out to detect the language", clip(v))
		}
		fp.LanguageHints = append(fp.LanguageHints, v)
	}
	if len(fp.LanguageHints) > 0 {
		// One hint is the stream's language; several restrict each turn's detection to
		// them (lang.Among; one language listed twice is that language).
		if fp.Language, err = lang.Among(fp.LanguageHints); err != nil {
			return FluxParams{}, BadParam("language_hint", "%s", err.Error())
		}
	}
	for _, v := range q["redact"] {
		for _, r := range strings.Split(v, ",") {
			switch r = strings.ToLower(strings.TrimSpace(r)); r {
			case "", "false":
			case "numbers":
				if len(fp.Redact) == 0 {
					fp.Redact = append(fp.Redact, r)
				}
			case "aggressive_numbers":
				return FluxParams{}, BadParam("redact", "aggressive_numbers is not supported; use numbers")
			default:
				return FluxParams{}, BadParam("redact", "%s: /v2/listen redacts numbers only (redact=numbers)", clip(r))
			}
		}
	}
	if _, err := boolParam(one, "mip_opt_out"); err != nil {
		return FluxParams{}, err // accepted either way: Earshot never trains on audio
	}
	if pf, err := boolParam(one, "profanity_filter"); err != nil {
		return FluxParams{}, err
	} else if pf {
		return FluxParams{}, BadParam("profanity_filter", "not supported: Earshot transcribes what is said")
	}
	return fp, nil
}

// clipName keeps an unknown parameter's name short enough for an error body.
func clipName(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// FluxConfigure is a parsed Configure message: nil fields keep their current value.
type FluxConfigure struct {
	EOTThreshold      *float64
	EagerEOTThreshold *float64 // 0 turns eager end of turn off
	EOTTimeoutMs      *int
	// Keyterms and LanguageHints are set when the message carries them (the gateway
	// refuses them: a stream's keyterms and language are fixed when it opens).
	Keyterms      []string
	LanguageHints []string
	HasKeyterms   bool
	HasHints      bool
	Numerals      *bool
}

// Apply returns t with c's thresholds, checked (a *ParamError naming the field).
func (c FluxConfigure) Apply(t Thresholds) (Thresholds, error) {
	if c.EOTThreshold != nil {
		t.EOTThreshold = *c.EOTThreshold
	}
	if c.EagerEOTThreshold != nil {
		t.EagerEOTThreshold = *c.EagerEOTThreshold
	}
	if c.EOTTimeoutMs != nil {
		t.EOTTimeoutMs = *c.EOTTimeoutMs
	}
	return t, t.Check()
}

// FluxControl is a parsed /v2/listen client text frame; Configure is set for Configure.
type FluxControl struct {
	Type      string
	Configure *FluxConfigure
}

// ParseFluxControl parses one /v2/listen client text frame: KeepAlive, CloseStream,
// ForceEndTurn or Configure. Unknown fields are ignored; an unknown type is
// ErrUnknownControl, anything else malformed (a Configure value of the wrong type,
// say) ErrBadControl. Whether Configure's values are in range is Apply's business.
func ParseFluxControl(b []byte) (FluxControl, error) {
	if len(b) > MaxControlBytes {
		return FluxControl{}, fmt.Errorf("%w: %d bytes (max %d)", ErrControlTooLarge, len(b), MaxControlBytes)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return FluxControl{}, fmt.Errorf("%w: not a JSON object", ErrBadControl)
	}
	var raw struct {
		Type          *string         `json:"type"`
		Thresholds    json.RawMessage `json:"thresholds"`
		Keyterms      json.RawMessage `json:"keyterms"`
		LanguageHints json.RawMessage `json:"language_hints"`
		Numerals      json.RawMessage `json:"numerals"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return FluxControl{}, fmt.Errorf("%w: %v", ErrBadControl, err)
	}
	if raw.Type == nil {
		return FluxControl{}, fmt.Errorf("%w: no \"type\" field", ErrBadControl)
	}
	c := FluxControl{Type: *raw.Type}
	switch c.Type {
	case ControlKeepAlive, ControlCloseStream, ControlForceEndTurn:
		return c, nil
	case ControlConfigure:
	case ControlFinalize:
		return FluxControl{}, fmt.Errorf("%w: \"Finalize\" is /v1/listen's; on /v2/listen send ForceEndTurn", ErrUnknownControl)
	default:
		t := c.Type
		if len(t) > 64 {
			t = t[:64] + "…"
		}
		return FluxControl{}, fmt.Errorf("%w: %q (known: KeepAlive, CloseStream, ForceEndTurn, Configure)", ErrUnknownControl, t)
	}
	// A Configure field Earshot does not know (a misspelt "threshold") would otherwise
	// change nothing without a word: ConfigureFailure names it.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return FluxControl{}, fmt.Errorf("%w: %v", ErrBadControl, err)
	}
	for k := range fields {
		switch k {
		case "type", "thresholds", "keyterms", "language_hints", "numerals":
		default:
			return FluxControl{}, fmt.Errorf("%w: Configure has no field %q (known: thresholds, keyterms, language_hints, numerals)", ErrBadControl, clipName(k))
		}
	}
	cf := &FluxConfigure{}
	if isSet(raw.Thresholds) {
		var th map[string]json.RawMessage
		if err := json.Unmarshal(raw.Thresholds, &th); err != nil {
			return FluxControl{}, fmt.Errorf("%w: \"thresholds\" must be an object", ErrBadControl)
		}
		for k, v := range th {
			if !isSet(v) {
				continue
			}
			f, err := jsonNumber(v)
			if err != nil {
				return FluxControl{}, fmt.Errorf("%w: thresholds.%s: %v", ErrBadControl, clipName(k), err)
			}
			switch k {
			case "eot_threshold":
				cf.EOTThreshold = &f
			case "eager_eot_threshold":
				cf.EagerEOTThreshold = &f
			case "eot_timeout_ms":
				if f != math.Trunc(f) || math.Abs(f) > 1e9 {
					return FluxControl{}, fmt.Errorf("%w: thresholds.eot_timeout_ms must be whole milliseconds", ErrBadControl)
				}
				n := int(f)
				cf.EOTTimeoutMs = &n
			default:
				return FluxControl{}, fmt.Errorf("%w: thresholds.%s is not a threshold (eot_threshold, eager_eot_threshold, eot_timeout_ms)", ErrBadControl, clipName(k))
			}
		}
	}
	var err error
	if cf.HasKeyterms = isSet(raw.Keyterms); cf.HasKeyterms {
		if cf.Keyterms, err = stringOrList(raw.Keyterms); err != nil {
			return FluxControl{}, fmt.Errorf("%w: \"keyterms\": %v", ErrBadControl, err)
		}
	}
	if cf.HasHints = isSet(raw.LanguageHints); cf.HasHints {
		if cf.LanguageHints, err = stringOrList(raw.LanguageHints); err != nil {
			return FluxControl{}, fmt.Errorf("%w: \"language_hints\": %v", ErrBadControl, err)
		}
	}
	if isSet(raw.Numerals) {
		var n bool
		if err := json.Unmarshal(raw.Numerals, &n); err != nil {
			return FluxControl{}, fmt.Errorf("%w: \"numerals\" must be true or false", ErrBadControl)
		}
		cf.Numerals = &n
	}
	c.Configure = cf
	return c, nil
}

func isSet(r json.RawMessage) bool { return len(r) > 0 && string(r) != "null" }

// jsonNumber reads a JSON number or a string holding one (Flux's schema types the
// thresholds "any"; clients send both).
func jsonNumber(r json.RawMessage) (float64, error) {
	var f float64
	if err := json.Unmarshal(r, &f); err == nil {
		return f, nil
	}
	var s string
	if err := json.Unmarshal(r, &s); err != nil {
		return 0, fmt.Errorf("want a number")
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%s is not a number", clip(s))
	}
	return f, nil
}

func stringOrList(r json.RawMessage) ([]string, error) {
	var s string
	if err := json.Unmarshal(r, &s); err == nil {
		return []string{s}, nil
	}
	var l []string
	if err := json.Unmarshal(r, &l); err != nil {
		return nil, fmt.Errorf("want a string or a list of strings")
	}
	return l, nil
}

// FluxWord is one word of a TurnInfo.
type FluxWord struct {
	Word       string  `json:"word"`
	Confidence float64 `json:"confidence"`
	Start      float64 `json:"start"`
	End        float64 `json:"end"`
}

// Connected is the first message of a /v2/listen stream.
type Connected struct {
	Type       string `json:"type"`
	RequestID  string `json:"request_id"`
	SequenceID int64  `json:"sequence_id"`
}

// TurnInfo reports a turn event. SequenceID counts every message of the stream from 0.
type TurnInfo struct {
	Type                string     `json:"type"`
	RequestID           string     `json:"request_id"`
	SequenceID          int64      `json:"sequence_id"`
	Event               string     `json:"event"`
	TurnIndex           int        `json:"turn_index"`
	AudioWindowStart    float64    `json:"audio_window_start"`
	AudioWindowEnd      float64    `json:"audio_window_end"`
	Transcript          string     `json:"transcript"`
	Words               []FluxWord `json:"words"`
	EndOfTurnConfidence float64    `json:"end_of_turn_confidence"`
	// Trigger says why a turn ended: on EndOfTurn only (model, timeout, manual, close).
	Trigger string `json:"trigger,omitempty"`
	// Languages heard (a detecting stream), LanguagesHinted the language_hint given.
	Languages       []string `json:"languages,omitempty"`
	LanguagesHinted []string `json:"languages_hinted,omitempty"`
}

// FluxThresholds are the knobs as ConfigureSuccess reports them.
type FluxThresholds struct {
	EagerEOTThreshold *float64 `json:"eager_eot_threshold,omitempty"`
	EOTThreshold      float64  `json:"eot_threshold"`
	EOTTimeoutMs      int      `json:"eot_timeout_ms"`
}

// ToWire reports t as Configure answers it (no eager field when eager is off).
func (t Thresholds) ToWire() FluxThresholds {
	w := FluxThresholds{EOTThreshold: t.EOTThreshold, EOTTimeoutMs: t.EOTTimeoutMs}
	if t.EagerEOTThreshold > 0 {
		e := t.EagerEOTThreshold
		w.EagerEOTThreshold = &e
	}
	return w
}

// ConfigureSuccess answers a Configure that was applied, with all current values.
type ConfigureSuccess struct {
	Type       string         `json:"type"`
	RequestID  string         `json:"request_id"`
	SequenceID int64          `json:"sequence_id"`
	Thresholds FluxThresholds `json:"thresholds"`
	Keyterms   []string       `json:"keyterms"`
}

// ConfigureFailure answers a Configure that was refused; nothing of it was applied.
// Description (Earshot's addition) says why.
type ConfigureFailure struct {
	Type        string `json:"type"`
	RequestID   string `json:"request_id"`
	SequenceID  int64  `json:"sequence_id"`
	Description string `json:"description,omitempty"`
}

// FluxError is Flux's (fatal) Error message: the stream closes after it.
type FluxError struct {
	Type        string    `json:"type"`
	SequenceID  int64     `json:"sequence_id"`
	Code        ErrorCode `json:"code"`
	Description string    `json:"description"`
	RequestID   string    `json:"request_id,omitempty"`
}
