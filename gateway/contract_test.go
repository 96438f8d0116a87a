package gateway_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/gateway/gatewaytest"
	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/ingest/remote"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testutil"
	"github.com/earshot-dev/earshot/transcriber"
	"github.com/earshot-dev/earshot/transcriber/worker"
)

// The stand-in the gateway's tests run on keeps the rules the real backend keeps.
func TestStreamContractStandIn(t *testing.T) {
	gatewaytest.TestStreamContract(t, func(t *testing.T) gateway.Backend {
		b := &gatewaytest.Backend{}
		b.MaxStreams = gatewaytest.Slots
		return b
	})
}

// The real backend: gateway.RemoteBackend over remote.Client over embedded NATS, to a
// real worker (worker.New) serving transcriber's stand-in engine.
func TestStreamContractNATS(t *testing.T) {
	gatewaytest.TestStreamContract(t, func(t *testing.T) gateway.Backend {
		ns := testutil.NATS(t)
		gatewaytest.ServeWorker(t, ns, transcriber.NewStandIn([]string{gatewaytest.Model}, gatewaytest.Slots), worker.Config{ID: "contract"})
		return gatewaytest.NATSBackend(t, ns, remote.ClientOptions{MaxSpeed: -1})
	})
}

// The real backend on the real engine: tiny.en in a transcriber.Pool (Slots sessions).
func TestStreamContractNATSWhisper(t *testing.T) {
	gatewaytest.WhisperFiles(t) // skips (or fails in CI) without the weights, once
	gatewaytest.TestStreamContract(t, func(t *testing.T) gateway.Backend {
		ns := testutil.NATS(t)
		pool := gatewaytest.WhisperPool(t, transcriber.PoolConfig{Worker: "contract", Slots: 1, ThreadsPerDecode: 2,
			MaxSessions: gatewaytest.Slots})
		gatewaytest.ServeWorker(t, ns, pool, worker.Config{ID: "contract"})
		return gatewaytest.NATSBackend(t, ns, remote.ClientOptions{MaxSpeed: -1})
	})
}

// recorder is transcriber's stand-in engine that keeps every sample its sessions get,
// at its stream position.
type recorder struct {
	*transcriber.StandIn
	mu  sync.Mutex
	pcm []int16
}

type recordingSession struct {
	transcriber.Session
	r *recorder
}

func (r *recorder) Open(req bus.SessionRequest, emit transcriber.Emitter) (transcriber.Session, error) {
	s, err := r.StandIn.Open(req, emit)
	if err != nil {
		return nil, err
	}
	return recordingSession{s, r}, nil
}

func (s recordingSession) Write(c *bus.AudioChunk) error {
	s.r.mu.Lock()
	if end := int(c.EndSample()); end > len(s.r.pcm) {
		s.r.pcm = append(s.r.pcm, make([]int16, end-len(s.r.pcm))...)
	}
	copy(s.r.pcm[c.StartSample:], c.PCM)
	s.r.mu.Unlock()
	return s.Session.Write(c)
}

type oneModel struct{}

func (oneModel) Lookup(name string) (gateway.Model, bool) {
	return gateway.Model{Name: name, Arch: "whisper"}, name == gatewaytest.Model
}
func (oneModel) List() []gateway.Model { return []gateway.Model{{Name: gatewaytest.Model}} }

