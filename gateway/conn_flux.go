package gateway

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/lang"
)

// A /v2/listen (turn-taking) connection is a /v1 connection with cn.flux set: the same
// admission, billing, limits, failover and resume; what differs is here. The worker
// emits bus.ResultTurn events beside its partials and finals; the client gets only
// TurnInfo messages (the finals still trim ingest's replay buffer on the way).

// fluxState is a turn-taking connection's protocol state.
type fluxState struct {
	// turns are the current end-of-turn knobs; only the read loop (Configure) and
	// the handler before it starts touch them.
	turns     wire.Thresholds
	hints     []string // language_hint as given
	detecting bool     // the model detects the language (flux-general-multi without hint)

	// Turn numbering as the client sees it, kept by the relay loop: a worker taking
	// the session over after a failover counts its turns from 0 again.
	seen  bool // a turn event was relayed
	lastW int  // the worker's index in the last turn event
	base  int  // client index = worker index + base
	open  bool // StartOfTurn sent, EndOfTurn not yet
	cur   int  // the open turn's client index
	next  int  // the client index of the next turn

	configTokens float64   // Configure messages the client may send now (fluxConfigure)
	configAt     time.Time // when configTokens was last topped up
}

// newFluxState is the state of a connection opened with fp (detecting: the model
// detects the language). A resumed connection numbers its turns from
// resume_turn_index, so the client's turn_index goes on from the stream it continues.
func newFluxState(fp wire.FluxParams, detecting bool) *fluxState {
	return &fluxState{turns: fp.Turns, hints: fp.LanguageHints, detecting: detecting,
		base: fp.ResumeTurnIndex, next: fp.ResumeTurnIndex}
}

// Configure messages a client may send: configureBurst at once, configureRate a second.
const (
	configureBurst = 10
	configureRate  = 5
)

// clientTurn maps a worker's turn event to the client's turn index. drop: the event
// repeats the StartOfTurn of a turn the client is in (a new worker after a failover
// starts it again). turn_index only grows, and the state machine stays Flux's.
func (f *fluxState) clientTurn(event string, w int) (idx int, drop bool) {
	if f.seen && (w < f.lastW || (event == bus.TurnStart && w == f.lastW)) {
		if f.open {
			f.base = f.cur - w
		} else {
			f.base = f.next - w
		}
		if event == bus.TurnStart && f.open {
			f.lastW = w
			return f.cur, true
		}
	}
	f.seen, f.lastW = true, w
	idx = w + f.base
	switch event {
	case bus.TurnStart:
		if f.open && idx == f.cur {
			return idx, true
		}
		f.open, f.cur = true, idx
	case bus.TurnEnd:
		f.open, f.next = false, idx+1
	}
	return idx, false
}

func (f *fluxState) turnOptions() *bus.TurnOptions {
	return &bus.TurnOptions{EOTThreshold: f.turns.EOTThreshold, EagerEOTThreshold: f.turns.EagerEOTThreshold,
		EOTTimeoutMs: f.turns.EOTTimeoutMs}
}

// TurnConfigurer is a Stream of a turn-taking session whose end-of-turn knobs can
// change mid-stream (remote.Session is one). Configure takes all the knobs; it is
// safe to call concurrently with Send, and the new values also hold after a failover.
type TurnConfigurer interface {
	Configure(t bus.TurnOptions) error
}

// sequenced is a Flux message: sequence_id counts every message sent to the client.
type sequenced interface{ setSequence(n int64) }

type seqConnected struct{ wire.Connected }
type seqTurnInfo struct{ wire.TurnInfo }
type seqConfigureSuccess struct{ wire.ConfigureSuccess }
type seqConfigureFailure struct{ wire.ConfigureFailure }
type seqFluxError struct{ wire.FluxError }

func (m *seqConnected) setSequence(n int64)        { m.SequenceID = n }
func (m *seqTurnInfo) setSequence(n int64)         { m.SequenceID = n }
func (m *seqConfigureSuccess) setSequence(n int64) { m.SequenceID = n }
func (m *seqConfigureFailure) setSequence(n int64) { m.SequenceID = n }
func (m *seqFluxError) setSequence(n int64)        { m.SequenceID = n }

