package netguard

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
)

func TestRefused(t *testing.T) {
	g := Guard{}
	for _, c := range []struct {
		ip      string
		refused bool
	}{
		{"127.0.0.1", true}, {"::1", true}, {"10.1.2.3", true}, {"172.16.0.1", true}, {"192.168.1.1", true},
		{"169.254.169.254", true}, {"fe80::1", true}, {"100.64.0.1", true}, {"0.1.2.3", true}, {"0.0.0.0", true},
		{"fc00::1", true}, {"::ffff:127.0.0.1", true}, {"224.0.0.1", true},
		// Missing before issue 18 (F8): reachable through an allow-listed host.
		{"192.0.0.8", true}, {"198.18.0.1", true}, {"198.19.255.254", true}, {"240.0.0.1", true},
		{"255.255.255.255", true}, {"64:ff9b::a00:1", true}, {"64:ff9b::7f00:1", true}, {"2002:a00:1::1", true},
		{"2002:7f00:1::1", true}, {"2001::1", true}, {"192.0.2.1", true}, {"203.0.113.9", true},
		// Public addresses pass.
		{"8.8.8.8", false}, {"1.1.1.1", false}, {"2606:4700:4700::1111", false}, {"198.20.0.1", false},
	} {
		got := g.Refused(netip.MustParseAddr(c.ip)) != ""
		if got != c.refused {
			t.Errorf("%s: refused %v, want %v (%q)", c.ip, got, c.refused, g.Refused(netip.MustParseAddr(c.ip)))
		}
	}
	if (Guard{AllowLoopback: true}).Refused(netip.MustParseAddr("127.0.0.1")) != "" {
		t.Error("AllowLoopback refused 127.0.0.1")
	}
}

// A client without a vet follows no redirect: the 307 comes back as the answer and
// the redirect's target gets nothing.
func TestClientFollowsNoRedirect(t *testing.T) {
	var hits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer target.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/admin", http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	resp, err := Guard{AllowLoopback: true}.Client(0, nil).Post(redirect.URL, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || hits.Load() != 0 {
		t.Fatalf("status %d, target hit %d times; want the 307 itself and no hit", resp.StatusCode, hits.Load())
	}
	// Loopback is refused at dial time without AllowLoopback.
	if _, err := (Guard{}).Client(0, nil).Get(target.URL); err == nil {
		t.Fatal("a loopback URL was fetched by a default guard")
	}
}
