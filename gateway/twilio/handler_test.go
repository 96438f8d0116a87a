package twilio

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/internal/testutil"
)

const testSecret = "tw_test-secret"

type harness struct {
	t       *testing.T
	h       *Handler
	srv     *httptest.Server
	backend *standInBackend
	meters  *recMetering
	hook    *receiver
}

func newHarness(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	hs := &harness{t: t, backend: &standInBackend{}, meters: &recMetering{}, hook: newReceiver(t, "whsec", 0)}
	cfg := Config{Backend: hs.backend, Tenants: mapTenants{testSecret: "acme"}, Metering: hs.meters,
		Webhooks: fixedWebhook{hs.hook.srv.URL, "whsec"}, Delivery: DeliveryOptions{AllowLoopback: true, Backoff: time.Millisecond}}
	if mod != nil {
		mod(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs.h = h
	mux := http.NewServeMux()
	mux.Handle("GET /v1/twilio/{secret}", h)
	mux.Handle("GET /v1/twilio", h)
	hs.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		hs.srv.Close()
	})
	return hs
}

func (hs *harness) url(secret string) string {
	u := "ws" + strings.TrimPrefix(hs.srv.URL, "http") + "/v1/twilio"
	if secret != "" {
		u += "/" + secret
	}
	return u
}

// tconn is the test's Twilio side of one stream.
type tconn struct {
	t *testing.T
	c *websocket.Conn
}

func (hs *harness) dial(secret string, hdr http.Header) *tconn {
	hs.t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(hs.url(secret), hdr)
	if err != nil {
		hs.t.Fatal(err)
	}
	hs.t.Cleanup(func() { c.Close() })
	return &tconn{t: hs.t, c: c}
}

func (tc *tconn) send(v any) {
	tc.t.Helper()
	var b []byte
	switch x := v.(type) {
	case string:
		b = []byte(x)
	default:
		b, _ = json.Marshal(x)
	}
	if err := tc.c.WriteMessage(websocket.TextMessage, b); err != nil {
		tc.t.Fatal(err)
	}
}

func (tc *tconn) start(call string, params map[string]string, tracks ...string) {
	if len(tracks) == 0 {
		tracks = []string{TrackInbound, TrackOutbound}
	}
	tc.send(Message{Event: EventConnected, Protocol: "Call", Version: "1.0.0"})
	tc.send(Message{Event: EventStart, SequenceNumber: "1", StreamSID: "MZ1", Start: &StartInfo{
		AccountSID: "AC1", StreamSID: "MZ1", CallSID: call, Tracks: tracks, CustomParameters: params,
		MediaFormat: MediaFormat{Encoding: "audio/x-mulaw", SampleRate: 8000, Channels: 1}}})
}

func (tc *tconn) media(track string, chunk int, audio []byte) {
	tc.send(Message{Event: EventMedia, StreamSID: "MZ1", Media: &MediaInfo{Track: track, Chunk: strconv.Itoa(chunk),
		Timestamp: strconv.Itoa((chunk - 1) * 20), Payload: base64.StdEncoding.EncodeToString(audio)}})
}

// closed waits for the server to end the stream; it returns the error event's
// message (if one came) and the close code.
func (tc *tconn) closed() (errMsg string, code int) {
	tc.t.Helper()
	_ = tc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, b, err := tc.c.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return errMsg, ce.Code
			}
			tc.t.Fatalf("stream did not close: %v", err)
		}
		var m struct {
			Event string                   `json:"event"`
			Error struct{ Message string } `json:"error"`
		}
		if json.Unmarshal(b, &m) == nil && m.Event == "error" {
			errMsg = m.Error.Message
		}
	}
}

// frame is 20 ms of µ-law whose samples encode k (a ramp, so reordering shows).
func frame(k int) []byte {
	f := make([]byte, FrameBytes)
	for i := range f {
		f[i] = ingest.LinearToMulaw(int16((k*FrameBytes + i) % 4000 * 4))
	}
	return f
}

