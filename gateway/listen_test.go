package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testutil"
	"github.com/gorilla/websocket"
)

func TestStreamHappyPath(t *testing.T) {
	h := newHarness(t, nil)
	c, resp := h.mustDial(pcmQuery + "&interim_results=true&vad_events=true&utterance_end_ms=1000&redact=pci&language=en&punctuate=true")
	reqID := resp.Header.Get("dg-request-id")
	audio := tone(3)
	sendAudio(t, c, audio)
	sendControl(t, c, wire.ControlCloseStream)
	msgs, ce := readAll(t, c, 5*time.Second)
	if ce == nil || ce.Code != wire.CloseNormal {
		t.Fatalf("close = %v, want 1000", ce)
	}

	var finals []string
	interim := 0
	for _, m := range only(msgs, wire.TypeResults) {
		r := decode[wire.Results](t, m)
		if !reflect.DeepEqual(r.ChannelIndex, []int{0, 1}) || r.Metadata.RequestID != reqID ||
			r.Metadata.ModelInfo.Name != "tiny.en" || r.Metadata.ModelUUID != "uuid-tiny" {
			t.Fatalf("result identity wrong: %s", m.Raw)
		}
		if !r.IsFinal {
			interim++
			continue
		}
		finals = append(finals, r.Transcript())
		if !r.SpeechFinal || len(r.Channel.Alternatives[0].Words) != 2 {
			t.Fatalf("final not from endpointing or without words: %s", m.Raw)
		}
		w := r.Channel.Alternatives[0].Words[0]
		if w.PunctuatedWord != strings.ToUpper(w.Word[:1])+w.Word[1:] || w.End <= w.Start {
			t.Fatalf("word mapped wrong: %+v", w)
		}
	}
	if want := []string{"w1 w2", "w3 w4", "w5 w6"}; !reflect.DeepEqual(finals, want) {
		t.Fatalf("finals %q, want %q", finals, want)
	}
	if interim != 6 {
		t.Fatalf("%d interim results, want 6", interim)
	}
	if n := len(only(msgs, wire.TypeSpeechStarted)); n != 1 {
		t.Fatalf("%d SpeechStarted", n)
	}
	ues := only(msgs, wire.TypeUtteranceEnd)
	if len(ues) != 3 || decode[wire.UtteranceEnd](t, ues[0]).LastWordEnd != 1 {
		t.Fatalf("UtteranceEnd messages: %v", ues)
	}
	last := msgs[len(msgs)-1]
	if last.Type != wire.TypeMetadata {
		t.Fatalf("last message %s, want Metadata", last.Raw)
	}
	md := decode[wire.Metadata](t, last)
	sum := sha256.Sum256(audio)
	if md.RequestID != reqID || md.Duration != 3 || md.Channels != 1 || md.SHA256 != hex.EncodeToString(sum[:]) ||
		md.ModelInfo["uuid-tiny"].Name != "tiny.en" || md.Models[0] != "uuid-tiny" {
		t.Fatalf("metadata %s", last.Raw)
	}
	if _, err := time.Parse(time.RFC3339Nano, md.Created); err != nil {
		t.Fatalf("created %q: %v", md.Created, err)
	}

	// What the transcriber was asked for, and what was billed.
	req := h.backend.Opened()[0]
	if req.Tenant != testTenant || req.Key != h.key.ID || req.Model != "tiny.en" || req.Channels != 1 ||
		!req.Options.InterimResults || req.Options.EndpointingMs != wire.DefaultEndpointingMs ||
		req.Options.UtteranceEndMs != 1000 || !req.Options.VADEvents || req.Options.Language != "en" ||
		!reflect.DeepEqual(req.Options.Redact, []string{"pci"}) || string(req.Session) != reqID {
		t.Fatalf("session request %+v", req)
	}
	h.checkBilled(reqID, 3)
	if v := counter(t, h.reg, "earshot_gateway_final_latency_seconds", nil); v != 3 {
		t.Fatalf("final latency observations %v", v)
	}
}

