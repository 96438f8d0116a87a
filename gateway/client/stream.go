package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/earshot-dev/earshot/gateway/wire"
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
	chunk := chunkBytes(c.bps, fo.ChunkMs, o.SampleRate)
	sendErr := sendPaced(ctx, c, audio, chunk, fo, time.Now())
	w := bufio.NewWriter(out)
	defer w.Flush()
	if err := relay(ctx, sendErr, c.Events(), w, fo.JSON, o.Reconnect, func(ev Event, partial bool) bool {
		if ev.Results == nil {
			return partial
		}
		t := ev.Results.Transcript()
		defer w.Flush()
		if !ev.Results.IsFinal {
			fmt.Fprintf(w, "\r\033[K%s", t)
			return true
		}
		if t != "" {
			fmt.Fprintf(w, "\r\033[K%s\n", t)
		} else if partial {
			fmt.Fprint(w, "\r\033[K")
		}
		return false
	}); err != nil {
		return err
	}
	return c.Err()
}

// chunkBytes is chunkMs of audio at bps bytes a second, cut to whole frames of one
// sample on every channel.
func chunkBytes(bps float64, chunkMs, rate int) int {
	chunk := int(bps) * chunkMs / 1000
	frame := int(bps) / max(rate, 1)
	return chunk - chunk%max(frame, 1)
}

// audioSender is what sendPaced streams to: a Conn or a TurnConn.
type audioSender interface {
	SendAudio(b []byte) error
	CloseStream() error
}

// sendPaced sends audio to c in chunks of chunk bytes (fo.ChunkMs of audio each;
// paced at real time from start with fo.Realtime), then asks the server to finish. It
// returns at once; the result, nil once CloseStream is sent, arrives on the channel.
func sendPaced(ctx context.Context, c audioSender, audio []byte, chunk int, fo FileOptions, start time.Time) chan error {
	sendErr := make(chan error, 1)
	go func() {
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
			if err := c.SendAudio(audio[i*chunk : min((i+1)*chunk, len(audio))]); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- c.CloseStream()
	}()
	return sendErr
}

// serverMessage is an Event or a TurnEvent.
type serverMessage interface {
	raw() []byte
	serverErr() error // the server's Error message as an error; nil for any other message
}

func (ev Event) raw() []byte     { return ev.Raw }
func (ev TurnEvent) raw() []byte { return ev.Raw }

func (ev Event) serverErr() error {
	if ev.Error == nil {
		return nil
	}
	return serverError(ev.Error.Code, ev.Error.Description)
}

func (ev TurnEvent) serverErr() error {
	if ev.Error == nil {
		return nil
	}
	return serverError(ev.Error.Code, ev.Error.Description)
}

// serverError is an Error message from the server as a Go error.
func serverError(code wire.ErrorCode, description string) error {
	return fmt.Errorf("earshot: %s: %s", code, description)
}

// relay writes each event to w, as a JSON line with jsonLines or else with text, until
// events is closed (nil), the server sends an Error (unless the stream is resumable:
// the connection that sent it may be resumed, and the stream's end says how it
// went), the sender reports a failure on sendErr, or ctx ends. text is told whether the line last written is still open (to
// be rewritten in place) and returns whether it left one open; relay ends an open line
// when events closes.
func relay[E serverMessage](ctx context.Context, sendErr <-chan error, events <-chan E, w *bufio.Writer,
	jsonLines, resumable bool, text func(ev E, open bool) bool) error {
	open := false
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-sendErr:
			if err != nil {
				return fmt.Errorf("earshot: send: %w", err)
			}
			sendErr = nil
		case ev, ok := <-events:
			if !ok {
				if open {
					fmt.Fprintln(w)
				}
				return nil
			}
			if jsonLines {
				w.Write(ev.raw())
				w.WriteByte('\n')
				w.Flush()
			} else {
				open = text(ev, open)
			}
			if err := ev.serverErr(); err != nil && !resumable {
				return err
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
			binary.LittleEndian.PutUint16(b[2*(i*len(chans)+ch):], uint16(ingest.Int16(chans[ch][i])))
		}
	}
	return b, nil
}
