package twilio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/internal/bus"
)

// call is one Media Streams connection. run and everything it calls happen on one
// goroutine; the per-track result pumps touch only mu-guarded state and the delivery.
type call struct {
	h      *Handler
	log    *slog.Logger
	conn   *websocket.Conn
	tenant bus.TenantID // from the URL secret, or set at start

	start     *StartInfo
	model     string
	startedAt time.Time
	tracks    map[string]*track
	order     []string // track names in start order
	dlv       *delivery
	dtmf      strings.Builder
	marks     []string
	dropped   int    // marks and digits not kept (over MaxMarks, MaxDTMF)
	release   func() // gives back its place among the tenant's MaxCallsPerTenant; nil: holds none
	connected int    // "connected" messages before start
	stopWatch chan struct{}

	cutMu  sync.Mutex
	cutWhy string // why the watcher ended the call (quota_exhausted, max_duration)

	turnCfg *turnConfig // turn-taking; nil: off

	mu           sync.Mutex
	turns        []Turn  // finals, or with turn-taking the ended turns
	bargeIns     int     // barge_in events
	bargeLatency []int64 // their latency_ms (at most bargeLatencyKept)
	agent        *track  // the outbound track once open (barge-in checks its floor)
}

// track is one side of the call: its session, decoder, reorder window and meter.
type track struct {
	name, speaker string
	session       bus.SessionID
	stream        gateway.Stream
	pipe          *ingest.Pipeline
	ro            *reorder
	meter         gateway.Meter
	budget        *gateway.Budget // the track's share of the tenant's quota; nil: not capped
	received      int64           // µ-law samples received (billed)
	total         int64           // samples sent on, gap fill included
	sent          uint64          // 16 kHz samples sent to the session: its stream position
	arr           *arrivals       // when the chunk holding each position arrived
	floor         *floor          // turn state (turn-taking); guarded by call.mu
	billedMs      int64
	failed        bool
	closed        chan struct{} // ResultClosed seen, or results ended
	closeOnce     sync.Once
	pumpDone      chan struct{}
}

func (c *call) run() {
	reason, err := c.read()
	if err != nil {
		c.log.Info("twilio stream refused or broken", "err", err)
		c.sendError(err)
		if c.dlv != nil {
			_ = c.dlv.enqueue(c.event(TypeError, nil, func(e *CallEvent) { e.Error = err.Error() }))
		}
	}
	c.finish(reason)
}

// read runs the message loop until the stream ends; it returns why, and the error
// that ended it, if any.
func (c *call) read() (reason string, err error) {
	idle := c.h.cfg.IdleTimeout
	startBy := time.Now().Add(c.h.cfg.StartTimeout)
	for {
		deadline := time.Now().Add(idle)
		if c.start == nil && startBy.Before(deadline) {
			deadline = startBy
		}
		_ = c.conn.SetReadDeadline(deadline)
		typ, data, err := c.conn.ReadMessage()
		if err != nil {
			var ne net.Error
			switch {
			case c.cut() != "":
				return c.cut(), nil
			case c.h.ctx.Err() != nil:
				return "shutdown", nil
			case c.start == nil && errors.As(err, &ne) && ne.Timeout():
				return "error", fmt.Errorf("%w: no start message within %v", ErrProtocol, c.h.cfg.StartTimeout)
			case errors.As(err, &ne) && ne.Timeout():
				c.log.Warn("twilio stream idle: finalising without stop", "idle", idle)
				return "idle_timeout", nil
			default:
				c.log.Info("twilio stream disconnected without stop", "err", err)
				return "disconnected", nil
			}
		}
		if typ != websocket.TextMessage {
			c.log.Debug("ignoring non-text message", "type", typ)
			continue
		}
		m, err := ParseMessage(data)
		if err != nil {
			return "error", err
		}
		if c.start == nil && m.Event != EventConnected && m.Event != EventStart {
			// Nothing is kept for a caller that has not authenticated with start.
			return "error", fmt.Errorf("%w: %s before start (only connected may come first)", ErrProtocol, m.Event)
		}
		switch m.Event {
		case EventConnected:
			if c.connected++; c.connected > 1 {
				return "error", fmt.Errorf("%w: connected sent %d times", ErrProtocol, c.connected)
			}
			c.log.Debug("twilio connected", "protocol", m.Protocol, "version", m.Version)
		case EventStart:
			if c.start != nil {
				return "error", fmt.Errorf("%w: second start message", ErrProtocol)
			}
			if err := c.begin(m.Start); err != nil {
				return "error", err
			}
		case EventMedia:
			if c.start == nil {
				return "error", fmt.Errorf("%w: media before start", ErrProtocol)
			}
			if err := c.media(m.Decoded()); err != nil {
				return "error", err
			}
		case EventDTMF:
			if c.dtmf.Len()+len(m.DTMF.Digit) <= MaxDTMF {
				c.dtmf.WriteString(m.DTMF.Digit)
			} else {
				c.dropped++
			}
		case EventMark:
			if len(c.marks) < MaxMarks {
				name := m.Mark.Name
				if len(name) > MaxMarkName {
					name = name[:MaxMarkName]
				}
				c.marks = append(c.marks, strings.Clone(name))
			} else {
				c.dropped++
			}
		case EventStop:
			return "stop", nil
		default:
			c.log.Debug("ignoring unknown twilio event", "event", m.Event)
		}
	}
}

