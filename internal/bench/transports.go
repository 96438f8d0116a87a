package bench

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/earshot-dev/earshot/ingest/remote"
	"github.com/earshot-dev/earshot/internal/bus"
)

// UseWebSocket makes cfg stream through a gateway's public /v1/listen (url, ws:// or
// wss://) with cred, and read billed audio from its GET /v1/usage. c.Language is set
// first.
func (c *Config) UseWebSocket(url, model string, cred *Credentials) {
	c.dial = wsDialer(url, model, c.Language, c.EndpointingMs, cred)
	c.usage = cred.UsageMs
	c.Target = url
}

// UseBus makes cfg open sessions straight on transcriber workers over NATS with an
// remote.Client, as a gateway would, skipping the WebSocket edge, keys and billing
// (for hosts without Redis: the GPU benchmark). Billed audio is then unavailable.
func (c *Config) UseBus(cl *remote.Client, model, target string) {
	c.dial = func(ctx context.Context) (conn, error) {
		s, err := cl.Open(ctx, bus.SessionRequest{Tenant: "bench", Model: model, Channels: 1,
			Options: bus.StreamOptions{InterimResults: true, Language: c.Language, EndpointingMs: c.EndpointingMs}})
		if err != nil {
			return nil, err
		}
		b := &busConn{s: s, out: make(chan event, 256), done: make(chan struct{})}
		go b.relay()
		return b, nil
	}
	c.usage = nil
	c.Target = target
}

type busConn struct {
	s    *remote.Session
	out  chan event
	done chan struct{}
	e    error
	sent atomic.Int64 // samples sent
}

func (b *busConn) send(pcm []byte) error {
	s := make([]int16, len(pcm)/2)
	for i := range s {
		s[i] = int16(uint16(pcm[2*i]) | uint16(pcm[2*i+1])<<8)
	}
	b.sent.Add(int64(len(s)))
	return b.s.Send(s, 0, 0)
}

func (b *busConn) closeStream() error   { return b.s.Send(nil, 0, bus.FlagEnd) }
func (b *busConn) events() <-chan event { return b.out }
func (b *busConn) err() error           { <-b.done; return b.e }
func (b *busConn) abort()               { b.s.Close() }

func (b *busConn) relay() {
	defer close(b.done)
	defer close(b.out)
	defer b.s.Close()
	for r := range b.s.Results() {
		e := event{kind: evOther, start: r.Start, dur: r.Duration, text: r.Text}
		for _, w := range r.Words {
			e.words = append(e.words, word{w.Start, w.End})
		}
		switch r.Type {
		case bus.ResultPartial:
			e.kind = evPartial
		case bus.ResultFinal:
			e.kind = evFinal
		case bus.ResultError:
			e.kind, e.err = evError, fmt.Sprintf("%s: %s", r.Code, r.Message)
			b.e = fmt.Errorf("worker: %s", e.err)
		case bus.ResultClosed:
			// The worker has emitted everything: report what it saw as accepted.
			b.out <- event{kind: evMetadata, acceptedSec: float64(b.sent.Load()) / bus.SampleRate}
			return
		}
		b.out <- e
	}
}
