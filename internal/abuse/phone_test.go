package abuse

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/earshot-dev/earshot/billing"
	"github.com/earshot-dev/earshot/gateway/twilio"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// phoneRig is a serve with one phone tenant (stream secret) and a NATS subscription
// to its call events.
type phoneRig struct {
	srv    *testutil.Serve
	secret string
	store  *billing.Store
	events chan twilio.CallEvent
}

func newPhoneRig(t *testing.T, tenant bus.TenantID, plan string, plans *billing.Plans, flags ...string) *phoneRig {
	t.Helper()
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t, flags...)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Redis.Addr})
	t.Cleanup(func() { rdb.Close() })
	if plans == nil {
		plans = billing.DefaultPlans()
	}
	store := billing.NewStore(rdb, plans, nil)
	if _, err := store.CreateTenant(ctx, tenant, plan); err != nil {
		t.Fatal(err)
	}
	secret, err := twilio.NewSecretStore(rdb).CreateSecret(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	r := &phoneRig{srv: srv, secret: secret, store: store, events: make(chan twilio.CallEvent, 4096)}
	if _, err := nc.Subscribe(bus.CallSubject(tenant, "*"), func(m *nats.Msg) {
		var ev twilio.CallEvent
		if json.Unmarshal(m.Data, &ev) == nil {
			select {
			case r.events <- ev:
			default:
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *phoneRig) url(secret string) string {
	u := strings.Replace(r.srv.URL, "http://", "ws://", 1) + "/v1/twilio"
	if secret != "" {
		u += "/" + secret
	}
	return u
}

// call dials the bridge and sends start for callSid on the inbound track.
func (r *phoneRig) call(t *testing.T, callSid string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(r.url(r.secret), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	phoneSend(t, c, map[string]any{"event": "connected", "protocol": "Call", "version": "1.0.0"})
	phoneSend(t, c, map[string]any{"event": "start", "start": twilio.StartInfo{AccountSID: "AC1", StreamSID: "MZ" + callSid,
		CallSID: callSid, Tracks: []string{twilio.TrackInbound},
		MediaFormat: twilio.MediaFormat{Encoding: "audio/x-mulaw", SampleRate: 8000, Channels: 1}}})
	return c
}

func phoneSend(t *testing.T, c *websocket.Conn, v any) error {
	t.Helper()
	b, _ := json.Marshal(v)
	return c.WriteMessage(websocket.TextMessage, b)
}

func phoneMedia(chunk int, audio []byte) map[string]any {
	return map[string]any{"event": "media", "media": twilio.MediaInfo{Track: twilio.TrackInbound, Chunk: strconv.Itoa(chunk),
		Timestamp: strconv.Itoa((chunk - 1) * 20), Payload: base64.StdEncoding.EncodeToString(audio)}}
}

// summary waits for the summary event of callSid.
func (r *phoneRig) summary(t *testing.T, callSid string) *twilio.CallSummary {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case ev := <-r.events:
			if ev.Type == twilio.TypeSummary && ev.CallSID == callSid {
				return ev.Summary
			}
		case <-deadline:
			t.Fatalf("no summary of call %s", callSid)
		}
	}
}

func closeCode(c *websocket.Conn) int {
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			if ce, ok := err.(*websocket.CloseError); ok {
				return ce.Code
			}
			return -1
		}
	}
}

var mulawFrame = []byte(strings.Repeat("\xff", twilio.FrameBytes))

// F4: the phone endpoint without a stream secret. Before: it upgraded (101) and held
// the socket for anyone. Now: 401 before the upgrade (unless Twilio's signature is
// configured, when a signed handshake may name the secret in customParameters).
func TestF4TwilioNeedsSecretBeforeUpgrade(t *testing.T) {
	attack(t, "F4", "open /v1/twilio with no secret (and with a wrong one)",
		"401 before the upgrade for both; no socket for an anonymous client")
	r := newPhoneRig(t, "phoneco", "team", nil)
	for _, secret := range []string{"", "tw_wrong"} {
		c, resp, err := websocket.DefaultDialer.Dial(r.url(secret), nil)
		if err == nil {
			c.Close()
			t.Fatalf("/v1/twilio/%s upgraded", secret)
		}
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("/v1/twilio/%s: %v, want 401", secret, err)
		}
	}
}

