// Package netguard is the one guard for every connection Earshot opens on behalf of a
// tenant: fetching url= of a pre-recorded request, POSTing its callback, delivering a
// phone call's webhooks. A tenant names the address, so each connection is checked at
// dial time (after DNS, so a name that resolves to an internal address is caught too)
// against the addresses a server's own network holds: loopback, private, link-local
// (cloud metadata), carrier-grade NAT, IETF-reserved and benchmark ranges, and the IPv6
// prefixes that tunnel to IPv4 ones (NAT64, 6to4, Teredo). Redirects are not followed
// unless the caller vets each one.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrRefused: the address (or a redirect) may not be reached from this server.
var ErrRefused = errors.New("url refused")

// reserved are ranges that are neither loopback, private nor link-local by Go's
// netip predicates but must not be reachable from a tenant's URL either.
var reserved = []struct {
	p   netip.Prefix
	why string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "not a unicast address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a private address (carrier-grade NAT)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "an IETF protocol-assignment address"},
	{netip.MustParsePrefix("192.0.2.0/24"), "a documentation address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address (often internal)"},
	{netip.MustParsePrefix("198.51.100.0/24"), "a documentation address"},
	{netip.MustParsePrefix("203.0.113.0/24"), "a documentation address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved address"},
	{netip.MustParsePrefix("64:ff9b::/96"), "a NAT64 address (it reaches IPv4 addresses, internal ones too)"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "a local NAT64 address"},
	{netip.MustParsePrefix("2002::/16"), "a 6to4 address (it reaches IPv4 addresses, internal ones too)"},
	{netip.MustParsePrefix("2001::/32"), "a Teredo address"},
	{netip.MustParsePrefix("2001:db8::/32"), "a documentation address"},
	{netip.MustParsePrefix("100::/64"), "a discard-only address"},
}

// Guard decides which addresses may be reached. The zero value refuses loopback.
type Guard struct {
	// AllowLoopback lets loopback addresses through: for tests on one machine only.
	AllowLoopback bool
}

// Refused names why ip may not be reached, or returns "".
func (g Guard) Refused(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid():
		return "not an address"
	case ip.IsLoopback():
		if g.AllowLoopback {
			return ""
		}
		return "a loopback address"
	case ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast():
		return "a link-local address (cloud metadata lives there)"
	case ip.IsPrivate():
		return "a private address"
	case ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast():
		return "not a unicast address"
	}
	for _, r := range reserved {
		if r.p.Contains(ip) {
			return r.why
		}
	}
	return ""
}

// CheckHost resolves host and refuses it (ErrRefused) when any of its addresses is.
func (g Guard) CheckHost(ctx context.Context, host string) error {
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		ips = []netip.Addr{ip}
	} else {
		ips, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return fmt.Errorf("cannot resolve %s: %w", host, err)
		}
	}
	for _, ip := range ips {
		if why := g.Refused(ip); why != "" {
			return fmt.Errorf("%w: %s resolves to %s, %s", ErrRefused, host, ip, why)
		}
	}
	return nil
}

// Client returns an HTTP client whose every connection is checked at dial time. With
// vet nil it follows no redirect: the 3xx response is returned as it is (a webhook or
// callback receiver that redirects has not accepted the delivery). With vet set, up to
// 5 redirects are followed, each URL vetted first.
func (g Guard) Client(timeout time.Duration, vet func(*url.URL) error) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return fmt.Errorf("%w: %s", ErrRefused, address)
		}
		if why := g.Refused(ip); why != "" {
			return fmt.Errorf("%w: %s is %s", ErrRefused, ip, why)
		}
		return nil
	}}
	tr := &http.Transport{DialContext: d.DialContext, Proxy: nil, ForceAttemptHTTP2: true,
		TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: 30 * time.Second, MaxIdleConns: 4}
	return &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: func(r *http.Request, via []*http.Request) error {
		if vet == nil {
			return http.ErrUseLastResponse
		}
		if len(via) >= 5 {
			return fmt.Errorf("%w: more than 5 redirects", ErrRefused)
		}
		return vet(r.URL)
	}}
}
