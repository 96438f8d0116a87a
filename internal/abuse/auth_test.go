package abuse

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/earshot-dev/earshot/billing"
	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/gateway/client"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// authTenant creates tenant on plan and returns a key's id and secret.
func authTenant(t *testing.T, srv *testutil.Serve, tenant, plan string) (bus.KeyID, string) {
	_, id, key := newTenant(t, srv, bus.TenantID(tenant), plan, 0)
	return id, key
}

// call sends method path with "Authorization: <scheme> cred" and returns the status
// and the JSON body's err_code (or code).
func call(t *testing.T, srv *testutil.Serve, method, path, scheme, cred, body string) (int, string, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if cred != "" {
		req.Header.Set("Authorization", scheme+" "+cred)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	code, _ := m["err_code"].(string)
	if code == "" {
		code, _ = m["code"].(string)
	}
	return resp.StatusCode, code, m
}

// grant gets a token for key with the grant body.
func grant(t *testing.T, srv *testutil.Serve, key, body string) string {
	t.Helper()
	st, code, m := call(t, srv, "POST", "/v1/auth/grant", "Token", key, body)
	tok, _ := m["access_token"].(string)
	if st != 200 || tok == "" {
		t.Fatalf("grant %s: %d %s %v", body, st, code, m)
	}
	return tok
}

// upload posts a short recording with key, retaining the transcript, and returns its
// request_id.
func upload(t *testing.T, srv *testutil.Serve, key string) string {
	t.Helper()
	st, id, body := uploadAs(t, srv, "Token", key)
	if st != 200 || id == "" {
		t.Fatalf("POST /v1/listen with a key: %d %s", st, body)
	}
	return id
}

// uploadAs posts a short recording with retain=transcript and "Authorization: scheme
// cred"; it returns the status, the request_id and the body.
func uploadAs(t *testing.T, srv *testutil.Serve, scheme, cred string) (int, string, string) {
	t.Helper()
	wav, err := os.ReadFile(filepath.Join(testdata.Require(t), "speech", "wav16k", "cv_en_22058264.wav"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/v1/listen?model=tiny.en&retain=transcript", bytes.NewReader(wav))
	req.Header.Set("Authorization", scheme+" "+cred)
	req.Header.Set("Content-Type", "audio/wav")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct {
		Metadata struct {
			RequestID string `json:"request_id"`
		} `json:"metadata"`
		RequestID string `json:"request_id"`
	}
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &m)
	id := m.Metadata.RequestID
	if id == "" {
		id = m.RequestID
	}
	return resp.StatusCode, id, string(b)
}

func dial(srv *testutil.Serve, tok, model, resume string) (*client.Conn, error) {
	o := client.Options{Token: tok, Model: model, Encoding: "linear16", SampleRate: 16000}
	u := srv.WSURL
	if resume != "" {
		u += "?resume=" + resume + "&resume_offset_ms=0"
	}
	return client.Dial(context.Background(), u, o)
}

func dialCode(err error) (int, string) {
	var de *client.DialError
	if errors.As(err, &de) {
		return de.Status, string(de.Code)
	}
	return 0, ""
}

func TestF7TokenOnKeyOnlyRoutes(t *testing.T) {
	attack(t, "F7", "a granted browser token on GET /v1/usage, GET/DELETE /v1/requests/{id}, POST /v1/listen, POST /v1/auth/grant",
		"each is 403 TOKEN_SCOPE; the same calls with the API key work")
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t)
	_, key := authTenant(t, srv, "acme", "team")
	id := upload(t, srv, key)
	routes := []struct{ method, path, body string }{
		{"GET", "/v1/usage", ""},
		{"GET", "/v1/requests/" + id, ""},
		{"DELETE", "/v1/requests/" + id, ""},
		{"POST", "/v1/listen?model=tiny.en", ""},
		{"POST", "/v1/auth/grant", "{}"},
	}
	for _, r := range routes {
		tok := grant(t, srv, key, "")
		if st, code, m := call(t, srv, r.method, r.path, "Bearer", tok, r.body); st != 403 || code != "TOKEN_SCOPE" {
			t.Errorf("%s %s with a token: %d %s %v, want 403 TOKEN_SCOPE", r.method, r.path, st, code, m)
		}
	}
	// With the key: usage and a grant answer 200, the request is readable (the token's
	// DELETE did not delete it), then the key deletes it.
	for _, r := range []struct {
		method, path string
		want         int
	}{{"GET", "/v1/usage", 200}, {"GET", "/v1/requests/" + id, 200}, {"POST", "/v1/auth/grant", 200}, {"DELETE", "/v1/requests/" + id, 0}} {
		st, code, _ := call(t, srv, r.method, r.path, "Token", key, "")
		if (r.want != 0 && st != r.want) || st >= 400 {
			t.Errorf("%s %s with the key: %d %s, want %d", r.method, r.path, st, code, r.want)
		}
	}
}

func TestF7bTokenBoundToModel(t *testing.T) {
	attack(t, "F7b", "a token granted for model tiny.en opens a stream of another model",
		"403 TOKEN_SCOPE; the bound model opens")
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t)
	_, key := authTenant(t, srv, "acme", "team")
	tok := grant(t, srv, key, `{"scope":"listen","model":"tiny.en"}`)
	_, err := dial(srv, tok, "base.en", "")
	if st, code := dialCode(err); st != 403 || code != "TOKEN_SCOPE" {
		t.Fatalf("model base.en with a tiny.en token: %v, want 403 TOKEN_SCOPE", err)
	}
	conn, err := dial(srv, tok, "tiny.en", "")
	if err != nil {
		t.Fatalf("tiny.en with its token: %v", err)
	}
	conn.Close()
	if st, code, _ := call(t, srv, "POST", "/v1/auth/grant", "Token", key, `{"scope":"admin"}`); st != 400 {
		t.Errorf("grant of an unknown scope: %d %s, want 400", st, code)
	}
}