func TestFinalizeAndNoInterims(t *testing.T) {
	h := newHarness(t, nil)
	c, _ := h.mustDial(pcmQuery + "&endpointing=false")
	sendAudio(t, c, tone(0.5))
	sendControl(t, c, wire.ControlFinalize)
	sendControl(t, c, wire.ControlCloseStream)
	msgs, ce := readAll(t, c, 5*time.Second)
	if ce == nil || ce.Code != wire.CloseNormal {
		t.Fatalf("close %v", ce)
	}
	rs := only(msgs, wire.TypeResults)
	if len(rs) != 1 {
		t.Fatalf("got %d results, want the one final (no interims without interim_results)", len(rs))
	}
	r := decode[wire.Results](t, rs[0])
	if !r.IsFinal || !r.FromFinalize || r.Transcript() != "w1" {
		t.Fatalf("finalize result %s", rs[0].Raw)
	}
	if h.backend.Opened()[0].Options.EndpointingMs != -1 {
		t.Fatal("endpointing=false not passed on")
	}
}

func TestMultichannel(t *testing.T) {
	h := newHarness(t, nil)
	c, _ := h.mustDial("encoding=linear16&sample_rate=16000&channels=2&multichannel=true")
	mono := tone(1)
	stereo := make([]byte, 2*len(mono))
	for i := 0; i < len(mono); i += 2 {
		copy(stereo[2*i:], mono[i:i+2])
		copy(stereo[2*i+2:], mono[i:i+2])
	}
	sendAudio(t, c, stereo)
	sendControl(t, c, wire.ControlCloseStream)
	msgs, ce := readAll(t, c, 5*time.Second)
	if ce == nil || ce.Code != wire.CloseNormal {
		t.Fatalf("close %v", ce)
	}
	seen := map[int]string{}
	for _, m := range only(msgs, wire.TypeResults) {
		r := decode[wire.Results](t, m)
		if r.ChannelIndex[1] != 2 {
			t.Fatalf("channel_index %v", r.ChannelIndex)
		}
		seen[r.ChannelIndex[0]] = r.Transcript()
	}
	if seen[0] != "w1 w2" || seen[1] != "w1 w2" {
		t.Fatalf("per-channel finals %v", seen)
	}
	if md := decode[wire.Metadata](t, msgs[len(msgs)-1]); md.Channels != 2 || md.Duration != 1 {
		t.Fatalf("metadata %+v", md)
	}
}

func TestAuth(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	revokedKey, revokedSecret, _ := h.keys.Create(ctx, testTenant)
	tokOfRevoked, _ := h.signer.Issue(testTenant, revokedKey.ID, time.Minute)
	if err := h.keys.Revoke(ctx, testTenant, revokedKey.ID); err != nil {
		t.Fatal(err)
	}
	// A token opens one stream: each case that opens one gets its own.
	good, _ := h.signer.Issue(testTenant, h.key.ID, time.Minute)
	good2, _ := h.signer.Issue(testTenant, h.key.ID, time.Minute)
	good3, _ := h.signer.Issue(testTenant, h.key.ID, time.Minute)
	expired, _ := h.signer.Issue(testTenant, h.key.ID, -time.Second)
	other, _ := NewSigner([]byte(strings.Repeat("z", 32)))
	forged, _ := other.Issue(testTenant, h.key.ID, time.Minute)

	cases := []struct {
		name   string
		query  string
		hdr    http.Header
		status int
		proto  string
	}{
		{"no credentials", "", nil, 401, ""},
		{"bad key", "", http.Header{"Authorization": {"Token esk_nope"}}, 401, ""},
		{"unknown scheme", "", http.Header{"Authorization": {"Basic " + h.secret}}, 401, ""},
		{"revoked key", "", http.Header{"Authorization": {"Token " + revokedSecret}}, 401, ""},
		{"token of revoked key", "", http.Header{"Authorization": {"Bearer " + tokOfRevoked}}, 401, ""},
		{"expired token", "", http.Header{"Authorization": {"Bearer " + expired}}, 401, ""},
		{"forged token", "", http.Header{"Authorization": {"Bearer " + forged}}, 401, ""},
		{"key", "", h.keyHeader(), 101, ""},
		{"bearer key", "", http.Header{"Authorization": {"Bearer " + h.secret}}, 101, ""},
		{"bearer token", "", http.Header{"Authorization": {"Bearer " + good}}, 101, ""},
		{"query token", "&token=" + good2, nil, 101, ""},
		{"subprotocol token", "", http.Header{"Sec-WebSocket-Protocol": {"token, " + good3}}, 101, "token"},
		{"used token", "", http.Header{"Authorization": {"Bearer " + good}}, 403, ""},
		{"subprotocol key", "", http.Header{"Sec-WebSocket-Protocol": {"token, " + h.secret}}, 101, "token"},
		{"subprotocol bad", "", http.Header{"Sec-WebSocket-Protocol": {"token, est1.garbage.x"}}, 401, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, resp, he, err := h.dial(pcmQuery+c.query, c.hdr)
			if resp == nil {
				t.Fatalf("no response: %v", err)
			}
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d (%+v)", resp.StatusCode, c.status, he)
			}
			if c.status == 401 && (he.Code != wire.CodeUnauthorized || resp.Header.Get("dg-error") == "") {
				t.Fatalf("error body %+v", he)
			}
			if conn != nil {
				if got := conn.Subprotocol(); got != c.proto {
					t.Fatalf("subprotocol %q, want %q", got, c.proto)
				}
				sendControl(t, conn, wire.ControlCloseStream)
				if _, ce := readAll(t, conn, 3*time.Second); ce == nil || ce.Code != 1000 {
					t.Fatalf("close %v", ce)
				}
			}
		})
	}
}

