package gateway

// The connection's reader: frames from the client, decoded by ingest and sent on the
// bus session, control messages, pacing, and the start of the end.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"time"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/gorilla/websocket"
)

// readLoop reads frames until the socket fails or closes.
func (cn *connection) readLoop() {
	conn := cn.conn.Load()
	cfg := &cn.srv.cfg
	for {
		cn.mu.Lock()
		ending := cn.ending
		cn.mu.Unlock()
		if ending {
			_ = conn.SetReadDeadline(time.Now().Add(cfg.CloseTimeout + 5*time.Second))
		} else {
			_ = conn.SetReadDeadline(time.Now().Add(cfg.IdleTimeout))
		}
		mt, rd, err := conn.NextReader()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !ending {
				cn.fail(wire.CloseIdleTimeout, wire.CodeIdleTimeout,
					"no audio, KeepAlive or control message within "+cfg.IdleTimeout.String())
			}
			return
		}
		limit := cfg.MaxFrameBytes
		if mt == websocket.TextMessage {
			limit = cfg.MaxTextBytes
		}
		b, err := io.ReadAll(io.LimitReader(rd, int64(limit)+1))
		if err != nil {
			return
		}
		if len(b) > limit {
			cn.fail(wire.CloseTooLarge, wire.CodeMessageTooLarge,
				"frame larger than "+itoa(limit)+" bytes")
			return
		}
		var ok bool
		if mt == websocket.BinaryMessage {
			ok = cn.audio(b)
		} else {
			ok = cn.control(b)
		}
		if !ok {
			return
		}
	}
}

// audio decodes one binary frame and sends it on. False ends the read loop.
func (cn *connection) audio(b []byte) bool {
	if cn.budget != nil && len(b) > 0 && !cn.isEnding() {
		if err := cn.budget.Allow(cn.ctx, cn.billable()); err != nil {
			cn.endForQuota(err)
			return true
		}
	}
	cn.mu.Lock()
	if cn.ending {
		cn.mu.Unlock()
		return true // audio after CloseStream or during a drain is ignored
	}
	if len(b) == 0 { // Deepgram's old close signal
		cn.mu.Unlock()
		cn.beginEnding(wire.CloseNormal)
		return true
	}
	payload := b
	if cn.frames == 0 {
		var err error
		if payload, err = sniffContainer(b); err != nil {
			cn.mu.Unlock()
			cn.fail(wire.CloseBadAudio, wire.CodeBadAudio, err.Error())
			return false
		}
	}
	outs, err := cn.pipe.Push(payload)
	if err != nil {
		cn.mu.Unlock()
		cn.fail(wire.CloseBadAudio, wire.CodeBadAudio, "audio does not match encoding="+cn.params.Encoding+": "+err.Error())
		return false
	}
	cn.frames++
	if cn.sha == nil {
		cn.sha = sha256.New()
	}
	cn.sha.Write(b)
	if cn.firstAudio.IsZero() {
		cn.firstAudio = time.Now()
	}
	if err := cn.sendLocked(outs, 0); err != nil {
		cn.mu.Unlock()
		cn.fail(wire.CloseInternal, wire.CodeInternal, "transcription stream failed")
		cn.log.Error("send audio", "err", err)
		return false
	}
	ms := cn.pipe.AcceptedMs()
	delta := ms - cn.acceptedMs
	cn.acceptedMs = ms
	first := cn.firstAudio
	cn.mu.Unlock()

	if delta > 0 {
		cn.meter.Add(delta)
		cn.srv.m.audioSeconds.WithLabelValues(string(cn.info.Tenant), cn.info.Model).Add(float64(delta) / 1000)
	}
	cn.pace(first, ms)
	return true
}

// billable is the audio of this connection its usage events bill (all channels): the
// meter's count where it keeps one (a resumed connection's credit is not billed).
func (cn *connection) billable() int64 {
	if m, ok := cn.meter.(interface{ Total() int64 }); ok {
		return m.Total()
	}
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.acceptedMs * int64(max(1, cn.info.Channels))
}

func (cn *connection) isEnding() bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.ending
}

// endForQuota ends the stream when the tenant's quota ran out: the client gets the
// error, then the finals of the audio it paid for, then close 4002. Later audio is
// ignored (neither transcribed nor billed).
func (cn *connection) endForQuota(err error) {
	code := quotaCode(err)
	cn.mu.Lock()
	if cn.ending {
		cn.mu.Unlock()
		return
	}
	cn.endReason = string(code)
	cn.mu.Unlock()
	cn.log.Info("quota reached: ending the stream", "err", err)
	cn.enqueue(cn.errorMessage(code, err.Error()+"; the audio sent before this message is transcribed and billed, later audio is not"))
	cn.beginEnding(wire.CloseQuota)
}