// begin handles start: authenticate (if the URL had no secret), check the format and
// quota, start delivery, open a session and a meter per track.
func (c *call) begin(s *StartInfo) error {
	cfg := &c.h.cfg
	ctx, cancel := context.WithTimeout(c.h.ctx, cfg.OpenTimeout)
	defer cancel()
	if c.tenant == "" {
		tenant, err := cfg.Tenants.Resolve(ctx, s.CustomParameters["secret"])
		if err != nil {
			return fmt.Errorf("%w: customParameters secret: %w", ErrUnauthorized, err)
		}
		c.tenant = tenant
	}
	if f := s.MediaFormat; f.Encoding != "audio/x-mulaw" || f.SampleRate != ingest.G711Rate || f.Channels != 1 {
		return fmt.Errorf("%w: %s %d Hz %d ch (want audio/x-mulaw 8000 Hz 1 ch)", ErrMediaFormat, f.Encoding, f.SampleRate, f.Channels)
	}
	if !bus.ValidToken(s.CallSID) {
		return fmt.Errorf("%w: callSid %q", ErrProtocol, s.CallSID)
	}
	c.model = cfg.Model
	if m := s.CustomParameters["model"]; m != "" {
		if !bus.ValidModel(m) {
			return fmt.Errorf("%w: model %q", ErrProtocol, m)
		}
		c.model = m
	}
	c.log = c.log.With("tenant", c.tenant, "call", s.CallSID, "stream", s.StreamSID)
	release, err := c.h.takeCall(ctx, c.tenant, s.CallSID)
	if err != nil {
		return err
	}
	c.release = release
	if cfg.Quota != nil {
		if err := cfg.Quota.Check(ctx, c.tenant, c.model); err != nil {
			return fmt.Errorf("quota: %w", err)
		}
	}
	var url, secret string
	if cfg.Webhooks != nil {
		var err error
		if url, secret, err = cfg.Webhooks.WebhookFor(ctx, c.tenant); err != nil {
			c.log.Error("webhook lookup failed: events go to NATS only", "err", err)
		}
	}
	c.start, c.startedAt = s, time.Now()
	c.dlv = newDelivery(cfg.Delivery, cfg.Publisher, c.log, c.tenant, s.CallSID, url, secret)
	go c.dlv.run(c.h.ctx)
	// Checked once events can reach the tenant: a bad value ends the call with a
	// call.error naming the parameter (and a summary), as a track that cannot open does.
	if c.turnCfg, err = turnParams(s.CustomParameters, cfg); err != nil {
		return err
	}
	c.tracks = map[string]*track{}
	for _, name := range s.Tracks {
		t, err := c.openTrack(ctx, name)
		if err != nil {
			return err
		}
		c.tracks[name] = t
		c.order = append(c.order, name)
		if name == TrackOutbound {
			c.mu.Lock()
			c.agent = t
			c.mu.Unlock()
		}
	}
	c.stopWatch = make(chan struct{})
	go c.watch()
	c.log.Info("call started", "tracks", s.Tracks, "model", c.model, "webhook", url != "", "turns", c.turnCfg != nil)
	return nil
}