func TestGrantEndpoint(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Demo = DemoConfig{Enabled: true, Tenant: "demo"} })
	post := func(path, auth, body string) (*http.Response, wire.Grant) {
		req, _ := http.NewRequest("POST", h.ts.URL+path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var g wire.Grant
		_ = decodeJSON(resp, &g)
		return resp, g
	}
	resp, g := post("/v1/auth/grant", "Token "+h.secret, "")
	if resp.StatusCode != 200 || !strings.HasPrefix(g.AccessToken, TokenPrefix) || g.ExpiresIn < 29 || g.ExpiresIn > 30 {
		t.Fatalf("grant %d %+v", resp.StatusCode, g)
	}
	c, _, he, err := h.dial(pcmQuery, http.Header{"Sec-WebSocket-Protocol": {"token, " + g.AccessToken}})
	if err != nil {
		t.Fatalf("granted token refused: %v %+v", err, he)
	}
	c.Close()
	if resp, g := post("/v1/auth/grant", "Token "+h.secret, `{"ttl_seconds": 120}`); resp.StatusCode != 200 || g.ExpiresIn < 119 {
		t.Fatalf("ttl grant %d %+v", resp.StatusCode, g)
	}
	if resp, _ := post("/v1/auth/grant", "Token "+h.secret, `{"ttl_seconds": 99999}`); resp.StatusCode != 400 {
		t.Fatalf("oversized ttl: %d", resp.StatusCode)
	}
	if resp, _ := post("/v1/auth/grant", "Bearer "+g.AccessToken, ""); resp.StatusCode != 403 {
		t.Fatalf("token granting a token: %d", resp.StatusCode)
	}
	if resp, _ := post("/v1/auth/grant", "", ""); resp.StatusCode != 401 {
		t.Fatalf("no key: %d", resp.StatusCode)
	}
	resp, dg := post("/demo/grant", "", "")
	if resp.StatusCode != 200 {
		t.Fatalf("demo grant %d", resp.StatusCode)
	}
	c, _, he, err = h.dial(pcmQuery+"&token="+dg.AccessToken, nil)
	if err != nil {
		t.Fatalf("demo token refused: %v %+v", err, he)
	}
	c.Close()
	if h.backend.Opened()[len(h.backend.Opened())-1].Tenant != "demo" {
		t.Fatal("demo stream not billed to the demo tenant")
	}
}

