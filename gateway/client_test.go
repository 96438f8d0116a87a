package gateway

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/gateway/client"
	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// collect gathers a stream's events (a client.Conn's or a client.TurnConn's) until
// the channel closes; it fails the test after 10 s.
func collect[E any](t *testing.T, events <-chan E) []E {
	t.Helper()
	var evs []E
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return evs
			}
			evs = append(evs, ev)
		case <-timeout:
			t.Fatal("events did not end")
		}
	}
}

func finalsOf(evs []client.Event) (texts []string, starts []float64) {
	for _, ev := range evs {
		if ev.Results != nil && ev.Results.IsFinal {
			texts = append(texts, ev.Results.Transcript())
			starts = append(starts, ev.Results.Start)
		}
	}
	return
}

func TestSDKStream(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	c, err := client.Dial(ctx, h.ts.URL, client.Options{Key: h.secret, Model: "tiny.en", Encoding: "linear16",
		SampleRate: 16000, InterimResults: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendAudio(tone(2)); err != nil {
		t.Fatal(err)
	}
	if err := c.KeepAlive(); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseStream(); err != nil {
		t.Fatal(err)
	}
	evs := collect(t, c.Events())
	if err := c.Err(); err != nil {
		t.Fatalf("stream ended with %v", err)
	}
	texts, _ := finalsOf(evs)
	if strings.Join(texts, "|") != "w1 w2|w3 w4" {
		t.Fatalf("finals %q", texts)
	}
	last := evs[len(evs)-1]
	if last.Metadata == nil || last.Metadata.Duration != 2 || last.Metadata.RequestID != c.RequestID() {
		t.Fatalf("last event %s", last.Raw)
	}

	_, err = client.Dial(ctx, h.ts.URL, client.Options{Key: h.secret, Model: "nope", Encoding: "linear16", SampleRate: 16000})
	var de *client.DialError
	if !errors.As(err, &de) || de.Status != 400 || de.Code != wire.CodeUnknownModel || de.Param != "model" {
		t.Fatalf("dial error %v", err)
	}
	_, err = client.Dial(ctx, h.ts.URL, client.Options{Key: "esk_wrong", Encoding: "linear16", SampleRate: 16000})
	if !errors.As(err, &de) || de.Status != 401 {
		t.Fatalf("bad key: %v", err)
	}
}

func TestSDKReconnectResendsSinceLastFinal(t *testing.T) {
	h := newHarness(t, nil)
	h.backend.FailFirstAt = 24000 // the first worker is lost at 1.5 s, after the final "w1 w2"
	c, err := client.Dial(context.Background(), h.ts.URL, client.Options{Key: h.secret, Encoding: "linear16",
		SampleRate: 16000, Reconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	first := c.RequestID()
	audio := tone(3)
	for i := 0; i < 15; i++ { // 1.5 s
		if err := c.SendAudio(audio[i*3200 : (i+1)*3200]); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 5*time.Second, "reconnected", func() bool { return c.RequestID() != first })
	for i := 15; i < 30; i++ {
		if err := c.SendAudio(audio[i*3200 : (i+1)*3200]); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.CloseStream()
	evs := collect(t, c.Events())
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	texts, starts := finalsOf(evs)
	// The new worker got the audio from 0.5 s on (half a second of run-up before the last
	// final's end at 1.0 s, whose word it does not send again): 2.5 s of audio, with
	// times shifted back onto the whole stream's clock.
	if len(starts) != 3 || starts[0] != 0 || starts[1] != 1 || starts[2] != 2 {
		t.Fatalf("finals %q at %v", texts, starts)
	}
	if md := evs[len(evs)-1].Metadata; md == nil || md.Duration != 2.5 {
		t.Fatalf("the second stream should have received 2.5 s: %s", evs[len(evs)-1].Raw)
	}
	if texts[1] != "w2 w3" {
		t.Fatalf("the resumed stream's first final %q, want the run-up's word left out", texts[1])
	}
	// The second connection said which stream it resumes and from where, so billing
	// counts the resent audio once; the final before the loss flushed the first meter.
	h.meter.mu.Lock()
	defer h.meter.mu.Unlock()
	second := h.meter.infos[bus.SessionID(c.RequestID())]
	if second.Billed != bus.SessionID(first) || second.OffsetMs != 500 || second.RunUpMs != 500 {
		t.Fatalf("the second connection is billed to %q from %d ms (run-up %d ms), want %q from 500 ms with 500 ms run-up",
			second.Billed, second.OffsetMs, second.RunUpMs, first)
	}
	if h.meter.infos[bus.SessionID(first)].Billed != bus.SessionID(first) || h.meter.flushes[bus.SessionID(first)] == 0 {
		t.Fatalf("first connection: info %+v, %d flushes", h.meter.infos[bus.SessionID(first)], h.meter.flushes[bus.SessionID(first)])
	}
}

func TestStreamFile(t *testing.T) {
	h := newHarness(t, nil)
	path := filepath.Join(t.TempDir(), "a.wav")
	f, _ := os.Create(path)
	pcm := ingest.FromPCM16Bytes(tone(2))
	if err := ingest.WriteWAV16(f, 16000, pcm); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var out bytes.Buffer
	err := client.StreamFile(context.Background(), h.ts.URL, client.Options{Key: h.secret, InterimResults: true},
		path, client.FileOptions{}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, "\r\x1b[Kw1\r") || !strings.Contains(got, "\r\x1b[Kw1 w2\n") || !strings.HasSuffix(got, "w3 w4\n") {
		t.Fatalf("text output %q", got)
	}
	out.Reset()
	err = client.StreamFile(context.Background(), h.ts.URL, client.Options{Key: h.secret}, path,
		client.FileOptions{JSON: true}, &out)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if err != nil || len(lines) != 3 || !strings.Contains(lines[2], `"type":"Metadata"`) {
		t.Fatalf("json output %v %q", err, lines)
	}
}
