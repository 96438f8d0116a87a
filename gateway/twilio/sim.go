package twilio

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/gorilla/websocket"

	"github.com/earshot-dev/earshot/ingest"
)

// SimOptions tune Simulate. Zero values take the defaults.
type SimOptions struct {
	// Speed plays the call this many times faster than real time (default 1). Note that
	// a gateway Backend on NATS refuses audio sent much faster than real time.
	Speed float64
	// Overlap plays both files at once; by default the caller speaks first and the
	// agent answers after the caller's file ends (each track carries silence while the
	// other side speaks, as on a real call).
	Overlap bool
	// CallerAt and AgentAt, when either is set, place each file on the call's clock
	// instead (Overlap and the default order are then ignored): AgentAt 0 and CallerAt
	// 1.5 s make the caller talk over the agent from 1.5 s on.
	CallerAt, AgentAt time.Duration
	// Tail is silence on both tracks after the last file, before stop.
	Tail time.Duration
	// CallSID, StreamSID, AccountSID default to fixed test values.
	CallSID, StreamSID, AccountSID string
	// CustomParameters are sent in start (e.g. "secret" when the URL carries none).
	CustomParameters map[string]string
	// AuthToken, when set, signs the handshake with X-Twilio-Signature.
	AuthToken string
	// DTMF is the digit pressed after the caller's file. Default "1".
	DTMF string
	// Header adds handshake headers.
	Header http.Header
	// Shuffle, when > 0, delivers chunks out of order within windows of this many
	// chunks and sends every 7th chunk twice (to exercise the reorder window).
	Shuffle int
}

