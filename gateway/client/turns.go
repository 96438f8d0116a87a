package client

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"strconv"
	"time"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/gorilla/websocket"
)

// TurnOptions of a turn-taking stream (GET /v2/listen, Deepgram Flux's protocol).
// Zero values take the server's defaults.
type TurnOptions struct {
	Key   string // API key: "Authorization: Token <key>"
	Token string // signed token: "Authorization: Bearer <token>"

	Model             string  // an Earshot model, or flux-general-en / flux-general-multi
	Encoding          string  // linear16, linear32, mulaw, alaw
	SampleRate        int     // Hz
	EOTThreshold      float64 // 0.5–1.0; 0: the server's 0.7
	EagerEOTThreshold float64 // 0.3–0.9 (≤ EOTThreshold); 0: no EagerEndOfTurn/TurnResumed
	EOTTimeoutMs      int     // 500–60000; 0: the server's 5000
	Keyterms          []string
	LanguageHint      string     // a multilingual model's language (none: detect)
	Extra             url.Values // any other query parameters

	// Reconnect redials after a close that invites it (1011, 1012, 1013 or a dropped
	// connection), also after CloseStream (sent again), and resends the audio since the
	// last EndOfTurn: the open turn starts again on the new connection, and the resent
	// audio is billed once (resume, resume_offset_ms). The events go on as one stream:
	// turn_index keeps counting (resume_turn_index), times stay relative to the start
	// of the whole stream, no turn starts or ends twice, and the new connection's
	// Connected is not delivered (RequestID changes). An Error message before such a
	// close is still delivered. Needs Encoding and SampleRate.
	Reconnect     bool
	MaxReconnects int // default 5
	// ReplayLimit bounds the audio kept for a reconnect, in bytes; default 8 MiB.
	ReplayLimit int
	Dialer      *websocket.Dialer
}

// TurnEvent is one message of a turn-taking stream; the typed field of its Type is set.
type TurnEvent struct {
	Type             string
	Raw              json.RawMessage
	Connected        *wire.Connected
	TurnInfo         *wire.TurnInfo
	ConfigureSuccess *wire.ConfigureSuccess
	ConfigureFailure *wire.ConfigureFailure
	Error            *wire.FluxError
}

// TurnConfig is a Configure message: nil fields keep their value.
type TurnConfig struct {
	EOTThreshold      *float64 `json:"eot_threshold,omitempty"`
	EagerEOTThreshold *float64 `json:"eager_eot_threshold,omitempty"`
	EOTTimeoutMs      *int     `json:"eot_timeout_ms,omitempty"`
}

// TurnConn is one turn-taking stream. SendAudio and the control methods may be called
// from any goroutine; Events must be drained. With TurnOptions.Reconnect it resumes a
// lost connection.
type TurnConn struct {
	link[TurnEvent]
	// Turns as the client has seen them, guarded by mu: what a resume continues from.
	ended int // turns ended (the next turn's turn_index)
	open  int // turn_index of the turn whose StartOfTurn was delivered; -1: none
}

