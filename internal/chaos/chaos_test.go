package chaos

import (
	"testing"
	"time"
)

// werSlack is how much worse than the undisturbed run a disturbed transcript may be:
// JFK has 22 reference words, so 0.14 is three words.
const werSlack = 0.14

// baseline streams JFK undisturbed and checks it is transcribed and billed exactly.
func baseline(t *testing.T, c *cluster, token string) outcome {
	t.Helper()
	pcm, ref := jfk(t)
	o := stream(t, c.wsURL(), token, pcm, ref, false)
	t.Logf("undisturbed: %v", o)
	if len(o.Finals) == 0 || o.WER > 0.5 {
		t.Fatalf("undisturbed run is already wrong (machine too loaded?): %v", o)
	}
	return o
}

// checkSurvived asserts that a stream went through fault (what happened, for the
// messages) without a client-visible error and with WER within werSlack of base.
func checkSurvived(t *testing.T, fault string, o, base outcome) {
	t.Helper()
	if len(o.Errors) > 0 {
		t.Errorf("the stream should survive %s without an error: %q", fault, o.Errors)
	}
	if o.WER > base.WER+werSlack {
		t.Errorf("WER %.1f%% across %s vs %.1f%% undisturbed", 100*o.WER, fault, 100*base.WER)
	}
}

// checkBilled waits for billing to catch up and asserts billed == accepted, exactly.
func checkBilled(t *testing.T, c *cluster, token string, acceptedMs int64) {
	t.Helper()
	got := c.waitBilled(token, acceptedMs, 30*time.Second)
	t.Logf("billed %d ms, gateway accepted %d ms", got, acceptedMs)
	if got != acceptedMs {
		t.Errorf("billed %d ms ≠ accepted %d ms", got, acceptedMs)
	}
}

// checkGoroutines waits for the gateway's goroutines to come back near base.
func checkGoroutines(t *testing.T, c *cluster, base float64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		g, ok := c.gatewayMetric("go_goroutines")
		if !ok {
			t.Logf("gateway goroutines: not measurable (/metrics unavailable)")
			return
		}
		if g <= base+5 {
			rss, _ := c.gatewayMetric("process_resident_memory_bytes")
			t.Logf("gateway goroutines back to %.0f (baseline %.0f); gateway RSS %.1f MB", g, base, rss/1e6)
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("gateway goroutines %.0f, baseline %.0f: a stream's goroutines were not released", g, base)
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestShortFailover is the CI form: 2 transcribers, one JFK stream undisturbed, then one
// during which the transcriber serving it and the billing consumer are killed with
// SIGKILL (billing is restarted 2 s later).
func TestShortFailover(t *testing.T) {
	c := newCluster(t, 2)
	token := c.token()
	base := baseline(t, c, token)
	g0, _ := c.gatewayMetric("go_goroutines")

	pcm, ref := jfk(t)
	killed := -1
	hooks := []hook{
		{3 * time.Second, func(id string) {
			if killed = c.serving(id); killed >= 0 {
				c.transcriber[killed].Kill()
			}
		}},
		{5 * time.Second, func(string) { c.billing.Kill() }},
		{7 * time.Second, func(string) { c.startBilling() }},
	}
	o := stream(t, c.wsURL(), token, pcm, ref, false, hooks...)
	t.Logf("transcriber w%d killed at 3 s, billing killed at 5 s and restarted at 7 s: %v", killed, o)
	if killed < 0 {
		t.Fatalf("could not tell which transcriber served the stream")
	}
	checkSurvived(t, "a lost worker", o, base)
	if n := len(o.FinalAt); n == 0 || o.FinalAt[n-1] < 3*time.Second {
		t.Errorf("no final after the kill at 3 s: finals at %v", o.FinalAt)
	}
	checkBilled(t, c, token, base.AcceptedMs+o.AcceptedMs)
	checkGoroutines(t, c, g0)
}
