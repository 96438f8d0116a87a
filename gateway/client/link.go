package client

import (
	"context"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/gorilla/websocket"
)

// reconnectRules are the opt-in reconnect settings both stream kinds take (Options and
// TurnOptions: Reconnect, MaxReconnects, ReplayLimit).
type reconnectRules struct {
	on          bool
	max         int // redials after one loss; default 5
	replayLimit int // bytes of audio kept for a redial; default 8 MiB
}

func newReconnectRules(on bool, max, replayLimit int) reconnectRules {
	if max == 0 {
		max = 5
	}
	if replayLimit == 0 {
		replayLimit = 8 << 20
	}
	return reconnectRules{on: on, max: max, replayLimit: replayLimit}
}

// link is the connection machinery a /v1 Conn and a /v2 TurnConn share: the socket and
// its writes, and with Reconnect the audio kept since the last point the client has
// settled (a final, an EndOfTurn) and the redial that resumes the stream from there.
// E is the stream's event type; the owner sets read (and resumeQuery) before start.
type link[E any] struct {
	url    string
	hdr    http.Header
	dialer *websocket.Dialer
	rules  reconnectRules
	bps    float64 // bytes a second of the audio
	frame  int64   // bytes of one sample on every channel
	// runUpMs is how much audio before the settled point a resume sends again (/v1:
	// resumeRunUpMs, so the next word is decoded whole; /v2: 0, the open turn restarts
	// at the last EndOfTurn).
	runUpMs int64
	events  chan E
	// read reads one connection's messages onto events until it ends.
	read func(ws *websocket.Conn) error
	// resumeQuery adds the protocol's own parameters to a resume; nil: none. Called
	// with mu held.
	resumeQuery func(q url.Values)

	mu         sync.Mutex // guards ws writes and the fields below
	ws         *websocket.Conn
	requestID  string
	streamID   string  // request_id of the first connection: what a reconnect resumes
	replay     []byte  // audio sent since the settled point (with Reconnect)
	dropped    int64   // bytes of audio before replay[0]
	settledMs  int64   // stream ms of the last settled point
	offset     float64 // seconds added to event times of the current connection
	reconnects int     // connections resumed so far
	ending     bool    // CloseStream sent: a resumed connection sends it again after its replay
	closing    bool    // Close called: no reconnect
	err        error
	done       chan struct{}
}

// newLink is a link to u for audio of bps bytes a second at rate samples a second (0:
// 8 kHz, as bytesPerSecond takes it).
func newLink[E any](u string, hdr http.Header, d *websocket.Dialer, rules reconnectRules, bps float64, rate int) link[E] {
	if rate == 0 {
		rate = 8000
	}
	return link[E]{url: u, hdr: hdr, dialer: dialerOr(d), rules: rules, bps: bps,
		frame: int64(bps) / int64(max(rate, 1)), events: make(chan E, 256), done: make(chan struct{})}
}

// start dials the first connection and reads it.
func (l *link[E]) start(ctx context.Context) error {
	ws, err := l.dial(ctx, "")
	if err != nil {
		return err
	}
	l.ws = ws
	go l.readLoop(ws)
	return nil
}

func (l *link[E]) dial(ctx context.Context, query string) (*websocket.Conn, error) {
	u := l.url
	if query != "" {
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		u += sep + query
	}
	ws, reqID, err := dialServer(ctx, l.dialer, u, l.hdr)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.requestID = reqID
	if l.streamID == "" {
		l.streamID = l.requestID
	}
	l.mu.Unlock()
	return ws, nil
}

// RequestID is the server's id of the current connection's stream.
func (l *link[E]) RequestID() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.requestID
}

// Events delivers server messages; it is closed when the stream ends, after which
// Err says why.
func (l *link[E]) Events() <-chan E { return l.events }

// Err is nil after a normal close (1000), else a *CloseError or transport error.
// Valid once Events is closed.
func (l *link[E]) Err() error {
	<-l.done
	return l.err
}

// SendAudio sends one frame of audio in the declared encoding.
func (l *link[E]) SendAudio(b []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rules.on {
		if len(l.replay)+len(b) > l.rules.replayLimit {
			cut := min(len(l.replay)+len(b)-l.rules.replayLimit, len(l.replay))
			l.replay = l.replay[cut:]
			l.dropped += int64(cut)
		}
		l.replay = append(l.replay, b...)
	}
	err := l.ws.WriteMessage(websocket.BinaryMessage, b)
	if err != nil && l.rules.on && !l.closing && !l.ended() {
		return nil // kept for the redial, which resends it
	}
	return err
}

