package gateway

// The connection's relay: the bus session's results mapped to wire messages, the
// timers, billing before finals, and the close.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"strconv"
	"time"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/internal/bus"
)

// relayLoop maps results to wire messages and runs the connection's timers.
func (cn *connection) relayLoop() {
	cfg := &cn.srv.cfg
	results := cn.stream.Results()
	maxSession := cfg.MaxSession
	if cfg.Demo.Enabled && cn.info.Tenant == cfg.Demo.Tenant {
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
	if cn.budget != nil {
		t := time.NewTicker(holdRenew / 2)
		defer t.Stop()
		holdTick = t.C
	}
	drainCh, endingCh := cn.drainCh, cn.endingCh
	var closeBy <-chan time.Time
	closed := 0
	for {
		select {
		case <-cn.ctx.Done():
			return
		case r, ok := <-results:
			if !ok {
				cn.fail(wire.CloseInternal, wire.CodeInternal, "the transcription stream ended unexpectedly")
				return
			}
			cn.results.Add(1)
			if r.Type == bus.ResultClosed {
				if closed++; closed >= cn.pipe.Outputs() {
					cn.finish()
					return
				}
				continue
			}
			if !cn.relay(r) {
				return
			}
		case <-drainCh:
			drainCh = nil
			cn.beginEnding(wire.CloseServiceRestart)
		case <-endingCh:
			endingCh = nil
			t := time.NewTimer(cfg.CloseTimeout)
			defer t.Stop()
			closeBy = t.C
		case <-closeBy:
			cn.log.Warn("finals did not arrive before the close deadline", "timeout", cfg.CloseTimeout)
			cn.finish()
			return
		case <-maxLen.C:
			cn.fail(wire.CloseMaxDuration, wire.CodeMaxDuration, "the stream reached its maximum length of "+maxSession.String())
			return
		case <-holdTick:
			cn.budget.Renew(cn.ctx, cn.billable())
		case <-quotaTick:
			if cn.isEnding() {
				// Ending: no audio is taken any more, and what was taken is billed. A
				// quota that runs out now (the tenant's other streams, or this one's
				// own end for want of balance) must not cut off the finals it pays for.
				continue
			}
			if err := cfg.Quota.Check(cn.ctx, cn.info.Tenant, cn.info.Model); err != nil {
				if _, code := quotaStatus(err); code != wire.CodeInternal {
					// The audio taken so far was let in and is billed: end as the
					// budget does, with its finals and the Metadata before 4002. The
					// ledger can reach zero between one frame's Allow and the next
					// (seen in CI: a stream cut with no finals, TestQuotaAcrossGateways).
					cn.endForQuota(err)
					continue
				}
				cn.log.Warn("quota recheck", "err", err)
			}
		}
	}
}

// finish sends the Metadata and closes with the code chosen by beginEnding.
func (cn *connection) finish() {
	cn.mu.Lock()
	code, reason := cn.endCode, cn.endReason
	md := &wire.Metadata{
		Type: wire.TypeMetadata, TransactionKey: "deprecated", RequestID: string(cn.info.Session),
		SHA256: cn.audioSHA256(), Created: cn.start.UTC().Format(time.RFC3339Nano),
		Duration: float64(cn.acceptedMs) / 1000, Channels: cn.params.Channels,
		Models:    []string{cn.modelUUID()},
		ModelInfo: map[string]wire.ModelInfo{cn.modelUUID(): cn.modelInfo()},
	}
	cn.mu.Unlock()
	if fm, ok := cn.meter.(FinalMarker); ok {
		fm.Finished()
	}
	if cn.flux == nil { // Flux sends no Metadata: the close follows the last TurnInfo
		cn.enqueue(md)
	}
	if code == wire.CloseServiceRestart {
		reason = "service restart"
	}
	cn.end(closeMsg{code: code, reason: reason, flush: true})
}

// audioSHA256 is the hex SHA-256 of the raw frames received; cn.mu is held.
func (cn *connection) audioSHA256() string {
	if cn.sha == nil {
		sum := sha256.Sum256(nil)
		return hex.EncodeToString(sum[:])
	}
	return hex.EncodeToString(cn.sha.Sum(nil))
}

func (cn *connection) modelUUID() string {
	if cn.model.UUID != "" {
		return cn.model.UUID
	}
	return cn.model.Name
}

func (cn *connection) modelInfo() wire.ModelInfo {
	return wire.ModelInfo{Name: cn.model.Name, Version: cn.model.Version, Arch: cn.model.Arch}
}

// relay maps one result; false ends the loop.
func (cn *connection) relay(r bus.Result) bool {
	if cn.flux != nil {
		return cn.relayTurn(r)
	}
	p := cn.params
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
			Metadata: wire.ResultMetadata{RequestID: string(cn.info.Session), ModelInfo: cn.modelInfo(), ModelUUID: cn.modelUUID()},
		}
		endMs := int64(-1)
		if final {
			cn.flushMeter()
			endMs = int64(math.Round((r.Start + r.Duration) * 1000))
		}
		if r.ChunkSentNs > 0 {
			lat := time.Since(time.Unix(0, r.ChunkSentNs)).Seconds()
			if final {
				cn.srv.m.finalLat.Observe(lat)
			} else {
				cn.srv.m.partialLat.Observe(lat)
			}
		}
		return cn.enqueueFinal(msg, endMs)
	case bus.ResultSpeechStarted:
		if !p.VADEvents {
			return true
		}
		return cn.enqueue(&wire.SpeechStarted{Type: wire.TypeSpeechStarted, Channel: chIdx, Timestamp: r.Start})
	case bus.ResultUtteranceEnd:
		if p.UtteranceEndMs <= 0 {
			return true
		}
		return cn.enqueue(&wire.UtteranceEnd{Type: wire.TypeUtteranceEnd, Channel: chIdx, LastWordEnd: r.LastWordEnd})
	case bus.ResultError:
		return cn.relayError(r)
	}
	return true
}

// relayError ends the connection for a result error; it returns false (end the loop).
func (cn *connection) relayError(r bus.Result) bool {
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
	cn.fail(code, ec, desc)
	return false
}

// settleMeter brings the stream's billing record up to date before the close frame
// (see MeterSettler); it waits at most SettleTimeout.
func (cn *connection) settleMeter() {
	st, ok := cn.meter.(MeterSettler)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), SettleTimeout)
	defer cancel()
	if err := st.Settle(ctx); err != nil {
		cn.log.Warn("billing not settled before the close: a resume may be billed again for this connection's unacknowledged audio", "err", err)
	}
}

// flushMeter has the audio accepted so far billed before a final goes out (see
// MeterFlusher); it waits at most FlushTimeout.
func (cn *connection) flushMeter() {
	f, ok := cn.meter.(MeterFlusher)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(cn.ctx, FlushTimeout)
	defer cancel()
	if err := f.Flush(ctx); err != nil {
		cn.log.Debug("meter flush before a final", "err", err)
	}
}
func itoa(n int) string { return strconv.Itoa(n) }
