package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	// connection) and resends the audio not yet covered by a final; result times stay
	// relative to the start of the whole stream. Needs Encoding and SampleRate.
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
	url    string
	hdr    http.Header
	opts   Options
	dialer *websocket.Dialer
	events chan Event

	mu        sync.Mutex // guards ws writes and the fields below
	ws        *websocket.Conn
	requestID string
	streamID  string  // request_id of the first connection: what a reconnect resumes
	replay    []byte  // audio sent since the last final (with Reconnect)
	dropped   int64   // bytes of audio before replay[0]
	finalMs   int64   // stream ms where the last final ended
	offset    float64 // seconds added to result times of the current connection
	closing   bool
	err       error
	done      chan struct{}
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
	if o.MaxReconnects == 0 {
		o.MaxReconnects = 5
	}
	if o.ReplayLimit == 0 {
		o.ReplayLimit = 8 << 20
	}
	c := &Conn{url: u.String(), hdr: authHeader(o.Key, o.Token), opts: o, dialer: dialerOr(o.Dialer),
		events: make(chan Event, 256), done: make(chan struct{})}
	ws, err := c.dial(ctx, "")
	if err != nil {
		return nil, err
	}
	c.ws = ws
	go c.readLoop(ws)
	return c, nil
}

func (c *Conn) dial(ctx context.Context, query string) (*websocket.Conn, error) {
	u := c.url
	if query != "" {
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		u += sep + query
	}
	ws, reqID, err := dialServer(ctx, c.dialer, u, c.hdr)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.requestID = reqID
	if c.streamID == "" {
		c.streamID = c.requestID
	}
	c.mu.Unlock()
	return ws, nil
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

// RequestID is the server's id of the current connection's stream.
func (c *Conn) RequestID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requestID
}

// Events delivers server messages; it is closed when the stream ends, after which
// Err says why.
func (c *Conn) Events() <-chan Event { return c.events }

// Err is nil after a normal close (1000), else a *CloseError or transport error.
// Valid once Events is closed.
func (c *Conn) Err() error {
	<-c.done
	return c.err
}

// SendAudio sends one frame of audio in the declared encoding.
func (c *Conn) SendAudio(b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.opts.Reconnect {
		if len(c.replay)+len(b) > c.opts.ReplayLimit {
			cut := len(c.replay) + len(b) - c.opts.ReplayLimit
			cut = min(cut, len(c.replay))
			c.replay = c.replay[cut:]
			c.dropped += int64(cut)
		}
		c.replay = append(c.replay, b...)
	}
	return c.ws.WriteMessage(websocket.BinaryMessage, b)
}

func (c *Conn) control(typ string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if typ == wire.ControlCloseStream {
		c.closing = true
	}
	return c.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"`+typ+`"}`))
}

// Finalize asks for finals of everything sent so far.
func (c *Conn) Finalize() error { return c.control(wire.ControlFinalize) }

// KeepAlive keeps an idle stream open (the server closes after 10 s without audio).
func (c *Conn) KeepAlive() error { return c.control(wire.ControlKeepAlive) }

// CloseStream asks the server to finish: the last finals and a Metadata follow, then
// the close.
func (c *Conn) CloseStream() error { return c.control(wire.ControlCloseStream) }

// Close drops the connection at once.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.closing = true
	ws := c.ws
	c.mu.Unlock()
	return ws.Close()
}

func (c *Conn) readLoop(ws *websocket.Conn) {
	reconnects := 0
	for {
		err, ce := streamEnd(c.readConn(ws))
		c.mu.Lock()
		retry := err != nil && c.opts.Reconnect && !c.closing && reconnects < c.opts.MaxReconnects &&
			(ce == nil || ce.Code == 1011 || ce.Code == 1012 || ce.Code == 1013 || ce.Code == 1006)
		c.mu.Unlock()
		// A refused redial (the gateway is still restarting) is retried with backoff
		// until MaxReconnects attempts are spent, not given up after the first.
		for retry {
			reconnects++
			nws, rerr := c.resume(reconnects)
			if rerr == nil {
				ws = nws
				break
			}
			c.mu.Lock()
			retry = !c.closing && reconnects < c.opts.MaxReconnects
			c.mu.Unlock()
		}
		if retry {
			continue
		}
		c.err = err
		close(c.events)
		close(c.done)
		return
	}
}

// resume redials with backoff and replays the audio since the last final. The new
// connection names the stream it continues and where its audio starts (resume,
// resume_offset_ms), so the server bills the resent audio once.
func (c *Conn) resume(attempt int) (*websocket.Conn, error) {
	time.Sleep(time.Duration(attempt*attempt) * 200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c.mu.Lock()
	var query string
	if c.streamID != "" {
		offMs := c.dropped * 1000 / int64(c.bytesPerSecond())
		q := url.Values{"resume": {c.streamID}, "resume_offset_ms": {strconv.FormatInt(offMs, 10)}}
		if runUp := min(c.finalMs-offMs, resumeRunUpMs); runUp > 0 {
			q.Set("resume_runup_ms", strconv.FormatInt(runUp, 10))
		}
		query = q.Encode()
	}
	c.mu.Unlock()
	ws, err := c.dial(ctx, query)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ws = ws
	c.offset = float64(c.dropped) / c.bytesPerSecond()
	replay := c.replay
	c.replay = nil
	for len(replay) > 0 {
		n := min(len(replay), 32<<10)
		if err := ws.WriteMessage(websocket.BinaryMessage, replay[:n]); err != nil {
			return nil, err
		}
		c.replay = append(c.replay, replay[:n]...)
		replay = replay[n:]
	}
	return ws, nil
}

// resumeRunUpMs is the audio before the last final's end a reconnect resends.
const resumeRunUpMs = 500

func (c *Conn) bytesPerSecond() float64 {
	return bytesPerSecond(c.opts.Encoding, c.opts.SampleRate, c.opts.Channels)
}

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
		c.mu.Lock()
		off := c.offset
		c.mu.Unlock()
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

// settle drops replay audio up to stream time end (seconds).
func (c *Conn) settle(end float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.opts.Reconnect {
		return
	}
	// Cut on a whole millisecond (exact for rates that are multiples of 1 kHz), so the
	// resume offset a reconnect declares is exactly where its audio starts.
	bps := int64(c.bytesPerSecond())
	frame := bps / int64(max(c.opts.SampleRate, 1))
	// Half a second before the final's end stays as run-up for a resume: the next word
	// is then decoded whole (resume_runup_ms), not cut at its first sound.
	endMs := int64(math.Round(end * 1000))
	c.finalMs = max(c.finalMs, endMs)
	upTo := max(0, endMs-resumeRunUpMs) * bps / 1000
	if frame > 0 {
		upTo -= upTo % frame
	}
	cut := upTo - c.dropped
	if cut <= 0 {
		return
	}
	cut = min(cut, int64(len(c.replay)))
	c.replay = c.replay[cut:]
	c.dropped += cut
}
