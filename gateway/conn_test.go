package gateway

import (
	"strings"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// isKeepAlive is a shortcut past wire.ParseControl: it must only ever say yes where
// ParseControl reads a KeepAlive.
func TestIsKeepAliveAgreesWithParseControl(t *testing.T) {
	for _, s := range []string{
		`{"type":"KeepAlive"}`, `{"type": "KeepAlive"}`, " {\"type\":\"KeepAlive\"}\n",
		`{"type":"keepalive"}`, `{"type":"KeepAlive","x":1}`, `{ "type" : "KeepAlive" }`,
		`{"type":"KeepAlive"`, `{"ty pe":"KeepAlive"}`, `{"type":"Finalize"}`, ``, `[]`,
	} {
		c, err := wire.ParseControl([]byte(s))
		parsed := err == nil && c.Type == wire.ControlKeepAlive
		if isKeepAlive([]byte(s)) && !parsed {
			t.Errorf("isKeepAlive(%q) = true; ParseControl: %+v, %v", s, c, err)
		}
	}
	for _, s := range []string{`{"type":"KeepAlive"}`, `{"type": "KeepAlive"}`} {
		if !isKeepAlive([]byte(s)) {
			t.Errorf("isKeepAlive(%q) = false: what the SDKs send must skip the decoder", s)
		}
	}
}

// An idle stream keeps no writer goroutine and no queue; one starts for a message and
// goes again, and the stream then ends as usual.
func TestIdleStreamHoldsNoWriter(t *testing.T) {
	h := newHarness(t, nil)
	c, _ := h.mustDial(pcmQuery)
	sendControl(t, c, wire.ControlKeepAlive)
	sendControl(t, c, "Dance") // answered with an Error message; the stream goes on
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, b, err := c.ReadMessage(); err != nil || !strings.Contains(string(b), string(wire.CodeUnknownMessage)) {
		t.Fatalf("want an %s error, got %q, %v", wire.CodeUnknownMessage, b, err)
	}
	idle := func() bool {
		h.srv.mu.Lock()
		defer h.srv.mu.Unlock()
		for cn := range h.srv.conns {
			cn.wmu.Lock()
			busy := cn.writing || cn.queue != nil
			cn.wmu.Unlock()
			if busy {
				return false
			}
		}
		return len(h.srv.conns) == 1
	}
	testutil.Eventually(t, 3*time.Second, "writer gone once the queue is empty", idle)
	sendAudio(t, c, tone(0.2))
	sendControl(t, c, wire.ControlCloseStream)
	msgs, ce := readAll(t, c, 3*time.Second)
	if ce == nil || ce.Code != 1000 || len(only(msgs, wire.TypeMetadata)) != 1 {
		t.Fatalf("close %v, messages %v", ce, msgs)
	}
}