// isEnglishOnly reports whether a whisper model decodes English only (tiny.en,
// base.en-q5_1, …).
func isEnglishOnly(model string) bool { return strings.Contains(model, ".en") }

// resolveFluxModel maps Deepgram's Flux model names onto this server's models and
// sets the language they imply. A refusal is returned as (code, message, param).
func (s *Server) resolveFluxModel(p *wire.Params, hints []string) (wire.ErrorCode, string, string) {
	switch p.Model {
	case wire.FluxModelEnglish:
		if len(hints) > 0 {
			return wire.CodeBadRequest, "parameter language_hint: only with a multilingual model (flux-general-multi or an Earshot model name)", "language_hint"
		}
		p.Model, p.Language = s.cfg.DefaultModel, "en"
	case wire.FluxModelMulti:
		m := s.cfg.MultilingualModel
		if m == "" && !isEnglishOnly(s.cfg.DefaultModel) {
			m = s.cfg.DefaultModel
		}
		if m == "" {
			return wire.CodeUnknownModel, "model " + wire.FluxModelMulti + " is not available: this server's default model " +
				strconv.Quote(s.cfg.DefaultModel) + " is English-only and no multilingual model is configured; name a multilingual model (GET /v1/models lists them)", "model"
		}
		p.Model = m
		if len(hints) == 0 {
			p.Language = lang.Multi
		}
	default:
		// An Earshot model name (or none: the server's default). Without a hint a
		// multilingual model detects, as flux-general-multi does; an English-only one
		// decodes English.
		if len(hints) == 0 && !isEnglishOnly(cmp.Or(p.Model, s.cfg.DefaultModel)) {
			p.Language = lang.Multi
		}
	}
	return "", "", ""
}

// fluxConnected is the first message of a /v2/listen stream.
func (cn *connection) fluxConnected() {
	cn.enqueue(&seqConnected{wire.Connected{Type: wire.TypeConnected, RequestID: string(cn.info.Session)}})
}

// fluxError is the Error message of a turn-taking stream (Flux's errors are fatal: the
// caller ends the stream).
func (cn *connection) fluxError(code wire.ErrorCode, desc string) *seqFluxError {
	return &seqFluxError{wire.FluxError{Type: wire.TypeError, Code: code, Description: desc, RequestID: string(cn.info.Session)}}
}

// errorMessage is the non-closing Error message of either protocol.
func (cn *connection) errorMessage(code wire.ErrorCode, desc string) any {
	if cn.flux != nil {
		return cn.fluxError(code, desc)
	}
	return wire.NewError(code, desc)
}

// fluxControl handles one text frame of a turn-taking stream. False ends the read loop.
func (cn *connection) fluxControl(b []byte) bool {
	c, err := wire.ParseFluxControl(b)
	if err != nil {
		code := wire.CodeBadRequest
		if errors.Is(err, wire.ErrUnknownControl) {
			code = wire.CodeUnknownMessage
		}
		cn.fail(wire.CloseBadRequest, code, err.Error())
		return false
	}
	switch c.Type {
	case wire.ControlKeepAlive:
		cn.keepAlive()
	case wire.ControlCloseStream:
		cn.beginEnding(wire.CloseNormal)
	case wire.ControlForceEndTurn:
		cn.mu.Lock()
		defer cn.mu.Unlock()
		if cn.ending {
			return true
		}
		// A Finalize chunk is ForceEndTurn in a turn session (bus.StreamOptions.Turns).
		if err := cn.stream.Send(nil, 0, bus.FlagFinalize); err != nil {
			cn.log.Error("send force end turn", "err", err)
		}
	case wire.ControlConfigure:
		return cn.fluxConfigure(c.Configure)
	}
	return true
}

