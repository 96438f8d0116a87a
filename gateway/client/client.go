package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/gorilla/websocket"
)

// Options of a stream. Key or Token authenticates; the rest become query parameters.
type Options struct {
	Key   string // API key: "Authorization: Token <key>"
	Token string // signed token from /v1/auth/grant: "Authorization: Bearer <token>"

	Model          string
	Language       string
	Encoding       string // linear16, linear32/float32, mulaw, alaw
	SampleRate     int
	Channels       int
	Multichannel   bool
	InterimResults bool
	VADEvents      bool
	EndpointingMs  int // 0: server default; -1: endpointing=false
	UtteranceEndMs int
	Keyterms       []string   // keyterm=, once per term: names and jargon to favour (docs/api.md)
	Extra          url.Values // any other query parameters

	// Reconnect redials after a close that invites it (1011, 1012, 1013 or a dropped
	// connection), also after CloseStream (sent again), and resends the audio not yet
	// covered by a final; result times stay relative to the start of the whole stream.
	// Needs Encoding and SampleRate.
	Reconnect     bool
	MaxReconnects int // default 5
	// ReplayLimit bounds the audio kept for a reconnect, in bytes; default 8 MiB.
	ReplayLimit int
	Dialer      *websocket.Dialer
}

// Event is one server message. Exactly one of the typed fields is set, after Type.
type Event struct {
	Type          string
	Raw           json.RawMessage
	Results       *wire.Results
	SpeechStarted *wire.SpeechStarted
	UtteranceEnd  *wire.UtteranceEnd
	Metadata      *wire.Metadata
	Error         *wire.Error
}

// DialError is an HTTP refusal of the stream (bad parameters, auth, limits, capacity).
type DialError struct {
	Status int
	wire.HTTPError
}

