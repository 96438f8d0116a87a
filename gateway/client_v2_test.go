package gateway

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/gateway/client"
	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testutil"
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

// TestSDKListenV2Reconnect: a turn-taking stream whose worker is lost in the middle of
// a turn resumes with TurnOptions.Reconnect. The client hears one stream: one
// Connected, turn_index counting on (the new connection is told where with
// resume_turn_index), no turn started or ended twice, times on the whole stream's
// clock; the resent audio (from the last EndOfTurn on) is billed to the first stream.
func TestSDKListenV2Reconnect(t *testing.T) {
	h := newHarness(t, nil)
	h.backend.FailFirstAt = 28000 // lost at 1.75 s: turn 0 ("w1 w2", 0–1 s) ended, turn 1 open since 1.5 s
	c, err := client.ListenV2(context.Background(), h.ts.URL, client.TurnOptions{Key: h.secret,
		Encoding: "linear16", SampleRate: 16000, Reconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	first := c.RequestID()
	audio := tone(3)
	for i := 0; i < 18; i++ { // 1.8 s
		if err := c.SendAudio(audio[i*3200 : (i+1)*3200]); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 5*time.Second, "reconnected", func() bool { return c.RequestID() != first })
	for i := 18; i < 30; i++ {
		if err := c.SendAudio(audio[i*3200 : (i+1)*3200]); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.CloseStream()
	evs := collect(t, c.Events())
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	var turns []string
	connected := 0
	for _, ev := range evs {
		switch {
		case ev.Connected != nil:
			connected++
		case ev.TurnInfo != nil && ev.TurnInfo.Event != bus.TurnUpdate:
			ti := ev.TurnInfo
			turns = append(turns, fmt.Sprintf("%d %s %.1f-%.1f %q", ti.TurnIndex, ti.Event, ti.AudioWindowStart, ti.AudioWindowEnd, ti.Transcript))
		}
	}
	// The stand-in names words by the audio of its own connection: the resumed one got
	// the stream from 1.0 s on, so turn 1 is its "w1 w2" again, at 1–2 s of the stream.
	want := []string{`0 StartOfTurn 0.0-0.5 "w1"`, `0 EndOfTurn 0.0-1.0 "w1 w2"`, `1 StartOfTurn 1.0-1.5 "w3"`,
		`1 EndOfTurn 1.0-2.0 "w1 w2"`, `2 StartOfTurn 2.0-2.5 "w3"`, `2 EndOfTurn 2.0-3.0 "w3 w4"`}
	if connected != 1 || strings.Join(turns, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%d Connected; turns\n%s\nwant\n%s", connected, strings.Join(turns, "\n"), strings.Join(want, "\n"))
	}
	h.meter.mu.Lock()
	defer h.meter.mu.Unlock()
	second := h.meter.infos[bus.SessionID(c.RequestID())]
	if second.Billed != bus.SessionID(first) || second.OffsetMs != 1000 || second.RunUpMs != 0 {
		t.Fatalf("the second connection is billed to %q from %d ms (run-up %d ms), want %q from 1000 ms, no run-up",
			second.Billed, second.OffsetMs, second.RunUpMs, first)
	}
	// Each connection meters what it received (1.8 s, then 2 s from 1.0 s on); billing
	// credits the overlap from resume and resume_offset_ms (docs/api.md, the resume rule).
	if a, b := h.meter.ms[bus.SessionID(first)], h.meter.ms[bus.SessionID(c.RequestID())]; a != 1800 || b != 2000 {
		t.Fatalf("metered %d ms, then %d ms", a, b)
	}
}

// TestStreamTurnsFileReconnect: `earshot stream --turns --fast` through a lost worker:
// all the audio and CloseStream went out on the first connection; the reconnect sends
// the audio after the last EndOfTurn and CloseStream again, and the output goes on
// with the turns where they were.
func TestStreamTurnsFileReconnect(t *testing.T) {
	h := newHarness(t, nil)
	h.backend.FailFirstAt = 28000
	path := filepath.Join(t.TempDir(), "a.raw")
	if err := os.WriteFile(path, tone(3), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := client.StreamTurnsFile(context.Background(), h.ts.URL, client.TurnOptions{Key: h.secret, Encoding: "linear16",
		SampleRate: 16000, Reconnect: true}, path, client.FileOptions{}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{"turn 0 EndOfTurn        0.00–  1.00s", "turn 1 EndOfTurn        1.00–  2.00s",
		"turn 2 EndOfTurn        2.00–  3.00s"} {
		if strings.Count(got, want) != 1 {
			t.Fatalf("output has %q %d times, want once:\n%s", want, strings.Count(got, want), got)
		}
	}
	if n := len(h.backend.Opened()); n != 2 {
		t.Fatalf("%d streams opened, want 2", n)
	}
}