// Simulate plays caller and agent (WAV files, any rate) as one Twilio Media Streams
// call to url: connected, start with both tracks, 20 ms µ-law media frames paced at
// opts.Speed × real time, a mark after each file, a dtmf digit, and stop. It returns
// once the server has closed the stream after stop (all finals are in by then), or
// when ctx ends.
func Simulate(ctx context.Context, url, caller, agent string, opts SimOptions) error {
	if opts.Speed <= 0 {
		opts.Speed = 1
	}
	if opts.CallSID == "" {
		opts.CallSID = "CA00000000000000000000000000000001"
	}
	if opts.StreamSID == "" {
		opts.StreamSID = "MZ00000000000000000000000000000001"
	}
	if opts.AccountSID == "" {
		opts.AccountSID = "AC00000000000000000000000000000001"
	}
	if opts.DTMF == "" {
		opts.DTMF = "1"
	}
	in, err := loadMulaw(caller)
	if err != nil {
		return err
	}
	out, err := loadMulaw(agent)
	if err != nil {
		return err
	}
	hdr := http.Header{}
	for k, v := range opts.Header {
		hdr[k] = v
	}
	if opts.AuthToken != "" {
		hdr.Set("X-Twilio-Signature", TwilioSignature(opts.AuthToken, url, nil))
	}
	conn, resp, err := websocket.DefaultDialer.DialContext(ctx, url, hdr)
	if err != nil {
		if resp != nil {
			return fmt.Errorf("dial %s: %w (HTTP %s)", url, err, resp.Status)
		}
		return fmt.Errorf("dial %s: %w", url, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	seq := 0
	send := func(m map[string]any) error {
		seq++
		if m["event"] != EventConnected {
			m["sequenceNumber"] = strconv.Itoa(seq)
			m["streamSid"] = opts.StreamSID
		}
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		return conn.WriteMessage(websocket.TextMessage, b)
	}
	if err := send(map[string]any{"event": EventConnected, "protocol": "Call", "version": "1.0.0"}); err != nil {
		return err
	}
	if err := send(map[string]any{"event": EventStart, "start": StartInfo{
		AccountSID: opts.AccountSID, StreamSID: opts.StreamSID, CallSID: opts.CallSID,
		Tracks: []string{TrackInbound, TrackOutbound}, CustomParameters: opts.CustomParameters,
		MediaFormat: MediaFormat{Encoding: "audio/x-mulaw", SampleRate: 8000, Channels: 1},
	}}); err != nil {
		return err
	}
	silence := make([]byte, FrameBytes)
	for i := range silence {
		silence[i] = mulawSilence
	}
	// Lay out both tracks on the call's clock, frame by frame.
	inFrames := (len(in) + FrameBytes - 1) / FrameBytes
	outFrames := (len(out) + FrameBytes - 1) / FrameBytes
	inStart, outStart := 0, inFrames
	if opts.Overlap {
		outStart = 0
	}
	if opts.CallerAt > 0 || opts.AgentAt > 0 {
		inStart, outStart = int(opts.CallerAt/(20*time.Millisecond)), int(opts.AgentAt/(20*time.Millisecond))
	}
	frames := max(inStart+inFrames, outStart+outFrames) + int(opts.Tail/(20*time.Millisecond))
	frameOf := func(track []byte, start, i int) []byte {
		j := i - start
		if j < 0 || j*FrameBytes >= len(track) {
			return silence
		}
		f := track[j*FrameBytes : min(len(track), (j+1)*FrameBytes)]
		if len(f) < FrameBytes {
			f = append(append([]byte(nil), f...), silence[len(f):]...)
		}
		return f
	}
	type pending struct {
		track string
		chunk int
		audio []byte
	}
	var batch []pending
	flush := func() error {
		if opts.Shuffle > 1 {
			for i := range batch { // deterministic reversal within the window
				j := len(batch) - 1 - i
				if i >= j {
					break
				}
				batch[i], batch[j] = batch[j], batch[i]
			}
		}
		for _, p := range batch {
			m := map[string]any{"event": EventMedia, "media": MediaInfo{Track: p.track, Chunk: strconv.Itoa(p.chunk),
				Timestamp: strconv.Itoa((p.chunk - 1) * 20), Payload: base64.StdEncoding.EncodeToString(p.audio)}}
			if err := send(m); err != nil {
				return err
			}
			if opts.Shuffle > 1 && p.chunk%7 == 0 {
				if err := send(m); err != nil {
					return err
				}
			}
		}
		batch = batch[:0]
		return nil
	}
	t0 := time.Now()
	frameDur := time.Duration(float64(20*time.Millisecond) / opts.Speed)
	for i := 0; i < frames; i++ {
		batch = append(batch, pending{TrackInbound, i + 1, frameOf(in, inStart, i)}, pending{TrackOutbound, i + 1, frameOf(out, outStart, i)})
		if opts.Shuffle <= 1 || len(batch) >= 2*opts.Shuffle {
			if err := flush(); err != nil {
				return err
			}
		}
		if i+1 == inStart+inFrames {
			if err := flush(); err != nil {
				return err
			}
			if err := send(map[string]any{"event": EventMark, "mark": MarkInfo{Name: "caller-done"}}); err != nil {
				return err
			}
			if err := send(map[string]any{"event": EventDTMF, "dtmf": DTMFInfo{Track: "inbound_track", Digit: opts.DTMF}}); err != nil {
				return err
			}
		}
		if i+1 == outStart+outFrames {
			if err := flush(); err != nil {
				return err
			}
			if err := send(map[string]any{"event": EventMark, "mark": MarkInfo{Name: "agent-done"}}); err != nil {
				return err
			}
		}
		if !isInf(opts.Speed) {
			time.Sleep(time.Until(t0.Add(time.Duration(i+1) * frameDur)))
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if err := send(map[string]any{"event": EventStop, "stop": StopInfo{AccountSID: opts.AccountSID, CallSID: opts.CallSID}}); err != nil {
		return err
	}
	// Wait for the server to finish the call and close the stream.
	var serverErr error
	for {
		_, b, err := conn.ReadMessage()
		if err == nil {
			var m struct {
				Event string `json:"event"`
				Error struct {
					Message string `json:"message"`
				} `json:"error"`
			}
			if json.Unmarshal(b, &m) == nil && m.Event == "error" {
				serverErr = fmt.Errorf("server error: %s", m.Error.Message)
			}
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code != websocket.CloseNormalClosure {
			return fmt.Errorf("server closed the stream: %w", err)
		}
		return serverErr
	}
}

func isInf(f float64) bool { return f > 1e300 }

// loadMulaw reads a WAV file, converts it to 8 kHz mono and µ-law encodes it.
func loadMulaw(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	format, chans, err := ingest.ReadWAV(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	mono := ingest.Downmix(chans)
	if format.SampleRate != ingest.G711Rate {
		r := ingest.NewResampler(format.SampleRate, ingest.G711Rate)
		mono = append(r.Process(mono), r.Flush()...)
	}
	return ingest.EncodeMulaw(mono), nil
}
