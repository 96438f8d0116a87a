package bench

// Peer transports: the bench's one client, with its one set of metric definitions,
// streaming to other self-hosted streaming servers (issue 23, `make bench-peers`).
// Each adapter maps the peer's own WebSocket protocol onto the bench's events:
// evPartial / evFinal with start and duration on the stream clock (seconds of audio
// since the stream began) and text, so runStream measures them as it does Earshot.
// The protocol facts below were read from the servers' released source (WhisperLive
// 0.10.0 whisper_live/server.py and backend/base.py; WhisperLiveKit 0.2.26
// whisperlivekit/basic_server.py, audio_processor.py, tokens_alignment.py and
// timed_objects.py); no code of theirs is used here.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Peers names the peer servers UsePeer knows.
var Peers = []string{"whisperlive", "whisperlivekit"}

// UsePeer makes cfg stream to a peer server instead of Earshot: peer is "whisperlive"
// (its WebSocket server, e.g. ws://127.0.0.1:9090) or "whisperlivekit" (its /asr
// endpoint, e.g. ws://127.0.0.1:8000/asr; the server must run with --pcm-input).
// A traceDir that is not empty gets every message the peer sent, one file per stream,
// <peer>-<n>.log, each line the seconds since the stream opened and the message as
// received, to audit the mappings below against what the server said. Billed audio
// is unavailable.
func (c *Config) UsePeer(peer, url, traceDir string) error {
	switch peer {
	case "whisperlive":
		c.dial = whisperLiveDialer(url, c.Language, traceDir)
	case "whisperlivekit":
		c.dial = whisperLiveKitDialer(url, traceDir)
	default:
		return fmt.Errorf("%w: unknown peer %q (known: %s)", ErrConfig, peer, strings.Join(Peers, ", "))
	}
	c.usage = nil
	c.Target = peer + " " + url
	return nil
}

// peerQuiet is how long the WhisperLive adapter waits, after the last audio was sent,
// for the server's output to stop changing before it sends END_OF_AUDIO: WhisperLive
// has no end-of-stream flush, and its own file client waits 15 s without new text
// (Client.disconnect_if_no_response_for) before it does the same. Tests shorten it.
var peerQuiet = 15 * time.Second

// peerReadyTimeout bounds the wait for a peer's handshake (WhisperLive loads the model
// when the first client connects).
var peerReadyTimeout = 3 * time.Minute

// peerWS is what the two adapters share: a gorilla connection with serialised writes,
// the events channel, and the end-of-stream error.
type peerWS struct {
	ws      *websocket.Conn
	wmu     sync.Mutex
	out     chan event
	done    chan struct{}
	e       error
	sentSmp atomic.Int64 // 16 kHz samples sent
	trace   *peerTrace
}

var traceSeq atomic.Int64

type peerTrace struct {
	f     *os.File
	start time.Time
}

func openTrace(dir, peer string) *peerTrace {
	if dir == "" {
		return nil
	}
	if os.MkdirAll(dir, 0o755) != nil {
		return nil
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.log", peer, traceSeq.Add(1))))
	if err != nil {
		return nil
	}
	return &peerTrace{f: f, start: time.Now()}
}

func (t *peerTrace) log(msg []byte) {
	if t != nil {
		fmt.Fprintf(t.f, "%.3f %s\n", time.Since(t.start).Seconds(), msg)
	}
}

func (t *peerTrace) close() {
	if t != nil {
		_ = t.f.Close()
	}
}

func (p *peerWS) write(kind int, b []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_ = p.ws.SetWriteDeadline(time.Now().Add(30 * time.Second))
	return p.ws.WriteMessage(kind, b)
}

func (p *peerWS) events() <-chan event { return p.out }
func (p *peerWS) err() error           { <-p.done; return p.e }
func (p *peerWS) abort()               { _ = p.ws.Close() }
func (p *peerWS) sentSec() float64     { return float64(p.sentSmp.Load()) / 16000 }

// closedNormally reports whether a read error is the end of the conversation rather
// than a failure.
func closedNormally(err error) bool {
	return websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) ||
		errors.Is(err, websocket.ErrCloseSent)
}

