package gateway

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testutil"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

const testTenant bus.TenantID = "acme"

type harness struct {
	t       *testing.T
	srv     *Server
	ts      *httptest.Server
	keys    *KeyStore
	backend *standInBackend
	quota   *standInQuota
	meter   *standInMetering
	reg     *prometheus.Registry
	secret  string
	key     Key
	signer  *Signer
}

func newHarness(t *testing.T, mut func(*Config)) *harness {
	t.Helper()
	r := testutil.StartRedis(t)
	h := &harness{t: t, keys: NewKeyStore(r.Client()), backend: &standInBackend{},
		quota: &standInQuota{}, meter: &standInMetering{}, reg: prometheus.NewRegistry()}
	var err error
	if h.signer, err = NewSigner(bytes.Repeat([]byte("k"), 32)); err != nil {
		t.Fatal(err)
	}
	if h.key, h.secret, err = h.keys.Create(context.Background(), testTenant); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Backend: h.backend, Models: standInCatalog{}, Keys: h.keys,
		Signer: h.signer, Quota: h.quota, Metering: h.meter, Metrics: h.reg, DefaultModel: "tiny.en",
		RealtimeFactor: -1}
	if mut != nil {
		mut(&cfg)
	}
	if h.srv, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	h.ts = httptest.NewServer(h.srv.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.srv.Shutdown(ctx)
		h.ts.Close()
	})
	return h
}

func (h *harness) wsURL(query string) string { return h.wsURLAt("/v1/listen", query) }

// wsURLAt is the WebSocket URL of the server's path (/v1/listen, /v2/listen) with query.
func (h *harness) wsURLAt(path, query string) string {
	return "ws" + strings.TrimPrefix(h.ts.URL, "http") + path + "?" + query
}

func (h *harness) keyHeader() http.Header {
	return http.Header{"Authorization": {"Token " + h.secret}}
}

const pcmQuery = "encoding=linear16&sample_rate=16000"

// dial opens a /v1/listen stream; on an HTTP refusal it returns the response and its
// decoded body.
func (h *harness) dial(query string, hdr http.Header) (*websocket.Conn, *http.Response, wire.HTTPError, error) {
	h.t.Helper()
	return h.dialAt("/v1/listen", query, hdr)
}

// dialAt is dial on the server's path (/v1/listen, /v2/listen).
func (h *harness) dialAt(path, query string, hdr http.Header) (*websocket.Conn, *http.Response, wire.HTTPError, error) {
	h.t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(h.wsURLAt(path, query), hdr)
	var he wire.HTTPError
	if err != nil && resp != nil {
		_ = decodeJSON(resp, &he)
	}
	if c != nil {
		h.t.Cleanup(func() { c.Close() })
	}
	return c, resp, he, err
}

func (h *harness) mustDial(query string) (*websocket.Conn, *http.Response) {
	h.t.Helper()
	return h.mustDialAt("/v1/listen", query)
}

// mustDialAt opens a stream on the server's path with the harness's key, or fails the test.
func (h *harness) mustDialAt(path, query string) (*websocket.Conn, *http.Response) {
	h.t.Helper()
	c, resp, he, err := h.dialAt(path, query, h.keyHeader())
	if err != nil {
		h.t.Fatalf("dial %s?%s: %v %+v", path, query, err, he)
	}
	return c, resp
}

// checkBilled waits until the meter has closed session reqID, then asserts what was
// billed: seconds of audio metered and counted for the tenant, and no live stream
// left. It returns how often the meter was flushed for the session.
func (h *harness) checkBilled(reqID string, seconds float64) (flushes int) {
	t := h.t
	t.Helper()
	sid := bus.SessionID(reqID)
	testutil.Eventually(t, 2*time.Second, "meter closed", func() bool {
		h.meter.mu.Lock()
		defer h.meter.mu.Unlock()
		return h.meter.closed[sid]
	})
	h.meter.mu.Lock()
	ms, flushes := h.meter.ms[sid], h.meter.flushes[sid]
	h.meter.mu.Unlock()
	if want := int64(math.Round(seconds * 1000)); ms != want {
		t.Fatalf("metered %d ms, want %d", ms, want)
	}
	if v := counter(t, h.reg, "earshot_gateway_audio_seconds_total", map[string]string{"tenant": "acme"}); math.Abs(v-seconds) > 0.001 {
		t.Fatalf("audio seconds metric %v, want %v", v, seconds)
	}
	testutil.Eventually(t, 2*time.Second, "live gauge back to 0", func() bool {
		return counter(t, h.reg, "earshot_gateway_live_streams", map[string]string{"tenant": "acme"}) == 0 &&
			h.backend.Live() == 0
	})
	return flushes
}

// tone returns seconds of a 440 Hz tone as 16 kHz linear16 bytes.
func tone(seconds float64) []byte {
	n := int(seconds * 16000)
	b := make([]byte, 2*n)
	for i := 0; i < n; i++ {
		v := int16(8000 * math.Sin(2*math.Pi*440*float64(i)/16000))
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return b
}

// sendAudio sends b in frames of 100 ms.
func sendAudio(t *testing.T, c *websocket.Conn, b []byte) {
	t.Helper()
	for len(b) > 0 {
		n := min(len(b), 3200)
		if err := c.WriteMessage(websocket.BinaryMessage, b[:n]); err != nil {
			t.Fatalf("send audio: %v", err)
		}
		b = b[n:]
	}
}

func sendControl(t *testing.T, c *websocket.Conn, typ string) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"`+typ+`"}`)); err != nil {
		t.Fatalf("send %s: %v", typ, err)
	}
}

// message is any server message, decoded loosely plus the typed form.
type message struct {
	Type string
	Raw  []byte
}

// readAll reads messages until the socket closes and returns them and the close error.
func readAll(t *testing.T, c *websocket.Conn, timeout time.Duration) ([]message, *websocket.CloseError) {
	t.Helper()
	msgs, err := readMessages(c, timeout, "")
	ce, _ := err.(*websocket.CloseError)
	if ce == nil {
		t.Logf("read ended without a close frame: %v", err)
	}
	return msgs, ce
}

// readMessages reads messages until one of type until (returned last, with a nil
// error; "" reads on) or the first read error, the timeout's included.
func readMessages(c *websocket.Conn, timeout time.Duration, until string) ([]message, error) {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	var msgs []message
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			return msgs, err
		}
		var m struct{ Type string }
		_ = json.Unmarshal(b, &m)
		msgs = append(msgs, message{Type: m.Type, Raw: b})
		if until != "" && m.Type == until {
			return msgs, nil
		}
	}
}

// endStream sends CloseStream on c, reads it to the close and waits until the server
// has given the stream's slot back.
func (h *harness) endStream(t *testing.T, c *websocket.Conn) {
	t.Helper()
	sendControl(t, c, wire.ControlCloseStream)
	readAll(t, c, 3*time.Second)
	testutil.Eventually(t, 2*time.Second, "slot released", func() bool { return h.srv.LiveStreams() == 0 })
}

func decode[T any](t *testing.T, m message) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(m.Raw, &v); err != nil {
		t.Fatalf("decode %s: %v", m.Raw, err)
	}
	return v
}

func only(msgs []message, typ string) []message {
	var out []message
	for _, m := range msgs {
		if m.Type == typ {
			out = append(out, m)
		}
	}
	return out
}

// counter returns the value of a metric family's sample with the given labels.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return value(m)
		}
	}
	return 0
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

var _ = url.Values{}

func decodeJSON(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