// pace slows reading when audio arrives faster than RealtimeFactor × real time
// (after a burst of RealtimeBurst): TCP backpressure does the rest.
func (cn *connection) pace(first time.Time, accepted int64) {
	f := cn.srv.cfg.RealtimeFactor
	if f <= 0 {
		return
	}
	allowed := f*float64(time.Since(first).Milliseconds()) + float64(cn.srv.cfg.RealtimeBurst.Milliseconds())
	ahead := float64(accepted) - allowed
	if ahead <= 0 {
		return
	}
	t := time.NewTimer(time.Duration(ahead/f) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-cn.ctx.Done():
	}
}

// sendLocked converts and sends decoded audio; cn.mu is held.
func (cn *connection) sendLocked(outs [][]float32, flags bus.ChunkFlag) error {
	for ch, f := range outs {
		if len(f) == 0 {
			continue
		}
		if err := cn.stream.Send(ingest.ToInt16(f), ch, flags); err != nil {
			return err
		}
	}
	return nil
}

// control handles one text frame. False ends the read loop.
func (cn *connection) control(b []byte) bool {
	if isKeepAlive(b) {
		cn.keepAlive()
		return true
	}
	if cn.flux != nil {
		return cn.fluxControl(b)
	}
	c, err := wire.ParseControl(b)
	if err != nil {
		code := wire.CodeBadRequest
		if errors.Is(err, wire.ErrUnknownControl) {
			code = wire.CodeUnknownMessage
		}
		cn.srv.m.errors.WithLabelValues(string(code)).Inc()
		e := wire.NewError(code, err.Error())
		e.RequestID = string(cn.info.Session)
		return cn.enqueue(e)
	}
	switch c.Type {
	case wire.ControlKeepAlive:
		cn.keepAlive()
	case wire.ControlFinalize:
		cn.mu.Lock()
		defer cn.mu.Unlock()
		if cn.ending {
			return true
		}
		for ch := 0; ch < cn.pipe.Outputs(); ch++ {
			if c.Channel != nil && *c.Channel != ch {
				continue
			}
			if err := cn.stream.Send(nil, ch, bus.FlagFinalize); err != nil {
				cn.log.Error("send finalize", "err", err)
			}
		}
	case wire.ControlCloseStream:
		cn.beginEnding(wire.CloseNormal)
	}
	return true
}

// keepAlive passes a KeepAlive on (an empty chunk) so the worker's idle timer, which
// only sees chunks, does not end a stream whose client is quiet but present.
func (cn *connection) keepAlive() {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.ending || cn.stream == nil {
		return
	}
	if err := cn.stream.Send(nil, 0, 0); err != nil {
		cn.log.Debug("send keep-alive", "err", err)
	}
}

// isKeepAlive recognises the KeepAlive that clients send (as JSON.stringify and
// Python's json.dumps write it) without the JSON decoder: decoding on the handler
// goroutine, below net/http's and handleListen's frames, doubles its stack to 16 KiB
// for the rest of the stream, and a KeepAlive is all an idle stream sends. Any other
// spelling goes through wire.ParseControl as before.
func isKeepAlive(b []byte) bool {
	b = bytes.TrimSpace(b)
	return string(b) == `{"type":"KeepAlive"}` || string(b) == `{"type": "KeepAlive"}`
}

// beginEnding flushes the decoder, marks the end of every channel and arms the close
// deadline; the relay closes with code once every channel reported ResultClosed.
func (cn *connection) beginEnding(code int) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.ending {
		return
	}
	cn.ending = true
	cn.endCode = code
	if cn.stream != nil {
		_ = cn.sendLocked(cn.pipe.Flush(), 0)
		for ch := 0; ch < cn.pipe.Outputs(); ch++ {
			if err := cn.stream.Send(nil, ch, bus.FlagEnd); err != nil {
				cn.log.Error("send end", "err", err)
			}
		}
	}
	close(cn.endingCh)
}

// sniffContainer looks at the first frame: a WAV header is stripped (the client sent
// a .wav file with encoding set, as Deepgram's examples do); compressed containers
// are refused with a clear message.
func sniffContainer(b []byte) ([]byte, error) {
	switch {
	case bytes.HasPrefix(b, []byte("OggS")), bytes.HasPrefix(b, []byte("fLaC")),
		bytes.HasPrefix(b, []byte("ID3")), bytes.HasPrefix(b, []byte{0x1a, 0x45, 0xdf, 0xa3}):
		return nil, errors.New("the first frame is a compressed container (Ogg, FLAC, MP3 or WebM); send raw audio in the declared encoding")
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WAVE":
		off := 12
		for off+8 <= len(b) {
			id, size := string(b[off:off+4]), int(binary.LittleEndian.Uint32(b[off+4:]))
			off += 8
			if id == "data" {
				return b[off:], nil
			}
			if size < 0 || size > len(b)-off {
				break
			}
			off += size + size&1
		}
		return nil, errors.New("the first frame starts a WAV header whose data chunk is not in this frame; send the header and data together or raw audio")
	}
	return b, nil
}