// flexFloat reads a number sent either as a JSON number or as a string: WhisperLive
// sends "start": "1.234", WhisperLiveKit "start": "0:00:01.23".
type flexFloat float64

func (f *flexFloat) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := parseClock(s)
		if err != nil {
			return err
		}
		*f = flexFloat(v)
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = flexFloat(v)
	return nil
}

// parseClock reads seconds written as "12.5", "1:02.5" or "0:01:02.50" (WhisperLiveKit's
// format_time: H:MM:SS.cc). A leading "-" negates.
func parseClock(s string) (float64, error) {
	s = strings.TrimSpace(s)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	parts := strings.Split(s, ":")
	if len(parts) > 3 || s == "" {
		return 0, fmt.Errorf("bad time %q", s)
	}
	var v float64
	for i, p := range parts {
		x, err := strconv.ParseFloat(p, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) || x < 0 || (i > 0 && x >= 60) {
			return 0, fmt.Errorf("bad time %q", s)
		}
		v = v*60 + x
	}
	if neg {
		v = -v
	}
	return v, nil
}

// ---------------------------------------------------------------------------------
// WhisperLive (collabora/WhisperLive, faster_whisper backend)
//
// Handshake: the client's first message is a JSON object of options (uid, language,
// task, model, use_vad, send_last_n_segments, no_speech_thresh, clip_audio,
// same_output_threshold, audio_format); the server answers {"uid", "message":
// "SERVER_READY", "backend"} once the model is loaded, or {"uid", "status": "WAIT" |
// "ERROR", "message"}. Audio: binary frames of float32 samples in [-1, 1] at 16 kHz
// (the default audio_format, what its own client sends). End of stream: the binary
// frame b"END_OF_AUDIO"; the server then stops reading and closes the socket without
// flushing what it has not completed.
//
// Results: {"uid", "segments": [...]} where segments are the last
// send_last_n_segments completed segments ({"start": "s.sss", "end", "text",
// "completed": true}), resent in every message, followed by at most one incomplete
// one ("completed": false) that is still being re-decoded. Mapping:
//   - a completed segment is a final the first time it is seen: the adapter keeps the
//     last final's start and end and, as WhisperLive's own client does, takes a
//     completed segment only if it starts at or after that end (and after that
//     start); resent ones are therefore counted once;
//   - a trailing incomplete segment is a partial (start, end − start, text), passed on
//     only when its text or range changed since the previous partial (the server
//     repeats an unchanged one while its same_output_threshold counts);
//   - when the server closes after END_OF_AUDIO, a last incomplete segment that no
//     completed one replaced becomes a final, as WhisperLive's client writes it into
//     its transcript (Client.write_srt_file).
// ---------------------------------------------------------------------------------

type wlSegment struct {
	Start     flexFloat `json:"start"`
	End       flexFloat `json:"end"`
	Text      string    `json:"text"`
	Completed bool      `json:"completed"`
}

type wlMessage struct {
	UID      string      `json:"uid"`
	Status   string      `json:"status"`
	Message  any         `json:"message"`
	Segments []wlSegment `json:"segments"`
}

// wlState turns WhisperLive messages into events (see the rule above).
type wlState struct {
	finalStart float64 // start of the last final
	finalEnd   float64 // end of the last final; −1 before the first
	finalText  string
	pending    *wlSegment // the last incomplete segment, if the last message had one
	lastPart   wlSegment  // the last partial passed on
	ready      bool       // SERVER_READY seen
	changed    bool       // the last message changed the text (for the quiet wait)
}

func newWLState() *wlState { return &wlState{finalEnd: -1} }

const timeEps = 0.0015 // WhisperLive writes times to the millisecond, WhisperLiveKit to the centisecond

