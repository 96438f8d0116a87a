package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"strconv"
	"time"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/gorilla/websocket"
)

// end asks the writer to close the socket; the first call wins.
func (ss *session) end(c closeMsg) {
	ss.endOnce.Do(func() {
		ss.closeCode.CompareAndSwap(0, int64(c.code))
		if c.msg != nil {
			c.msg.RequestID = string(ss.info.Session)
			ss.srv.m.errors.WithLabelValues(string(c.msg.Code)).Inc()
			ss.log.Info("stream error", "code", c.msg.Code, "description", c.msg.Description)
		}
		ss.wmu.Lock()
		if ss.flux != nil && c.msg != nil {
			e := ss.fluxError(c.msg.Code, c.msg.Description)
			e.setSequence(ss.fluxSeq)
			ss.fluxSeq++
			c.raw, _ = json.Marshal(e)
		}
		ss.closing = &c
		ss.startWriterLocked()
		ss.wmu.Unlock()
	})
}

// fail ends the session with an Error message and close code. What is already queued
// (a final that came just before the worker was lost, say) goes out first, except to a
// client that does not read (slow consumer); every write has Config.WriteTimeout.
func (ss *session) fail(code int, ec wire.ErrorCode, desc string) {
	ss.end(closeMsg{code: code, reason: string(ec), msg: wire.NewError(ec, desc), flush: ec != wire.CodeSlowConsumer})
}

// enqueue queues a message for the client; a full queue means the client does not
// read: the session ends with 1008 "slow consumer". False: the message was not
// queued (the queue is full, or the socket is closed).
func (ss *session) enqueue(v any) bool { return ss.enqueueFinal(v, -1) }

// enqueueFinal is enqueue for a final ending at endMs of this connection's audio (-1:
// not a final).
func (ss *session) enqueueFinal(v any, endMs int64) bool {
	sq, isSeq := v.(sequenced)
	var b []byte
	var err error
	if !isSeq {
		if b, err = json.Marshal(v); err != nil {
			ss.log.Error("marshal", "err", err)
			return false
		}
	}
	ss.wmu.Lock()
	if ss.sockDone || (isSeq && ss.closing != nil && ss.closing.raw != nil) {
		// A turn-taking stream's Error is its last message (its sequence_id is taken).
		ss.wmu.Unlock()
		return false
	}
	if len(ss.queue) >= ss.srv.cfg.WriteQueue {
		ss.wmu.Unlock()
		ss.fail(wire.ClosePolicy, wire.CodeSlowConsumer, "slow consumer: results are not being read")
		return false
	}
	if isSeq {
		// Numbered and marshalled under the lock: sequence_id follows the queue's order.
		sq.setSequence(ss.fluxSeq)
		if b, err = json.Marshal(v); err != nil {
			ss.wmu.Unlock()
			ss.log.Error("marshal", "err", err)
			return false
		}
		ss.fluxSeq++
	}
	ss.queue = append(ss.queue, b)
	ss.enqueued++
	if endMs >= 0 {
		ss.finalEnds = append(ss.finalEnds, finalEnd{seq: ss.enqueued, endMs: endMs})
	}
	ss.startWriterLocked()
	ss.wmu.Unlock()
	return true
}

// startWriterLocked starts writeLoop unless one runs or the socket is closed; ss.wmu
// is held.
func (ss *session) startWriterLocked() {
	if ss.writing || ss.sockDone {
		return
	}
	ss.writing = true
	ss.wg.Add(1)
	go ss.writeLoop()
}

