package twilio

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/gateway/gatewaytest"
	"github.com/earshot-dev/earshot/ingest/remote"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/testpace"
	"github.com/earshot-dev/earshot/internal/testutil"
	"github.com/earshot-dev/earshot/internal/wer"
	"github.com/earshot-dev/earshot/transcriber"
	"github.com/earshot-dev/earshot/transcriber/worker"
)

// realFiles returns the tiny.en and Silero VAD paths, skipping loudly when the model
// is missing, except under CI=true, where that fails.
func realFiles(t *testing.T) (model, vad string) {
	t.Helper()
	if testing.Short() {
		t.Skip("SKIP: real-model phone call runs in real time (-short)")
	}
	return gatewaytest.WhisperFiles(t)
}

// Two prompts of the 8 kHz telephony set: the caller's and the agent's.
const (
	callerItem = "asterisk_conf-getconfno"
	agentItem  = "asterisk_demo-echodone"
)

func phoneItems(t *testing.T) (caller, agent testdata.Item) {
	t.Helper()
	items, err := testdata.LoadManifest(filepath.Join(testdata.Require(t), testdata.PhoneManifest))
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		switch it.ID {
		case callerItem:
			caller = it
		case agentItem:
			agent = it
		}
	}
	if caller.WAV == "" || agent.WAV == "" {
		t.Fatalf("manifest lacks %s or %s", callerItem, agentItem)
	}
	return caller, agent
}

// TestPhoneCallInProcessRealWhisper: a real worker.Worker serving a real Pool on
// tiny.en and Silero behind embedded NATS; the handler reaches it through
// remote.Client. Two 8 kHz prompts are played as caller and agent through Simulate.
func TestPhoneCallInProcessRealWhisper(t *testing.T) {
	runRealCall(t, inProcessWorker(t))
}

// inProcessWorker starts a real worker.Worker with a real Pool on tiny.en and
// Silero (no end-of-turn model: a turn ends after 600 ms of silence) behind embedded
// NATS, and returns a connection to that NATS.
func inProcessWorker(t *testing.T) *nats.Conn {
	t.Helper()
	return inProcessWorkerTurns(t, nil)
}