// TestLinear16BitExact: 16 kHz linear16 a client streams through the real gateway,
// remote.Client, NATS and worker reaches the worker's session sample for sample,
// the extremes included.
func TestLinear16BitExact(t *testing.T) {
	ns := testutil.NATS(t)
	rec := &recorder{StandIn: transcriber.NewStandIn([]string{gatewaytest.Model}, 1)}
	gatewaytest.ServeWorker(t, ns, rec, worker.Config{ID: "bitexact"})
	keys := gateway.NewKeyStore(testutil.StartRedis(t).Client())
	_, secret, err := keys.Create(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gateway.NewSigner(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := gateway.New(gateway.Config{Backend: gatewaytest.NATSBackend(t, ns, remote.ClientOptions{MaxSpeed: -1}),
		Models: oneModel{}, Keys: keys, Signer: signer, DefaultModel: gatewaytest.Model, RealtimeFactor: -1})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)

	want := make([]int16, 3*bus.SampleRate)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range want {
		want[i] = int16(rng.UintN(1 << 16))
	}
	want[0], want[1], want[2], want[3] = -32768, 32767, -1, 1
	want[len(want)-2], want[len(want)-1] = 32767, -32768
	pcm := make([]byte, 2*len(want))
	for i, v := range want {
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(v))
	}
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/v1/listen?encoding=linear16&sample_rate=16000"
	c, _, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Token " + secret}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for b := pcm; len(b) > 0; {
		n := min(len(b), 3202) // odd sample counts per frame
		if err := c.WriteMessage(websocket.BinaryMessage, b[:n]); err != nil {
			t.Fatal(err)
		}
		b = b[n:]
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"`+wire.ControlCloseStream+`"}`)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				t.Fatalf("stream did not end with 1000: %v", err)
			}
			break
		}
	}
	rec.mu.Lock()
	got := slices.Clone(rec.pcm)
	rec.mu.Unlock()
	if len(got) != len(want) {
		t.Fatalf("the worker got %d samples, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sample %d: the worker got %d, the client sent %d", i, got[i], want[i])
		}
	}
}

// twoModels lists the model the test worker loads and "base", which it does not.
type twoModels struct{}

func (twoModels) Lookup(name string) (gateway.Model, bool) {
	return gateway.Model{Name: name, Arch: "whisper"}, name == gatewaytest.Model || name == "base"
}
func (twoModels) List() []gateway.Model {
	return []gateway.Model{{Name: gatewaytest.Model}, {Name: "base"}}
}

// TestNoCapacityForAModelNoWorkerLoaded: in a pool whose one worker loaded only the
// default model, a stream asking for another catalog model is refused with HTTP 503
// NO_CAPACITY, a Retry-After, and a message that names the model asked for, within the
// grant timeout; the loaded model is still served.
func TestNoCapacityForAModelNoWorkerLoaded(t *testing.T) {
	ns := testutil.NATS(t)
	gatewaytest.ServeWorker(t, ns, transcriber.NewStandIn([]string{gatewaytest.Model}, 1), worker.Config{ID: "only-default"})
	keys := gateway.NewKeyStore(testutil.StartRedis(t).Client())
	_, secret, err := keys.Create(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gateway.NewSigner(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	const grantTimeout = 500 * time.Millisecond
	srv, err := gateway.New(gateway.Config{
		Backend: gatewaytest.NATSBackend(t, ns, remote.ClientOptions{MaxSpeed: -1, GrantTimeout: grantTimeout}),
		Models:  twoModels{}, Keys: keys, Signer: signer, DefaultModel: gatewaytest.Model, RealtimeFactor: -1})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	dial := func(model string) (*websocket.Conn, *http.Response, error) {
		url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/v1/listen?encoding=linear16&sample_rate=16000&model=" + model
		return websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Token " + secret}})
	}

	start := time.Now()
	c, resp, err := dial("base")
	if err == nil {
		c.Close()
		t.Fatal("a stream for base opened, but no worker loaded it")
	}
	if took := time.Since(start); took > grantTimeout+2*time.Second {
		t.Errorf("the refusal took %v (grant timeout %v)", took, grantTimeout)
	}
	if resp == nil {
		t.Fatalf("no HTTP response: %v", err)
	}
	defer resp.Body.Close()
	var he wire.HTTPError
	if err := json.NewDecoder(resp.Body).Decode(&he); err != nil {
		t.Fatalf("body of %d: %v", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || he.Code != wire.CodeNoCapacity || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("got %d %+v (Retry-After %q), want 503 %s with a Retry-After", resp.StatusCode, he, resp.Header.Get("Retry-After"), wire.CodeNoCapacity)
	}
	if !strings.Contains(he.Message, "base") {
		t.Errorf("message %q does not name the model asked for (base)", he.Message)
	}
	t.Logf("refused: %d %s %q", resp.StatusCode, he.Code, he.Message)

	c, _, err = dial(gatewaytest.Model)
	if err != nil {
		t.Fatalf("a stream for the loaded model %s: %v", gatewaytest.Model, err)
	}
	c.Close()
}

// Declared formats are judged by ingest.ParseFormat; a refusal names its parameter.
func TestParseFormatNamesTheParameter(t *testing.T) {
	for _, c := range []struct {
		enc        string
		rate, ch   int
		want       ingest.Format
		wrongParam string
	}{
		{"linear16", 16000, 0, ingest.Format{Encoding: ingest.Linear16, SampleRate: 16000, Channels: 1}, ""},
		{"ULAW", 0, 2, ingest.Format{Encoding: ingest.Mulaw, SampleRate: 8000, Channels: 2}, ""},
		{"linear32", 48000, 8, ingest.Format{Encoding: ingest.Float32, SampleRate: 48000, Channels: 8}, ""},
		{"opus", 16000, 1, ingest.Format{}, "encoding"},
		{"linear16", 0, 1, ingest.Format{}, "sample_rate"},
		{"mulaw", 16000, 1, ingest.Format{}, "sample_rate"},
		{"linear16", 16000, 9, ingest.Format{}, "channels"},
	} {
		f, err := gateway.ParseFormat(c.enc, c.rate, c.ch)
		var pe *wire.ParamError
		switch {
		case c.wrongParam == "" && (err != nil || f != c.want):
			t.Errorf("ParseFormat(%q, %d, %d) = %v, %v; want %v", c.enc, c.rate, c.ch, f, err, c.want)
		case c.wrongParam != "" && (!errors.As(err, &pe) || pe.Param != c.wrongParam):
			t.Errorf("ParseFormat(%q, %d, %d) = %v; want a ParamError on %s", c.enc, c.rate, c.ch, err, c.wrongParam)
		}
	}
}
