package gateway

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/earshot-dev/earshot/gateway/client"
	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/internal/bus"
)

// TestSDKListenV2: the Go SDK's turn-taking mode sends the knobs, ForceEndTurn and
// Configure, and decodes every Flux message.
func TestSDKListenV2(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	c, err := client.ListenV2(ctx, h.ts.URL, client.TurnOptions{Key: h.secret, Model: "flux-general-en",
		Encoding: "linear16", SampleRate: 16000, EOTThreshold: 0.8, EagerEOTThreshold: 0.6, EOTTimeoutMs: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendAudio(tone(1.5)); err != nil {
		t.Fatal(err)
	}
	eot := 0.9
	if err := c.Configure(client.TurnConfig{EOTThreshold: &eot}); err != nil {
		t.Fatal(err)
	}
	if err := c.ForceEndTurn(); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseStream(); err != nil {
		t.Fatal(err)
	}
	evs := collect(t, c.Events())
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 || evs[0].Connected == nil || evs[0].Connected.RequestID != c.RequestID() {
		t.Fatalf("first event %+v", evs)
	}
	var ends []string
	configured := false
	for _, ev := range evs {
		switch {
		case ev.TurnInfo != nil && ev.TurnInfo.Event == bus.TurnEnd:
			ends = append(ends, ev.TurnInfo.Transcript+"/"+ev.TurnInfo.Trigger)
		case ev.ConfigureSuccess != nil:
			configured = ev.ConfigureSuccess.Thresholds.EOTThreshold == 0.9 && ev.ConfigureSuccess.Thresholds.EOTTimeoutMs == 2000
		}
	}
	if !configured || strings.Join(ends, ",") != "w1 w2/model,w3/manual" {
		t.Fatalf("configured %v, turns %q", configured, ends)
	}
	if o := h.backend.Opened()[0].Options.Turns; o == nil || *o != (bus.TurnOptions{EOTThreshold: 0.8, EagerEOTThreshold: 0.6, EOTTimeoutMs: 2000}) {
		t.Fatalf("turn options %+v", o)
	}

	_, err = client.ListenV2(ctx, h.ts.URL, client.TurnOptions{Key: h.secret, Encoding: "linear16", SampleRate: 16000, EOTThreshold: 0.2})
	var de *client.DialError
	if !errors.As(err, &de) || de.Status != 400 || de.Param != "eot_threshold" {
		t.Fatalf("bad threshold: %v", err)
	}
}

// TestStreamTurnsFile: `earshot stream --turns` output, a stereo WAV mixed down.
func TestStreamTurnsFile(t *testing.T) {
	h := newHarness(t, nil)
	path := filepath.Join(t.TempDir(), "a.wav")
	mono := tone(2.5)
	stereo := make([]byte, 0, 2*len(mono))
	for i := 0; i+1 < len(mono); i += 2 {
		stereo = append(stereo, mono[i], mono[i+1], mono[i], mono[i+1])
	}
	hdr := make([]byte, 44)
	copy(hdr, "RIFF")
	binary.LittleEndian.PutUint32(hdr[4:], uint32(36+len(stereo)))
	copy(hdr[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(hdr[16:], 16)
	binary.LittleEndian.PutUint16(hdr[20:], 1)     // PCM
	binary.LittleEndian.PutUint16(hdr[22:], 2)     // channels
	binary.LittleEndian.PutUint32(hdr[24:], 16000) // rate
	binary.LittleEndian.PutUint32(hdr[28:], 16000*4)
	binary.LittleEndian.PutUint16(hdr[32:], 4)
	binary.LittleEndian.PutUint16(hdr[34:], 16)
	copy(hdr[36:], "data")
	binary.LittleEndian.PutUint32(hdr[40:], uint32(len(stereo)))
	if err := os.WriteFile(path, append(hdr, stereo...), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := client.StreamTurnsFile(context.Background(), h.ts.URL, client.TurnOptions{Key: h.secret}, path, client.FileOptions{}, &out)
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"turn 0 StartOfTurn", "turn 0 EndOfTurn        0.00–  1.00s eot 0.85 (model)  \"w1 w2\"",
		"turn 2 EndOfTurn        2.00–  2.50s eot 0.85 (close)  \"w5\""} {
		if !strings.Contains(got, want) {
			t.Fatalf("output lacks %q:\n%s", want, got)
		}
	}
	if req := h.backend.Opened()[0]; req.Channels != 1 {
		t.Fatalf("channels %d", req.Channels)
	}
	out.Reset()
	err = client.StreamTurnsFile(context.Background(), h.ts.URL, client.TurnOptions{Key: h.secret}, path, client.FileOptions{JSON: true}, &out)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if err != nil || !strings.Contains(lines[0], `"type":"`+wire.TypeConnected+`"`) || !strings.Contains(lines[len(lines)-1], `"EndOfTurn"`) {
		t.Fatalf("json output %v %q", err, lines)
	}
}
