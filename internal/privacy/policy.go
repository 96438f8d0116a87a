package privacy

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Retain says what of a request is kept after it is answered.
type Retain string

const (
	RetainNone       Retain = ""           // the default: nothing is kept
	RetainTranscript Retain = "transcript" // the response (transcript, words, metadata)
	RetainAudio      Retain = "audio"      // the response and the uploaded audio
)

// Limits of retain_ttl.
const (
	DefaultTTL = 24 * time.Hour
	MinTTL     = time.Second
	MaxTTL     = 30 * 24 * time.Hour
)

// Policy is a retention choice: per request (?retain=&retain_ttl=) or per tenant.
type Policy struct {
	Retain Retain        `json:"retain"`
	TTL    time.Duration `json:"ttl"`
}

// Keeps reports whether the policy keeps anything.
func (p Policy) Keeps() bool { return p.Retain != RetainNone }

// Validate checks the policy and fills in DefaultTTL.
func (p Policy) Validate() (Policy, error) {
	switch p.Retain {
	case RetainNone:
		return Policy{}, nil
	case RetainTranscript, RetainAudio:
	default:
		return Policy{}, fmt.Errorf("%w: retain=%q: want transcript or audio", ErrBadRetention, clip(string(p.Retain)))
	}
	if p.TTL == 0 {
		p.TTL = DefaultTTL
	}
	if p.TTL < MinTTL || p.TTL > MaxTTL {
		return Policy{}, fmt.Errorf("%w: retain_ttl %v is out of range %v..%v", ErrBadRetention, p.TTL, MinTTL, MaxTTL)
	}
	return p, nil
}

// ParseRetention reads retain= and retain_ttl= from a request's query. set is false
// when neither is given (the tenant's policy then applies). retain=none (or false)
// asks explicitly for nothing to be kept, overriding the tenant's policy.
func ParseRetention(q url.Values) (p Policy, set bool, err error) {
	r, hasR := q["retain"]
	ttl, hasT := q["retain_ttl"]
	if !hasR && !hasT {
		return Policy{}, false, nil
	}
	if len(r) > 1 || len(ttl) > 1 {
		return Policy{}, false, fmt.Errorf("%w: give retain and retain_ttl once", ErrBadRetention)
	}
	if hasR {
		v := strings.ToLower(strings.TrimSpace(r[0]))
		if v == "none" || v == "false" {
			v = ""
		}
		p.Retain = Retain(v)
	}
	if hasT {
		if !hasR {
			return Policy{}, false, fmt.Errorf("%w: retain_ttl without retain", ErrBadRetention)
		}
		d, err := time.ParseDuration(strings.TrimSpace(ttl[0]))
		if err != nil {
			return Policy{}, false, fmt.Errorf("%w: retain_ttl=%s: want a duration like 24h or 90m", ErrBadRetention, clip(ttl[0]))
		}
		p.TTL = d
	}
	p, err = p.Validate()
	return p, err == nil, err
}

func clip(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return fmt.Sprintf("%q", s)
}