// writeLoop writes the queue in order and returns when it is empty; once end asked
// for the close, it writes what is queued (if the close says flush), the Error
// message and the close frame, closes the socket and stops the session.
func (ss *session) writeLoop() {
	defer ss.wg.Done()
	conn := ss.conn.Load()
	wt := ss.srv.cfg.WriteTimeout
	write := func(b []byte, d time.Duration) error {
		_ = conn.SetWriteDeadline(time.Now().Add(d))
		return conn.WriteMessage(websocket.TextMessage, b)
	}
	for {
		ss.wmu.Lock()
		c, aborted := ss.closing, ss.ctx.Err() != nil
		var b []byte
		if !aborted && len(ss.queue) > 0 && (c == nil || c.flush) {
			b = ss.queue[0]
			ss.queue[0] = nil
			ss.queue = ss.queue[1:]
		} else if !aborted && c == nil {
			ss.queue = nil // an idle stream keeps no queue
			ss.writing = false
			ss.wmu.Unlock()
			return
		}
		ss.wmu.Unlock()

		switch {
		case aborted:
			_ = conn.Close()
		case b != nil:
			err := write(b, wt)
			if err == nil {
				ss.written1()
				continue
			}
			if c == nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					ss.srv.m.errors.WithLabelValues(string(wire.CodeSlowConsumer)).Inc()
					ss.closeCode.CompareAndSwap(0, wire.ClosePolicy)
					_ = conn.WriteControl(websocket.CloseMessage,
						websocket.FormatCloseMessage(wire.ClosePolicy, "slow consumer"), time.Now().Add(100*time.Millisecond))
				}
				ss.closeCode.CompareAndSwap(0, websocket.CloseAbnormalClosure)
			}
			_ = conn.Close()
		default: // the close, with nothing (more) to flush
			ss.settleMeter()
			var err error
			if c.raw != nil {
				err = write(c.raw, time.Second)
			} else if c.msg != nil {
				b, _ := json.Marshal(c.msg)
				err = write(b, time.Second)
			}
			if err == nil {
				_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(c.code, c.reason),
					time.Now().Add(time.Second))
				// Give the client a moment to answer the close; the reader sees it.
				t := time.NewTimer(2 * time.Second)
				select {
				case <-ss.readerDone:
				case <-t.C:
				case <-ss.ctx.Done():
				}
				t.Stop()
			}
			_ = conn.Close()
		}
		ss.socketClosed()
		return
	}
}

// socketClosed stops everything once the writer closed the socket, and unblocks a
// Send stuck on a stream whose results nobody reads any more.
func (ss *session) socketClosed() {
	ss.wmu.Lock()
	ss.sockDone, ss.writing, ss.queue = true, false, nil
	ss.wmu.Unlock()
	close(ss.writerExit)
	ss.cancel()
	ss.stream.Close()
}

