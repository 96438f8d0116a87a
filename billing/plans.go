package billing

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// PlanKind says how a plan charges.
type PlanKind string

const (
	// PayAsYouGo is prepaid: every ms debits the balance at PricePerHourMinor; with no
	// balance left streams are refused (ErrNoBalance).
	PayAsYouGo PlanKind = "payg"
	// Monthly includes IncludedHours per calendar month (UTC) for MonthlyFeeMinor; audio
	// beyond is billed at PricePerHourMinor when OverageAllowed, else refused
	// (ErrQuotaExhausted).
	Monthly PlanKind = "monthly"
)

// MaxPricePerHourMinor bounds prices so that one event's debit (≤ MaxEventMs × price)
// stays an exact integer inside Redis' Lua (doubles, 2^53).
const MaxPricePerHourMinor = 100_000_000

// Plan is one version of a price plan. Plans are configuration: a change is a new
// Version, and a tenant records the version it is on.
//
// Rounding: each stream (one session track) is billed per RoundMs (1000 = per second,
// rounded up, as AWS Transcribe does) with at least MinStreamMs when it carried any
// audio (15000 = AWS's 15 s minimum; 0 = none). RoundMs 0 or 1 bills exact ms. Money:
// a line's amount is billed ms × price per hour / 3,600,000, rounded half up to a whole
// minor unit, once per invoice line (never per event).
type Plan struct {
	ID                string   `json:"id"`
	Version           int      `json:"version"`
	Kind              PlanKind `json:"kind"`
	Currency          string   `json:"currency"`
	PricePerHourMinor int64    `json:"price_per_hour_minor"` // payg price, or monthly overage price
	MonthlyFeeMinor   int64    `json:"monthly_fee_minor,omitempty"`
	IncludedHours     int64    `json:"included_hours,omitempty"`
	OverageAllowed    bool     `json:"overage_allowed,omitempty"`
	RoundMs           int64    `json:"round_ms,omitempty"`
	MinStreamMs       int64    `json:"min_stream_ms,omitempty"`
	Models            []string `json:"models,omitempty"` // allowed models; empty = all
	// MaxFileSeconds is the longest pre-recorded file a tenant on the plan may send
	// (413 past it); 0: only the server's --max-prerecorded-audio applies.
	MaxFileSeconds int64 `json:"max_file_seconds,omitempty"`
}

// Validate checks a plan's numbers are usable.
func (p Plan) Validate() error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w: %s v%d: %s", ErrBadPlan, p.ID, p.Version, fmt.Sprintf(f, a...))
	}
	switch {
	case p.ID == "" || !validName(p.ID):
		return bad("id must be a non-empty name")
	case p.Version < 1:
		return bad("version must be >= 1")
	case p.Kind != PayAsYouGo && p.Kind != Monthly:
		return bad("kind %q is not payg or monthly", p.Kind)
	case p.PricePerHourMinor < 0 || p.PricePerHourMinor > MaxPricePerHourMinor:
		return bad("price_per_hour_minor %d outside 0..%d", p.PricePerHourMinor, MaxPricePerHourMinor)
	case p.Kind == PayAsYouGo && p.PricePerHourMinor == 0:
		return bad("a payg plan needs a price")
	case p.MonthlyFeeMinor < 0 || p.IncludedHours < 0 || p.IncludedHours > 1_000_000:
		return bad("monthly fee and included hours must be >= 0 (hours <= 1e6)")
	case p.RoundMs < 0 || p.RoundMs > MaxEventMs || p.MinStreamMs < 0 || p.MinStreamMs > MaxEventMs:
		return bad("round_ms and min_stream_ms must be within 0..%d", MaxEventMs)
	case p.MaxFileSeconds < 0 || p.MaxFileSeconds > 30*24*3600:
		return bad("max_file_seconds %d outside 0..%d", p.MaxFileSeconds, 30*24*3600)
	}
	return nil
}

// AllowsModel reports whether model may be used on the plan. A quantized copy of an
// allowed model ("tiny.en-q8_0" for "tiny.en": same weights in fewer bits, as
// `earshot models quantize` or the catalog's -q files make them) is allowed too.
func (p Plan) AllowsModel(model string) bool {
	if len(p.Models) == 0 || slices.Contains(p.Models, model) {
		return true
	}
	base, q, ok := strings.Cut(model, "-q")
	return ok && quantSuffix.MatchString("q"+q) && slices.Contains(p.Models, base)
}

// quantSuffix matches the catalog's quantization names: q8_0, q5_1, q4_k …
var quantSuffix = regexp.MustCompile(`^q[2-8]_[01k]$`)