func TestDemoOffByDefault(t *testing.T) {
	h := newHarness(t, nil)
	resp, err := http.Post(h.ts.URL+"/demo/grant", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 && resp.StatusCode != 405 {
		t.Fatalf("demo grant without demo mode: %d", resp.StatusCode)
	}
	// A demo token minted with the same secret is refused too.
	tok, _ := h.signer.Issue("demo", "", time.Minute)
	if _, resp, _, _ := h.dial(pcmQuery+"&token="+tok, nil); resp == nil || resp.StatusCode != 401 {
		t.Fatalf("demo token accepted without demo mode")
	}
}

func TestFailedAuthRateLimit(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.AuthFailBurst = 3; c.AuthFailPerSec = 0.001 })
	bad := http.Header{"Authorization": {"Token esk_bad"}}
	for i := 0; i < 3; i++ {
		if _, resp, _, _ := h.dial(pcmQuery, bad); resp.StatusCode != 401 {
			t.Fatalf("attempt %d: %d", i, resp.StatusCode)
		}
	}
	_, resp, he, _ := h.dial(pcmQuery, h.keyHeader())
	if resp.StatusCode != 429 || he.Code != wire.CodeRateLimited || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("after the burst: %d %+v", resp.StatusCode, he)
	}
}

func TestAdmissionErrors(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxStreamsPerTenant = 1 })
	h.quota.notPlan = map[string]bool{"base.en": true, "base": true}
	cases := []struct {
		name   string
		query  string
		setup  func()
		status int
		code   wire.ErrorCode
		param  string
	}{
		{"unknown model", pcmQuery + "&model=huge.xx", nil, 400, wire.CodeUnknownModel, "model"},
		{"sample_rate not a number", "encoding=linear16&sample_rate=abc", nil, 400, wire.CodeBadRequest, "sample_rate"},
		{"sample_rate unsupported", "encoding=linear16&sample_rate=100", nil, 400, wire.CodeBadRequest, "sample_rate"},
		{"sample_rate missing", "encoding=linear16", nil, 400, wire.CodeBadRequest, "sample_rate"},
		{"encoding unknown", "encoding=opus&sample_rate=16000", nil, 400, wire.CodeBadRequest, "encoding"},
		{"encoding missing", "sample_rate=16000", nil, 400, wire.CodeBadRequest, "encoding"},
		{"channels", pcmQuery + "&channels=9", nil, 400, wire.CodeBadRequest, "channels"},
		{"interim_results", pcmQuery + "&interim_results=yes", nil, 400, wire.CodeBadRequest, "interim_results"},
		{"model not in plan", pcmQuery + "&model=base.en", nil, 403, wire.CodeModelNotInPlan, ""},
		{"no balance", pcmQuery, func() { h.quota.set(ErrNoBalance) }, 402, wire.CodeNoBalance, ""},
		{"quota", pcmQuery, func() { h.quota.set(errors.Join(errors.New("minutes"), ErrQuotaExhausted)) }, 402, wire.CodeQuotaExhausted, ""},
		{"no capacity", pcmQuery, func() {
			h.quota.set(nil)
			h.backend.OpenErr = errors.Join(errors.New("no reply from tiny.en"), bus.ErrNoCapacity)
		}, 503, wire.CodeNoCapacity, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.setup != nil {
				c.setup()
			}
			_, resp, he, err := h.dial(c.query, h.keyHeader())
			if err == nil || resp == nil || resp.StatusCode != c.status || he.Code != c.code || he.Param != c.param {
				t.Fatalf("got %v %+v, want %d %s param %q", resp.Status, he, c.status, c.code, c.param)
			}
			if c.param != "" && !strings.Contains(he.Message, c.param) {
				t.Fatalf("message %q does not name %s", he.Message, c.param)
			}
		})
	}
	h.backend.OpenErr = nil

	t.Run("concurrent streams", func(t *testing.T) {
		c1, _ := h.mustDial(pcmQuery)
		_, resp, he, _ := h.dial(pcmQuery, h.keyHeader())
		if resp.StatusCode != 429 || he.Code != wire.CodeTooManyStreams {
			t.Fatalf("second stream: %d %+v", resp.StatusCode, he)
		}
		h.endStream(t, c1)
		c2, _ := h.mustDial(pcmQuery)
		c2.Close()
	})
}

