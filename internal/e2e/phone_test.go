package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/earshot-dev/earshot/billing"
	"github.com/earshot-dev/earshot/gateway/twilio"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/testpace"
	"github.com/earshot-dev/earshot/internal/testutil"
	"github.com/earshot-dev/earshot/internal/wer"
)

// TestPhoneSimIntoServe plays two 8 kHz prompts as caller and agent with the
// `earshot phone-sim` binary into `/v1/twilio/{secret}` of a real `earshot serve`
// (real tiny.en): the tenant's webhook (a real HTTP server here) receives signed
// partials and finals of both speakers in order and a call summary whose text matches
// the references; billing holds the call's seconds per track exactly.
func TestPhoneSimIntoServe(t *testing.T) {
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t, "--outbound-allow-loopback") // the webhook receiver is on loopback
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Redis.Addr})
	defer rdb.Close()
	store := billing.NewStore(rdb, billing.DefaultPlans(), nil)
	if _, err := store.CreateTenant(ctx, "callco", "team"); err != nil {
		t.Fatal(err)
	}
	secret, err := twilio.NewSecretStore(rdb).CreateSecret(ctx, "callco")
	if err != nil {
		t.Fatal(err)
	}
	const hookKey = "whsec-test-key-0123456789"
	var (
		mu     sync.Mutex
		events []twilio.CallEvent
		bad    int
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if twilio.VerifyWebhook(hookKey, r.Header.Get(twilio.SignatureHeader), body, time.Minute, time.Now()) != nil {
			bad++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var ev twilio.CallEvent
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		events = append(events, ev)
	}))
	defer hook.Close()
	if err := twilio.NewRedisWebhooks(rdb).Set(ctx, "callco", hook.URL, hookKey); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(testdata.Require(t), "speech", "wav8k")
	caller := filepath.Join(dir, "asterisk_conf-getconfno.wav")
	agent := filepath.Join(dir, "asterisk_demo-echodone.wav")
	url := strings.Replace(srv.URL, "http://", "ws://", 1) + "/v1/twilio/" + secret
	// Real time, or slower on a machine that cannot keep up (testpace).
	speed := strconv.FormatFloat(1/testpace.Factor(t), 'f', 3, 64)
	out, err := exec.Command(testutil.Binary(t), "phone-sim", caller, agent, "--url", url, "--speed", speed).CombinedOutput()
	if err != nil {
		t.Fatalf("earshot phone-sim: %v\n%s", err, out)
	}

	var summary *twilio.CallSummary
	testutil.Eventually(t, 30*time.Second, "the call summary at the webhook", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, ev := range events {
			if ev.Type == twilio.TypeSummary {
				summary = ev.Summary
			}
		}
		return summary != nil
	})
	mu.Lock()
	defer mu.Unlock()
	if bad > 0 {
		t.Errorf("%d webhook deliveries had a bad signature", bad)
	}
	finals := map[string][]string{}
	partials := 0
	var lastSeq uint64
	for _, ev := range events {
		if ev.Seq <= lastSeq {
			t.Errorf("event %s seq %d after %d: out of order", ev.Type, ev.Seq, lastSeq)
		}
		lastSeq = ev.Seq
		switch ev.Type {
		case twilio.TypeFinal:
			finals[ev.Speaker] = append(finals[ev.Speaker], ev.Text)
		case twilio.TypePartial:
			partials++
		}
	}
	refs := map[string]string{
		"caller": "Please enter your conference number followed by the pound key.",
		"agent":  "The echo test has been completed.",
	}
	for speaker, ref := range refs {
		got := strings.Join(finals[speaker], " ")
		w, _, _ := wer.WER(ref, got)
		t.Logf("%s: WER %.1f%% %q", speaker, 100*w, got)
		if w > 0.25 {
			t.Errorf("%s: WER %.1f%% > 25%%: %q", speaker, 100*w, got)
		}
	}
	if partials == 0 {
		t.Errorf("no partials reached the webhook")
	}
	if !strings.Contains(summary.Transcript, "caller:") || !strings.Contains(summary.Transcript, "agent:") {
		t.Errorf("summary transcript without both speakers: %q", summary.Transcript)
	}
	// Billing: each track's usage (its own session) equals the audio the summary says
	// the call carried on it, to the millisecond.
	testutil.Eventually(t, 20*time.Second, "usage of both tracks applied", func() bool {
		m, err := store.MonthUsage(ctx, "callco", time.Now().UTC().Format("2006-01"))
		return err == nil && m["tiny.en"] == summary.AudioMs["caller"]+summary.AudioMs["agent"]
	})
	if summary.AudioMs["caller"] <= 0 || summary.AudioMs["agent"] <= 0 {
		t.Errorf("summary audio per speaker %v", summary.AudioMs)
	}
	t.Logf("summary: %d turns, audio ms %v, dtmf %q, %d partials", len(summary.Turns), summary.AudioMs, summary.DTMF, partials)
}