// F4b: marks before start, and thousands of large marks and digits after it. Before:
// accepted before start, and every mark kept (2,000 marks of 60 KiB: heap 4 → 187 MiB).
// Now: anything but connected before start closes the call (1008); after start at most
// twilio.MaxMarks marks (names cut to MaxMarkName) and MaxDTMF digits are kept, the
// rest only counted.
func TestF4bTwilioMarksBounded(t *testing.T) {
	attack(t, "F4b", "mark before start; then 2,000 marks of 60 KiB and as many digits",
		"1008 before start; after it at most 100 marks of ≤ 128 bytes and 256 digits are kept, the rest counted")
	r := newPhoneRig(t, "phoneco", "team", nil)
	pre, _, err := websocket.DefaultDialer.Dial(r.url(r.secret), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pre.Close()
	phoneSend(t, pre, map[string]any{"event": "mark", "mark": twilio.MarkInfo{Name: "early"}})
	if code := closeCode(pre); code != websocket.ClosePolicyViolation {
		t.Fatalf("mark before start: close %d, want 1008", code)
	}
	n := pick(300, 2000)
	c := r.call(t, "CAmarks")
	big := strings.Repeat("m", 60<<10)
	for i := range n {
		if err := phoneSend(t, c, map[string]any{"event": "mark", "mark": twilio.MarkInfo{Name: big}}); err != nil {
			t.Fatalf("mark %d: %v", i, err)
		}
		if err := phoneSend(t, c, map[string]any{"event": "dtmf", "dtmf": twilio.DTMFInfo{Track: "inbound_track", Digit: "1"}}); err != nil {
			t.Fatalf("dtmf %d: %v", i, err)
		}
	}
	phoneSend(t, c, map[string]any{"event": "stop", "stop": twilio.StopInfo{CallSID: "CAmarks"}})
	s := r.summary(t, "CAmarks")
	if len(s.Marks) > twilio.MaxMarks || len(s.DTMF) > twilio.MaxDTMF {
		t.Fatalf("summary kept %d marks and %d digits for %d of each: want at most %d and %d", len(s.Marks), len(s.DTMF), n, twilio.MaxMarks, twilio.MaxDTMF)
	}
	for _, m := range s.Marks {
		if len(m) > twilio.MaxMarkName {
			t.Fatalf("a mark of %d bytes was kept", len(m))
		}
	}
	if want := 2*n - len(s.Marks) - len(s.DTMF); s.EventsNotKept != want {
		t.Fatalf("events not kept: %d, want %d", s.EventsNotKept, want)
	}
}

// F4c: a forged chunk number: after chunk 1, a dozen chunks near the furthest jump the
// bridge accepts. Before: the gap was filled with silence of the last chunk's size,
// minutes of audio in a second of wall time (a "5 hour" call from 12 messages, 10.9 s
// of CPU). Now: gap filling stops at the wall time since the call started (plus 2 s).
func TestF4cTwilioGapFillBoundedByWallTime(t *testing.T) {
	attack(t, "F4c", "after chunk 1, twelve chunks numbered ~3,000 (a forged 60 s gap) in one second",
		"the call's duration stays within the wall time since start + 2 s")
	r := newPhoneRig(t, "phoneco", "team", nil)
	start := time.Now()
	c := r.call(t, "CAgap")
	phoneSend(t, c, phoneMedia(1, mulawFrame))
	for i := range 12 {
		phoneSend(t, c, phoneMedia(3002-i, mulawFrame))
	}
	phoneSend(t, c, map[string]any{"event": "stop", "stop": twilio.StopInfo{CallSID: "CAgap"}})
	s := r.summary(t, "CAgap")
	wall := time.Since(start).Milliseconds()
	if s.DurationMs > wall+2500 {
		t.Fatalf("call of %d ms wall time has duration %d ms: the gap was filled beyond the time that passed", wall, s.DurationMs)
	}
	t.Logf("wall %d ms, call duration %d ms, audio %v ms", wall, s.DurationMs, s.AudioMs)
}

// F4d: a tenant with a balance of 3 cents (3 s at 1 cent per second) streams a call in
// real time. Before: checked only at start (a 1-cent tenant was billed 100 s). Now:
// each track holds its share of the balance (in Redis, across gateways) like a live
// stream, and the call ends with reason quota_exhausted where the balance runs out.
func TestF4dTwilioQuotaRechecked(t *testing.T) {
	attack(t, "F4d", "a call of 3-cent tenant (1 cent/s) that goes on for 20 s",
		"cut with reason quota_exhausted; billed ≤ the 3 s the balance covers")
	plansFile := filepath.Join(t.TempDir(), "plans.json")
	if err := os.WriteFile(plansFile, []byte(`{"plans":[{"id":"cent-per-second","version":1,"kind":"payg","currency":"USD","price_per_hour_minor":3600},`+
		`{"id":"demo","version":1,"kind":"monthly","currency":"USD","included_hours":1}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	plans, err := billing.LoadPlans(plansFile)
	if err != nil {
		t.Fatal(err)
	}
	r := newPhoneRig(t, "dime", "cent-per-second", plans, "--plans", plansFile)
	if _, err := r.store.TopUp(context.Background(), "dime", 3); err != nil {
		t.Fatal(err)
	}
	c := r.call(t, "CAquota")
	t0 := time.Now()
	for i := 1; i <= 1000; i++ { // 20 s of audio in real time, or until cut
		if phoneSend(t, c, phoneMedia(i, mulawFrame)) != nil {
			break
		}
		time.Sleep(time.Until(t0.Add(time.Duration(i) * 20 * time.Millisecond)))
		if time.Since(t0) > 12*time.Second {
			break
		}
	}
	phoneSend(t, c, map[string]any{"event": "stop", "stop": twilio.StopInfo{CallSID: "CAquota"}})
	s := r.summary(t, "CAquota")
	if s.Reason != "quota_exhausted" {
		t.Fatalf("call ended with reason %q after %v, want quota_exhausted", s.Reason, time.Since(t0))
	}
	if billed := s.AudioMs["caller"]; billed > 3000 || billed < 2500 {
		t.Fatalf("billed %d ms on a balance of 3 000 ms", billed)
	}
	t.Logf("cut after %v; billed %v ms", time.Since(t0).Round(10*time.Millisecond), s.AudioMs)
}

// F4e: a tenant opens more concurrent calls than --max-calls-per-tenant. Before: no
// limit. Now: the call past the limit is refused at start (1008, too many calls).
func TestF4eTwilioCallLimit(t *testing.T) {
	attack(t, "F4e", "a second concurrent call with --max-calls-per-tenant 1",
		"the second call is closed at start (1008); the first goes on")
	r := newPhoneRig(t, "phoneco", "team", nil, "--max-calls-per-tenant", "1")
	first := r.call(t, "CAone")
	phoneSend(t, first, phoneMedia(1, mulawFrame))
	// The first call must hold its slot before the second asks: the two starts
	// would otherwise race and either could be the one refused.
	r.srv.WaitOutput("call=CAone stream=MZCAone tracks=", 15*time.Second)
	second := r.call(t, "CAtwo")
	if code := closeCode(second); code != websocket.ClosePolicyViolation {
		t.Fatalf("second call: close %d, want 1008", code)
	}
	if err := phoneSend(t, first, phoneMedia(2, mulawFrame)); err != nil {
		t.Fatalf("first call broken: %v", err)
	}
	phoneSend(t, first, map[string]any{"event": "stop", "stop": twilio.StopInfo{CallSID: "CAone"}})
	if s := r.summary(t, "CAone"); s.Reason != "stop" {
		t.Fatalf("first call ended with %q", s.Reason)
	}
}