// TestListenProbe: a plain GET /v1/listen (what a browser can send to learn why its
// upgrade was refused) runs the admission checks and answers their status and body,
// or 426 when they pass, without opening a transcription stream or keeping a slot.
func TestListenProbe(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxStreamsPerTenant = 1 })
	h.quota.notPlan = map[string]bool{"base.en": true, "base": true}
	tok, _ := h.signer.Issue(testTenant, h.key.ID, time.Minute)
	bearer := http.Header{"Authorization": {"Bearer " + tok}}
	probe := func(t *testing.T, query string, hdr http.Header) (*http.Response, wire.HTTPError) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, h.ts.URL+"/v1/listen?"+query, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = hdr
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var he wire.HTTPError
		if err := decodeJSON(resp, &he); err != nil {
			t.Fatalf("body of %d: %v", resp.StatusCode, err)
		}
		return resp, he
	}
	cases := []struct {
		name   string
		query  string
		hdr    http.Header
		setup  func()
		status int
		code   wire.ErrorCode
		param  string
	}{
		{"no credentials", pcmQuery, http.Header{}, nil, 401, wire.CodeUnauthorized, ""},
		{"bad parameter", "encoding=linear16&sample_rate=abc", bearer, nil, 400, wire.CodeBadRequest, "sample_rate"},
		{"unknown model", pcmQuery + "&model=huge.xx", bearer, nil, 400, wire.CodeUnknownModel, "model"},
		{"model not in plan", pcmQuery + "&model=base.en", bearer, nil, 403, wire.CodeModelNotInPlan, ""},
		{"quota", pcmQuery, bearer, func() { h.quota.set(errors.Join(errors.New("minutes"), ErrQuotaExhausted)) }, 402, wire.CodeQuotaExhausted, ""},
		{"admitted (token)", pcmQuery, bearer, func() { h.quota.set(nil) }, 426, codeUpgradeRequired, ""},
		{"admitted (key)", pcmQuery, h.keyHeader(), nil, 426, codeUpgradeRequired, ""},
		// The probe stops before the transcriber is asked, so a full one is not seen.
		{"no capacity is not seen", pcmQuery, bearer, func() { h.backend.OpenErr = bus.ErrNoCapacity }, 426, codeUpgradeRequired, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.setup != nil {
				c.setup()
			}
			resp, he := probe(t, c.query, c.hdr)
			if resp.StatusCode != c.status || he.Code != c.code || he.Param != c.param || he.RequestID == "" {
				t.Fatalf("got %d %+v, want %d %s param %q", resp.StatusCode, he, c.status, c.code, c.param)
			}
			if c.status == 426 && !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
				t.Fatalf("426 without Upgrade: websocket header: %v", resp.Header)
			}
		})
	}
	h.backend.OpenErr = nil
	if n := len(h.backend.Opened()); n != 0 {
		t.Fatalf("probes opened %d transcription streams", n)
	}
	if n := h.srv.LiveStreams(); n != 0 {
		t.Fatalf("probes left %d live streams", n)
	}

	t.Run("too many streams", func(t *testing.T) {
		// The probes above gave their slot back: the one allowed stream opens.
		c1, _ := h.mustDial(pcmQuery)
		resp, he := probe(t, pcmQuery, bearer)
		if resp.StatusCode != 429 || he.Code != wire.CodeTooManyStreams {
			t.Fatalf("probe beside an open stream: %d %+v", resp.StatusCode, he)
		}
		h.endStream(t, c1)
		if resp, he := probe(t, pcmQuery, bearer); resp.StatusCode != 426 {
			t.Fatalf("probe after the stream ended: %d %+v", resp.StatusCode, he)
		}
	})
}

// finalTranscripts is the transcript of each final Results among msgs, in order.
func finalTranscripts(t *testing.T, msgs []message) []string {
	t.Helper()
	var finals []string
	for _, m := range only(msgs, wire.TypeResults) {
		if r := decode[wire.Results](t, m); r.IsFinal {
			finals = append(finals, r.Transcript())
		}
	}
	return finals
}

// expectError reads to the close and checks the last Error message and close code.
func expectError(t *testing.T, c *websocket.Conn, code wire.ErrorCode, close int) []message {
	t.Helper()
	msgs, ce := readAll(t, c, 5*time.Second)
	errs := only(msgs, wire.TypeError)
	if len(errs) == 0 || decode[wire.Error](t, errs[len(errs)-1]).Code != code {
		t.Fatalf("messages %v: want Error %s", msgs, code)
	}
	if ce == nil || ce.Code != close {
		t.Fatalf("close %v, want %d", ce, close)
	}
	return msgs
}