// watch ends the call, as the gateway ends a live stream, when the tenant's quota runs
// out (checked every QuotaRecheck) or the call reaches MaxCallDuration: it records why
// and closes the connection, and the call then finishes and bills what it accepted.
func (c *call) watch() {
	cfg := &c.h.cfg
	tick := time.NewTicker(cfg.QuotaRecheck)
	defer tick.Stop()
	maxLen := time.NewTimer(cfg.MaxCallDuration)
	defer maxLen.Stop()
	for {
		select {
		case <-c.stopWatch:
			return
		case <-maxLen.C:
			c.cutCall("max_duration")
			return
		case <-tick.C:
			if cfg.Quota == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(c.h.ctx, cfg.QuotaRecheck)
			c.renewBudgets(ctx)
			err := cfg.Quota.Check(ctx, c.tenant, c.model)
			cancel()
			switch {
			case err == nil:
			case errors.Is(err, gateway.ErrNoBalance), errors.Is(err, gateway.ErrQuotaExhausted), errors.Is(err, gateway.ErrModelNotInPlan):
				c.log.Info("call cut: quota", "err", err)
				c.cutCall("quota_exhausted")
				return
			default:
				c.log.Warn("quota recheck", "err", err)
			}
		}
	}
}

// billable is the audio the track's meter has billed so far (-1: it does not say).
func (t *track) billable() int64 {
	if m, ok := t.meter.(interface{ Total() int64 }); ok {
		return m.Total()
	}
	return -1
}

// releaseBudget ends the track's hold at what it billed.
func (t *track) releaseBudget() {
	if t.budget != nil {
		t.budget.Release(max(0, t.billable()))
		t.budget = nil
	}
}

// renewBudgets keeps every track's hold alive.
func (c *call) renewBudgets(ctx context.Context) {
	for _, name := range c.order {
		if t := c.tracks[name]; t.budget != nil {
			if b := t.billable(); b >= 0 {
				t.budget.Renew(ctx, b)
			}
		}
	}
}

func (c *call) cutCall(why string) {
	c.cutMu.Lock()
	if c.cutWhy == "" {
		c.cutWhy = why
	}
	c.cutMu.Unlock()
	_ = c.conn.NetConn().Close() // unblocks read; the call then finishes
}

func (c *call) cut() string {
	c.cutMu.Lock()
	defer c.cutMu.Unlock()
	return c.cutWhy
}

func (c *call) openTrack(ctx context.Context, name string) (*track, error) {
	cfg := &c.h.cfg
	pipe, err := ingest.NewPipeline(ingest.Format{Encoding: ingest.Mulaw, SampleRate: ingest.G711Rate, Channels: 1}, ingest.ModeDownmix)
	if err != nil {
		return nil, err
	}
	t := &track{name: name, speaker: Speaker(name), session: bus.NewSessionID(), pipe: pipe,
		ro: newReorder(cfg.ReorderWindow), closed: make(chan struct{}), pumpDone: make(chan struct{}),
		arr: &arrivals{}, floor: &floor{}}
	// The track holds its share of what the tenant has left, as a live stream does, so
	// that calls and streams on every gateway stop together where it runs out.
	if cfg.Quota != nil {
		info := gateway.SessionInfo{Session: t.session, Tenant: c.tenant, Model: c.model, Billed: t.session, Channels: 1}
		if t.budget, err = gateway.OpenBudget(ctx, cfg.Quota, info, c.log); err != nil {
			return nil, fmt.Errorf("quota: %w", err)
		}
	}
	req := bus.SessionRequest{Session: t.session, Tenant: c.tenant, Model: c.model, Channels: 1,
		Priority: bus.PriorityLive, Options: bus.StreamOptions{InterimResults: !cfg.NoPartials,
			Language: c.start.CustomParameters["language"]}}
	if c.turnCfg != nil {
		o := c.turnCfg.opts
		req.Options.Turns = &o
	}
	if t.stream, err = cfg.Backend.Open(ctx, req); err != nil {
		t.releaseBudget()
		return nil, fmt.Errorf("open %s track: %w", name, err)
	}
	if t.meter, err = cfg.Metering.Start(ctx, c.tenant, c.model, t.session, c.start.CallSID, name); err != nil {
		t.releaseBudget()
		t.stream.Close()
		return nil, fmt.Errorf("start meter of %s track: %w", name, err)
	}
	go c.pump(t)
	return t, nil
}

// media reorders one chunk and sends what is ready.
func (c *call) media(m Media) error {
	t, ok := c.tracks[m.Track]
	if !ok {
		return fmt.Errorf("%w: media of track %q, which start did not announce", ErrProtocol, m.Track)
	}
	// Lost chunks are filled with silence only up to the time that really passed
	// since the call started: a forged chunk number cannot make hours of audio.
	allowed := int64((time.Since(c.startedAt)+fillSlack)/time.Millisecond) * ingest.G711Rate / 1000
	t.ro.fillBudget = max(0, int((allowed-t.total-int64(len(m.Audio)))/FrameBytes))
	rels, err := t.ro.Add(m.Chunk, m.Audio, time.Since(c.startedAt))
	if err != nil {
		return err
	}
	for _, r := range rels {
		c.push(t, r)
	}
	return nil
}