// ListenV2 opens a turn-taking stream. base is the server ("ws://host:port"; a path
// of /v2/listen is added when absent; http/https are accepted too).
func ListenV2(ctx context.Context, base string, o TurnOptions) (*TurnConn, error) {
	u, q, err := streamURL(base, "/v2/listen", o.Extra, "/v1/listen")
	if err != nil {
		return nil, err
	}
	set := setter(q)
	ftoa := func(f float64) string {
		if f == 0 {
			return ""
		}
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	set("model", o.Model)
	set("encoding", o.Encoding)
	if o.SampleRate > 0 {
		q.Set("sample_rate", strconv.Itoa(o.SampleRate))
	}
	set("eot_threshold", ftoa(o.EOTThreshold))
	set("eager_eot_threshold", ftoa(o.EagerEOTThreshold))
	if o.EOTTimeoutMs > 0 {
		q.Set("eot_timeout_ms", strconv.Itoa(o.EOTTimeoutMs))
	}
	setKeyterms(q, o.Keyterms)
	set("language_hint", o.LanguageHint)
	u.RawQuery = q.Encode()
	c := &TurnConn{open: -1, link: newLink[TurnEvent](u.String(), authHeader(o.Key, o.Token), o.Dialer,
		newReconnectRules(o.Reconnect, o.MaxReconnects, o.ReplayLimit), bytesPerSecond(o.Encoding, o.SampleRate, 1), o.SampleRate)}
	c.read = c.readConn
	c.resumeQuery = func(q url.Values) {
		if c.ended > 0 {
			q.Set("resume_turn_index", strconv.Itoa(c.ended))
		}
	}
	if err := c.start(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *TurnConn) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.sendText(b, false)
}

// ForceEndTurn ends the current turn now: an EndOfTurn with trigger "manual" follows.
func (c *TurnConn) ForceEndTurn() error {
	return c.send(map[string]string{"type": wire.ControlForceEndTurn})
}

// Configure changes the end-of-turn settings; ConfigureSuccess or ConfigureFailure
// answers on Events.
func (c *TurnConn) Configure(t TurnConfig) error {
	return c.send(struct {
		Type       string     `json:"type"`
		Thresholds TurnConfig `json:"thresholds"`
	}{wire.ControlConfigure, t})
}

// KeepAlive keeps a quiet stream open.
func (c *TurnConn) KeepAlive() error { return c.send(map[string]string{"type": wire.ControlKeepAlive}) }

// CloseStream asks the server to finish: an open turn ends (trigger "close"), then
// the server closes.
func (c *TurnConn) CloseStream() error {
	return c.sendText([]byte(`{"type":"`+wire.ControlCloseStream+`"}`), true)
}

// readConn reads one connection's messages onto events until it ends.
func (c *TurnConn) readConn(ws *websocket.Conn) error {
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			return err
		}
		ev := TurnEvent{Raw: b}
		var head struct{ Type string }
		if json.Unmarshal(b, &head) != nil {
			continue
		}
		ev.Type = head.Type
		off, resumed := c.timing()
		switch head.Type {
		case wire.TypeConnected:
			if resumed {
				continue // the stream goes on: one Connected
			}
			ev.Connected = decode[wire.Connected](b)
		case wire.TypeTurnInfo:
			ev.TurnInfo = decode[wire.TurnInfo](b)
			if !c.turn(ev.TurnInfo, off) {
				continue
			}
			if off != 0 {
				ev.Raw, _ = json.Marshal(ev.TurnInfo)
			}
		case wire.TypeConfigureSuccess:
			ev.ConfigureSuccess = decode[wire.ConfigureSuccess](b)
		case wire.TypeConfigureFailure:
			ev.ConfigureFailure = decode[wire.ConfigureFailure](b)
		case wire.TypeError:
			ev.Error = decode[wire.FluxError](b)
		}
		c.events <- ev
	}
}

