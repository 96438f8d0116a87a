package abuse

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// F8: url= of an allow-listed host that is (or resolves to) an address in a range the
// guard missed: IETF protocol assignments, benchmarking, class E, NAT64 and 6to4 (the
// last two tunnel to any IPv4 address, internal ones too). Each is refused before any
// connection is made (the test never sends a packet off this machine).
func TestF8ReservedRangesRefused(t *testing.T) {
	attack(t, "F8", "url= of an allow-listed host in 192.0.0.0/24, 198.18.0.0/15, 240.0.0.0/4, 64:ff9b::/96, 2002::/16",
		"400 naming url and the range, before any connection")
	testdata.Model(t, "tiny.en")
	hosts := map[string]string{
		"192.0.0.8":      "protocol-assignment",
		"198.18.0.1":     "benchmarking",
		"240.0.0.1":      "reserved",
		"64:ff9b::a00:1": "NAT64",
		"2002:a00:1::1":  "6to4",
	}
	var allow []string
	for h := range hosts {
		allow = append(allow, h)
	}
	srv := testutil.StartServe(t, "--url-allow-list", strings.Join(allow, ","))
	_, key := billTenant(t, srv, "fetcher")
	for host, why := range hosts {
		u := url.URL{Scheme: "http", Host: host, Path: "/a.wav"}
		if strings.Contains(host, ":") {
			u.Host = "[" + host + "]"
		}
		body, _ := json.Marshal(map[string]string{"url": u.String()})
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/listen", bytes.NewReader(body))
		req.Header.Set("Authorization", "Token "+key)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct {
			Msg   string `json:"err_msg"`
			Param string `json:"param"`
		}
		_ = json.Unmarshal(b, &e)
		if resp.StatusCode != http.StatusBadRequest || e.Param != "url" || !strings.Contains(e.Msg, why) {
			t.Errorf("url=%s: %d %s, want 400 param url naming %q", u.String(), resp.StatusCode, b, why)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("url=%s took %v: refused only after trying to connect", u.String(), d)
		}
	}
}

// F8b: a callback receiver answers 307 to another address (here a second loopback
// listener standing for an internal admin path). Before: the signed POST followed the
// redirect. Now: redirects are not followed; the second listener gets nothing.
func TestF8bCallbackRedirectNotFollowed(t *testing.T) {
	attack(t, "F8b", "a callback= receiver that answers 307 to an internal address",
		"the redirect is not followed: the internal address receives nothing")
	testdata.Model(t, "tiny.en")
	var internal, redirects atomic.Int32
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { internal.Add(1) }))
	defer admin.Close()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirects.Add(1)
		http.Redirect(w, r, admin.URL+"/admin/delete-everything", http.StatusTemporaryRedirect)
	}))
	defer hook.Close()
	// Loopback receivers need the test-only flag; the redirect rule is the same for any address.
	srv := testutil.StartServe(t, "--outbound-allow-loopback")
	_, key := billTenant(t, srv, "redirector")
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/listen?callback="+url.QueryEscape(hook.URL+"/cb"), bytes.NewReader(jfkWAV(t)))
	req.Header.Set("Authorization", "Token "+key)
	req.Header.Set("Content-Type", "audio/wav")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST with callback: %d, want 202", resp.StatusCode)
	}
	testutil.Eventually(t, 60*time.Second, "the callback attempted", func() bool { return redirects.Load() >= 1 })
	time.Sleep(2 * time.Second) // a followed redirect would land now
	if n := internal.Load(); n != 0 {
		t.Fatalf("the internal address received %d requests through the callback's redirect", n)
	}
}
