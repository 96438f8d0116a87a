package prerecorded

import (
	"net/url"
	"strings"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/internal/privacy"
)

// Params are the query parameters of POST /v1/listen: the streaming ones (wire.Params)
// plus callback= and the retention choice.
type Params struct {
	wire.Params
	Callback  string         // absolute http(s) URL, "" for a synchronous answer
	Retain    privacy.Policy // what to keep; meaningful when RetainSet
	RetainSet bool           // retain= was given (else the tenant's policy applies)
}

// knownRedactions is what ParseListenParams accepts when no validator is given
// (transcriber.ValidRedaction in production; the names are Deepgram's).
var knownRedactions = map[string]bool{"pci": true, "numbers": true, "true": true, "email": true, "phone": true}

func defaultValidRedaction(kinds []string) error {
	for _, k := range kinds {
		if !knownRedactions[k] {
			return wire.BadParam("redact", "%q is not a redaction: valid redactions are pci, numbers (or true), email, phone", k)
		}
	}
	return nil
}

// ParseListenParams parses and checks the query of POST /v1/listen. validRedact checks
// redact= values (nil: the built-in list). Errors are *wire.ParamError naming the
// parameter at fault.
func ParseListenParams(q url.Values, validRedact func([]string) error) (Params, error) {
	wp, err := wire.ParseQuery(q)
	if err != nil {
		return Params{}, err
	}
	p := Params{Params: wp}
	if validRedact == nil {
		validRedact = defaultValidRedaction
	}
	if err := validRedact(p.Redact); err != nil {
		if pe, ok := err.(*wire.ParamError); ok {
			return Params{}, pe
		}
		return Params{}, wire.BadParam("redact", "%s", err.Error())
	}
	if cb, ok := q["callback"]; ok {
		if len(cb) != 1 {
			return Params{}, wire.BadParam("callback", "given %d times; give it once", len(cb))
		}
		u, err := checkURL(strings.TrimSpace(cb[0]))
		if err != nil {
			return Params{}, wire.BadParam("callback", "%s", err.Error())
		}
		p.Callback = u.String()
	}
	if p.Retain, p.RetainSet, err = privacy.ParseRetention(q); err != nil {
		param := "retain"
		if strings.Contains(err.Error(), "retain_ttl") {
			param = "retain_ttl"
		}
		return Params{}, wire.BadParam(param, "%s", strings.TrimPrefix(err.Error(), privacy.ErrBadRetention.Error()+": "))
	}
	ign := p.Ignored[:0]
	for _, k := range p.Ignored {
		if k != `"callback"` && k != `"retain"` && k != `"retain_ttl"` {
			ign = append(ign, k)
		}
	}
	p.Ignored = ign
	return p, nil
}
