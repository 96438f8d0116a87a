package chaos

import (
	"os"
	"strings"
	"testing"
	"time"
)

// The long form of the suite (`make chaos`, which sets EARSHOT_CHAOS=full): one fault
// per test, each on its own cluster, each against the undisturbed run of the same
// cluster. `go test ./...` runs only TestShortFailover.

func longSuite(t *testing.T) {
	t.Helper()
	if os.Getenv("EARSHOT_CHAOS") != "full" {
		t.Skip("long chaos suite: run scripts/chaos.sh (EARSHOT_CHAOS=full)")
	}
}

// TestRedisRestart restarts Redis 4 s into a stream: keys, quotas and the billing
// ledger are unavailable for about a second.
func TestRedisRestart(t *testing.T) {
	longSuite(t)
	c := newCluster(t, 1)
	token := c.token()
	base := baseline(t, c, token)
	g0, _ := c.gatewayMetric("go_goroutines")
	pcm, ref := jfk(t)
	o := stream(t, c.wsURL(), token, pcm, ref, false, hook{4 * time.Second, func(string) { c.redis.Restart() }})
	t.Logf("Redis restarted at 4 s: %v", o)
	checkSurvived(t, "a Redis restart", o, base)
	checkBilled(t, c, token, base.AcceptedMs+o.AcceptedMs)
	checkGoroutines(t, c, g0)
	// A new stream after the restart is served as before.
	after := stream(t, c.wsURL(), token, pcm, ref, false)
	t.Logf("stream after the restart: %v", after)
	if len(after.Errors) > 0 || after.WER > base.WER+werSlack {
		t.Errorf("stream after the Redis restart: %v", after)
	}
}

// TestGatewayRestart kills the gateway (SIGKILL) 4 s into a stream whose client has
// Reconnect on, and starts it again on the same port at once. (With a second of
// downtime the SDK gives up: client.Conn redials once and does not retry a refused
// dial; see RELIABILITY.md.)
func TestGatewayRestart(t *testing.T) {
	longSuite(t)
	c := newCluster(t, 1)
	token := c.token()
	base := baseline(t, c, token)
	pcm, ref := jfk(t)
	o := stream(t, c.wsURL(), token, pcm, ref, true, hook{4 * time.Second, func(string) {
		c.gateway.Kill()
		time.Sleep(time.Second) // down for a second: the client's redials are refused meanwhile
		c.startGateway()
	}})
	t.Logf("gateway killed at 4 s and restarted 1 s later: %v", o)
	if !o.Reconnected {
		t.Errorf("the client did not reconnect: %v", o)
	}
	if o.WER > base.WER+werSlack {
		t.Errorf("WER %.1f%% vs %.1f%% undisturbed", 100*o.WER, 100*base.WER)
	}
	// The killed gateway billed the audio under every final it sent (it flushes its
	// meter first); the client resent what came after its last final on a connection
	// that names the stream and the offset it resumes, and billing counts the union:
	// every millisecond sent is billed once.
	billed := c.waitBilled(token, base.AcceptedMs+o.SentMs, 20*time.Second) - base.AcceptedMs
	time.Sleep(2 * time.Second) // a double count would still be arriving
	billed, _ = c.billedMs(token)
	billed -= base.AcceptedMs
	t.Logf("billed %d ms for the disturbed stream; %d ms sent; last connection accepted %d ms", billed, o.SentMs, o.AcceptedMs)
	if billed != o.SentMs {
		t.Errorf("billed %d ms ≠ %d ms sent", billed, o.SentMs)
	}
}

// TestNATSRestart kills nats-server (SIGKILL) 4 s into a stream and starts it again on
// the same port and JetStream directory 1 s later.
func TestNATSRestart(t *testing.T) {
	longSuite(t)
	c := newCluster(t, 1)
	token := c.token()
	base := baseline(t, c, token)
	g0, _ := c.gatewayMetric("go_goroutines")
	pcm, ref := jfk(t)
	o := stream(t, c.wsURL(), token, pcm, ref, true, hook{4 * time.Second, func(string) {
		c.nats.Kill()
		time.Sleep(time.Second)
		c.startNATS()
	}})
	t.Logf("NATS killed at 4 s and restarted: %v", o)
	if len(o.Finals) == 0 && len(o.Errors) == 0 {
		t.Errorf("the stream neither continued nor said why it stopped: %v", o)
	}
	// Chunks lost while the server was down are asked for again by the worker
	// (ResultResend) and resent from the gateway's replay buffer: no word is lost.
	for i, p := range c.transcriber {
		if p != nil {
			t.Logf("transcriber %d: %d audio gaps recovered, %d given up", i,
				strings.Count(p.Output(), "audio gap recovered"), strings.Count(p.Output(), "audio gap given up"))
		}
	}
	if o.WER > base.WER+0.05 { // one word of JFK's 22 is 4.5 %
		t.Errorf("words lost across the NATS restart: %v (undisturbed: WER %.1f%%)", o, 100*base.WER)
	}
	for _, e := range o.Errors {
		if strings.TrimSpace(e) == "" {
			t.Errorf("an empty error reached the client")
		}
	}
	billed := c.waitBilled(token, base.AcceptedMs+o.AcceptedMs, 30*time.Second) - base.AcceptedMs
	t.Logf("billed %d ms for the disturbed stream, accepted %d ms, sent %d ms", billed, o.AcceptedMs, o.SentMs)
	checkGoroutines(t, c, g0)
	// After the restart, new streams work again.
	time.Sleep(2 * time.Second)
	after := stream(t, c.wsURL(), token, pcm, ref, false)
	t.Logf("stream after the restart: %v", after)
	if len(after.Errors) > 0 || after.WER > base.WER+werSlack {
		t.Errorf("stream after the NATS restart: %v", after)
	}
}
