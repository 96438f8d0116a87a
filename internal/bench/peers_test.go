package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

var upgrader = websocket.Upgrader{}

func wsURL(s *httptest.Server) string { return "ws" + strings.TrimPrefix(s.URL, "http") }

func collect(t *testing.T, c conn) []event {
	t.Helper()
	var evs []event
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e, ok := <-c.events():
			if !ok {
				return evs
			}
			evs = append(evs, e)
		case <-timeout:
			t.Fatal("events not closed")
		}
	}
}

func finalsOf(evs []event) []string { return textsOf(evs, evFinal) }

func partialsOf(evs []event) []string { return textsOf(evs, evPartial) }

func textsOf(evs []event, kind eventKind) (out []string) {
	for _, e := range evs {
		if e.kind == kind {
			out = append(out, e.text)
		}
	}
	return out
}

// A stand-in for WhisperLive 0.10.0's WebSocket server (faster_whisper backend), as its
// server.py and backend/base.py behave: options first, SERVER_READY, float32 frames,
// every message resending the completed segments plus one incomplete one,
// END_OF_AUDIO, then a close without flushing.
func TestWhisperLiveAdapter(t *testing.T) {
	defer func(q time.Duration) { peerQuiet = q }(peerQuiet)
	peerQuiet = 100 * time.Millisecond
	got := make(chan []float32, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		var opts map[string]any
		if err := ws.ReadJSON(&opts); err != nil || opts["audio_format"] != "float32" || opts["language"] != "en" || opts["uid"] == "" {
			t.Errorf("options %v, %v", opts, err)
			return
		}
		_ = ws.WriteJSON(map[string]any{"uid": opts["uid"], "message": "SERVER_READY", "backend": "faster_whisper"})
		var samples []float32
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if string(b) == "END_OF_AUDIO" {
				break
			}
			if len(b)%4 != 0 {
				t.Errorf("frame of %d bytes is not float32", len(b))
			}
			for i := 0; i+4 <= len(b); i += 4 {
				samples = append(samples, math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
			}
			if len(samples) == 4 { // after the audio: the scripted results
				seg := func(s, e, text string, done bool) map[string]any {
					return map[string]any{"start": s, "end": e, "text": text, "completed": done}
				}
				msgs := [][]map[string]any{
					{seg("0.000", "1.000", " hello", false)},
					{seg("0.000", "1.000", " hello", false)}, // unchanged: no new partial
					{seg("0.000", "1.500", " hello world", true), seg("1.500", "2.000", " how", false)},
					{seg("0.000", "1.500", " hello world", true), seg("1.500", "2.500", " how are", false)}, // resent final
					{seg("0.000", "1.500", " hello world", true), seg("1.500", "3.000", " how are you", true)},
					{seg("0.000", "1.500", " hello world", true), seg("1.500", "3.000", " how are you", true), seg("3.000", "3.500", " bye", false)},
				}
				for _, m := range msgs {
					_ = ws.WriteJSON(map[string]any{"uid": opts["uid"], "segments": m})
				}
			}
		}
		got <- samples
		// WhisperLive closes without completing " bye".
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	}))
	defer srv.Close()
	c, err := whisperLiveDialer(wsURL(srv), "en", "")(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]byte, 8)
	for i, v := range []int16{0, 16384, -32768, 32767} {
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(v))
	}
	if err := c.send(pcm); err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.closeStream() }()
	evs := collect(t, c)
	if err := c.err(); err != nil {
		t.Fatal(err)
	}
	s := <-got
	want := []float32{0, 0.5, -1, 32767.0 / 32768}
	for i := range want {
		if s[i] != want[i] {
			t.Fatalf("samples %v, want %v", s, want)
		}
	}
	parts := partialsOf(evs)
	if strings.Join(parts, "|") != "hello|how|how are|bye" {
		t.Errorf("partials %q", parts)
	}
	if f := finalsOf(evs); strings.Join(f, "|") != "hello world|how are you|bye" {
		t.Errorf("finals %q (each once, the unfinished one at the close)", f)
	}
	for _, e := range evs {
		if e.kind == evFinal && e.text == "how are you" && (e.start != 1.5 || math.Abs(e.dur-1.5) > 1e-9) {
			t.Errorf("final times %v + %v", e.start, e.dur)
		}
	}
}

func TestWhisperLiveRefusal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		var opts map[string]any
		_ = ws.ReadJSON(&opts)
		_ = ws.WriteJSON(map[string]any{"uid": opts["uid"], "status": "WAIT", "message": 3.5})
	}))
	defer srv.Close()
	if _, err := whisperLiveDialer(wsURL(srv), "en", "")(context.Background()); err == nil || !strings.Contains(err.Error(), "WAIT") {
		t.Fatalf("err %v, want WAIT", err)
	}
}