func (c *call) push(t *track, r release) {
	out, err := t.pipe.Push(r.audio)
	if err != nil { // cannot happen for µ-law; keep the clock anyway
		c.log.Error("decode µ-law", "err", err)
		return
	}
	if !r.filler && t.budget != nil && !t.failed {
		// Each frame within the track's share of the tenant's quota (asked for in
		// advance): the call ends where the balance does, on every gateway.
		if b := t.billable(); b >= 0 {
			if err := t.budget.Allow(c.h.ctx, b); err != nil {
				c.log.Info("call cut: quota", "track", t.name, "err", err)
				c.cutCall("quota_exhausted")
				return
			}
		}
	}
	t.total += int64(len(r.audio))
	if !r.filler {
		t.received += int64(len(r.audio))
		if ms := t.received * 1000 / ingest.G711Rate; ms > t.billedMs && !t.failed {
			t.meter.Add(ms - t.billedMs)
			t.billedMs = ms
		}
	}
	t.arr.add(t.sent, r.at)
	c.send(t, out[0], 0)
}

func (c *call) send(t *track, x []float32, flags bus.ChunkFlag) {
	if t.failed || (len(x) == 0 && flags == 0) {
		return
	}
	t.sent += uint64(len(x))
	if err := t.stream.Send(ingest.ToInt16(x), 0, flags); err != nil {
		t.failed = true
		c.log.Error("track stream failed; its audio is no longer transcribed or billed", "track", t.name, "err", err)
		_ = c.dlv.enqueue(c.event(TypeError, t, func(e *CallEvent) { e.Error = err.Error() }))
	}
}

// pump turns one track's results into call events.
func (c *call) pump(t *track) {
	defer close(t.pumpDone)
	defer t.closeOnce.Do(func() { close(t.closed) })
	for r := range t.stream.Results() {
		switch r.Type {
		case bus.ResultPartial, bus.ResultFinal:
			text := strings.TrimSpace(r.Text)
			if text == "" {
				continue
			}
			typ := TypePartial
			if r.Type == bus.ResultFinal {
				typ = TypeFinal
				if c.turnCfg == nil { // with turn-taking the summary's turns are the ended turns
					c.mu.Lock()
					c.turns = append(c.turns, Turn{Speaker: t.speaker, Start: r.Start, End: r.Start + r.Duration, Text: text})
					c.mu.Unlock()
				}
			} else if c.h.cfg.NoPartials {
				continue // a turn session decodes partials for its updates anyway
			}
			_ = c.dlv.enqueue(c.event(typ, t, func(e *CallEvent) {
				e.Text, e.Start, e.End, e.IsFinal, e.Words = text, r.Start, r.Start+r.Duration, typ == TypeFinal, r.Words
			}))
		case bus.ResultTurn:
			c.turnEvent(t, r)
		case bus.ResultError:
			c.log.Error("track transcription failed", "track", t.name, "code", r.Code, "msg", r.Message)
			_ = c.dlv.enqueue(c.event(TypeError, t, func(e *CallEvent) { e.Error = string(r.Code) + ": " + r.Message }))
			t.closeOnce.Do(func() { close(t.closed) })
		case bus.ResultClosed:
			t.closeOnce.Do(func() { close(t.closed) })
		}
	}
}

func (c *call) event(typ string, t *track, fill func(*CallEvent)) *CallEvent {
	e := &CallEvent{Type: typ, CallSID: c.start.CallSID, StreamSID: c.start.StreamSID, At: time.Now().UTC()}
	if t != nil {
		e.Speaker, e.Track = t.speaker, t.name
	}
	fill(e)
	return e
}