// turn puts a TurnInfo on the whole stream's clock (off: the connection's offset in
// seconds) and keeps the turns the client has seen; false: the event repeats one it
// has (a resumed connection starts the open turn again). An EndOfTurn settles the
// audio under it: a reconnect resends only what follows.
func (c *TurnConn) turn(t *wire.TurnInfo, off float64) bool {
	if off != 0 {
		t.AudioWindowStart = round3(t.AudioWindowStart + off)
		t.AudioWindowEnd = round3(t.AudioWindowEnd + off)
		for i := range t.Words {
			t.Words[i].Start += off
			t.Words[i].End += off
		}
	}
	c.mu.Lock()
	switch t.Event {
	case bus.TurnStart:
		if t.TurnIndex == c.open || t.TurnIndex < c.ended {
			c.mu.Unlock()
			return false
		}
		c.open = t.TurnIndex
	case bus.TurnEnd:
		if t.TurnIndex < c.ended {
			c.mu.Unlock()
			return false
		}
		c.open, c.ended = -1, t.TurnIndex+1
	}
	c.mu.Unlock()
	if t.Event == bus.TurnEnd {
		c.settle(t.AudioWindowEnd)
	}
	return true
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// decode is the message b as a T; what does not decode stays zero.
func decode[T any](b []byte) *T {
	v := new(T)
	_ = json.Unmarshal(b, v)
	return v
}

// StreamTurnsFile streams a WAV file (or raw audio in o's declared encoding; path "-"
// reads stdin, mono) to the server's /v2/listen and writes the turn events to out with
// their timing: the wall-clock second each arrived, the turn, its audio window, the
// end-of-turn confidence and the transcript; an Update rewrites its line in place. With
// fo.Realtime, EndOfTurn also shows how long after the turn's audio was sent it came.
// With fo.JSON every message is one JSON line. It returns after the server's close.
func StreamTurnsFile(ctx context.Context, url string, o TurnOptions, path string, fo FileOptions, out io.Writer) error {
	lo := Options{Encoding: o.Encoding, SampleRate: o.SampleRate}
	audio, err := loadAudio(path, &lo)
	if err != nil {
		return err
	}
	if lo.Channels > 1 {
		if lo.Encoding != "linear16" {
			return errors.New("earshot: turn-taking streams are mono: mix the audio down first")
		}
		audio = downmix16(audio, lo.Channels)
	}
	o.Encoding, o.SampleRate = lo.Encoding, lo.SampleRate
	if fo.ChunkMs <= 0 {
		fo.ChunkMs = 100
	}
	c, err := ListenV2(ctx, url, o)
	if err != nil {
		return err
	}
	defer c.Close()
	start := time.Now()
	chunk := chunkBytes(bytesPerSecond(lo.Encoding, lo.SampleRate, 1), fo.ChunkMs, o.SampleRate)
	sendErr := sendPaced(ctx, c, audio, chunk, fo, start)
	w := bufio.NewWriter(out)
	defer w.Flush()
	if err := relay(ctx, sendErr, c.Events(), w, fo.JSON, o.Reconnect, func(ev TurnEvent, inPlace bool) bool {
		defer w.Flush()
		at := time.Since(start).Seconds()
		switch {
		case ev.TurnInfo != nil:
			line := formatTurn(at, ev.TurnInfo, fo.Realtime)
			if ev.TurnInfo.Event == "Update" {
				fmt.Fprintf(w, "\r\033[K%s", line)
				return true
			}
			fmt.Fprintf(w, "\r\033[K%s\n", line)
			return false
		case ev.ConfigureSuccess != nil, ev.ConfigureFailure != nil:
			fmt.Fprintf(w, "\r\033[K[%7.2fs] %s\n", at, ev.Raw)
			return false
		}
		return inPlace
	}); err != nil {
		return err
	}
	return c.Err()
}

// formatTurn is one line of StreamTurnsFile's text output.
func formatTurn(at float64, t *wire.TurnInfo, realtime bool) string {
	s := fmt.Sprintf("[%7.2fs] turn %d %-14s %6.2f–%6.2fs eot %.2f", at, t.TurnIndex, t.Event,
		t.AudioWindowStart, t.AudioWindowEnd, t.EndOfTurnConfidence)
	if t.Trigger != "" {
		s += " (" + t.Trigger + ")"
	}
	if realtime && (t.Event == "EndOfTurn" || t.Event == "EagerEndOfTurn") {
		s += fmt.Sprintf(" +%.2fs", at-t.AudioWindowEnd)
	}
	if t.Transcript != "" {
		s += "  " + strconv.Quote(t.Transcript)
	}
	return s
}

// downmix16 averages interleaved linear16 channels into one.
func downmix16(b []byte, channels int) []byte {
	frames := len(b) / (2 * channels)
	out := make([]byte, 2*frames)
	for i := 0; i < frames; i++ {
		sum := 0
		for ch := 0; ch < channels; ch++ {
			sum += int(int16(binary.LittleEndian.Uint16(b[2*(i*channels+ch):])))
		}
		binary.LittleEndian.PutUint16(out[2*i:], uint16(int16(sum/channels)))
	}
	return out
}