// A stand-in for WhisperLiveKit 0.2.26's /asr endpoint started with --pcm-input, as
// basic_server.py and audio_processor.py behave: a config message, raw s16le frames,
// each result the whole state (lines cut at silences + buffer_transcription), an
// empty frame to end, then ready_to_stop.
func TestWhisperLiveKitAdapter(t *testing.T) {
	got := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		_ = ws.WriteJSON(map[string]any{"type": "config", "useAudioWorklet": true, "mode": "full"})
		var audio []byte
		line := func(sp int, text, s, e string) map[string]any {
			return map[string]any{"speaker": sp, "text": text, "start": s, "end": e}
		}
		state := func(lines []map[string]any, buf string) map[string]any {
			return map[string]any{"status": "active_transcription", "lines": lines, "buffer_transcription": buf,
				"buffer_diarization": "", "remaining_time_transcription": 0.0}
		}
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if len(b) == 0 {
				break
			}
			audio = append(audio, b...)
		}
		got <- audio
		msgs := []map[string]any{
			state(nil, "hello"),
			state([]map[string]any{line(1, " Hello", "0:00:00.20", "0:00:00.80")}, " world."),
			state([]map[string]any{line(1, " Hello", "0:00:00.20", "0:00:00.80")}, " world."), // unchanged: nothing
			state([]map[string]any{line(1, " Hello  world.", "0:00:00.20", "0:00:01.50")}, ""),
			state([]map[string]any{line(1, " Hello  world.", "0:00:00.20", "0:00:01.50"), line(-2, "", "0:00:01.50", "0:00:02.10"),
				line(1, " How are", "0:00:02.10", "0:00:02.60")}, "you"),
			state([]map[string]any{line(1, " Hello  world.", "0:00:00.20", "0:00:01.50"), line(-2, "", "0:00:01.50", "0:00:02.10"),
				line(1, " How are", "0:00:02.10", "0:00:02.60")}, "you?"),
		}
		for _, m := range msgs {
			_ = ws.WriteJSON(m)
		}
		_ = ws.WriteJSON(map[string]any{"type": "ready_to_stop"})
		_, _, _ = ws.ReadMessage() // the client's close
	}))
	defer srv.Close()
	c, err := whisperLiveKitDialer(wsURL(srv)+"/asr", t.TempDir())(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pcm := []byte{1, 2, 3, 4, 5, 6}
	if err := c.send(pcm); err != nil {
		t.Fatal(err)
	}
	if err := c.closeStream(); err != nil {
		t.Fatal(err)
	}
	evs := collect(t, c)
	if err := c.err(); err != nil {
		t.Fatal(err)
	}
	if a := <-got; string(a) != string(pcm) {
		t.Errorf("audio %v, want the raw linear16 %v", a, pcm)
	}
	parts := partialsOf(evs)
	if strings.Join(parts, "|") != "hello|world.|you|you?" {
		t.Errorf("partials %q", parts)
	}
	// Committed words are final once each; the buffer left at ready_to_stop too.
	if f := finalsOf(evs); strings.Join(f, "|") != "Hello|world.|How are|you?" {
		t.Errorf("finals %q", f)
	}
	times := map[string][2]float64{"Hello": {0.2, 0.6}, "world.": {0.8, 0.7}, "How are": {2.1, 0.5}}
	for _, e := range evs {
		if w, ok := times[e.text]; ok && e.kind == evFinal && (math.Abs(e.start-w[0]) > 1e-9 || math.Abs(e.dur-w[1]) > 1e-9) {
			t.Errorf("final %q at %v + %v, want %v", e.text, e.start, e.dur, w)
		}
	}
}

func TestWhisperLiveKitNeedsPCMInput(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		_ = ws.WriteJSON(map[string]any{"type": "config", "useAudioWorklet": false, "mode": "full"})
		_, _, _ = ws.ReadMessage()
	}))
	defer srv.Close()
	if _, err := whisperLiveKitDialer(wsURL(srv), "")(context.Background()); err == nil || !strings.Contains(err.Error(), "--pcm-input") {
		t.Fatalf("err %v", err)
	}
}

func TestParseClock(t *testing.T) {
	for s, want := range map[string]float64{"1.5": 1.5, "0:00:01.23": 1.23, "1:02.5": 62.5, "1:00:00.00": 3600, "-0:00:01.00": -1} {
		if v, err := parseClock(s); err != nil || math.Abs(v-want) > 1e-9 {
			t.Errorf("%q: %v %v", s, v, err)
		}
	}
	for _, s := range []string{"", "x", "1:2:3:4", "0:61", "NaN", "Inf"} {
		if _, err := parseClock(s); err == nil {
			t.Errorf("%q parsed", s)
		}
	}
}