// readLoop reads frames until the socket fails or closes.
func (ss *session) readLoop() {
	conn := ss.conn.Load()
	cfg := &ss.srv.cfg
	for {
		ss.mu.Lock()
		ending := ss.ending
		ss.mu.Unlock()
		if ending {
			_ = conn.SetReadDeadline(time.Now().Add(cfg.CloseTimeout + 5*time.Second))
		} else {
			_ = conn.SetReadDeadline(time.Now().Add(cfg.IdleTimeout))
		}
		mt, rd, err := conn.NextReader()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !ending {
				ss.fail(wire.CloseIdleTimeout, wire.CodeIdleTimeout,
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
			ss.fail(wire.CloseTooLarge, wire.CodeMessageTooLarge,
				"frame larger than "+itoa(limit)+" bytes")
			return
		}
		var ok bool
		if mt == websocket.BinaryMessage {
			ok = ss.audio(b)
		} else {
			ok = ss.control(b)
		}
		if !ok {
			return
		}
	}
}

// audio decodes one binary frame and sends it on. False ends the read loop.
func (ss *session) audio(b []byte) bool {
	if ss.budget != nil && len(b) > 0 && !ss.isEnding() {
		if err := ss.budget.Allow(ss.ctx, ss.billable()); err != nil {
			ss.endForQuota(err)
			return true
		}
	}
	ss.mu.Lock()
	if ss.ending {
		ss.mu.Unlock()
		return true // audio after CloseStream or during a drain is ignored
	}
	if len(b) == 0 { // Deepgram's old close signal
		ss.mu.Unlock()
		ss.beginEnding(wire.CloseNormal)
		return true
	}
	payload := b
	if ss.frames == 0 {
		var err error
		if payload, err = sniffContainer(b); err != nil {
			ss.mu.Unlock()
			ss.fail(wire.CloseBadAudio, wire.CodeBadAudio, err.Error())
			return false
		}
	}
	outs, err := ss.pipe.Push(payload)
	if err != nil {
		ss.mu.Unlock()
		ss.fail(wire.CloseBadAudio, wire.CodeBadAudio, "audio does not match encoding="+ss.params.Encoding+": "+err.Error())
		return false
	}
	ss.frames++
	if ss.sha == nil {
		ss.sha = sha256.New()
	}
	ss.sha.Write(b)
	if ss.firstAudio.IsZero() {
		ss.firstAudio = time.Now()
	}
	if err := ss.sendLocked(outs, 0); err != nil {
		ss.mu.Unlock()
		ss.fail(wire.CloseInternal, wire.CodeInternal, "transcription stream failed")
		ss.log.Error("send audio", "err", err)
		return false
	}
	ms := ss.pipe.AcceptedMs()
	delta := ms - ss.acceptedMs
	ss.acceptedMs = ms
	first := ss.firstAudio
	ss.mu.Unlock()

	if delta > 0 {
		ss.meter.Add(delta)
		ss.srv.m.audioSeconds.WithLabelValues(string(ss.info.Tenant), ss.info.Model).Add(float64(delta) / 1000)
	}
	ss.pace(first, ms)
	return true
}

// billable is the audio of this connection its usage events bill (all channels): the
// meter's count where it keeps one (a resumed connection's credit is not billed).
func (ss *session) billable() int64 {
	if m, ok := ss.meter.(interface{ Total() int64 }); ok {
		return m.Total()
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.acceptedMs * int64(max(1, ss.info.Channels))
}

func (ss *session) isEnding() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.ending
}

// endForQuota ends the stream when the tenant's quota ran out: the client gets the
// error, then the finals of the audio it paid for, then close 4002. Later audio is
// ignored (neither transcribed nor billed).
func (ss *session) endForQuota(err error) {
	code := quotaCode(err)
	ss.mu.Lock()
	if ss.ending {
		ss.mu.Unlock()
		return
	}
	ss.endReason = string(code)
	ss.mu.Unlock()
	ss.log.Info("quota reached: ending the stream", "err", err)
	ss.enqueue(ss.errorMessage(code, err.Error()+"; the audio sent before this message is transcribed and billed, later audio is not"))
	ss.beginEnding(wire.CloseQuota)
}

// pace slows reading when audio arrives faster than RealtimeFactor × real time
// (after a burst of RealtimeBurst): TCP backpressure does the rest.
func (ss *session) pace(first time.Time, accepted int64) {
	f := ss.srv.cfg.RealtimeFactor
	if f <= 0 {
		return
	}
	allowed := f*float64(time.Since(first).Milliseconds()) + float64(ss.srv.cfg.RealtimeBurst.Milliseconds())
	ahead := float64(accepted) - allowed
	if ahead <= 0 {
		return
	}
	t := time.NewTimer(time.Duration(ahead/f) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ss.ctx.Done():
	}
}

// sendLocked converts and sends decoded audio; ss.mu is held.
func (ss *session) sendLocked(outs [][]float32, flags bus.ChunkFlag) error {
	for ch, f := range outs {
		if len(f) == 0 {
			continue
		}
		if err := ss.stream.Send(ingest.ToInt16(f), ch, flags); err != nil {
			return err
		}
	}
	return nil
}

// control handles one text frame. False ends the read loop.
func (ss *session) control(b []byte) bool {
	if isKeepAlive(b) {
		ss.keepAlive()
		return true
	}
	if ss.flux != nil {
		return ss.fluxControl(b)
	}
	c, err := wire.ParseControl(b)
	if err != nil {
		code := wire.CodeBadRequest
		if errors.Is(err, wire.ErrUnknownControl) {
			code = wire.CodeUnknownMessage
		}
		ss.srv.m.errors.WithLabelValues(string(code)).Inc()
		e := wire.NewError(code, err.Error())
		e.RequestID = string(ss.info.Session)
		return ss.enqueue(e)
	}
	switch c.Type {
	case wire.ControlKeepAlive:
		ss.keepAlive()
	case wire.ControlFinalize:
		ss.mu.Lock()
		defer ss.mu.Unlock()
		if ss.ending {
			return true
		}
		for ch := 0; ch < ss.pipe.Outputs(); ch++ {
			if c.Channel != nil && *c.Channel != ch {
				continue
			}
			if err := ss.stream.Send(nil, ch, bus.FlagFinalize); err != nil {
				ss.log.Error("send finalize", "err", err)
			}
		}
	case wire.ControlCloseStream:
		ss.beginEnding(wire.CloseNormal)
	}
	return true
}

// keepAlive passes a KeepAlive on (an empty chunk) so the worker's idle timer, which
// only sees chunks, does not end a stream whose client is quiet but present.
func (ss *session) keepAlive() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.ending || ss.stream == nil {
		return
	}
	if err := ss.stream.Send(nil, 0, 0); err != nil {
		ss.log.Debug("send keep-alive", "err", err)
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
func (ss *session) beginEnding(code int) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.ending {
		return
	}
	ss.ending = true
	ss.endCode = code
	if ss.stream != nil {
		_ = ss.sendLocked(ss.pipe.Flush(), 0)
		for ch := 0; ch < ss.pipe.Outputs(); ch++ {
			if err := ss.stream.Send(nil, ch, bus.FlagEnd); err != nil {
				ss.log.Error("send end", "err", err)
			}
		}
	}
	close(ss.endingCh)
}

// relayLoop maps results to wire messages and runs the session's timers.
func (ss *session) relayLoop() {
	cfg := &ss.srv.cfg
	results := ss.stream.Results()
	maxSession := cfg.MaxSession
	if cfg.Demo.Enabled && ss.info.Tenant == cfg.Demo.Tenant {
		maxSession = min(maxSession, cfg.Demo.MaxSession)
	}
	maxLen := time.NewTimer(maxSession)
	defer maxLen.Stop()
	var quotaTick <-chan time.Time
	if cfg.Quota != nil {
		t := time.NewTicker(cfg.QuotaRecheck)
		defer t.Stop()
		quotaTick = t.C
	}
	var holdTick <-chan time.Time
	if ss.budget != nil {
		t := time.NewTicker(holdRenew / 2)
		defer t.Stop()
		holdTick = t.C
	}
	drainCh, endingCh := ss.drainCh, ss.endingCh
	var closeBy <-chan time.Time
	closed := 0
	for {
		select {
		case <-ss.ctx.Done():
			return
		case r, ok := <-results:
			if !ok {
				ss.fail(wire.CloseInternal, wire.CodeInternal, "the transcription stream ended unexpectedly")
				return
			}
			ss.results.Add(1)
			if r.Type == bus.ResultClosed {
				if closed++; closed >= ss.pipe.Outputs() {
					ss.finish()
					return
				}
				continue
			}
			if !ss.relay(r) {
				return
			}
		case <-drainCh:
			drainCh = nil
			ss.beginEnding(wire.CloseServiceRestart)
		case <-endingCh:
			endingCh = nil
			t := time.NewTimer(cfg.CloseTimeout)
			defer t.Stop()
			closeBy = t.C
		case <-closeBy:
			ss.log.Warn("finals did not arrive before the close deadline", "timeout", cfg.CloseTimeout)
			ss.finish()
			return
		case <-maxLen.C:
			ss.fail(wire.CloseMaxDuration, wire.CodeMaxDuration, "the stream reached its maximum length of "+maxSession.String())
			return
		case <-holdTick:
			ss.budget.Renew(ss.ctx, ss.billable())
		case <-quotaTick:
			if err := cfg.Quota.Check(ss.ctx, ss.info.Tenant, ss.info.Model); err != nil {
				if _, code := quotaStatus(err); code != wire.CodeInternal {
					ss.fail(wire.CloseQuota, code, err.Error())
					return
				}
				ss.log.Warn("quota recheck", "err", err)
			}
		}
	}
}

// finish sends the Metadata and closes with the code chosen by beginEnding.
func (ss *session) finish() {
	ss.mu.Lock()
	code, reason := ss.endCode, ss.endReason
	md := &wire.Metadata{
		Type: wire.TypeMetadata, TransactionKey: "deprecated", RequestID: string(ss.info.Session),
		SHA256: ss.audioSHA256(), Created: ss.start.UTC().Format(time.RFC3339Nano),
		Duration: float64(ss.acceptedMs) / 1000, Channels: ss.params.Channels,
		Models:    []string{ss.modelUUID()},
		ModelInfo: map[string]wire.ModelInfo{ss.modelUUID(): ss.modelInfo()},
	}
	ss.mu.Unlock()
	if fm, ok := ss.meter.(FinalMarker); ok {
		fm.Finished()
	}
	if ss.flux == nil { // Flux sends no Metadata: the close follows the last TurnInfo
		ss.enqueue(md)
	}
	if code == wire.CloseServiceRestart {
		reason = "service restart"
	}
	ss.end(closeMsg{code: code, reason: reason, flush: true})
}

// audioSHA256 is the hex SHA-256 of the raw frames received; ss.mu is held.
func (ss *session) audioSHA256() string {
	if ss.sha == nil {
		sum := sha256.Sum256(nil)
		return hex.EncodeToString(sum[:])
	}
	return hex.EncodeToString(ss.sha.Sum(nil))
}

func (ss *session) modelUUID() string {
	if ss.model.UUID != "" {
		return ss.model.UUID
	}
	return ss.model.Name
}

func (ss *session) modelInfo() wire.ModelInfo {
	return wire.ModelInfo{Name: ss.model.Name, Version: ss.model.Version, Arch: ss.model.Arch}
}

// relay maps one result; false ends the loop.
func (ss *session) relay(r bus.Result) bool {
	if ss.flux != nil {
		return ss.relayTurn(r)
	}
	p := ss.params
	chIdx := []int{r.Channel, p.OutputChannels()}
	switch r.Type {
	case bus.ResultPartial, bus.ResultFinal:
		final := r.Type == bus.ResultFinal
		if !final && !p.InterimResults {
			return true
		}
		detecting := p.Detecting() && r.Language != ""
		words := make([]wire.Word, len(r.Words))
		for i, w := range r.Words {
			words[i] = wire.Word{Word: w.Word, Start: w.Start, End: w.End, Confidence: w.Confidence, PunctuatedWord: w.Punctuated}
			if words[i].PunctuatedWord == "" {
				words[i].PunctuatedWord = w.Word
			}
			if detecting {
				words[i].Language = r.Language
			}
		}
		alt := wire.Alternative{Transcript: r.Text, Confidence: r.Confidence, Words: words}
		var ch wire.Channel
		if detecting {
			// Deepgram's multilingual streams list the languages of a result (and of each
			// word); the channel's detected_language is what pre-recorded requests get.
			alt.Languages = []string{r.Language}
			ch.DetectedLanguage, ch.LanguageConfidence = r.Language, math.Round(r.LanguageConfidence*1000)/1000
		}
		ch.Alternatives = []wire.Alternative{alt}
		msg := &wire.Results{
			Type: wire.TypeResults, ChannelIndex: chIdx, Duration: r.Duration, Start: r.Start,
			IsFinal: final, SpeechFinal: final && r.SpeechFinal, FromFinalize: final && r.FromFinalize,
			Channel:  ch,
			Metadata: wire.ResultMetadata{RequestID: string(ss.info.Session), ModelInfo: ss.modelInfo(), ModelUUID: ss.modelUUID()},
		}
		endMs := int64(-1)
		if final {
			ss.flushMeter()
			endMs = int64(math.Round((r.Start + r.Duration) * 1000))
		}
		if r.ChunkSentNs > 0 {
			lat := time.Since(time.Unix(0, r.ChunkSentNs)).Seconds()
			if final {
				ss.srv.m.finalLat.Observe(lat)
			} else {
				ss.srv.m.partialLat.Observe(lat)
			}
		}
		return ss.enqueueFinal(msg, endMs)
	case bus.ResultSpeechStarted:
		if !p.VADEvents {
			return true
		}
		return ss.enqueue(&wire.SpeechStarted{Type: wire.TypeSpeechStarted, Channel: chIdx, Timestamp: r.Start})
	case bus.ResultUtteranceEnd:
		if p.UtteranceEndMs <= 0 {
			return true
		}
		return ss.enqueue(&wire.UtteranceEnd{Type: wire.TypeUtteranceEnd, Channel: chIdx, LastWordEnd: r.LastWordEnd})
	case bus.ResultError:
		return ss.relayError(r)
	}
	return true
}

// relayError ends the session for a result error; it returns false (end the loop).
func (ss *session) relayError(r bus.Result) bool {
	code, ec := wire.CloseInternal, wire.CodeInternal
	switch r.Code {
	case bus.CodeNoCapacity, bus.CodeOverloaded, bus.CodeShuttingDown:
		code, ec = wire.CloseTryAgainLater, wire.CodeNoCapacity
	case bus.CodeBadAudio:
		code, ec = wire.CloseBadAudio, wire.CodeBadAudio
	case bus.CodeQuota:
		code, ec = wire.CloseQuota, wire.CodeQuotaExhausted
	case bus.CodeUnknownModel:
		code, ec = wire.CloseBadRequest, wire.CodeUnknownModel
	case bus.CodeBadRequest:
		code, ec = wire.CloseBadRequest, wire.CodeBadRequest
	}
	desc := r.Message
	if desc == "" {
		desc = "the transcriber failed"
	}
	ss.fail(code, ec, desc)
	return false
}

// written1 counts one message written to the socket and tells the meter about the
// finals among what was written while the client was still reading: a final queued
// for (or written after) a client that is gone is not one it has.
func (ss *session) written1() {
	ss.wmu.Lock()
	ss.written++
	end := int64(-1)
	for len(ss.finalEnds) > 0 && ss.finalEnds[0].seq <= ss.written {
		end = max(end, ss.finalEnds[0].endMs)
		ss.finalEnds = ss.finalEnds[1:]
	}
	ss.wmu.Unlock()
	if end < 0 {
		return
	}
	select {
	case <-ss.readerDone:
		return
	default:
	}
	if fm, ok := ss.meter.(FinalMarker); ok {
		fm.FinalDelivered(end)
	}
}

// settleMeter brings the stream's billing record up to date before the close frame
// (see MeterSettler); it waits at most SettleTimeout.
func (ss *session) settleMeter() {
	st, ok := ss.meter.(MeterSettler)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), SettleTimeout)
	defer cancel()
	if err := st.Settle(ctx); err != nil {
		ss.log.Warn("billing not settled before the close: a resume may be billed again for this connection's unacknowledged audio", "err", err)
	}
}

// flushMeter has the audio accepted so far billed before a final goes out (see
// MeterFlusher); it waits at most FlushTimeout.
func (ss *session) flushMeter() {
	f, ok := ss.meter.(MeterFlusher)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ss.ctx, FlushTimeout)
	defer cancel()
	if err := f.Flush(ctx); err != nil {
		ss.log.Debug("meter flush before a final", "err", err)
	}
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

func itoa(n int) string { return strconv.Itoa(n) }