// parse maps one server message; disconnect is true for DISCONNECT.
func (s *wlState) parse(msg []byte) (evs []event, disconnect bool, err error) {
	var m wlMessage
	if err := json.Unmarshal(msg, &m); err != nil {
		return nil, false, fmt.Errorf("whisperlive: bad message: %w", err)
	}
	s.changed = false
	switch strings.ToUpper(m.Status) {
	case "WAIT":
		return []event{{kind: evError, err: fmt.Sprintf("WAIT: server full, wait %v min", m.Message)}}, true, nil
	case "ERROR":
		return []event{{kind: evError, err: fmt.Sprintf("ERROR: %v", m.Message)}}, true, nil
	}
	if msgStr, _ := m.Message.(string); msgStr != "" {
		switch msgStr {
		case "SERVER_READY":
			s.ready = true
		case "DISCONNECT":
			return nil, true, nil
		}
	}
	if m.Segments == nil {
		return nil, false, nil
	}
	s.pending = nil
	for i, sg := range m.Segments {
		start, end := float64(sg.Start), float64(sg.End)
		if math.IsNaN(start) || math.IsNaN(end) {
			continue
		}
		if sg.Completed {
			if start+timeEps < s.finalEnd || (s.finalEnd >= 0 && start <= s.finalStart) {
				continue // resent: already counted
			}
			s.finalStart, s.finalEnd, s.finalText = start, max(end, start), strings.TrimSpace(sg.Text)
			s.changed = true
			evs = append(evs, event{kind: evFinal, start: start, dur: max(end-start, 0), text: strings.TrimSpace(sg.Text)})
			continue
		}
		if i != len(m.Segments)-1 {
			continue // only the last segment may be incomplete
		}
		p := sg
		p.Text = strings.TrimSpace(p.Text)
		s.pending = &p
		if p.Text != s.lastPart.Text || p.Start != s.lastPart.Start || p.End != s.lastPart.End {
			s.lastPart = p
			s.changed = true
			evs = append(evs, event{kind: evPartial, start: start, dur: max(end-start, 0), text: p.Text})
		}
	}
	return evs, false, nil
}

// flush is the end of the stream: the pending incomplete segment as a final.
func (s *wlState) flush() []event {
	p := s.pending
	s.pending = nil
	if p == nil || p.Text == "" || float64(p.Start)+timeEps < s.finalEnd || p.Text == s.finalText ||
		(s.finalEnd >= 0 && float64(p.Start) <= s.finalStart) {
		return nil
	}
	s.finalStart, s.finalEnd, s.finalText = float64(p.Start), max(float64(p.End), float64(p.Start)), p.Text
	return []event{{kind: evFinal, start: float64(p.Start), dur: max(float64(p.End-p.Start), 0), text: p.Text}}
}

type wlConn struct {
	peerWS
	st         *wlState
	lastChange atomic.Int64 // unix ns of the last message that changed the text
	closing    chan struct{}
	closeOnce  sync.Once
}

func whisperLiveDialer(url, language, traceDir string) dialer {
	if language == "" {
		language = "en"
	}
	return func(ctx context.Context) (conn, error) {
		ws, err := dialPeer(ctx, url)
		if err != nil {
			return nil, err
		}
		opts := map[string]any{
			"uid": fmt.Sprintf("earshot-bench-%d", time.Now().UnixNano()), "language": language, "task": "transcribe",
			"model":   "tiny.en", // the server's custom model path overrides it
			"use_vad": true, "send_last_n_segments": 10, "no_speech_thresh": 0.45, "clip_audio": false,
			"same_output_threshold": 10, "audio_format": "float32",
		}
		c := &wlConn{peerWS: peerWS{ws: ws, out: make(chan event, 256), done: make(chan struct{})},
			st: newWLState(), closing: make(chan struct{})}
		b, _ := json.Marshal(opts)
		if err := c.write(websocket.TextMessage, b); err != nil {
			ws.Close()
			return nil, err
		}
		// Wait for SERVER_READY (or WAIT / ERROR).
		_ = ws.SetReadDeadline(time.Now().Add(peerReadyTimeout))
		for !c.st.ready {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				ws.Close()
				return nil, fmt.Errorf("whisperlive handshake: %w", err)
			}
			evs, stop, err := c.st.parse(msg)
			if err != nil {
				ws.Close()
				return nil, err
			}
			for _, e := range evs {
				if e.kind == evError {
					ws.Close()
					return nil, fmt.Errorf("whisperlive: %s", e.err)
				}
			}
			if stop {
				ws.Close()
				return nil, fmt.Errorf("whisperlive: disconnected during the handshake")
			}
		}
		_ = ws.SetReadDeadline(time.Time{})
		c.lastChange.Store(time.Now().UnixNano())
		c.trace = openTrace(traceDir, "whisperlive")
		go c.relay()
		return c, nil
	}
}