// IncludedMs is the audio included per month.
func (p Plan) IncludedMs() int64 { return p.IncludedHours * 3_600_000 }

// rate is the prepaid debit in u per ms (see package doc); monthly plans debit nothing.
func (p Plan) rate() int64 {
	if p.Kind == PayAsYouGo {
		return p.PricePerHourMinor
	}
	return 0
}

// Plans is a catalog of plan versions, read-only after construction.
type Plans struct {
	byID map[string]map[int]Plan
}

// NewPlans validates and indexes plans; an id and version may appear once.
func NewPlans(plans []Plan) (*Plans, error) {
	c := &Plans{byID: map[string]map[int]Plan{}}
	for _, p := range plans {
		if err := p.Validate(); err != nil {
			return nil, err
		}
		if c.byID[p.ID] == nil {
			c.byID[p.ID] = map[int]Plan{}
		}
		if _, dup := c.byID[p.ID][p.Version]; dup {
			return nil, fmt.Errorf("%w: %s v%d defined twice", ErrBadPlan, p.ID, p.Version)
		}
		c.byID[p.ID][p.Version] = p
	}
	return c, nil
}

// LoadPlans reads a JSON file {"plans":[...]} strictly (unknown keys are errors).
func LoadPlans(path string) (*Plans, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load plans: %w", err)
	}
	var f struct {
		Plans []Plan `json:"plans"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadPlan, path, err)
	}
	return NewPlans(f.Plans)
}

// DefaultPlans is the built-in catalog (USD cents):
//
//	payg v1      $0.72/audio hour (72 cents), per second rounded up, no minimum, all models
//	payg-min v1  as payg with a 15 s minimum per stream
//	starter v1   $29/month, 50 h included, overage $0.60/h, tiny/base models only
//	team v1      $199/month, 500 h included, overage $0.48/h, all models
//	trial v1     free, 2 h included, no overage, tiny models only, files up to 30 min
//	demo v1      free, 1 h included, no overage, tiny models only, files up to 5 min:
//	             the anonymous browser demo's tenant (serve --demo), so that it cannot
//	             run up costs
//	demo v2      as demo v1 with the tiny and base models (tiny, tiny.en, base, base.en
//	             and their quantized copies), so that the demo can use the multilingual
//	             base; serve --demo puts the demo tenant on the latest demo version
func DefaultPlans() *Plans {
	p, err := NewPlans([]Plan{
		{ID: "payg", Version: 1, Kind: PayAsYouGo, Currency: "USD", PricePerHourMinor: 72, RoundMs: 1000},
		{ID: "payg-min", Version: 1, Kind: PayAsYouGo, Currency: "USD", PricePerHourMinor: 72, RoundMs: 1000, MinStreamMs: 15000},
		{ID: "starter", Version: 1, Kind: Monthly, Currency: "USD", MonthlyFeeMinor: 2900, IncludedHours: 50,
			PricePerHourMinor: 60, OverageAllowed: true, RoundMs: 1000,
			Models: []string{"tiny", "tiny.en", "base", "base.en"}},
		{ID: "team", Version: 1, Kind: Monthly, Currency: "USD", MonthlyFeeMinor: 19900, IncludedHours: 500,
			PricePerHourMinor: 48, OverageAllowed: true, RoundMs: 1000},
		{ID: "trial", Version: 1, Kind: Monthly, Currency: "USD", IncludedHours: 2, RoundMs: 1000,
			Models: []string{"tiny", "tiny.en"}, MaxFileSeconds: 1800},
		{ID: "demo", Version: 1, Kind: Monthly, Currency: "USD", IncludedHours: 1, RoundMs: 1000,
			Models: []string{"tiny", "tiny.en"}, MaxFileSeconds: 300},
		{ID: "demo", Version: 2, Kind: Monthly, Currency: "USD", IncludedHours: 1, RoundMs: 1000,
			Models: []string{"tiny", "tiny.en", "base", "base.en"}, MaxFileSeconds: 300},
	})
	if err != nil {
		panic(err) // the defaults are constants
	}
	return p
}

// Get returns plan id at version; version 0 means the latest.
func (c *Plans) Get(id string, version int) (Plan, error) {
	vs := c.byID[id]
	if version == 0 {
		for v := range vs {
			version = max(version, v)
		}
	}
	p, ok := vs[version]
	if !ok {
		return Plan{}, fmt.Errorf("%w: %s v%d", ErrUnknownPlan, id, version)
	}
	return p, nil
}

// IDs lists the plan ids, sorted.
func (c *Plans) IDs() []string {
	ids := make([]string, 0, len(c.byID))
	for id := range c.byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