// ended reports whether the stream is over (Events closed).
func (l *link[E]) ended() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// sendText writes a control message; end marks CloseStream, which a resumed
// connection sends again after its replay (the server may have lost it with the
// connection).
func (l *link[E]) sendText(b []byte, end bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if end {
		l.ending = true
	}
	err := l.ws.WriteMessage(websocket.TextMessage, b)
	if err != nil && end && l.rules.on && !l.closing && !l.ended() {
		return nil // the redial sends it
	}
	return err
}

// Close drops the connection at once.
func (l *link[E]) Close() error {
	l.mu.Lock()
	l.closing = true
	ws := l.ws
	l.mu.Unlock()
	return ws.Close()
}

// timing is the current connection's offset on the stream's clock and whether it
// resumes an earlier one.
func (l *link[E]) timing() (offset float64, resumed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.offset, l.reconnects > 0
}

func (l *link[E]) readLoop(ws *websocket.Conn) {
	attempts := 0
	for {
		err, ce := streamEnd(l.read(ws))
		l.mu.Lock()
		retry := err != nil && l.rules.on && !l.closing && attempts < l.rules.max &&
			(ce == nil || ce.Code == 1011 || ce.Code == 1012 || ce.Code == 1013 || ce.Code == 1006)
		l.mu.Unlock()
		// A refused redial (the gateway is still restarting) is retried with backoff
		// until MaxReconnects attempts are spent, not given up after the first.
		for retry {
			attempts++
			nws, rerr := l.resume(attempts)
			if rerr == nil {
				ws = nws
				break
			}
			l.mu.Lock()
			retry = !l.closing && attempts < l.rules.max
			l.mu.Unlock()
		}
		if retry {
			continue
		}
		l.err = err
		close(l.events)
		close(l.done)
		return
	}
}

// resume redials with backoff and replays the audio since the settled point. The new
// connection names the stream it continues and where its audio starts (resume,
// resume_offset_ms), so the server bills the resent audio once.
func (l *link[E]) resume(attempt int) (*websocket.Conn, error) {
	time.Sleep(time.Duration(attempt*attempt) * 200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	l.mu.Lock()
	var query string
	if l.streamID != "" {
		offMs := l.dropped * 1000 / int64(l.bps)
		q := url.Values{"resume": {l.streamID}, "resume_offset_ms": {strconv.FormatInt(offMs, 10)}}
		if runUp := min(l.settledMs-offMs, l.runUpMs); runUp > 0 {
			q.Set("resume_runup_ms", strconv.FormatInt(runUp, 10))
		}
		if l.resumeQuery != nil {
			l.resumeQuery(q)
		}
		query = q.Encode()
	}
	l.mu.Unlock()
	ws, err := l.dial(ctx, query)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ws = ws
	l.offset = float64(l.dropped) / l.bps
	l.reconnects++
	replay := l.replay
	l.replay = nil
	for len(replay) > 0 {
		n := min(len(replay), 32<<10)
		if err := ws.WriteMessage(websocket.BinaryMessage, replay[:n]); err != nil {
			return nil, err
		}
		l.replay = append(l.replay, replay[:n]...)
		replay = replay[n:]
	}
	if l.ending {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"`+wire.ControlCloseStream+`"}`)); err != nil {
			return nil, err
		}
	}
	return ws, nil
}

// settle drops replay audio up to stream time end (seconds), less the run-up.
func (l *link[E]) settle(end float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.rules.on {
		return
	}
	// Cut on a whole millisecond (exact for rates that are multiples of 1 kHz), so the
	// resume offset a reconnect declares is exactly where its audio starts.
	bps := int64(l.bps)
	endMs := int64(math.Round(end * 1000))
	l.settledMs = max(l.settledMs, endMs)
	upTo := max(0, endMs-l.runUpMs) * bps / 1000
	if l.frame > 0 {
		upTo -= upTo % l.frame
	}
	cut := upTo - l.dropped
	if cut <= 0 {
		return
	}
	cut = min(cut, int64(len(l.replay)))
	l.replay = l.replay[cut:]
	l.dropped += cut
}