// send converts linear16 to the float32 frames WhisperLive reads by default.
func (c *wlConn) send(pcm []byte) error {
	n := len(pcm) / 2
	f := make([]byte, 4*n)
	for i := range n {
		v := float32(int16(binary.LittleEndian.Uint16(pcm[2*i:]))) / 32768
		binary.LittleEndian.PutUint32(f[4*i:], math.Float32bits(v))
	}
	c.sentSmp.Add(int64(n))
	return c.write(websocket.BinaryMessage, f)
}

// closeStream waits until the output has not changed for peerQuiet (counted from the
// later of the last change and now), then sends END_OF_AUDIO.
func (c *wlConn) closeStream() error {
	from := time.Now()
	for {
		last := time.Unix(0, c.lastChange.Load())
		if last.Before(from) {
			last = from
		}
		wait := time.Until(last.Add(peerQuiet))
		if wait <= 0 {
			break
		}
		select {
		case <-c.done:
			return nil
		case <-time.After(min(wait, 100*time.Millisecond)):
		}
	}
	c.closeOnce.Do(func() { close(c.closing) })
	return c.write(websocket.BinaryMessage, []byte("END_OF_AUDIO"))
}

func (c *wlConn) relay() {
	defer close(c.done)
	defer close(c.out)
	defer c.ws.Close()
	defer c.trace.close()
	for {
		_, msg, err := c.ws.ReadMessage()
		if err == nil {
			c.trace.log(msg)
		}
		if err != nil {
			select {
			case <-c.closing: // END_OF_AUDIO sent: the server's close ends the stream
			default:
				if !closedNormally(err) {
					c.e = fmt.Errorf("whisperlive: %w", err)
				}
			}
			for _, e := range c.st.flush() {
				c.out <- e
			}
			c.out <- event{kind: evMetadata, acceptedSec: c.sentSec()}
			return
		}
		evs, stop, perr := c.st.parse(msg)
		if perr != nil {
			c.out <- event{kind: evError, err: perr.Error()}
			continue
		}
		if c.st.changed {
			c.lastChange.Store(time.Now().UnixNano())
		}
		for _, e := range evs {
			c.out <- e
		}
		if stop {
			for _, e := range c.st.flush() {
				c.out <- e
			}
			c.out <- event{kind: evMetadata, acceptedSec: c.sentSec()}
			return
		}
	}
}

// ---------------------------------------------------------------------------------
// WhisperLiveKit (QuentinFuxa/WhisperLiveKit, /asr endpoint, LocalAgreement policy)
//
// Handshake: none from the client; on connect the server sends {"type": "config",
// "useAudioWorklet": <server started with --pcm-input>, "mode": "full"}. With
// --pcm-input the audio is raw s16le 16 kHz mono in binary frames (what the bench
// has); without it the server pipes frames through ffmpeg as a container stream
// (WebM from browsers), so the adapter refuses such a server. End of stream: an
// empty binary frame; the server flushes, sends its last results and then
// {"type": "ready_to_stop"}.
//
// Results ("full" mode): each message is the whole current state, {"status", "lines":
// [{"speaker", "text", "start": "H:MM:SS.cc", "end"}, ...], "buffer_transcription",
// "remaining_time_transcription", ...}. Without diarization, lines hold the committed
// text (tokens LocalAgreement confirmed: they never change again), cut into lines at
// the silences its VAD reports (a silence is a line of speaker −2 without text; in
// "full" mode the server keeps all of them: --retention-seconds is unlimited unless
// set, and a pruned line would not be counted again here); the last line grows
// as tokens commit, and may span a whole talk when no silence is long enough to cut
// it. buffer_transcription is the tentative, not yet committed tail. So committed
// text is final as soon as it appears, which is also how WhisperLiveKit's own
// Deepgram-compatible endpoint (deepgram_compat.py) sends is_final results: for each
// newly committed word. Mapping:
//   - finals: for each text line (known by its start time), the words beyond those
//     already sent as finals for that line are one final, from the end of the
//     previous final of that line (its start for the first) to the line's end; a
//     line seen again adds nothing, so each committed word is counted once;
//   - partials: buffer_transcription when it is not empty and changed, from the end
//     of the committed text to where the tentative text reaches: the audio sent less
//     remaining_time_transcription (the server's lag), never before its start;
//   - at ready_to_stop (or the server's close) a buffer still shown becomes a final.
// ---------------------------------------------------------------------------------

