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
	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/testutil"
	"github.com/earshot-dev/earshot/internal/wer"
	"github.com/earshot-dev/earshot/transcriber"
)

// remoteBackend adapts ingest.Client (Open returns *ingest.RemoteSession) to
// gateway.Backend, as the gateway's wiring does.
type remoteBackend struct{ c *ingest.Client }

func (b remoteBackend) Open(ctx context.Context, req bus.SessionRequest) (gateway.Stream, error) {
	s, err := b.c.Open(ctx, req)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// realFiles returns the tiny.en and Silero VAD paths, skipping loudly when the model
// is missing, except under CI=true, where that fails.
func realFiles(t *testing.T) (model, vad string) {
	t.Helper()
	if testing.Short() {
		t.Skip("SKIP: real-model phone call runs in real time (-short)")
	}
	model = os.Getenv("EARSHOT_MODEL")
	if model == "" {
		home, _ := os.UserHomeDir()
		model = filepath.Join(home, ".cache", "earshot", "models", "ggml-tiny.en.bin")
	}
	if _, err := os.Stat(model); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("whisper model required in CI: %v (run `make model`)", err)
		}
		t.Skipf("SKIP: whisper model missing: %v (run `earshot models pull tiny.en` or `make model`)", err)
	}
	return model, filepath.Join(testdata.Require(t), "models", "ggml-silero-v6.2.0.bin")
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

// TestPhoneCallInProcessRealWhisper: a real transcriber.Worker serving a real Pool on
// tiny.en and Silero behind embedded NATS; the handler reaches it through
// ingest.Client. Two 8 kHz prompts are played as caller and agent through Simulate.
func TestPhoneCallInProcessRealWhisper(t *testing.T) {
	modelPath, vadPath := realFiles(t)
	model, err := transcriber.LoadWhisper(modelPath, transcriber.LoadOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = model.Close() })
	pool, err := transcriber.NewPool(transcriber.PoolConfig{Models: map[string]transcriber.Model{"tiny.en": model},
		NewVAD: func() (transcriber.VAD, error) { return transcriber.NewSileroVAD(vadPath) }, Slots: 1, ThreadsPerDecode: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	srv := testutil.NATS(t)
	w, err := transcriber.NewWorker(testutil.Connect(t, srv), pool, transcriber.WorkerConfig{ID: "phone-test", DrainTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	runRealCall(t, testutil.Connect(t, srv))
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

// runRealCall plays the call through the handler against whatever worker listens on
// nc's NATS, and checks what the tenant sees: partials and finals of both speakers in
// order on the webhook (which fails once first), a summary whose turns match the
// references, the same events on NATS, and the seconds billed per track.
func runRealCall(t *testing.T, nc *nats.Conn) {
	caller, agent := phoneItems(t)
	client, err := ingest.NewClient(nc, nil, ingest.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	onNATS, err := nc.SubscribeSync(CallSubject("acme", "CAreal"))
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	rcv := newReceiver(t, "whsec", 1)
	meters := &recMetering{}
	h, err := New(Config{Backend: remoteBackend{client}, Tenants: mapTenants{testSecret: "acme"}, Metering: meters,
		Webhooks: fixedWebhook{rcv.srv.URL, "whsec"}, Publisher: nc, FinalTimeout: 30 * time.Second,
		Delivery: DeliveryOptions{AllowLoopback: true, Backoff: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/twilio/{secret}", h)
	hsrv := httptest.NewServer(mux)
	t.Cleanup(hsrv.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(hsrv.URL, "http") + "/v1/twilio/" + testSecret
	began := time.Now()
	if err := Simulate(ctx, url, caller.WAV, agent.WAV, SimOptions{CallSID: "CAreal", DTMF: "5"}); err != nil {
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