func TestF7cTokenOpensOneStream(t *testing.T) {
	attack(t, "F7c", "one granted token opens a second live stream (at once and after the first ended)",
		"403 TOKEN_USED; resuming the token's own stream still works")
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t)
	_, key := authTenant(t, srv, "acme", "team")
	tok := grant(t, srv, key, `{"ttl_seconds":60}`)
	first, err := dial(srv, tok, "tiny.en", "")
	if err != nil {
		t.Fatal(err)
	}
	streamID := first.RequestID()
	if _, err := dial(srv, tok, "tiny.en", ""); err == nil {
		t.Fatal("a second concurrent stream opened with the same token")
	} else if st, code := dialCode(err); st != 403 || code != "TOKEN_USED" {
		t.Fatalf("second stream: %v, want 403 TOKEN_USED", err)
	}
	_ = first.CloseStream()
	for range first.Events() {
	}
	if _, err := dial(srv, tok, "tiny.en", ""); err == nil {
		t.Fatal("a new stream opened with a used token after the first ended")
	}
	// A reconnect naming the token's own stream (the SDKs' resume) is the same stream.
	again, err := dial(srv, tok, "tiny.en", streamID)
	if err != nil {
		t.Fatalf("resume of the token's own stream: %v", err)
	}
	again.Close()
}

func TestF10DemoVisitorsCannotReadRequests(t *testing.T) {
	attack(t, "F10", "demo visitor A reads and deletes visitor B's request by id with A's demo token",
		"demo tokens reach no /v1/requests route (403 TOKEN_SCOPE); demo tokens carry distinct visitor ids")
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t)
	// Visitor B keeps a transcript (retain=transcript) with its demo token.
	st, idB, body := uploadAs(t, srv, "Bearer", srv.DemoToken())
	if st != 403 {
		t.Errorf("POST /v1/listen?retain=transcript with a demo token: %d %s, want 403 TOKEN_SCOPE", st, body)
	}
	if idB == "" { // refused: a live demo stream's id is what A could guess
		b, err := dial(srv, srv.DemoToken(), "tiny.en", "")
		if err != nil {
			t.Fatal(err)
		}
		idB = b.RequestID()
		_ = b.CloseStream()
		for range b.Events() {
		}
	}
	for _, m := range []string{"GET", "DELETE"} {
		if st, code, body := call(t, srv, m, "/v1/requests/"+idB, "Bearer", srv.DemoToken(), ""); st != 403 || code != "TOKEN_SCOPE" {
			t.Errorf("%s visitor B's request with visitor A's token: %d %s %v, want 403 TOKEN_SCOPE", m, st, code, body)
		}
	}
	va, vb := visitor(t, srv.DemoToken()), visitor(t, srv.DemoToken())
	if va == "" || va == vb {
		t.Errorf("demo visitor ids %q and %q: want distinct, non-empty", va, vb)
	}
}

// visitor reads the visitor claim of a token (the payload is not secret, only signed).
func visitor(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(strings.TrimPrefix(tok, gateway.TokenPrefix), ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Visitor string `json:"v"`
	}
	_ = json.Unmarshal(raw, &c)
	return c.Visitor
}