type wlkLine struct {
	Speaker int       `json:"speaker"`
	Text    string    `json:"text"`
	Start   flexFloat `json:"start"`
	End     flexFloat `json:"end"`
}

type wlkMessage struct {
	Type           string    `json:"type"`
	UseAudioWorklt *bool     `json:"useAudioWorklet"`
	Status         string    `json:"status"`
	Error          string    `json:"error"`
	Lines          []wlkLine `json:"lines"`
	Buffer         string    `json:"buffer_transcription"`
	Remaining      float64   `json:"remaining_time_transcription"`
}

// wlkLineState is what was sent as finals of one line.
type wlkLineState struct {
	words int     // words sent as finals
	end   float64 // end of the last of them
}

type wlkState struct {
	lines     map[int64]*wlkLineState // by the line's start in centiseconds
	committed float64                 // end of the committed text so far
	tail      *event                  // the buffer shown last, as a final-to-be
	lastPart  string
	pcm       bool // config said useAudioWorklet (raw PCM input)
	config    bool // config seen
}

func newWLKState() *wlkState { return &wlkState{lines: map[int64]*wlkLineState{}} }

// maxWLKLines bounds the per-line memory (lines are cut at silences: a stream has a
// few per minute; old ones are forgotten first).
const maxWLKLines = 4096

// parse maps one message; sent is the audio sent so far in seconds. stop is true at
// ready_to_stop.
func (s *wlkState) parse(msg []byte, sent float64) (evs []event, stop bool, err error) {
	var m wlkMessage
	if err := json.Unmarshal(msg, &m); err != nil {
		return nil, false, fmt.Errorf("whisperlivekit: bad message: %w", err)
	}
	switch m.Type {
	case "config":
		s.config = true
		s.pcm = m.UseAudioWorklt != nil && *m.UseAudioWorklt
		return nil, false, nil
	case "ready_to_stop":
		return nil, true, nil
	case "error":
		return []event{{kind: evError, err: "whisperlivekit: " + m.Error}}, false, nil
	}
	if m.Error != "" || m.Status == "error" {
		return []event{{kind: evError, err: "whisperlivekit: " + m.Error}}, false, nil
	}
	if m.Lines == nil && m.Status == "" {
		return nil, false, nil
	}
	for _, l := range m.Lines {
		start, end := float64(l.Start), float64(l.End)
		words := strings.Fields(l.Text)
		if l.Speaker == -2 || len(words) == 0 || math.IsNaN(start) || math.IsNaN(end) {
			continue
		}
		key := int64(math.Round(start * 100))
		ls := s.lines[key]
		if ls == nil {
			if len(s.lines) >= maxWLKLines {
				clear(s.lines)
			}
			ls = &wlkLineState{end: start}
			s.lines[key] = ls
		}
		s.committed = max(s.committed, end)
		if len(words) <= ls.words {
			continue
		}
		prev, from := ls.words, ls.end
		ls.words, ls.end = len(words), max(end, ls.end)
		evs = append(evs, event{kind: evFinal, start: from, dur: max(end-from, 0), text: strings.Join(words[prev:], " ")})
	}
	s.tail = nil
	buf := strings.Join(strings.Fields(m.Buffer), " ")
	if buf == "" {
		s.lastPart = ""
		return evs, false, nil
	}
	t := event{kind: evPartial, start: s.committed, text: buf}
	if reach := sent - max(m.Remaining, 0); reach > t.start {
		t.dur = reach - t.start
	}
	tail := t
	tail.kind = evFinal
	s.tail = &tail
	if buf != s.lastPart {
		s.lastPart = buf
		evs = append(evs, t)
	}
	return evs, false, nil
}