func TestSessionErrors(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.IdleTimeout = 300 * time.Millisecond
		c.MaxFrameBytes = 64 << 10
		c.MaxTextBytes = 1 << 10
	})
	t.Run("idle timeout", func(t *testing.T) {
		c, _ := h.mustDial(pcmQuery)
		expectError(t, c, wire.CodeIdleTimeout, wire.CloseIdleTimeout)
	})
	t.Run("keepalive keeps the stream open", func(t *testing.T) {
		c, _ := h.mustDial(pcmQuery)
		for i := 0; i < 6; i++ {
			sendControl(t, c, wire.ControlKeepAlive)
			time.Sleep(100 * time.Millisecond)
		}
		sendControl(t, c, wire.ControlCloseStream)
		if _, ce := readAll(t, c, 3*time.Second); ce == nil || ce.Code != 1000 {
			t.Fatalf("close %v", ce)
		}
	})
	t.Run("huge text frame", func(t *testing.T) {
		c, _ := h.mustDial(pcmQuery)
		_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"KeepAlive","x":"`+strings.Repeat("a", 4<<10)+`"}`))
		expectError(t, c, wire.CodeMessageTooLarge, wire.CloseTooLarge)
	})
	t.Run("huge binary frame", func(t *testing.T) {
		c, _ := h.mustDial(pcmQuery)
		_ = c.WriteMessage(websocket.BinaryMessage, make([]byte, 100<<10))
		expectError(t, c, wire.CodeMessageTooLarge, wire.CloseTooLarge)
	})
	t.Run("unknown message type is an error, not the end", func(t *testing.T) {
		c, _ := h.mustDial(pcmQuery)
		sendControl(t, c, "Dance")
		_ = c.WriteMessage(websocket.TextMessage, []byte("not json"))
		sendAudio(t, c, tone(1))
		sendControl(t, c, wire.ControlCloseStream)
		msgs, ce := readAll(t, c, 3*time.Second)
		errs := only(msgs, wire.TypeError)
		if len(errs) != 2 || decode[wire.Error](t, errs[0]).Code != wire.CodeUnknownMessage ||
			decode[wire.Error](t, errs[1]).Code != wire.CodeBadRequest {
			t.Fatalf("errors %v", errs)
		}
		if ce == nil || ce.Code != 1000 || msgs[len(msgs)-1].Type != wire.TypeMetadata {
			t.Fatalf("stream did not finish normally: %v", ce)
		}
	})
	t.Run("odd byte count for linear16", func(t *testing.T) {
		c, _ := h.mustDial(pcmQuery)
		_ = c.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3})
		expectError(t, c, wire.CodeBadAudio, wire.CloseBadAudio)
	})
	t.Run("ogg container declared as linear16", func(t *testing.T) {
		c, _ := h.mustDial(pcmQuery)
		_ = c.WriteMessage(websocket.BinaryMessage, append([]byte("OggS"), make([]byte, 60)...))
		expectError(t, c, wire.CodeBadAudio, wire.CloseBadAudio)
	})
	t.Run("wav header is stripped", func(t *testing.T) {
		c, _ := h.mustDial(pcmQuery)
		hdr := []byte("RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + strings.Repeat("\x00", 16) + "data\x00\x7d\x00\x00")
		_ = c.WriteMessage(websocket.BinaryMessage, append(hdr, tone(1)...))
		sendControl(t, c, wire.ControlCloseStream)
		msgs, _ := readAll(t, c, 3*time.Second)
		if md := decode[wire.Metadata](t, msgs[len(msgs)-1]); md.Duration != 1 {
			t.Fatalf("duration %v, want 1 (header not counted as audio)", md.Duration)
		}
	})
}

func TestMidStreamFailures(t *testing.T) {
	t.Run("transcriber lost capacity", func(t *testing.T) {
		h := newHarness(t, nil)
		h.backend.FailWith = bus.CodeOverloaded
		c, _ := h.mustDial(pcmQuery)
		sendAudio(t, c, tone(0.2))
		expectError(t, c, wire.CodeNoCapacity, wire.CloseTryAgainLater)
	})
	t.Run("billing settled before the close", func(t *testing.T) {
		// A client resumes as soon as it hears 1013: by then the stream's billing
		// record must say what this connection paid for (RELIABILITY.md gap 9).
		h := newHarness(t, nil)
		h.meter.settle = 300 * time.Millisecond
		h.backend.FailWith = bus.CodeOverloaded
		c, _ := h.mustDial(pcmQuery)
		sendAudio(t, c, tone(0.2))
		msgs := expectError(t, c, wire.CodeNoCapacity, wire.CloseTryAgainLater)
		id := bus.SessionID(decode[wire.Error](t, only(msgs, wire.TypeError)[0]).RequestID)
		if !h.meter.isSettled(id) {
			t.Fatalf("close 1013 reached the client before the meter of %s was settled", id)
		}
	})
	t.Run("quota runs out", func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.QuotaRecheck = 50 * time.Millisecond })
		c, _ := h.mustDial(pcmQuery)
		h.quota.set(ErrQuotaExhausted)
		expectError(t, c, wire.CodeQuotaExhausted, wire.CloseQuota)
	})
	t.Run("quota runs out mid-stream: finals of the audio taken, then 4002", func(t *testing.T) {
		// The recheck finds the quota gone while audio still flows: what was taken is
		// billed, so its finals and the Metadata come before close 4002 (seen in CI:
		// the recheck cut a stream with no finals and no Metadata when the ledger
		// reached zero between two frames, TestQuotaAcrossGateways).
		h := newHarness(t, func(c *Config) { c.QuotaRecheck = 50 * time.Millisecond })
		h.backend.EndDelay = 300 * time.Millisecond
		c, _ := h.mustDial(pcmQuery)
		sendAudio(t, c, tone(1.5))
		time.Sleep(100 * time.Millisecond)
		h.quota.set(ErrQuotaExhausted)
		msgs := expectError(t, c, wire.CodeQuotaExhausted, wire.CloseQuota)
		if n := len(only(msgs, wire.TypeMetadata)); n != 1 {
			t.Fatalf("%d Metadata messages, want 1: %s", n, msgs)
		}
		if got := strings.Join(finalTranscripts(t, msgs), " "); got != "w1 w2 w3" {
			t.Fatalf("finals %q, want \"w1 w2 w3\" (the audio sent before the quota ran out)", got)
		}
	})
	t.Run("quota runs out while the finals are awaited", func(t *testing.T) {
		// CloseStream, then the worker takes 400 ms over the last final; the quota is
		// rechecked every 50 ms and fails meanwhile. The audio was taken and is billed,
		// so its finals, the Metadata and a normal close are what the client is owed
		// (seen on a slow machine: the recheck cut the ending stream with 4002 and no
		// Metadata, TestQuotaAcrossGateways).
		h := newHarness(t, func(c *Config) { c.QuotaRecheck = 50 * time.Millisecond })
		h.backend.EndDelay = 400 * time.Millisecond
		c, _ := h.mustDial(pcmQuery)
		sendAudio(t, c, tone(1.5))
		sendControl(t, c, wire.ControlCloseStream)
		time.Sleep(100 * time.Millisecond)
		h.quota.set(ErrQuotaExhausted)
		msgs, ce := readAll(t, c, 5*time.Second)
		if ce == nil || ce.Code != 1000 {
			t.Fatalf("close %v, want 1000 after the finals", ce)
		}
		if len(only(msgs, wire.TypeError)) != 0 || len(only(msgs, wire.TypeMetadata)) != 1 {
			t.Fatalf("want no error and one Metadata, got %d messages: %s", len(msgs), msgs)
		}
		if got := strings.Join(finalTranscripts(t, msgs), " "); got != "w1 w2 w3" {
			t.Fatalf("finals %q, want \"w1 w2 w3\"", got)
		}
	})
	t.Run("max session length", func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.MaxSession = 200 * time.Millisecond })
		c, _ := h.mustDial(pcmQuery)
		expectError(t, c, wire.CodeMaxDuration, wire.CloseMaxDuration)
	})
}

func TestSlowConsumer(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.WriteQueue = 4; c.WriteTimeout = time.Second })
	h.backend.Flood = 3000 // 3000 results of ~12 KB: far more than socket buffers hold
	c, _ := h.mustDial(pcmQuery + "&interim_results=true")
	sendAudio(t, c, tone(0.1))
	// The client never reads.
	testutil.Eventually(t, 10*time.Second, "slow consumer closed", func() bool {
		return counter(t, h.reg, "earshot_gateway_sessions_total", map[string]string{"close_code": "1008"}) == 1
	})
	testutil.Eventually(t, 5*time.Second, "stream released", func() bool {
		return h.srv.LiveStreams() == 0 && h.backend.Live() == 0
	})
	if v := counter(t, h.reg, "earshot_gateway_errors_total", map[string]string{"code": string(wire.CodeSlowConsumer)}); v < 1 {
		t.Fatalf("slow consumer errors %v", v)
	}
}

func TestRealtimePacing(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RealtimeFactor = 2; c.RealtimeBurst = 500 * time.Millisecond })
	c, _ := h.mustDial(pcmQuery)
	start := time.Now()
	sendAudio(t, c, tone(2.5)) // 2 s beyond the burst at 2x: at least ~1 s of reading
	sendControl(t, c, wire.ControlCloseStream)
	msgs, ce := readAll(t, c, 10*time.Second)
	if ce == nil || ce.Code != 1000 || decode[wire.Metadata](t, msgs[len(msgs)-1]).Duration != 2.5 {
		t.Fatalf("paced stream did not finish: %v", ce)
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Fatalf("2.5 s of audio accepted in %v: not paced to 2x real time", el)
	}
}

func TestShutdownDrains(t *testing.T) {
	h := newHarness(t, nil)
	c, _ := h.mustDial(pcmQuery + "&interim_results=true")
	sendAudio(t, c, tone(1.5)) // w1 w2 final; w3 pending
	testutil.Eventually(t, 2*time.Second, "audio through", func() bool {
		st := h.backend.Streams()
		return len(st) > 0 && st[0].Samples(0) >= 24000
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.srv.Shutdown(ctx) }()
	msgs, ce := readAll(t, c, 5*time.Second)
	if ce == nil || ce.Code != wire.CloseServiceRestart {
		t.Fatalf("close %v, want 1012", ce)
	}
	finals := finalTranscripts(t, msgs)
	if !reflect.DeepEqual(finals, []string{"w1 w2", "w3"}) || msgs[len(msgs)-1].Type != wire.TypeMetadata {
		t.Fatalf("finals before the drain close: %q", finals)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_, resp, he, _ := h.dial(pcmQuery, h.keyHeader())
	if resp.StatusCode != 503 || he.Code != wire.CodeShuttingDown {
		t.Fatalf("after shutdown: %d %+v", resp.StatusCode, he)
	}
}

func TestModelsEndpoint(t *testing.T) {
	h := newHarness(t, nil)
	h.quota.notPlan = map[string]bool{"base.en": true, "base": true}
	req, _ := http.NewRequest("GET", h.ts.URL+"/v1/models", nil)
	req.Header = h.keyHeader()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ STT []map[string]string }
	if err := decodeJSON(resp, &body); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	if len(body.STT) != 1 || body.STT[0]["name"] != "tiny.en" {
		t.Fatalf("models %+v", body.STT)
	}
	h.srv.Mount("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	if resp, _ := http.Get(h.ts.URL + "/healthz"); resp.StatusCode != 204 {
		t.Fatalf("mounted route: %d", resp.StatusCode)
	}
}

// TestDemoStreamLength: a demo stream ends with close 4003 MAX_DURATION at
// Demo.MaxSession, while the tenant-wide MaxSession is longer.
func TestDemoStreamLength(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Demo = DemoConfig{Enabled: true, Tenant: "demo", MaxSession: 300 * time.Millisecond}
	})
	tok, _ := h.signer.IssueClaims(Claims{Tenant: "demo", Visitor: "v"}, time.Minute)
	c, _, he, err := h.dial(pcmQuery+"&token="+tok, nil)
	if err != nil {
		t.Fatalf("demo token refused: %v %+v", err, he)
	}
	defer c.Close()
	start := time.Now()
	if _, ce := readAll(t, c, 5*time.Second); ce == nil || ce.Code != wire.CloseMaxDuration {
		t.Fatalf("demo stream closed with %v, want %d", ce, wire.CloseMaxDuration)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("demo stream lasted %v, want about 300ms", d)
	}
}