func (e *DialError) Error() string {
	return fmt.Sprintf("earshot: HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// CloseError is how the server ended a stream other than normally.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("earshot: stream closed %d %s", e.Code, e.Reason)
}

// Conn is one live stream. SendAudio, Finalize, KeepAlive and CloseStream may be
// called from any goroutine; Events must be drained.
type Conn struct {
	link[Event]
	opts Options
}

// Dial opens a stream. base is the server, "ws://host:port" or "wss://…" (a path of
// /v1/listen is added when absent; http/https are accepted too).
func Dial(ctx context.Context, base string, o Options) (*Conn, error) {
	u, q, err := streamURL(base, "/v1/listen", o.Extra)
	if err != nil {
		return nil, err
	}
	set := setter(q)
	itoa := func(n int) string {
		if n == 0 {
			return ""
		}
		return strconv.Itoa(n)
	}
	set("model", o.Model)
	set("language", o.Language)
	set("encoding", o.Encoding)
	set("sample_rate", itoa(o.SampleRate))
	set("channels", itoa(o.Channels))
	if o.Multichannel {
		q.Set("multichannel", "true")
	}
	if o.InterimResults {
		q.Set("interim_results", "true")
	}
	if o.VADEvents {
		q.Set("vad_events", "true")
	}
	if o.EndpointingMs < 0 {
		q.Set("endpointing", "false")
	} else {
		set("endpointing", itoa(o.EndpointingMs))
	}
	set("utterance_end_ms", itoa(o.UtteranceEndMs))
	setKeyterms(q, o.Keyterms)
	u.RawQuery = q.Encode()
	rules := newReconnectRules(o.Reconnect, o.MaxReconnects, o.ReplayLimit)
	o.MaxReconnects, o.ReplayLimit = rules.max, rules.replayLimit
	c := &Conn{opts: o, link: newLink[Event](u.String(), authHeader(o.Key, o.Token), o.Dialer, rules,
		bytesPerSecond(o.Encoding, o.SampleRate, o.Channels), o.SampleRate)}
	c.runUpMs = resumeRunUpMs
	c.read = c.readConn
	if err := c.start(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// streamURL is base as a WebSocket URL ("ws://host:port", "wss://…"; http and https
// are accepted too) with path set when base has none or names one of also, and the
// query of base with extra added.
func streamURL(base, path string, extra url.Values, also ...string) (*url.URL, url.Values, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, nil, fmt.Errorf("earshot: url %q: %w", base, err)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	}
	if u.Path == "" || u.Path == "/" || slices.Contains(also, u.Path) {
		u.Path = path
	}
	q := u.Query()
	for k, vs := range extra {
		q[k] = vs
	}
	return u, q, nil
}

// setter sets a query parameter when its value is not empty.
func setter(q url.Values) func(k, v string) {
	return func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
}

// setKeyterms adds keyterm=, once per term.
func setKeyterms(q url.Values, terms []string) {
	if len(terms) > 0 {
		q["keyterm"] = append([]string(nil), terms...)
	}
}

// authHeader authenticates with a signed token ("Bearer") or else an API key ("Token").
func authHeader(key, token string) http.Header {
	hdr := http.Header{}
	switch {
	case token != "":
		hdr.Set("Authorization", "Bearer "+token)
	case key != "":
		hdr.Set("Authorization", "Token "+key)
	}
	return hdr
}

// dialerOr is d, or a dialer with a 10 s handshake timeout when d is nil.
func dialerOr(d *websocket.Dialer) *websocket.Dialer {
	if d == nil {
		d = &websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	}
	return d
}

// dialServer dials u; an HTTP refusal is a *DialError. It returns the request id.
func dialServer(ctx context.Context, d *websocket.Dialer, u string, hdr http.Header) (*websocket.Conn, string, error) {
	ws, resp, err := d.DialContext(ctx, u, hdr)
	if err != nil {
		if resp != nil {
			defer resp.Body.Close()
			de := &DialError{Status: resp.StatusCode}
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			if json.Unmarshal(b, &de.HTTPError) != nil || de.Code == "" {
				de.Message = strings.TrimSpace(string(b))
			}
			return nil, "", de
		}
		return nil, "", fmt.Errorf("earshot: dial: %w", err)
	}
	return ws, resp.Header.Get("dg-request-id"), nil
}

// streamEnd maps the error that ended a connection's reads to what Err reports: nil
// for a normal close (1000), a *CloseError for another close, else err itself. ce is
// the close frame, nil when the connection dropped without one.
func streamEnd(err error) (_ error, ce *websocket.CloseError) {
	if !errors.As(err, &ce) {
		return err, nil
	}
	if ce.Code == websocket.CloseNormalClosure {
		return nil, ce
	}
	return &CloseError{Code: ce.Code, Reason: ce.Text}, ce
}

func (c *Conn) control(typ string) error {
	return c.sendText([]byte(`{"type":"`+typ+`"}`), typ == wire.ControlCloseStream)
}

// Finalize asks for finals of everything sent so far.
func (c *Conn) Finalize() error { return c.control(wire.ControlFinalize) }

// KeepAlive keeps an idle stream open (the server closes after 10 s without audio).
func (c *Conn) KeepAlive() error { return c.control(wire.ControlKeepAlive) }

// CloseStream asks the server to finish: the last finals and a Metadata follow, then
// the close.
func (c *Conn) CloseStream() error { return c.control(wire.ControlCloseStream) }

// resumeRunUpMs is the audio before the last final's end a reconnect resends.
const resumeRunUpMs = 500

// bytesPerSecond of audio in encoding (8 kHz when rate is 0, mono when channels is 0).
func bytesPerSecond(encoding string, rate, channels int) float64 {
	bps := 2
	switch strings.ToLower(encoding) {
	case "linear32", "float32", "pcm_f32le":
		bps = 4
	case "mulaw", "alaw", "ulaw", "pcmu", "pcma":
		bps = 1
	}
	if rate == 0 {
		rate = 8000
	}
	return float64(bps * max(channels, 1) * rate)
}

func (c *Conn) readConn(ws *websocket.Conn) error {
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			return err
		}
		ev := Event{Raw: b}
		var head struct{ Type string }
		if json.Unmarshal(b, &head) != nil {
			continue
		}
		ev.Type = head.Type
		off, _ := c.timing()
		switch head.Type {
		case wire.TypeResults:
			ev.Results = new(wire.Results)
			if json.Unmarshal(b, ev.Results) != nil {
				continue
			}
			if off != 0 {
				ev.Results.Start += off
				for i := range ev.Results.Channel.Alternatives {
					ws := ev.Results.Channel.Alternatives[i].Words
					for j := range ws {
						ws[j].Start += off
						ws[j].End += off
					}
				}
				ev.Raw, _ = json.Marshal(ev.Results)
			}
			if ev.Results.IsFinal {
				c.settle(ev.Results.Start + ev.Results.Duration)
			}
		case wire.TypeSpeechStarted:
			ev.SpeechStarted = new(wire.SpeechStarted)
			_ = json.Unmarshal(b, ev.SpeechStarted)
			ev.SpeechStarted.Timestamp += off
		case wire.TypeUtteranceEnd:
			ev.UtteranceEnd = new(wire.UtteranceEnd)
			_ = json.Unmarshal(b, ev.UtteranceEnd)
			ev.UtteranceEnd.LastWordEnd += off
		case wire.TypeMetadata:
			ev.Metadata = new(wire.Metadata)
			_ = json.Unmarshal(b, ev.Metadata)
		case wire.TypeError:
			ev.Error = new(wire.Error)
			_ = json.Unmarshal(b, ev.Error)
		}
		c.events <- ev
	}
}