func TestF10bDemoGrantsOwnLimiter(t *testing.T) {
	attack(t, "F10b", "60 demo grants from one address, then a valid API key from that address",
		"demo grants beyond the burst get 429 RATE_LIMITED; the key still works (200)")
	srv := testutil.StartServe(t)
	_, key := authTenant(t, srv, "acme", "team")
	limited := 0
	for range 60 {
		st, code, _ := call(t, srv, "POST", "/demo/grant", "", "", "")
		if st == 429 && code == "RATE_LIMITED" {
			limited++
		} else if st != 200 {
			t.Fatalf("demo grant: %d %s", st, code)
		}
	}
	if limited == 0 {
		t.Error("60 demo grants from one address: none rate limited")
	}
	if st, code, _ := call(t, srv, "GET", "/v1/usage", "Token", key, ""); st != 200 {
		t.Errorf("a valid key after demo grants from its address: %d %s, want 200", st, code)
	}
}

func TestF10cDemoPlanCapped(t *testing.T) {
	attack(t, "F10c", "the anonymous demo tenant streams beyond a small cap (it was on the 500 h team plan)",
		"the demo tenant is on the demo plan (1 h a month): past it a demo stream is refused 402 QUOTA_EXHAUSTED")
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Redis.Addr})
	defer rdb.Close()
	store := billing.NewStore(rdb, billing.DefaultPlans(), nil)
	ten, err := store.Get(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	if ten.Plan != "demo" {
		t.Errorf("demo tenant on plan %q, want demo", ten.Plan)
	}
	// One hour of demo audio already used this month.
	now := time.Now().UTC()
	ev := bus.UsageEvent{ID: "abuse-f10c", Tenant: "demo", Model: "tiny.en", Session: "abusef10c", DurationMs: billing.MaxEventMs, Final: true, At: now}
	if _, err := store.Apply(ctx, ev, now); err != nil {
		t.Fatal(err)
	}
	_, err = dial(srv, srv.DemoToken(), "tiny.en", "")
	if st, code := dialCode(err); st != 402 || code != "QUOTA_EXHAUSTED" {
		t.Fatalf("demo stream after 1 h of demo audio this month: %v, want 402 QUOTA_EXHAUSTED", err)
	}
}

func TestHTokensForgedExpiredRevoked(t *testing.T) {
	attack(t, "H1", "forged (bad signature, altered claims), expired and revoked-key tokens on GET /v1/listen",
		"401 INVALID_AUTH for each")
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t)
	keyID, key := authTenant(t, srv, "acme", "team")
	_, _ = authTenant(t, srv, "other", "team")
	tok := grant(t, srv, key, `{"ttl_seconds":1}`)
	i := strings.LastIndexByte(tok, '.')
	payload, _ := base64.RawURLEncoding.DecodeString(tok[len(gateway.TokenPrefix):i])
	altered := gateway.TokenPrefix + base64.RawURLEncoding.EncodeToString(bytes.Replace(payload, []byte(`"acme"`), []byte(`"other"`), 1)) + tok[i:]
	badSig := tok[:i] + ".AAAA" + tok[i+5:]
	for name, bad := range map[string]string{"altered claims": altered, "bad signature": badSig} {
		if st, code := dialCode(first(dial(srv, bad, "tiny.en", ""))); st != 401 || code != "INVALID_AUTH" {
			t.Errorf("%s: %d %s, want 401 INVALID_AUTH", name, st, code)
		}
	}
	time.Sleep(2100 * time.Millisecond)
	if st, code := dialCode(first(dial(srv, tok, "tiny.en", ""))); st != 401 || code != "INVALID_AUTH" {
		t.Errorf("expired token: %d %s, want 401", st, code)
	}
	tok = grant(t, srv, key, "")
	rdb := redis.NewClient(&redis.Options{Addr: srv.Redis.Addr})
	defer rdb.Close()
	if err := gateway.NewKeyStore(rdb).Revoke(context.Background(), "acme", keyID); err != nil {
		t.Fatal(err)
	}
	if st, code := dialCode(first(dial(srv, tok, "tiny.en", ""))); st != 401 || code != "INVALID_AUTH" {
		t.Errorf("token of a revoked key: %d %s, want 401", st, code)
	}
}

func first(c *client.Conn, err error) error {
	if c != nil {
		c.Close()
	}
	return err
}

func TestHCrossTenantRequests(t *testing.T) {
	attack(t, "H2", "tenant B reads and deletes tenant A's /v1/requests/{id} with B's key",
		"404 for both; A still reads its request")
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t)
	_, keyA := authTenant(t, srv, "tenanta", "team")
	_, keyB := authTenant(t, srv, "tenantb", "team")
	id := upload(t, srv, keyA)
	for _, m := range []string{"GET", "DELETE"} {
		if st, code, body := call(t, srv, m, "/v1/requests/"+id, "Token", keyB, ""); st != 404 {
			t.Errorf("%s A's request with B's key: %d %s %v, want 404", m, st, code, body)
		}
	}
	if st, code, _ := call(t, srv, "GET", "/v1/requests/"+id, "Token", keyA, ""); st != 200 {
		t.Errorf("A reads its request after B's attempts: %d %s", st, code)
	}
}
