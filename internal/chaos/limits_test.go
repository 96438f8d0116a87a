package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/earshot-dev/earshot/gateway/client"
	"github.com/earshot-dev/earshot/gateway/twilio"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// TestStreamLimitAcrossGateways: two gateway processes on one NATS and one Redis, a
// tenant limited to 2 live streams. Failed authentications on one gateway block the
// address on the other. Two streams on gateway 1 make the third 429 on
// gateway 2 (before: each gateway counted its own, so 2 gateways allowed 4); ending one
// frees a slot at once; killing gateway 1 (SIGKILL, no release) frees its slot within
// the lease TTL (6 s), so the tenant is not locked out by a dead gateway.
func TestStreamLimitAcrossGateways(t *testing.T) {
	c := newCluster(t, 1, "--max-streams-per-tenant", "2", "--max-calls-per-tenant", "1")
	ws2 := c.startSecondGateway()
	token := c.token()
	ctx := context.Background()
	opts := client.Options{Token: token, Encoding: "linear16", SampleRate: 16000}
	dial := func(url string) (*client.Conn, error) { return client.Dial(ctx, url, opts) }
	is429 := func(err error) bool {
		var de *client.DialError
		return errors.As(err, &de) && de.Status == 429
	}
	// Failed authentications on gateway 1 block the address on gateway 2 as well
	// (before: each gateway had its own buckets, so N gateways gave N × the guesses).
	bad := client.Options{Token: "es_not-a-key", Encoding: "linear16", SampleRate: 16000}
	status := func(url string) int {
		var de *client.DialError
		if _, err := client.Dial(ctx, url, bad); errors.As(err, &de) {
			return de.Status
		}
		return 0
	}
	fails := 0
	for ; fails < 40 && status(c.wsURL()) == 401; fails++ {
	}
	if s := status(ws2); fails == 0 || fails >= 40 || s != 429 {
		t.Fatalf("after %d failed authentications on gateway 1, gateway 2 answers %d, want 429", fails, s)
	}
	t.Logf("blocked on both gateways after %d failed authentications on one", fails)
	var s1 *client.Conn
	var err error
	testutil.Eventually(t, 10*time.Second, "the address unblocked (1 token/s)", func() bool {
		s1, err = dial(c.wsURL())
		return err == nil
	})
	s2, err := dial(c.wsURL())
	if err != nil {
		t.Fatalf("stream 2 on gateway 1: %v", err)
	}
	if _, err := dial(ws2); !is429(err) {
		t.Fatalf("stream 3 on gateway 2: %v, want HTTP 429", err)
	}
	_ = s1.CloseStream()
	s1.Close()
	var s3 *client.Conn
	testutil.Eventually(t, 5*time.Second, "a slot on gateway 2 after stream 1 ended", func() bool {
		s3, err = dial(ws2)
		return err == nil
	})
	defer s3.Close()
	if _, err := dial(ws2); !is429(err) {
		t.Fatalf("with streams 2 (gateway 1) and 3 (gateway 2) live, another: %v, want HTTP 429", err)
	}
	// Phone calls: with --max-calls-per-tenant 1, a call held on gateway 1 makes a
	// second call's start on gateway 2 close 1008.
	secret, err := twilio.NewSecretStore(c.redis.Client()).CreateSecret(ctx, "chaos")
	if err != nil {
		t.Fatal(err)
	}
	first := phoneCall(t, strings.Replace(c.wsURL(), "/v1/listen", "/v1/twilio/"+secret, 1), "CAone")
	defer first.Close()
	c.gateway.WaitOutput("call=CAone stream=MZCAone tracks=", 15*time.Second) // it holds its place
	second := phoneCall(t, strings.Replace(ws2, "/v1/listen", "/v1/twilio/"+secret, 1), "CAtwo")
	_ = second.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ce *websocket.CloseError
	var got []string
	for {
		_, msg, err := second.ReadMessage()
		if err != nil {
			if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
				t.Fatalf("a second call on gateway 2 while one is live on gateway 1: %v after %q, want close 1008", err, got)
			}
			break
		}
		got = append(got, string(msg))
	}
	second.Close()

	// Gateway 1 dies holding stream 2.
	defer s2.Close()
	c.gateway.Kill()
	killed := time.Now()
	var s4 *client.Conn
	testutil.Eventually(t, 15*time.Second, "the dead gateway's slot free", func() bool {
		s4, err = dial(ws2)
		return err == nil
	})
	defer s4.Close()
	took := time.Since(killed)
	t.Logf("the dead gateway's slot was free after %v", took.Round(100*time.Millisecond))
	if took > 10*time.Second {
		t.Fatalf("the dead gateway's slot came free after %v, want within 10 s", took)
	}
}

// phoneCall opens a Twilio Media Streams call on url and starts it.
func phoneCall(t *testing.T, url, callSid string) *websocket.Conn {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("phone call %s: %v", callSid, err)
	}
	send := func(v any) {
		b, _ := json.Marshal(v)
		if err := conn.WriteMessage(websocket.TextMessage, b); err != nil {
			t.Fatalf("phone call %s: %v", callSid, err)
		}
	}
	send(map[string]any{"event": "connected", "protocol": "Call", "version": "1.0.0"})
	send(map[string]any{"event": "start", "start": twilio.StartInfo{AccountSID: "AC1", StreamSID: "MZ" + callSid,
		CallSID: callSid, Tracks: []string{twilio.TrackInbound},
		MediaFormat: twilio.MediaFormat{Encoding: "audio/x-mulaw", SampleRate: 8000, Channels: 1}}})
	return conn
}