func TestProtocolErrorsEndTheStreamWithAnErrorEvent(t *testing.T) {
	cases := []struct {
		name string
		run  func(tc *tconn)
		want string
	}{
		{"media before start", func(tc *tconn) { tc.media(TrackInbound, 1, frame(1)) }, "media before start"},
		{"payload not base64", func(tc *tconn) {
			tc.start("CA1", nil)
			tc.send(`{"event":"media","media":{"track":"inbound","chunk":"1","timestamp":"0","payload":"%%%not base64"}}`)
		}, "not base64"},
		{"payload not whole frames", func(tc *tconn) {
			tc.start("CA1", nil)
			tc.media(TrackInbound, 1, make([]byte, 100))
		}, "not a multiple of 160"},
		{"empty payload", func(tc *tconn) {
			tc.start("CA1", nil)
			tc.media(TrackInbound, 1, nil)
		}, "not a multiple of 160"},
		{"not JSON", func(tc *tconn) { tc.send("{nope") }, "not a JSON message"},
		{"wrong media format", func(tc *tconn) {
			tc.send(Message{Event: EventStart, Start: &StartInfo{CallSID: "CA1", StreamSID: "MZ1", Tracks: []string{"inbound"},
				MediaFormat: MediaFormat{Encoding: "audio/x-l16", SampleRate: 16000, Channels: 1}}})
		}, "unsupported media format"},
		{"unannounced track", func(tc *tconn) {
			tc.start("CA1", nil, TrackInbound)
			tc.media(TrackOutbound, 1, frame(1))
		}, "did not announce"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hs := newHarness(t, nil)
			tc := hs.dial(testSecret, nil)
			c.run(tc)
			msg, code := tc.closed()
			if !strings.Contains(msg, c.want) || code != websocket.ClosePolicyViolation {
				t.Fatalf("error event %q close %d, want %q and 1008", msg, code, c.want)
			}
		})
	}
}

func TestBadFrameAfterStartStillBillsAndSummarises(t *testing.T) {
	hs := newHarness(t, nil)
	tc := hs.dial(testSecret, nil)
	tc.start("CA2", nil, TrackInbound)
	for k := 1; k <= 10; k++ {
		tc.media(TrackInbound, k, frame(k))
	}
	tc.media(TrackInbound, 11, make([]byte, 161))
	if msg, _ := tc.closed(); !strings.Contains(msg, "161 bytes") {
		t.Fatalf("error %q", msg)
	}
	testutil.Eventually(t, 5*time.Second, "summary", func() bool { return hs.hook.summary() != nil })
	s := hs.hook.summary().Summary
	if ms, closed := hs.meters.billed("CA2", TrackInbound); ms != 200 || !closed || s.AudioMs["caller"] != 200 || s.Reason != "error" {
		t.Fatalf("billed %d ms (closed %v), summary %+v; want 200 ms for 10 good frames", ms, closed, s)
	}
	if evs := hs.hook.got(); evs[0].Type != TypeError {
		t.Fatalf("first event %+v, want the call.error", evs[0])
	}
}

func TestUnknownEventsAreIgnored(t *testing.T) {
	hs := newHarness(t, nil)
	tc := hs.dial(testSecret, nil)
	tc.start("CA3", nil, TrackInbound)
	tc.send(`{"event":"clear","streamSid":"MZ1"}`)
	tc.send(`{"event":"something-new","x":{"y":1}}`)
	for k := 1; k <= 50; k++ {
		tc.media(TrackInbound, k, frame(k))
	}
	tc.send(Message{Event: EventDTMF, DTMF: &DTMFInfo{Track: "inbound_track", Digit: "7"}})
	tc.send(Message{Event: EventMark, Mark: &MarkInfo{Name: "m1"}})
	tc.send(Message{Event: EventStop, Stop: &StopInfo{CallSID: "CA3"}})
	if msg, code := tc.closed(); msg != "" || code != websocket.CloseNormalClosure {
		t.Fatalf("error %q close %d", msg, code)
	}
	testutil.Eventually(t, 5*time.Second, "summary", func() bool { return hs.hook.summary() != nil })
	s := hs.hook.summary().Summary
	if s.Reason != "stop" || s.DTMF != "7" || !slices.Equal(s.Marks, []string{"m1"}) || s.AudioMs["caller"] != 1000 {
		t.Fatalf("summary %+v", s)
	}
}

