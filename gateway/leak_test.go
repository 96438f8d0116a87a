package gateway

import (
	"context"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/internal/testutil"
	"github.com/gorilla/websocket"
)

// TestNoLeakUnderAbuse runs 1,000 abusive sessions and checks that goroutines come
// back to where they were: nothing an outsider does may leave work behind.
func TestNoLeakUnderAbuse(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.AuthFailBurst = 1 << 20; c.IdleTimeout = time.Second })
	good, _ := h.signer.Issue(testTenant, h.key.ID, time.Hour)
	auth := http.Header{"Authorization": {"Bearer " + good}}
	d := &websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	runtime.GC()
	base := runtime.NumGoroutine()

	for i := 0; i < 1000; i++ {
		var hdr http.Header
		q := pcmQuery
		switch i % 8 {
		case 0:
			hdr = http.Header{"Authorization": {"Bearer est1.garbage.sig"}}
		case 1:
			hdr = http.Header{"Sec-WebSocket-Protocol": {"token, " + good[:len(good)-3] + "AAA"}}
		case 2:
			hdr, q = auth, "encoding=linear16&sample_rate=nope"
		default: // a token opens one stream: a fresh one per session
			tok, _ := h.signer.Issue(testTenant, h.key.ID, time.Hour)
			hdr = http.Header{"Authorization": {"Bearer " + tok}}
		}
		c, resp, err := d.Dial(h.wsURL(q), hdr)
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		if err != nil {
			if i%8 > 2 {
				t.Fatalf("session %d refused: %v", i, err)
			}
			continue
		}
		switch i % 8 {
		case 3: // vanish at once
		case 4: // garbage audio
			_ = c.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3})
		case 5: // garbage text, then vanish mid-audio
			_ = c.WriteMessage(websocket.TextMessage, []byte("{{{{"))
			_ = c.WriteMessage(websocket.BinaryMessage, tone(0.2))
		case 6: // close frame without CloseStream
			_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
		case 7: // CloseStream and leave without reading
			_ = c.WriteMessage(websocket.BinaryMessage, tone(0.1))
			_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"`+wire.ControlCloseStream+`"}`))
		}
		c.Close()
	}
	testutil.Eventually(t, 15*time.Second, "all sessions gone", func() bool {
		return h.srv.LiveStreams() == 0 && h.backend.Live() == 0
	})
	var n int
	testutil.Eventually(t, 15*time.Second, "goroutines back to baseline", func() bool {
		runtime.GC()
		n = runtime.NumGoroutine()
		return n <= base+5
	})
	t.Logf("goroutines: %d before, %d after 1000 abusive sessions", base, n)
	// The server still works.
	c, _ := h.mustDial(pcmQuery)
	sendControl(t, c, wire.ControlCloseStream)
	if _, ce := readAll(t, c, 3*time.Second); ce == nil || ce.Code != 1000 {
		t.Fatalf("close %v", ce)
	}
	_ = context.Background()
}