// checkEvents: times are finite with durations ≥ 0, and a message parsed again (a
// resend) adds no final.
func checkEvents(t *testing.T, first, again []event) {
	for _, e := range append(first, again...) {
		if math.IsNaN(e.start) || math.IsInf(e.start, 0) || math.IsNaN(e.dur) || e.dur < 0 {
			t.Fatalf("event %+v", e)
		}
	}
	for _, e := range again {
		if e.kind == evFinal {
			t.Fatalf("final %+v counted twice", e)
		}
	}
}

func FuzzWhisperLiveMessage(f *testing.F) {
	f.Add([]byte(`{"uid":"a","segments":[{"start":"0.000","end":"1.000","text":"hi","completed":true},{"start":"1.0","end":"2","text":"x","completed":false}]}`))
	f.Add([]byte(`{"uid":"a","message":"SERVER_READY"}`))
	f.Add([]byte(`{"status":"WAIT","message":2}`))
	f.Add([]byte(`{"segments":[{"start":1e308,"end":"-5","completed":true}]}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		s := newWLState()
		first, _, _ := s.parse(msg)
		again, _, _ := s.parse(msg)
		checkEvents(t, first, again)
		checkEvents(t, s.flush(), nil)
	})
}

func FuzzWhisperLiveKitMessage(f *testing.F) {
	f.Add([]byte(`{"type":"config","useAudioWorklet":true}`))
	f.Add([]byte(`{"status":"active_transcription","lines":[{"speaker":1,"text":"a","start":"0:00:00.00","end":"0:00:01.00"},{"speaker":-2,"text":"","start":"0:00:01.00","end":"0:00:02.00"}],"buffer_transcription":"b","remaining_time_transcription":0.5}`))
	f.Add([]byte(`{"type":"ready_to_stop"}`))
	f.Add([]byte(`{"lines":[{"speaker":1,"text":"a","start":"9:59:59.99","end":"1"}],"buffer_transcription":"z"}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		s := newWLKState()
		first, _, _ := s.parse(msg, 10)
		again, _, _ := s.parse(msg, 10)
		checkEvents(t, first, again)
		checkEvents(t, s.flush(), nil)
	})
}

func TestWritePeerTable(t *testing.T) {
	dir := t.TempDir()
	for i, wer := range []float64{0.10, 0.30, 0.20} {
		r := &Report{Target: "whisperlive ws://x", Knee: 9, Levels: []Level{
			{Streams: 1, WER: wer, PartialMs: Dist{N: 4}, FinalMs: Dist{P95: 500 * float64(i+1)}, Procs: []ProcStat{{CPUPercent: 50, PeakRSSMB: 100}, {CPUPercent: 10, PeakRSSMB: 20}},
				PerStream: []StreamResult{{Finals: 3}, {Finals: 1}}},
		}}
		if err := WriteFiles(filepath.Join(dir, "whisperlive", fmt.Sprintf("run%d", i+1)), r); err != nil {
			t.Fatal(err)
		}
	}
	path, err := WritePeerTable(dir, "RUNS=3 make bench-peers")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	// Medians: WER 20 %, final p95 1000 ms; CPU and RSS summed over the processes; the
	// knee judged from the levels (1, 1, 0: final p95 500, 1000, 1500 ms), not the
	// report's own.
	if !strings.Contains(string(b), "| whisperlive | 1 | 3 | 20.0% | 0 / 0 | 1000 | 0 | 60 | 120 | 0 / 0 | 1 |") ||
		!strings.Contains(string(b), "RUNS=3 make bench-peers") {
		t.Errorf("table:\n%s", b)
	}
	if _, err := WritePeerTable(t.TempDir(), ""); err == nil {
		t.Error("no runs: want an error")
	}
}

func TestKneeOf(t *testing.T) {
	ok := func(n int) Level {
		return Level{Streams: n, PartialMs: Dist{N: 5, P95: 900}, FinalMs: Dist{P95: 800}, PerStream: []StreamResult{{Finals: 2}}}
	}
	slowFinal, errs, noFinal, noPartial := ok(8), ok(8), ok(8), ok(1)
	noPartial.PartialMs = Dist{}
	slowFinal.FinalMs.P95 = 1200
	errs.Errors = 1
	noFinal.PerStream = append(noFinal.PerStream, StreamResult{})
	for _, c := range []struct {
		levels []Level
		want   int
	}{
		{[]Level{ok(1), ok(4), ok(8)}, 8},
		{[]Level{ok(1), ok(4), slowFinal}, 4},
		{[]Level{ok(1), errs, ok(16)}, 1}, // stops at the first failing level
		{[]Level{noFinal}, 0},
		{[]Level{noPartial}, 0},
		{nil, 0},
	} {
		if got := kneeOf(c.levels, 2*time.Second, time.Second); got != c.want {
			t.Errorf("kneeOf(%+v) = %d, want %d", c.levels, got, c.want)
		}
	}
}