// TestChunksAreReorderedAndDeduplicated sends chunks reversed in windows of 5 with
// duplicates and checks the transcriber got exactly the in-order audio, once.
func TestChunksAreReorderedAndDeduplicated(t *testing.T) {
	hs := newHarness(t, nil)
	tc := hs.dial(testSecret, nil)
	tc.start("CA4", nil, TrackInbound)
	const n = 100
	for w := 0; w < n; w += 5 {
		for k := w + 5; k > w; k-- {
			tc.media(TrackInbound, k, frame(k))
			if k%3 == 0 {
				tc.media(TrackInbound, k, frame(k)) // duplicate
			}
		}
	}
	tc.media(TrackInbound, 2, frame(2)) // very late duplicate
	tc.send(Message{Event: EventStop, Stop: &StopInfo{CallSID: "CA4"}})
	tc.closed()
	testutil.Eventually(t, 5*time.Second, "summary", func() bool { return hs.hook.summary() != nil })

	p, _ := ingest.NewPipeline(ingest.Format{Encoding: ingest.Mulaw, SampleRate: 8000, Channels: 1}, ingest.ModeDownmix)
	var want []float32
	for k := 1; k <= n; k++ {
		out, _ := p.Push(frame(k))
		want = append(want, out[0]...)
	}
	want = append(want, p.Flush()[0]...)
	got := hs.backend.all()[0].samples()
	if !slices.Equal(got, ingest.ToInt16(want)) {
		t.Fatalf("transcriber got %d samples that differ from the in-order decode (%d)", len(got), len(want))
	}
	s := hs.hook.summary().Summary
	if s.Duplicates["caller"] != n/3+1 || s.Lost["caller"] != 0 || s.AudioMs["caller"] != n*20 {
		t.Fatalf("summary %+v", s)
	}
}

func TestGapBeyondWindowIsFilledWithSilenceAndNotBilled(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.ReorderWindow = 4 })
	tc := hs.dial(testSecret, nil)
	tc.start("CA5", nil, TrackInbound)
	for k := 1; k <= 30; k++ {
		if k == 10 || k == 11 { // lost
			continue
		}
		tc.media(TrackInbound, k, frame(k))
	}
	tc.media(TrackInbound, 10, frame(10)) // arrives after the window gave up on it: dropped
	tc.send(Message{Event: EventStop, Stop: &StopInfo{CallSID: "CA5"}})
	tc.closed()
	testutil.Eventually(t, 5*time.Second, "summary", func() bool { return hs.hook.summary() != nil })
	s := hs.hook.summary().Summary
	if s.Lost["caller"] != 2 || s.AudioMs["caller"] != 28*20 || s.DurationMs != 30*20 {
		t.Fatalf("summary %+v: want 2 lost chunks, 560 ms billed, 600 ms long", s)
	}
	// 30 frames of 8 kHz = 9600 samples at 16 kHz: the clock kept its length.
	if got := len(hs.backend.all()[0].samples()); got != 9600 {
		t.Fatalf("transcriber got %d samples, want 9600", got)
	}
}

func TestIdleCallIsFinalisedAndBilled(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.IdleTimeout = 300 * time.Millisecond })
	tc := hs.dial(testSecret, nil)
	tc.start("CA6", nil)
	for k := 1; k <= 75; k++ { // 1.5 s on both tracks, then silence on the wire, no stop
		tc.media(TrackInbound, k, frame(k))
		tc.media(TrackOutbound, k, frame(k))
	}
	start := time.Now()
	_, code := tc.closed()
	if d := time.Since(start); d > 3*time.Second || code != websocket.CloseNormalClosure {
		t.Fatalf("closed after %v with %d", d, code)
	}
	testutil.Eventually(t, 5*time.Second, "summary", func() bool { return hs.hook.summary() != nil })
	for _, tr := range []string{TrackInbound, TrackOutbound} {
		if ms, closed := hs.meters.billed("CA6", tr); ms != 1500 || !closed {
			t.Fatalf("%s billed %d ms (closed %v), want 1500", tr, ms, closed)
		}
	}
	s := hs.hook.summary().Summary
	if s.Reason != "idle_timeout" || len(s.Turns) != 6 || s.Transcript == "" {
		t.Fatalf("summary %+v", s)
	}
}