// fluxConfigure applies a Configure message, all of it or nothing, and answers
// ConfigureSuccess with every current value or ConfigureFailure saying why.
func (cn *connection) fluxConfigure(c *wire.FluxConfigure) bool {
	refuse := func(why string) bool {
		cn.log.Info("configure refused", "reason", why)
		return cn.enqueue(&seqConfigureFailure{wire.ConfigureFailure{Type: wire.TypeConfigureFailure,
			RequestID: string(cn.info.Session), Description: why}})
	}
	// A Configure reaches the worker over NATS and is logged: a client may send at most
	// configureBurst at once and configureRate a second after that.
	now := time.Now()
	f := cn.flux
	f.configTokens = min(configureBurst, f.configTokens+now.Sub(f.configAt).Seconds()*configureRate)
	if f.configAt.IsZero() {
		f.configTokens = configureBurst
	}
	f.configAt = now
	if f.configTokens < 1 {
		return cn.enqueue(&seqConfigureFailure{wire.ConfigureFailure{Type: wire.TypeConfigureFailure,
			RequestID: string(cn.info.Session), Description: fmt.Sprintf("too many Configure messages: at most %d a second", configureRate)}})
	}
	f.configTokens--
	switch {
	case c.HasKeyterms:
		return refuse("keyterms cannot change mid-stream on Earshot (they are part of the decoder's prompt from the start); open a new stream with keyterm=")
	case c.HasHints:
		return refuse("language_hints cannot change mid-stream on Earshot; open a new stream with language_hint=")
	}
	t, err := c.Apply(cn.flux.turns)
	if err != nil {
		return refuse(err.Error())
	}
	if t != cn.flux.turns {
		tc, ok := cn.stream.(TurnConfigurer)
		if !ok {
			return refuse("this transcriber cannot change end-of-turn settings mid-stream")
		}
		if cn.isEnding() {
			return refuse("the stream is closing")
		}
		next := fluxState{turns: t}
		if err := tc.Configure(*next.turnOptions()); err != nil {
			cn.log.Warn("configure", "err", err)
			return refuse("the transcriber did not take the new settings: " + err.Error())
		}
		cn.flux.turns = t
		cn.log.Info("configured", "eot_threshold", t.EOTThreshold, "eager_eot_threshold", t.EagerEOTThreshold,
			"eot_timeout_ms", t.EOTTimeoutMs)
	}
	return cn.enqueue(&seqConfigureSuccess{wire.ConfigureSuccess{Type: wire.TypeConfigureSuccess,
		RequestID: string(cn.info.Session), Thresholds: cn.flux.turns.ToWire(),
		Keyterms: append([]string{}, cn.params.Keyterms...)}})
}

// relayTurn maps one result of a turn-taking connection; false ends the loop. Partials,
// finals and VAD events are internal here: the client hears turns.
func (cn *connection) relayTurn(r bus.Result) bool {
	switch r.Type {
	case bus.ResultFinal:
		if r.ChunkSentNs > 0 {
			cn.srv.m.finalLat.Observe(time.Since(time.Unix(0, r.ChunkSentNs)).Seconds())
		}
		return true
	case bus.ResultTurn:
	case bus.ResultError:
		return cn.relayError(r)
	default:
		return true
	}
	idx, drop := cn.flux.clientTurn(r.Event, r.TurnIndex)
	if drop {
		return true
	}
	words := make([]wire.FluxWord, len(r.Words))
	for i, w := range r.Words {
		words[i] = wire.FluxWord{Word: w.Punctuated, Confidence: w.Confidence, Start: w.Start, End: w.End}
		if words[i].Word == "" {
			words[i].Word = w.Word
		}
	}
	ti := wire.TurnInfo{
		Type: wire.TypeTurnInfo, RequestID: string(cn.info.Session), Event: r.Event, TurnIndex: idx,
		AudioWindowStart: round3(r.Start), AudioWindowEnd: round3(r.Start + r.Duration),
		Transcript: r.Text, Words: words, EndOfTurnConfidence: round3(r.EOTConfidence),
		LanguagesHinted: cn.flux.hints,
	}
	if r.Event == bus.TurnEnd {
		ti.Trigger = r.Trigger
	}
	if cn.flux.detecting && r.Language != "" {
		ti.Languages = []string{r.Language}
	}
	endMs := int64(-1)
	if r.Event == bus.TurnEnd {
		// EndOfTurn is what a final is on /v1: the audio under it is billed before it
		// goes out, and once written the stream's resume record knows the client has it.
		cn.flushMeter()
		endMs = int64(math.Round((r.Start + r.Duration) * 1000))
	}
	return cn.enqueueFinal(&seqTurnInfo{ti}, endMs)
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }
