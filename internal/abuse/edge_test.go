package abuse

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// The edge of the service: connection limits, the ops listener, the bus, the
// failed-authentication limiter and what a client can make the server log.

// TestEdgeIdleKeepAlive: F5, idle keep-alive connections.
func TestEdgeIdleKeepAlive(t *testing.T) {
	attack(t, "F5", "hold idle keep-alive HTTP connections open (200 in the original, 65 s)",
		"the server closes every idle connection within --http-idle-timeout")
	n := pick(20, 200)
	idle := pick(2*time.Second, 2*time.Minute) // the full form runs at the default
	var flags []string
	if !full() {
		flags = []string{"--http-idle-timeout", idle.String()}
	}
	srv := testutil.StartServe(t, flags...)
	var wg sync.WaitGroup
	open := make([]bool, n)
	took := make([]time.Duration, n)
	for i := range n {
		c := rawConn(t, srv.URL)
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: earshot\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, closed := closedWithin(c, br, idle+10*time.Second)
			open[i], took[i] = !closed, d
		}()
	}
	wg.Wait()
	stillOpen := 0
	var longest time.Duration
	for i := range n {
		if open[i] {
			stillOpen++
		}
		longest = max(longest, took[i])
	}
	t.Logf("%d idle keep-alive connections, idle timeout %v: %d still open after %v, last closed after %v",
		n, idle, stillOpen, idle+10*time.Second, longest)
	if stillOpen > 0 {
		t.Fatalf("%d of %d idle keep-alive connections still open %v after their last response (idle timeout %v)",
			stillOpen, n, idle+10*time.Second, idle)
	}
}

// TestEdgeSlowBody: F5b, request bodies sent at 1 byte per 2 s; a legitimate upload
// that lasts longer than the grace still goes through.
func TestEdgeSlowBody(t *testing.T) {
	attack(t, "F5b", "send request bodies at 1 byte per 2 s (5 in the original, 65 s)",
		"each is cut once it falls below --http-body-min-rate after --http-body-grace; an upload above the rate is transcribed")
	n := pick(3, 5)
	grace := pick(3*time.Second, 30*time.Second)
	// n trickles at once: above the default per-tenant limit of pre-recorded requests
	// in the full form, which would refuse one before it reads its body.
	flags := []string{"--max-prerecorded-per-tenant", "8"}
	if !full() {
		flags = append(flags, "--http-body-grace", grace.String())
	}
	srv := testutil.StartServe(t, flags...)
	key := edgeTenant(t, srv, "slowbody", "team")
	var wg sync.WaitGroup
	cut := make([]bool, n)
	took := make([]time.Duration, n)
	for i := range n {
		c := rawConn(t, srv.URL)
		fmt.Fprintf(c, "POST /v1/listen HTTP/1.1\r\nHost: earshot\r\nAuthorization: Token %s\r\nContent-Type: audio/wav\r\nContent-Length: 1000000\r\n\r\n", key)
		done := make(chan struct{})
		go func() { // the trickle
			for {
				select {
				case <-done:
					return
				case <-time.After(2 * time.Second):
					if _, err := c.Write([]byte{0}); err != nil {
						return
					}
				}
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done)
			took[i], cut[i] = closedWithin(c, bufio.NewReader(c), grace+15*time.Second)
		}()
	}
	wg.Wait()
	for i := range n {
		if !cut[i] {
			t.Errorf("body %d at 1 byte per 2 s still open after %v (grace %v)", i, took[i], grace)
		} else if took[i] < grace-time.Second { // timed from the request on the server, from the headers here
			t.Errorf("body %d cut after %v, before the grace of %v", i, took[i], grace)
		}
	}
	t.Logf("%d trickled bodies, grace %v: cut after %v", n, grace, took)

	// A trickled body refused before it is read (here: no valid key) gets its 401 at
	// once, and its connection is closed after the server's bounded drain of what the
	// client is still sending (2 s), not held for the grace.
	c := rawConn(t, srv.URL)
	fmt.Fprintf(c, "POST /v1/listen HTTP/1.1\r\nHost: earshot\r\nAuthorization: Token es_wrong\r\nContent-Type: audio/wav\r\nContent-Length: 1000000\r\n\r\n")
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
				if _, err := c.Write([]byte{0}); err != nil {
					return
				}
			}
		}
	}()
	br := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 401 ") {
		close(stop)
		t.Fatalf("a refused trickle: status line %q, %v; want 401 at once", status, err)
	}
	d, closed := closedWithin(c, br, 10*time.Second)
	close(stop)
	if !closed || d > 5*time.Second {
		t.Errorf("a refused trickle's connection: closed %v after %v, want within the 2 s drain", closed, d)
	}

	// An honest upload slower than the grace: the 16 kHz WAV at 64 KiB/s (4x the
	// default minimum rate) takes longer than the grace in the CI form.
	wav := edgeWAV(t, "ljspeech_LJ001-0001.wav")
	pr, pw := io.Pipe()
	go func() {
		for off := 0; off < len(wav); off += 8 << 10 {
			if _, err := pw.Write(wav[off:min(off+8<<10, len(wav))]); err != nil {
				return
			}
			time.Sleep(125 * time.Millisecond)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/listen", pr)
	req.ContentLength = int64(len(wav))
	req.Header.Set("Authorization", "Token "+key)
	req.Header.Set("Content-Type", "audio/wav")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("upload at 64 KiB/s: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(strings.ToLower(string(body)), "printing") {
		t.Fatalf("upload of %d bytes at 64 KiB/s (%v): %s %s", len(wav), time.Since(start).Round(time.Millisecond), resp.Status, body)
	}
	t.Logf("upload of %d bytes at 64 KiB/s over %v: 200 with its transcript", len(wav), time.Since(start).Round(time.Millisecond))
}

// TestEdgeLiveStreamOutlastsHTTPTimeouts: F5, a WebSocket stream is not cut by the
// HTTP timeouts (it keeps the gateway's own idle rule).
func TestEdgeLiveStreamOutlastsHTTPTimeouts(t *testing.T) {
	attack(t, "F5c", "a live stream that lasts longer than every HTTP timeout",
		"it runs to its end: the HTTP limits do not reach a hijacked WebSocket")
	srv := testutil.StartServe(t, "--http-idle-timeout", "1s", "--http-body-grace", "1s", "--http-write-timeout", "1s")
	key := edgeTenant(t, srv, "longstream", "team")
	ws, _, err := websocket.DefaultDialer.Dial(srv.WSURL+"?encoding=linear16&sample_rate=16000", http.Header{"Authorization": {"Token " + key}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	wav := edgeWAV(t, "ljspeech_LJ001-0001.wav")[44:]
	go func() {
		for off := 0; off < len(wav); off += 6400 { // 200 ms chunks in real time
			if ws.WriteMessage(websocket.BinaryMessage, wav[off:min(off+6400, len(wav))]) != nil {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"CloseStream"}`))
	}()
	var finals []string
	start := time.Now()
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				t.Fatalf("stream ended after %v with %v (finals %q)", time.Since(start), err, finals)
			}
			break
		}
		var m struct {
			Type    string `json:"type"`
			IsFinal bool   `json:"is_final"`
			Channel struct {
				Alternatives []struct{ Transcript string } `json:"alternatives"`
			} `json:"channel"`
		}
		_ = json.Unmarshal(b, &m)
		if m.Type == "Results" && m.IsFinal && len(m.Channel.Alternatives) > 0 {
			finals = append(finals, m.Channel.Alternatives[0].Transcript)
		}
	}
	text := strings.ToLower(strings.Join(finals, " "))
	if time.Since(start) < 3*time.Second || !strings.Contains(text, "printing") {
		t.Fatalf("stream of %v: finals %q", time.Since(start), finals)
	}
	t.Logf("a %v stream under 1 s HTTP timeouts closed normally with %q", time.Since(start).Round(time.Millisecond), text)
}

// TestEdgeMetricsOffPublic: F6, /metrics on the public listener.
func TestEdgeMetricsOffPublic(t *testing.T) {
	attack(t, "F6", "GET /metrics on the public address (tenant names and usage)",
		"404 there; /metrics and the readiness details are on the loopback ops address only")
	srv := testutil.StartServe(t)
	get := func(u string) (int, string) {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(srv.URL + "/metrics"); code != http.StatusNotFound || strings.Contains(body, "tenant=") {
		t.Errorf("public GET /metrics: %d, %d bytes (tenant labels: %v), want 404", code, len(body), strings.Contains(body, "tenant="))
	}
	if code, body := get(srv.URL + "/readyz"); code != http.StatusOK || strings.Contains(body, "checks") {
		t.Errorf("public GET /readyz: %d %s, want 200 without the checks", code, body)
	}
	if code, body := get(srv.URL + "/healthz"); code != http.StatusOK {
		t.Errorf("public GET /healthz: %d %s", code, body)
	}
	if code, body := get(srv.OpsURL + "/metrics"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Errorf("ops GET /metrics: %d, want 200 with the process's metrics", code)
	}
	if code, body := get(srv.OpsURL + "/readyz"); code != http.StatusOK || !strings.Contains(body, `"nats"`) {
		t.Errorf("ops GET /readyz: %d %s, want 200 with the checks", code, body)
	}
	if !strings.HasPrefix(srv.OpsURL, "http://127.0.0.1:") {
		t.Errorf("ops URL %s is not loopback", srv.OpsURL)
	}
}

// TestEdgeEmbeddedNATSAuth: F11, the embedded NATS server without credentials.
func TestEdgeEmbeddedNATSAuth(t *testing.T) {
	attack(t, "F11", "SUB earshot.> on the embedded NATS server as another local user",
		"a connection without the per-start credentials is refused; the password is in no log")
	srv := testutil.StartServe(t)
	u, err := url.Parse(srv.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	bare := *u
	bare.User = nil
	if nc, err := nats.Connect(bare.String(), nats.MaxReconnects(0)); err == nil {
		sub, serr := nc.SubscribeSync("earshot.>")
		nc.Flush()
		nc.Close()
		t.Fatalf("connected to the embedded NATS at %s without credentials (subscribe earshot.>: %v, %v)", bare.String(), sub != nil, serr)
	} else {
		t.Logf("without credentials: %v", err)
	}
	if u.User == nil {
		t.Fatalf("embedded NATS URL %q has no credentials (data dir nats.url)", srv.NATSURL)
	}
	pass, _ := u.User.Password()
	wrong := bare
	wrong.User = url.UserPassword(u.User.Username(), "guess")
	if nc, err := nats.Connect(wrong.String(), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("connected with a wrong password")
	}
	nc, err := nats.Connect(srv.NATSURL, nats.MaxReconnects(0))
	if err != nil {
		t.Fatalf("with the data dir's credentials: %v", err)
	}
	defer nc.Close()
	if _, err := nc.SubscribeSync("earshot.>"); err != nil || nc.Flush() != nil {
		t.Fatalf("subscribe with credentials: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(srv.DataDir, "nats.url")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("nats.url: %v, mode %v, want 0600", err, fi.Mode().Perm())
	}
	if strings.Contains(srv.Output(), pass) {
		t.Error("the embedded NATS password is in the serve log")
	}
}

// TestEdgeBlockedCallerGets429: F12, the failed-auth limiter on routes other than
// /v1/listen.
func TestEdgeBlockedCallerGets429(t *testing.T) {
	attack(t, "F12", "fail authentication until blocked, then call /v1/usage and the pre-recorded routes",
		"429 RATE_LIMITED with Retry-After everywhere, even with a valid key, until the bucket refills")
	srv := testutil.StartServe(t)
	key := edgeTenant(t, srv, "limited", "team")
	do := func(method, path, cred string) *http.Response {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		req.Header.Set("Authorization", "Token "+cred)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	blocked := 0
	for i := 0; i < 100 && blocked == 0; i++ {
		if do("GET", "/v1/usage", "wrong-key").StatusCode == http.StatusTooManyRequests {
			blocked = i + 1
		}
	}
	if blocked == 0 {
		t.Fatal("100 failed authentications on /v1/usage were never answered 429")
	}
	t.Logf("blocked after %d failed authentications", blocked)
	for _, r := range []struct{ method, path string }{
		{"GET", "/v1/usage"}, {"POST", "/v1/listen"}, {"GET", "/v1/requests/abc"}, {"DELETE", "/v1/requests/abc"},
	} {
		req, _ := http.NewRequest(r.method, srv.URL+r.path, nil)
		req.Header.Set("Authorization", "Token "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e wire.HTTPError
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || e.Code != wire.CodeRateLimited || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s with a valid key from a blocked address: %d %s (Retry-After %q), want 429 RATE_LIMITED with Retry-After",
				r.method, r.path, resp.StatusCode, e.Code, resp.Header.Get("Retry-After"))
		}
	}
}

var finalizeLine = regexp.MustCompile(`msg="send finalize"`)
var suppressedLine = regexp.MustCompile(`msg="suppressed similar log lines".*message="send finalize".*suppressed=(\d+)`)

// TestEdgeStreamLogCap: F12b, a client makes the server log one line per message.
func TestEdgeStreamLogCap(t *testing.T) {
	attack(t, "F12b", "send Finalize messages past the replay limit (30,000 in the original: 17,984 ERROR lines)",
		"at most 10 lines per stream, level and message, plus one 'suppressed' line; the metric counts them all")
	n := pick(13_000, 30_000)
	srv := testutil.StartServe(t)
	key := edgeTenant(t, srv, "chatty", "team")
	ws, _, err := websocket.DefaultDialer.Dial(srv.WSURL+"?encoding=linear16&sample_rate=16000", http.Header{"Authorization": {"Token " + key}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	// Each accepted Finalize is answered; the reader keeps up (a client that does not read
	// is cut as a slow consumer after 256, which is another door): the writer lets at most 100
	// answers wait, or 50 ms per batch once Finalizes are refused and go unanswered.
	var read atomic.Int64
	go func() {
		for i := range n {
			if ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"Finalize"}`)) != nil {
				return
			}
			if i%50 == 49 {
				for wait := time.Now(); int64(i)-read.Load() > 100 && time.Since(wait) < 50*time.Millisecond; {
					time.Sleep(time.Millisecond)
				}
			}
		}
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"CloseStream"}`))
	}()
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			break
		}
		read.Add(1)
	}
	var suppressed string
	testutil.Eventually(t, 20*time.Second, "the stream's 'suppressed similar log lines' summary", func() bool {
		m := suppressedLine.FindStringSubmatch(srv.Output())
		if m != nil {
			suppressed = m[1]
		}
		return m != nil || len(finalizeLine.FindAllString(srv.Output(), -1)) > 20
	})
	out := srv.Output()
	lines := len(finalizeLine.FindAllString(out, -1))
	total := metricValue(t, srv.OpsURL, "earshot_gateway_stream_log_lines_total", `msg="send finalize"`)
	dropped := metricValue(t, srv.OpsURL, "earshot_gateway_stream_log_lines_suppressed_total", `msg="send finalize"`)
	t.Logf("%d Finalize messages: %d 'send finalize' lines written (%d bytes of log in all), metric %v lines, %v suppressed, summary suppressed=%s",
		n, lines, len(out), total, dropped, suppressed)
	if lines > 10 {
		t.Fatalf("%d Finalize messages wrote %d 'send finalize' lines, want at most 10", n, lines)
	}
	if total <= 10 || total != float64(lines)+dropped || fmt.Sprint(dropped) != suppressed {
		t.Fatalf("metric counts %v lines and %v suppressed, log has %d lines and summary suppressed=%s", total, dropped, lines, suppressed)
	}
}

// TestEdgeLoopbackDefault: F10c, the default listen address.
func TestEdgeLoopbackDefault(t *testing.T) {
	attack(t, "F10d", "reach a `make run` / default `earshot serve` from another machine",
		"the default --listen and scripts/run.sh are loopback; other interfaces only when told")
	out, _ := exec.Command(testutil.Binary(t), "serve", "--help").CombinedOutput()
	m := regexp.MustCompile(`-listen value\s*\n[^\n]*\(default "?([^")]*)"?\)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no default for --listen in `earshot serve --help`:\n%s", out)
	}
	if !strings.HasPrefix(string(m[1]), "127.0.0.1:") {
		t.Errorf("earshot serve listens on %q by default, want loopback", m[1])
	}
	run, err := os.ReadFile(filepath.Join(testutil.ModuleRoot(t), "scripts", "run.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(run, []byte(`LISTEN="${EARSHOT_LISTEN:-127.0.0.1:8080}"`)) {
		t.Error("scripts/run.sh (make run) does not default to 127.0.0.1:8080")
	}
}

// TestEdgeSlowloris: H-slowloris, headers at 1 byte per second.
func TestEdgeSlowloris(t *testing.T) {
	attack(t, "H-slowloris", "send request headers at 1 byte per second",
		"the connection is closed by the 10 s header timeout")
	srv := testutil.StartServe(t)
	c := rawConn(t, srv.URL)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		hdr := "GET /healthz HTTP/1.1\r\nHost: earshot\r\nX-Slow: " + strings.Repeat("a", 100)
		for i := range len(hdr) {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
			if _, err := c.Write([]byte{hdr[i]}); err != nil {
				return
			}
		}
	}()
	d, closed := closedWithin(c, bufio.NewReader(c), 20*time.Second)
	if !closed {
		t.Fatalf("headers at 1 byte/s: still open after %v", d)
	}
	t.Logf("headers at 1 byte/s: closed after %v", d.Round(time.Millisecond))
}

// TestEdgeOversizedFrame: H-frame, a binary frame over the gateway's 1 MiB limit.
func TestEdgeOversizedFrame(t *testing.T) {
	attack(t, "H-frame", "send a WebSocket frame over the 1 MiB read limit on /v1/listen",
		"close 1009 with Error MESSAGE_TOO_LARGE; the server stays healthy and takes the next stream")
	srv := testutil.StartServe(t)
	key := edgeTenant(t, srv, "bigframe", "team")
	dial := func() *websocket.Conn {
		ws, _, err := websocket.DefaultDialer.Dial(srv.WSURL+"?encoding=linear16&sample_rate=16000", http.Header{"Authorization": {"Token " + key}})
		if err != nil {
			t.Fatal(err)
		}
		return ws
	}
	ws := dial()
	defer ws.Close()
	if err := ws.WriteMessage(websocket.BinaryMessage, make([]byte, 1<<20+2)); err != nil {
		t.Fatal(err)
	}
	var code wire.ErrorCode
	var closeErr error
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			closeErr = err
			break
		}
		var e struct {
			Type string         `json:"type"`
			Code wire.ErrorCode `json:"code"`
		}
		if json.Unmarshal(b, &e) == nil && e.Type == "Error" {
			code = e.Code
		}
	}
	if !websocket.IsCloseError(closeErr, wire.CloseTooLarge) || code != wire.CodeMessageTooLarge {
		t.Fatalf("oversized frame: %v, Error %q; want close 1009 and MESSAGE_TOO_LARGE", closeErr, code)
	}
	ws2 := dial()
	defer ws2.Close()
	if err := ws2.WriteMessage(websocket.TextMessage, []byte(`{"type":"CloseStream"}`)); err != nil {
		t.Fatal(err)
	}
	for {
		if _, _, err := ws2.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				t.Fatalf("next stream after the oversized frame: %v", err)
			}
			break
		}
	}
}
