package prerecorded

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/earshot-dev/earshot/internal/netguard"
)

// checkURL parses an absolute http(s) URL without credentials.
func checkURL(raw string) (*url.URL, error) {
	if raw == "" || len(raw) > 2048 {
		return nil, fmt.Errorf("want an absolute http or https URL of at most 2048 bytes")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("scheme %q: want http or https", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("URL has no host")
	}
	if u.User != nil {
		return nil, fmt.Errorf("credentials in URLs are not accepted")
	}
	return u, nil
}

// guard decides which hosts and addresses the server may fetch from or call back: the
// URL allow-list here, the addresses in netguard.
type guard struct {
	allow []string // host names or "*.suffix"; empty: no url= fetches
	net   netguard.Guard
}

// hostAllowed reports whether host is on the allow-list.
func (g guard) hostAllowed(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, a := range g.allow {
		a = strings.ToLower(a)
		if a == host || strings.HasPrefix(a, "*.") && strings.HasSuffix(host, a[1:]) {
			return true
		}
	}
	return false
}

// addrRefused names why ip may not be reached, or returns "".
func (g guard) addrRefused(ip netip.Addr) string { return g.net.Refused(ip) }

// checkHost resolves host and refuses it when any of its addresses is internal.
func (g guard) checkHost(ctx context.Context, host string) error {
	err := g.net.CheckHost(ctx, host)
	if err != nil && !errors.Is(err, ErrURLRefused) {
		return fmt.Errorf("%w: %v", ErrFetch, err)
	}
	return err
}

// client returns an HTTP client whose every connection is checked at dial time, so a
// DNS answer that changes after checkHost cannot reach an internal address.
// checkRedirect, if set, vets each redirect's URL; nil follows no redirect.
func (g guard) client(timeout time.Duration, checkRedirect func(*url.URL) error) *http.Client {
	return g.net.Client(timeout, checkRedirect)
}

// fetch downloads raw (url= of a request) after checking it against the allow-list
// and the address rules, spooling at most limit bytes into dir (see spool).
func (g guard) fetch(ctx context.Context, raw, dir string, limit int64) (*upload, error) {
	u, err := checkURL(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrURLRefused, err)
	}
	vet := func(u *url.URL) error {
		if u.Scheme != "http" && u.Scheme != "https" {
			return fmt.Errorf("%w: redirect to scheme %q", ErrURLRefused, u.Scheme)
		}
		if !g.hostAllowed(u.Hostname()) {
			return fmt.Errorf("%w: host %s is not in the URL allow-list", ErrURLRefused, u.Hostname())
		}
		return g.checkHost(ctx, u.Hostname())
	}
	if err := vet(u); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrURLRefused, err)
	}
	resp, err := g.client(5*time.Minute, vet).Do(req)
	if err != nil {
		if errors.Is(err, ErrURLRefused) {
			var ue *url.Error
			if errors.As(err, &ue) {
				return nil, ue.Err
			}
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrFetch, u.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%w: %s answered %s", ErrFetch, u.Redacted(), resp.Status)
	}
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("%w: %s is %d bytes, over the %d-byte limit", ErrTooLarge, u.Redacted(), resp.ContentLength, limit)
	}
	up, err := spool(dir, resp.Body, limit, resp.Header.Get("Content-Type"))
	switch {
	case errors.Is(err, ErrTooLarge):
		return nil, fmt.Errorf("%w: %s is over the %d-byte limit", ErrTooLarge, u.Redacted(), limit)
	case err != nil:
		return nil, fmt.Errorf("%w: %s: %v", ErrFetch, u.Redacted(), err)
	}
	return up, nil
}
