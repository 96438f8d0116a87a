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

	"github.com/earshot-dev/earshot/gateway/twilio"
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
	postCallback(t, srv, key, hook.URL+"/cb")
	testutil.Eventually(t, 60*time.Second, "the callback attempted", func() bool { return redirects.Load() >= 1 })
	time.Sleep(2 * time.Second) // a followed redirect would land now
	if n := internal.Load(); n != 0 {
		t.Fatalf("the internal address received %d requests through the callback's redirect", n)
	}
}

// postCallback POSTs the JFK recording with callback=hook for key and checks the 202.
func postCallback(t *testing.T, srv *testutil.Serve, key, hook string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/listen?callback="+url.QueryEscape(hook), bytes.NewReader(jfkWAV(t)))
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
}

// F8c: callbacks were unsigned, so a receiver could not tell Earshot's POST from
// anyone's. Now each carries X-Earshot-Signature (the phone webhooks' scheme) made with
// the tenant's secret, which GET /v1/callbacks/secret gives to the tenant's API key.
func TestF8cCallbackSigned(t *testing.T) {
	attack(t, "F8c", "forge a callback: is the real one signed?",
		"every callback carries X-Earshot-Signature that verifies with the tenant's secret (GET /v1/callbacks/secret)")
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t, "--outbound-allow-loopback")
	_, key := billTenant(t, srv, "signee")
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/callbacks/secret", nil)
	req.Header.Set("Authorization", "Token "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var sec struct {
		Secret string `json:"secret"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&sec)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(sec.Secret) < 32 {
		t.Fatalf("GET /v1/callbacks/secret: %d %+v", resp.StatusCode, sec)
	}
	got := make(chan error, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- twilio.VerifyWebhook(sec.Secret, r.Header.Get(twilio.SignatureHeader), body, time.Minute, time.Now())
	}))
	defer hook.Close()
	postCallback(t, srv, key, hook.URL)
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("callback signature: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no callback within 60 s")
	}
}

// F8d: tenant A's callback receiver hangs. Before: jobs ran one at a time with 6 × 30 s
// attempts, so every other tenant's callbacks waited behind A's. Now B's callback
// arrives while A's is still hanging.
func TestF8dSlowCallbackStallsOnlyItsTenant(t *testing.T) {
	attack(t, "F8d", "tenant A's callback receiver hangs with A's jobs queued; tenant B posts a job",
		"B's callback arrives while A's still hangs (within 30 s)")
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t, "--outbound-allow-loopback")
	_, keyA := billTenant(t, srv, "slowpoke")
	_, keyB := billTenant(t, srv, "bystander")
	release := make(chan struct{})
	var hung atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hung.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	arrived := make(chan struct{}, 1)
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
	}))
	defer fast.Close()
	for range pick(1, 4) {
		postCallback(t, srv, keyA, slow.URL)
	}
	testutil.Eventually(t, 60*time.Second, "tenant A's callback hanging", func() bool { return hung.Load() >= 1 })
	start := time.Now()
	postCallback(t, srv, keyB, fast.URL)
	select {
	case <-arrived:
		t.Logf("B's callback arrived %v after its POST, A's receiver hanging", time.Since(start).Round(time.Millisecond))
	case <-time.After(30 * time.Second):
		t.Fatal("tenant B's callback did not arrive within 30 s while tenant A's receiver hung")
	}
}