// flush is the end of the stream: a buffer still shown as a final.
func (s *wlkState) flush() []event {
	t := s.tail
	s.tail = nil
	if t == nil {
		return nil
	}
	return []event{*t}
}

type wlkConn struct {
	peerWS
	st     *wlkState
	ending atomic.Bool
}

func whisperLiveKitDialer(url, traceDir string) dialer {
	return func(ctx context.Context) (conn, error) {
		ws, err := dialPeer(ctx, url)
		if err != nil {
			return nil, err
		}
		c := &wlkConn{peerWS: peerWS{ws: ws, out: make(chan event, 256), done: make(chan struct{})}, st: newWLKState()}
		_ = ws.SetReadDeadline(time.Now().Add(peerReadyTimeout))
		for !c.st.config {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				ws.Close()
				return nil, fmt.Errorf("whisperlivekit handshake: %w", err)
			}
			evs, _, err := c.st.parse(msg, 0)
			if err != nil {
				ws.Close()
				return nil, err
			}
			for _, e := range evs {
				if e.kind == evError {
					ws.Close()
					return nil, fmt.Errorf("%s", e.err)
				}
			}
		}
		if !c.st.pcm {
			ws.Close()
			return nil, fmt.Errorf("whisperlivekit: the server expects encoded audio (useAudioWorklet false): start it with --pcm-input")
		}
		_ = ws.SetReadDeadline(time.Time{})
		c.trace = openTrace(traceDir, "whisperlivekit")
		go c.relay()
		return c, nil
	}
}

func (c *wlkConn) send(pcm []byte) error {
	if len(pcm) == 0 {
		return nil // an empty frame would end the stream
	}
	c.sentSmp.Add(int64(len(pcm) / 2))
	return c.write(websocket.BinaryMessage, pcm)
}

func (c *wlkConn) closeStream() error {
	c.ending.Store(true)
	return c.write(websocket.BinaryMessage, []byte{})
}

func (c *wlkConn) relay() {
	defer close(c.done)
	defer close(c.out)
	defer c.ws.Close()
	end := func() {
		for _, e := range c.st.flush() {
			c.out <- e
		}
		c.out <- event{kind: evMetadata, acceptedSec: c.sentSec()}
	}
	defer c.trace.close()
	for {
		_, msg, err := c.ws.ReadMessage()
		if err == nil {
			c.trace.log(msg)
		}
		if err != nil {
			if !c.ending.Load() || !closedNormally(err) {
				c.e = fmt.Errorf("whisperlivekit: %w", err)
			}
			end()
			return
		}
		evs, stop, perr := c.st.parse(bytes.TrimSpace(msg), c.sentSec())
		if perr != nil {
			c.out <- event{kind: evError, err: perr.Error()}
			continue
		}
		for _, e := range evs {
			c.out <- e
		}
		if stop {
			end()
			c.wmu.Lock()
			_ = c.ws.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			c.wmu.Unlock()
			return
		}
	}
}

// maxPeerMessage bounds one peer message: WhisperLive resends at most its last segments
// and WhisperLiveKit its lines, a few kB each; a server that sends more is broken.
const maxPeerMessage = 4 << 20

// dialPeer opens a peer's WebSocket with maxPeerMessage as its read limit.
func dialPeer(ctx context.Context, url string) (*websocket.Conn, error) {
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(maxPeerMessage)
	return ws, nil
}