// inProcessWorkerTurns is inProcessWorker with an end-of-turn model (nil: VAD only).
func inProcessWorkerTurns(t *testing.T, turn transcriber.TurnModel) *nats.Conn {
	t.Helper()
	modelPath, vadPath := realFiles(t)
	model, err := transcriber.LoadWhisper(modelPath, transcriber.LoadOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = model.Close() })
	pool, err := transcriber.NewPool(transcriber.PoolConfig{Models: map[string]transcriber.Model{"tiny.en": model},
		NewVAD: func() (transcriber.VAD, error) { return transcriber.NewSileroVAD(vadPath) }, Slots: 1, ThreadsPerDecode: 2,
		TurnModel: turn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	srv := testutil.NATS(t)
	gatewaytest.ServeWorker(t, srv, pool, worker.Config{ID: "phone-test"})
	return testutil.Connect(t, srv)
}

// TestPhoneCallAgainstEarshotServe: the same call, with the transcriber of a real
// `earshot serve` child process (its NATS is the test's, its Redis a real one). The
// twilio handler runs in the test until serve mounts it; the test also reports
// whether serve already answers /v1/twilio.
func TestPhoneCallAgainstEarshotServe(t *testing.T) {
	modelPath, _ := realFiles(t)
	srv := testutil.NATS(t)
	rds := testutil.StartRedis(t)
	bin := testutil.Binary(t)
	addr := freeAddr(t)
	p := testutil.Start(t, "earshot serve", bin, []string{"CI=" + os.Getenv("CI")}, "serve",
		"--nats", srv.ClientURL(), "--redis", rds.URL(), "--listen", addr,
		"--data-dir", t.TempDir(), "--model-dir", filepath.Dir(modelPath), "--slots", "1", "--threads", "2")
	testutil.Eventually(t, 60*time.Second, "earshot serve /readyz", func() bool {
		if p.Exited() {
			t.Fatalf("earshot serve exited:\n%s", p.Output())
		}
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if resp, err := http.Get("http://" + addr + "/v1/twilio/x"); err == nil {
		resp.Body.Close()
		t.Logf("earshot serve answers GET /v1/twilio/x with %s (404: the handler is not mounted yet)", resp.Status)
	}
	runRealCall(t, testutil.Connect(t, srv))
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// serveRealCalls serves the media-stream handler for tenant acme on a test server: on
// real workers behind client, webhooks to rcv, events published on nc, tracks metered by
// meters. It returns the WebSocket URL a call streams to.
func serveRealCalls(t *testing.T, client *remote.Client, nc *nats.Conn, rcv *receiver, meters CallMetering) string {
	t.Helper()
	h, err := New(Config{Backend: gateway.RemoteBackend(client), Tenants: mapTenants{testSecret: "acme"}, Metering: meters,
		Webhooks: fixedWebhook{rcv.srv.URL, "whsec"}, Publisher: nc, FinalTimeout: 30 * time.Second,
		Delivery: DeliveryOptions{AllowLoopback: true, Backoff: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/twilio/{secret}", h)
	hsrv := httptest.NewServer(mux)
	t.Cleanup(hsrv.Close)
	return "ws" + strings.TrimPrefix(hsrv.URL, "http") + "/v1/twilio/" + testSecret
}

// runRealCall plays the call through the handler against whatever worker listens on
// nc's NATS, and checks what the tenant sees: partials and finals of both speakers in
// order on the webhook (which fails once first), a summary whose turns match the
// references, the same events on NATS, and the seconds billed per track.
func runRealCall(t *testing.T, nc *nats.Conn) {
	caller, agent := phoneItems(t)
	client, err := remote.NewClient(nc, nil, remote.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	onNATS, err := nc.SubscribeSync(bus.CallSubject("acme", "CAreal"))
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	rcv := newReceiver(t, "whsec", 1)
	meters := &recMetering{}
	url := serveRealCalls(t, client, nc, rcv, meters)

	// Real time, or slower on a machine that cannot keep up (testpace).
	pace := testpace.Factor(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second+testpace.Scale(t, 15*time.Second))
	defer cancel()
	began := time.Now()
	if err := Simulate(ctx, url, caller.WAV, agent.WAV, SimOptions{CallSID: "CAreal", DTMF: "5", Speed: 1 / pace}); err != nil {
		t.Fatal(err)
	}
	t.Logf("call of %.1f s simulated in %v", (caller.Duration + agent.Duration).Seconds(), time.Since(began).Round(time.Millisecond))
	testutil.Eventually(t, 30*time.Second, "call summary on the webhook", func() bool { return rcv.summary() != nil })

	evs := rcv.got()
	partials, finals := map[string]int{}, map[string]int{}
	lastEnd := map[string]float64{}
	for i, e := range evs {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d: order broken", i, e.Seq)
		}
		switch e.Type {
		case TypePartial:
			partials[e.Speaker]++
		case TypeFinal:
			finals[e.Speaker]++
			if e.Start < lastEnd[e.Speaker]-0.01 {
				t.Errorf("%s final %q starts at %.2f before the previous ended (%.2f)", e.Speaker, e.Text, e.Start, lastEnd[e.Speaker])
			}
			lastEnd[e.Speaker] = e.End
		}
		t.Logf("%3d %-18s %-6s [%5.2f-%5.2f] %s", e.Seq, e.Type, e.Speaker, e.Start, e.End, e.Text)
	}
	// Finals for both speakers are required; partials depend on the worker's decode
	// cadence on a loaded machine (a 2-3 s prompt may settle before a second
	// hypothesis), so at least one is required in all.
	for _, sp := range []string{"caller", "agent"} {
		if finals[sp] == 0 {
			t.Errorf("%s: no final", sp)
		}
	}
	if partials["caller"]+partials["agent"] == 0 {
		t.Error("no partial at all")
	}
	t.Logf("partials caller %d agent %d; finals caller %d agent %d", partials["caller"], partials["agent"], finals["caller"], finals["agent"])
	sum := rcv.summary().Summary
	if len(sum.Turns) == 0 {
		t.Fatalf("summary without turns: %+v", sum)
	}
	text := map[string]string{}
	for _, turn := range sum.Turns {
		text[turn.Speaker] += " " + turn.Text
	}
	for sp, ref := range map[string]string{"caller": caller.Reference, "agent": agent.Reference} {
		w, errs, n := wer.WER(ref, text[sp])
		t.Logf("%s WER %.1f%% (%d/%d): ref %q hyp %q", sp, 100*w, errs, n, ref, strings.TrimSpace(text[sp]))
		if w > 0.25 {
			t.Errorf("%s WER %.1f%% > 25%%", sp, 100*w)
		}
	}
	if sum.Turns[0].Speaker != "caller" || sum.DTMF != "5" || len(sum.Marks) != 2 || sum.Reason != "stop" {
		t.Errorf("summary %+v", sum)
	}
	// Billing: both tracks run for the whole call (silence while the other side
	// speaks), 20 ms per frame the simulator sent.
	inB, _ := loadMulaw(caller.WAV)
	outB, _ := loadMulaw(agent.WAV)
	wantMs := int64((len(inB)+FrameBytes-1)/FrameBytes+(len(outB)+FrameBytes-1)/FrameBytes) * 20
	for _, tr := range []string{TrackInbound, TrackOutbound} {
		ms, closed := meters.billed("CAreal", tr)
		if ms != wantMs || !closed || sum.AudioMs[Speaker(tr)] != wantMs {
			t.Errorf("%s billed %d ms (closed %v, summary %d), want %d", tr, ms, closed, sum.AudioMs[Speaker(tr)], wantMs)
		}
	}
	t.Logf("billed per track: %d ms; call %d ms; %d events; first webhook attempt failed and was retried (%d attempts)",
		wantMs, sum.DurationMs, len(evs), len(rcv.attempts))
	// NATS carries the same events, the summary last.
	var n int
	for {
		m, err := onNATS.NextMsg(2 * time.Second)
		if err != nil {
			break
		}
		var e CallEvent
		if json.Unmarshal(m.Data, &e) != nil {
			t.Fatalf("bad NATS event %s", m.Data)
		}
		n++
		if e.Type == TypeSummary {
			break
		}
	}
	if n != len(evs) {
		t.Errorf("NATS carried %d events, webhook %d", n, len(evs))
	}
}

// phoneItem is one item of the 8 kHz telephony set.
func phoneItem(t *testing.T, id string) testdata.Item {
	t.Helper()
	items, err := testdata.LoadManifest(filepath.Join(testdata.Require(t), testdata.PhoneManifest))
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.ID == id {
			return it
		}
	}
	t.Fatalf("manifest lacks %s", id)
	return testdata.Item{}
}

// The barge-in call: the agent reads a 4.9 s prompt; the caller talks over it from
// 1.5 s with a 3.4 s one.
const (
	bargeAgentItem  = "asterisk_ss-noservice"
	bargeCallerItem = "asterisk_conf-getconfno"
	bargeCallerAt   = 1500 * time.Millisecond
)

// TestPhoneBargeInRealWhisper plays, in real time, a call with turn-taking on
// (customParameters turns=true) where the caller talks over the agent, through the
// handler, real embedded NATS and a real worker (tiny.en, Silero, VAD-only end of
// turn). It checks what a voice agent relies on: a barge_in naming the agent's turn,
// within 1 s of the caller's speech onset; turn.end events carrying both speakers'
// transcripts; the summary counting the barge-in; the same events on NATS. It logs the
// latencies (BARGE-IN lines; docs/phone.md quotes them).
func TestPhoneBargeInRealWhisper(t *testing.T) {
	runBargeInCall(t, inProcessWorker(t))
}

func runBargeInCall(t *testing.T, nc *nats.Conn) {
	caller, agent := phoneItem(t, bargeCallerItem), phoneItem(t, bargeAgentItem)
	client, err := remote.NewClient(nc, nil, remote.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	type natsEvent struct {
		ev   CallEvent
		recv time.Time
	}
	onNATS := make(chan natsEvent, 1024)
	sub, err := nc.Subscribe(bus.CallSubject("acme", "CAbarge"), func(m *nats.Msg) {
		var e CallEvent
		if json.Unmarshal(m.Data, &e) == nil {
			onNATS <- natsEvent{e, time.Now()}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	_ = nc.Flush()
	rcv := newReceiver(t, "whsec", 0)
	url := serveRealCalls(t, client, nc, rcv, &recMetering{})

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := Simulate(ctx, url, caller.WAV, agent.WAV, SimOptions{CallSID: "CAbarge", CallerAt: bargeCallerAt,
		Tail: 1500 * time.Millisecond, CustomParameters: map[string]string{"turns": "true"}}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "call summary on the webhook", func() bool { return rcv.summary() != nil })
	evs := rcv.got()
	checkTurnOrder(t, evs)
	text := map[string]string{}
	var barges []CallEvent
	for _, e := range evs {
		switch e.Type {
		case TypeTurnStart, TypeTurnEager, TypeTurnResumed, TypeTurnEnd, TypeBargeIn:
			lat, at := int64(-1), -1.0
			if e.LatencyMs != nil {
				lat = *e.LatencyMs
			}
			if e.SpeechAt != nil {
				at = *e.SpeechAt
			}
			t.Logf("%3d %-12s %-6s #%d speech_at %5.2f latency %4d ms [%5.2f-%5.2f] %s", e.Seq, e.Type, e.Speaker, *e.TurnIndex, at, lat, e.Start, e.End, e.Text)
		}
		switch e.Type {
		case TypeTurnEnd:
			text[e.Speaker] += " " + e.Text
		case TypeBargeIn:
			barges = append(barges, e)
		}
	}
	if len(barges) == 0 {
		t.Fatal("no barge_in although the caller talked over the agent")
	}
	b := barges[0]
	onset := bargeCallerAt.Seconds()
	if b.Interrupted == nil || b.Interrupted.Speaker != "agent" || b.SpeechAt == nil || *b.SpeechAt < onset-0.1 || *b.SpeechAt > onset+1 {
		t.Fatalf("barge_in %+v (interrupted %+v): want the agent's turn, the caller's speech from about %.1f s", b, b.Interrupted, onset)
	}
	if b.LatencyMs == nil || *b.LatencyMs < 0 || *b.LatencyMs >= 1000 {
		t.Fatalf("barge_in latency %v ms, want under 1 s", b.LatencyMs)
	}
	for sp, ref := range map[string]string{"caller": caller.Reference, "agent": agent.Reference} {
		w, errs, n := wer.WER(ref, text[sp])
		t.Logf("%s turns WER %.1f%% (%d/%d): ref %q hyp %q", sp, 100*w, errs, n, ref, strings.TrimSpace(text[sp]))
		if w > 0.3 {
			t.Errorf("%s turn.end transcripts: WER %.1f%% > 30%%", sp, 100*w)
		}
	}
	sum := rcv.summary().Summary
	if sum.TurnTaking == nil || sum.TurnTaking.BargeIns != len(barges) || len(sum.Turns) == 0 {
		t.Fatalf("summary %+v turn_taking %+v", sum, sum.TurnTaking)
	}
	// NATS: the same events; the barge_in's latency as a NATS subscriber sees it.
	var n int
	natsLat := int64(-1)
	for n < len(evs) {
		select {
		case m := <-onNATS:
			n++
			if m.ev.Type == TypeBargeIn && m.ev.Seq == b.Seq {
				natsLat = m.recv.Sub(m.ev.At.Add(-time.Duration(*m.ev.LatencyMs) * time.Millisecond)).Milliseconds()
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("NATS carried %d events, webhook %d", n, len(evs))
		}
	}
	t.Logf("BARGE-IN latency_ms=%d (gateway, onset audio arrival → event) nats_ms=%d (→ NATS subscriber) speech_at=%.2f agent_turn=%d barge_ins=%d",
		*b.LatencyMs, natsLat, *b.SpeechAt, b.Interrupted.TurnIndex, len(barges))
}