func TestEventsArriveInOrderWithSpeakers(t *testing.T) {
	hs := newHarness(t, nil)
	tc := hs.dial(testSecret, nil)
	tc.start("CA7", nil)
	for k := 1; k <= 100; k++ {
		tc.media(TrackInbound, k, frame(k))
		if k > 50 {
			tc.media(TrackOutbound, k-50, frame(k))
		}
	}
	tc.send(Message{Event: EventStop, Stop: &StopInfo{CallSID: "CA7"}})
	tc.closed()
	testutil.Eventually(t, 5*time.Second, "summary", func() bool { return hs.hook.summary() != nil })
	evs := hs.hook.got()
	last := map[string]float64{}
	for i, e := range evs {
		if e.Seq != uint64(i+1) || e.CallSID != "CA7" || e.Tenant != "acme" {
			t.Fatalf("event %d: %+v", i, e)
		}
		if e.Type == TypeFinal {
			if e.Start < last[e.Speaker] {
				t.Fatalf("%s finals out of order: %+v", e.Speaker, e)
			}
			last[e.Speaker] = e.Start
		}
	}
	s := evs[len(evs)-1]
	if s.Type != TypeSummary || s.Summary.Words["caller"] != 4 || s.Summary.Words["agent"] != 2 ||
		!strings.HasPrefix(s.Summary.Transcript, "caller: w1\nagent: w1\ncaller: w2") {
		t.Fatalf("summary %+v", s.Summary)
	}
}

func TestHandshakeAuth(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.AuthToken = "twilio-token" })
	dial := func(secret string, hdr http.Header) int {
		c, resp, err := websocket.DefaultDialer.Dial(hs.url(secret), hdr)
		if err == nil {
			c.Close()
			return http.StatusSwitchingProtocols
		}
		return resp.StatusCode
	}
	sign := func(secret string) http.Header {
		return http.Header{"X-Twilio-Signature": {TwilioSignature("twilio-token", hs.url(secret), nil)}}
	}
	if got := dial(testSecret, nil); got != http.StatusForbidden {
		t.Fatalf("unsigned: %d", got)
	}
	if got := dial(testSecret, sign("other")); got != http.StatusForbidden {
		t.Fatalf("signature of another URL: %d", got)
	}
	if got := dial("tw_wrong", sign("tw_wrong")); got != http.StatusUnauthorized {
		t.Fatalf("unknown secret: %d", got)
	}
	if got := dial(testSecret, sign(testSecret)); got != http.StatusSwitchingProtocols {
		t.Fatalf("good: %d", got)
	}
}

func TestSecretInCustomParameters(t *testing.T) {
	// Without an auth token, a handshake without a secret in the path is anonymous: it
	// is refused before the upgrade (issue 18, F4).
	bare := newHarness(t, nil)
	if _, resp, err := websocket.DefaultDialer.Dial(bare.url(""), nil); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bare /v1/twilio without an auth token: %v, want 401", err)
	}
	// With one, Twilio's signed handshake may carry the secret in customParameters.
	hs := newHarness(t, func(c *Config) { c.AuthToken = "twilio-token" })
	signed := http.Header{"X-Twilio-Signature": {TwilioSignature("twilio-token", hs.url(""), nil)}}
	tc := hs.dial("", signed)
	tc.start("CA8", map[string]string{"secret": "tw_wrong"}, TrackInbound)
	if msg, code := tc.closed(); !strings.Contains(msg, "unauthorized") || code != websocket.ClosePolicyViolation {
		t.Fatalf("wrong secret: %q %d", msg, code)
	}
	tc = hs.dial("", signed)
	tc.start("CA9", map[string]string{"secret": testSecret}, TrackInbound)
	tc.media(TrackInbound, 1, frame(1))
	tc.send(Message{Event: EventStop, Stop: &StopInfo{CallSID: "CA9"}})
	if msg, _ := tc.closed(); msg != "" {
		t.Fatal(msg)
	}
	if ms, _ := hs.meters.billed("CA9", TrackInbound); ms != 20 {
		t.Fatalf("billed %d", ms)
	}
}
