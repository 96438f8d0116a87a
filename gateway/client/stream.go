package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/earshot-dev/earshot/ingest"
)

// FileOptions control StreamFile.
type FileOptions struct {
	Realtime bool // pace the audio at real time (like a microphone); else as fast as allowed
	JSON     bool // print every server message as one JSON line instead of text
	ChunkMs  int  // audio per frame; default 100
}

// StreamFile streams a WAV file (or raw audio in o's declared encoding; path "-" reads
// stdin) to the server at url and writes to out: the live partial on one line
// rewritten in place with \r, each final on its own line; or with JSON every message.
// It returns after the server's Metadata and close, or the first error.
func StreamFile(ctx context.Context, url string, o Options, path string, fo FileOptions, out io.Writer) error {
	audio, err := loadAudio(path, &o)
	if err != nil {
		return err
	}
	if fo.ChunkMs <= 0 {
		fo.ChunkMs = 100
	}
	c, err := Dial(ctx, url, o)
	if err != nil {
		return err
	}
	defer c.Close()
	chunk := int(c.bytesPerSecond()) * fo.ChunkMs / 1000
	frame := int(c.bytesPerSecond()) / max(o.SampleRate, 1)
	chunk -= chunk % max(frame, 1)
	sendErr := make(chan error, 1)
	go func() {
		start := time.Now()
		for i := 0; i*chunk < len(audio); i++ {
			if fo.Realtime {
				due := start.Add(time.Duration(i*fo.ChunkMs) * time.Millisecond)
				select {
				case <-time.After(time.Until(due)):
				case <-ctx.Done():
					sendErr <- ctx.Err()
					return
				}
			}
			b := audio[i*chunk : min((i+1)*chunk, len(audio))]
			if err := c.SendAudio(b); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- c.CloseStream()
	}()
	w := bufio.NewWriter(out)
	defer w.Flush()
	partial := false
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-sendErr:
			if err != nil {
				return fmt.Errorf("earshot: send: %w", err)
			}
			sendErr = nil
		case ev, ok := <-c.Events():
			if !ok {
				if partial {
					fmt.Fprintln(w)
				}
				return c.Err()
			}
			if fo.JSON {
				w.Write(ev.Raw)
				w.WriteByte('\n')
				w.Flush()
				if ev.Error != nil {
					return fmt.Errorf("earshot: %s: %s", ev.Error.Code, ev.Error.Description)
				}
				continue
			}
			switch {
			case ev.Results != nil:
				t := ev.Results.Transcript()
				if ev.Results.IsFinal {
					if t != "" {
						fmt.Fprintf(w, "\r\033[K%s\n", t)
					} else if partial {
						fmt.Fprint(w, "\r\033[K")
					}
					partial = false
				} else {
					fmt.Fprintf(w, "\r\033[K%s", t)
					partial = true
				}
				w.Flush()
			case ev.Error != nil:
				return fmt.Errorf("earshot: %s: %s", ev.Error.Code, ev.Error.Description)
			}
		}
	}
}

// loadAudio reads path ("-" = stdin). A WAV file sets o's format and becomes
// linear16; anything else is sent as raw audio in o's declared encoding.
func loadAudio(path string, o *Options) ([]byte, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	if len(data) < 12 || string(data[:4]) != "RIFF" || string(data[8:12]) != "WAVE" {
		if o.Encoding == "" || (o.SampleRate == 0 && o.Encoding != "mulaw" && o.Encoding != "alaw") {
			return nil, errors.New("earshot: not a WAV file: give the raw audio's encoding and sample rate")
		}
		return data, nil
	}
	f, chans, err := ingest.ReadWAV(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	o.Encoding, o.SampleRate, o.Channels = "linear16", f.SampleRate, len(chans)
	n := 0
	if len(chans) > 0 {
		n = len(chans[0])
	}
	b := make([]byte, 2*n*len(chans))
	for i := 0; i < n; i++ {
		for ch := range chans {
			v := math.Round(float64(chans[ch][i]) * 32767)
			v = math.Max(-32768, math.Min(32767, v))
			binary.LittleEndian.PutUint16(b[2*(i*len(chans)+ch):], uint16(int16(v)))
		}
	}
	return b, nil
}