// finish ends every track (flushing the reorder window and the resampler), waits for
// the last finals, closes streams and meters, sends the summary and waits for the
// delivery of the call's events.
func (c *call) finish(reason string) {
	if c.release != nil {
		defer c.release()
	}
	if c.stopWatch != nil {
		close(c.stopWatch)
	}
	if c.start == nil {
		_ = c.conn.Close()
		return
	}
	for _, name := range c.order {
		t := c.tracks[name]
		t.ro.fillBudget = 0 // at the end, a gap is not filled (nothing follows it)
		for _, r := range t.ro.Flush(time.Since(c.startedAt)) {
			c.push(t, r)
		}
		c.send(t, t.pipe.Flush()[0], 0)
		c.send(t, nil, bus.FlagEnd)
	}
	deadline := time.NewTimer(c.h.cfg.FinalTimeout)
	defer deadline.Stop()
	for _, name := range c.order {
		t := c.tracks[name]
		if t.failed {
			continue
		}
		select {
		case <-t.closed:
		case <-deadline.C:
			c.log.Warn("final results did not arrive in time", "track", name, "timeout", c.h.cfg.FinalTimeout)
		}
	}
	for _, name := range c.order {
		t := c.tracks[name]
		t.stream.Close()
		<-t.pumpDone
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.h.ctx), 5*time.Second)
		if err := t.meter.Close(ctx); err != nil {
			c.log.Error("meter close failed", "track", name, "err", err)
		}
		cancel()
		t.releaseBudget()
	}
	sum := c.summary(reason)
	_ = c.dlv.enqueue(c.event(TypeSummary, nil, func(e *CallEvent) { e.Summary, e.Start, e.End = sum, 0, float64(sum.DurationMs)/1000 }))
	_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, reason),
		time.Now().Add(time.Second))
	_ = c.conn.Close()
	c.dlv.close()
	<-c.dlv.done
	c.log.Info("call ended", "reason", reason, "duration_ms", sum.DurationMs, "audio_ms", sum.AudioMs, "turns", len(sum.Turns))
}

func (c *call) summary(reason string) *CallSummary {
	c.mu.Lock()
	turns := slices.Clone(c.turns)
	c.mu.Unlock()
	sort.SliceStable(turns, func(i, j int) bool {
		if turns[i].Start != turns[j].Start {
			return turns[i].Start < turns[j].Start
		}
		return turns[i].Speaker == "caller" && turns[j].Speaker != "caller" // the caller first on a tie
	})
	s := &CallSummary{Turns: turns, AudioMs: map[string]int64{}, Words: map[string]int{}, StartedAt: c.startedAt.UTC(),
		EndedAt: time.Now().UTC(), Reason: reason, DTMF: c.dtmf.String(), Marks: c.marks, Dropped: c.dlv.droppedPartials(), EventsNotKept: c.dropped}
	if s.Turns == nil {
		s.Turns = []Turn{}
	}
	if tc := c.turnCfg; tc != nil {
		c.mu.Lock()
		s.TurnTaking = &TurnTaking{EOTThreshold: tc.opts.EOTThreshold, EagerEOTThreshold: tc.opts.EagerEOTThreshold,
			EOTTimeoutMs: tc.opts.EOTTimeoutMs, Updates: tc.updates, BargeIns: c.bargeIns, BargeInLatencyMs: slices.Clone(c.bargeLatency)}
		c.mu.Unlock()
	}
	var b strings.Builder
	for _, t := range turns {
		fmt.Fprintf(&b, "%s: %s\n", t.Speaker, t.Text)
		s.Words[t.Speaker] += len(strings.Fields(t.Text))
	}
	s.Transcript = strings.TrimSuffix(b.String(), "\n")
	for _, name := range c.order {
		t := c.tracks[name]
		s.Speakers = append(s.Speakers, t.speaker)
		s.AudioMs[t.speaker] = t.billedMs
		s.DurationMs = max(s.DurationMs, t.total*1000/ingest.G711Rate)
		if t.ro.filled > 0 {
			if s.Lost == nil {
				s.Lost = map[string]int{}
			}
			s.Lost[t.speaker] = t.ro.filled
		}
		if t.ro.duplicates > 0 {
			if s.Duplicates == nil {
				s.Duplicates = map[string]int{}
			}
			s.Duplicates[t.speaker] = t.ro.duplicates
		}
	}
	return s
}

// sendError tells the peer why the stream ends and closes it (1008 for protocol and
// auth errors, 1011 otherwise). Twilio ignores the message; it helps other senders.
func (c *call) sendError(err error) {
	code := websocket.CloseInternalServerErr
	if errors.Is(err, ErrProtocol) || errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrMediaFormat) || errors.Is(err, ErrTooManyCalls) ||
		errors.Is(err, ErrParameter) {
		code = websocket.ClosePolicyViolation
	}
	b, _ := json.Marshal(map[string]any{"event": "error", "error": map[string]any{"code": code, "message": err.Error()}})
	_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_ = c.conn.WriteMessage(websocket.TextMessage, b)
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, msg), time.Now().Add(time.Second))
}
