package bench

import (
	"context"
	"fmt"

	"github.com/earshot-dev/earshot/gateway/client"
)

// event is one server message as the bench needs it, whatever the transport.
type event struct {
	kind        eventKind
	start, dur  float64 // seconds on the stream clock
	text        string
	words       []word
	acceptedSec float64 // metadata: audio the gateway accepted
	lang        string  // the result's detected_language (language=multi, detect_language)
	err         string  // error: code and description
}

type eventKind int

const (
	evPartial eventKind = iota
	evFinal
	evMetadata
	evError
	evOther
)

type word struct{ start, end float64 }

// conn is one benchmark stream. send is called from one goroutine; events is closed
// when the stream has ended, after which err says why (nil after a normal close).
type conn interface {
	send(pcm []byte) error
	closeStream() error
	events() <-chan event
	err() error
	abort()
}

// dialer opens a conn of 16 kHz mono linear16 audio.
type dialer func(ctx context.Context) (conn, error)

// wsDialer opens streams on a gateway's /v1/listen with gateway/client.
func wsDialer(url, model, language string, endpointing int, cred *Credentials) dialer {
	return func(ctx context.Context) (conn, error) {
		key, token, err := cred.Auth(ctx)
		if err != nil {
			return nil, err
		}
		c, err := client.Dial(ctx, url, client.Options{Key: key, Token: token, Model: model, Language: language,
			Encoding: "linear16", SampleRate: 16000, Channels: 1, InterimResults: true, EndpointingMs: endpointing})
		if err != nil {
			return nil, err
		}
		w := &wsConn{c: c, out: make(chan event, 256)}
		go w.relay()
		return w, nil
	}
}

type wsConn struct {
	c   *client.Conn
	out chan event
}

func (w *wsConn) send(pcm []byte) error { return w.c.SendAudio(pcm) }
func (w *wsConn) closeStream() error    { return w.c.CloseStream() }
func (w *wsConn) events() <-chan event  { return w.out }
func (w *wsConn) err() error            { return w.c.Err() }
func (w *wsConn) abort()                { _ = w.c.Close() }

func (w *wsConn) relay() {
	defer close(w.out)
	for ev := range w.c.Events() {
		e := event{kind: evOther}
		switch {
		case ev.Results != nil:
			r := ev.Results
			e.kind, e.start, e.dur, e.text = evPartial, r.Start, r.Duration, r.Transcript()
			e.lang = r.Channel.DetectedLanguage
			if r.IsFinal {
				e.kind = evFinal
			}
			if len(r.Channel.Alternatives) > 0 {
				for _, x := range r.Channel.Alternatives[0].Words {
					e.words = append(e.words, word{x.Start, x.End})
				}
			}
		case ev.Metadata != nil:
			e.kind, e.acceptedSec = evMetadata, ev.Metadata.Duration
		case ev.Error != nil:
			e.kind, e.err = evError, fmt.Sprintf("%s: %s", ev.Error.Code, ev.Error.Description)
		}
		w.out <- e
	}
}
