package worker

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/transcriber"
)

// ErrConnClosed is returned by Worker.Run when its NATS connection closes under it.
var ErrConnClosed = errors.New("transcriber: NATS connection closed")

// Defaults of Config.
const (
	DefaultDrainTimeout = 30 * time.Second
	DefaultIdleTimeout  = 30 * time.Second
	DefaultMaxChannels  = 8
)

// Config configures a Worker. Zero values take the defaults.
type Config struct {
	ID         bus.WorkerID // must pass bus.ValidToken
	Log        *slog.Logger
	Registerer prometheus.Registerer // nil: metrics go to a private registry
	// DrainTimeout bounds how long a draining worker waits for live sessions to end
	// before it closes them with CodeShuttingDown.
	DrainTimeout time.Duration
	// IdleTimeout closes a session that received no chunk (an empty chunk is a
	// keep-alive) for this long, until its End chunk: its gateway is gone.
	IdleTimeout time.Duration
	// MaxChannels is the most channels one session may ask for.
	MaxChannels int
}

// Worker serves sessions from a transcriber.SessionFactory over NATS. For every model it is in
// the queue group QueueWorkers(model) on SessionRequestSubject(model) only while it
// has a free slot, so NATS itself routes requests to capacity. Create with New,
// then call Run once.
type Worker struct {
	nc  *nats.Conn
	f   transcriber.SessionFactory
	cfg Config
	log *slog.Logger
	m   *metrics

	changed chan struct{} // a session ended (buffered 1, for the drain wait)

	mu       sync.Mutex
	running  bool
	draining bool
	subs     map[string]*nats.Subscription // model → request subscription, while free
	sessions map[sessionKey]*session
	live     map[string]int // model → sessions registered
	pending  map[string]int // model → Opens in progress
}

type sessionKey struct {
	tenant  bus.TenantID
	session bus.SessionID
}

// New checks cfg, applies defaults and registers the worker's metrics.
func New(nc *nats.Conn, f transcriber.SessionFactory, cfg Config) (*Worker, error) {
	if nc == nil || f == nil {
		return nil, errors.New("transcriber: New needs a NATS connection and a session factory")
	}
	if !bus.ValidToken(string(cfg.ID)) {
		return nil, fmt.Errorf("transcriber: worker id %q is not a valid subject token", cfg.ID)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxChannels <= 0 {
		cfg.MaxChannels = DefaultMaxChannels
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Worker{
		nc: nc, f: f, cfg: cfg, m: m,
		log:      cfg.Log.With("component", "worker", "worker", cfg.ID),
		changed:  make(chan struct{}, 1),
		subs:     make(map[string]*nats.Subscription),
		sessions: make(map[sessionKey]*session),
		live:     make(map[string]int),
		pending:  make(map[string]int),
	}, nil
}

// Run serves sessions and heartbeats until ctx is cancelled, then drains: it stops
// taking sessions (heartbeat Draining=true), lets live sessions finish for up to
// DrainTimeout, closes the rest with CodeShuttingDown so gateways fail over, and returns
// nil. It returns ErrConnClosed (wrapped) at once when the NATS connection closes.
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.running {
		w.mu.Unlock()
		return errors.New("transcriber: Worker.Run called twice")
	}
	w.running = true
	w.mu.Unlock()

	ctl, err := w.nc.Subscribe(bus.ControlSubject(w.cfg.ID), w.onControl)
	if err != nil {
		return fmt.Errorf("transcriber: worker %s: subscribe to control: %w", w.cfg.ID, err)
	}
	defer func() { _ = ctl.Unsubscribe() }()
	if err := w.rebalance(); err != nil {
		return err
	}
	if err := w.nc.Flush(); err != nil {
		return fmt.Errorf("transcriber: worker %s: flush subscriptions: %w", w.cfg.ID, err)
	}
	w.log.Info("worker serving", "models", w.f.Models())
	w.heartbeat()
	tick := time.NewTicker(bus.HeartbeatInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return w.drain()
		case <-tick.C:
			if w.nc.IsClosed() {
				w.abandon()
				return fmt.Errorf("worker %s: %w", w.cfg.ID, ErrConnClosed)
			}
			w.reapIdle()
			if err := w.rebalance(); err != nil {
				w.log.Warn("update request subscriptions", "err", err)
			}
			w.heartbeat()
		}
	}
}

// drain is Run's shutdown: stop taking sessions, wait, then close what is left.
func (w *Worker) drain() error {
	w.mu.Lock()
	w.draining = true
	w.mu.Unlock()
	_ = w.rebalance()
	w.heartbeat()
	w.log.Info("worker draining", "live", w.liveCount(), "timeout", w.cfg.DrainTimeout)

	deadline := time.NewTimer(w.cfg.DrainTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(bus.HeartbeatInterval)
	defer tick.Stop()
wait:
	for w.liveCount() > 0 && !w.nc.IsClosed() {
		select {
		case <-deadline.C:
			break wait
		case <-w.changed:
		case <-tick.C:
			w.reapIdle()
			w.heartbeat()
		}
	}
	for _, ws := range w.snapshot() {
		ws.fail(bus.CodeShuttingDown, "worker is shutting down; reconnect to continue")
	}
	w.heartbeat()
	if !w.nc.IsClosed() {
		if err := w.nc.FlushTimeout(2 * time.Second); err != nil {
			w.log.Warn("flush at shutdown", "err", err)
		}
	}
	w.log.Info("worker drained")
	return nil
}

// abandon closes every session without publishing anything: the connection is gone.
func (w *Worker) abandon() {
	for _, ws := range w.snapshot() {
		ws.fail(bus.CodeShuttingDown, "worker lost its NATS connection")
	}
}

func (w *Worker) snapshot() []*session {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*session, 0, len(w.sessions))
	for _, ws := range w.sessions {
		out = append(out, ws)
	}
	return out
}

func (w *Worker) liveCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.sessions)
}

// freeLocked is the number of sessions model can still take here. It trusts the
// factory's count and the worker's own, whichever is lower.
func (w *Worker) freeLocked(model string) int {
	c := w.f.Capacity(model)
	free := min(c.Free, c.Slots-w.live[model]) - w.pending[model]
	return max(free, 0)
}

// rebalance subscribes to the request subject of every model with a free slot and
// drains the subscription of every model without one (or all, when draining). A
// draining subscription still answers what NATS already delivered to it, with
// CodeNoCapacity, so no request is left without a reply.
func (w *Worker) rebalance() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for _, model := range w.f.Models() {
		want := !w.draining && w.freeLocked(model) > 0
		sub := w.subs[model]
		switch {
		case want && sub == nil:
			if !bus.ValidModel(model) {
				errs = append(errs, fmt.Errorf("model name %q cannot be carried on a subject", model))
				continue
			}
			s, err := w.nc.QueueSubscribe(bus.SessionRequestSubject(model), bus.QueueWorkers(model),
				func(msg *nats.Msg) { w.handleRequest(model, msg) })
			if err != nil {
				errs = append(errs, fmt.Errorf("subscribe %s: %w", bus.SessionRequestSubject(model), err))
				continue
			}
			w.subs[model] = s
		case !want && sub != nil:
			if err := sub.Drain(); err != nil {
				_ = sub.Unsubscribe()
			}
			delete(w.subs, model)
		}
	}
	return errors.Join(errs...)
}

func (w *Worker) handleRequest(model string, msg *nats.Msg) {
	reply := func(g bus.SessionGrant) {
		if msg.Reply == "" {
			return
		}
		g.Worker = w.cfg.ID
		if g.Code != "" {
			w.m.errors.WithLabelValues(string(g.Code)).Inc()
		}
		data, _ := json.Marshal(g)
		if err := msg.Respond(data); err != nil {
			w.log.Warn("reply to session request", "err", err)
		}
	}
	var req bus.SessionRequest
	if err := json.Unmarshal(msg.Data, &req); err != nil {
		reply(bus.SessionGrant{Code: bus.CodeBadRequest, Message: "session request is not valid JSON"})
		return
	}
	g := bus.SessionGrant{Session: req.Session}
	if code, why := w.validate(model, &req); code != "" {
		g.Code, g.Message = code, why
		reply(g)
		return
	}
	if msg.Reply == "" {
		return // nobody to grant to
	}
	key := sessionKey{req.Tenant, req.Session}
	w.mu.Lock()
	switch {
	case w.draining:
		w.mu.Unlock()
		g.Code, g.Message = bus.CodeShuttingDown, "worker is draining"
		reply(g)
		return
	case w.sessions[key] != nil:
		// A repeated request (a gateway retrying): the session is already ours.
		w.mu.Unlock()
		reply(g)
		return
	case w.freeLocked(model) <= 0:
		w.mu.Unlock()
		g.Code, g.Message = bus.CodeNoCapacity, "no free slot for model "+model
		reply(g)
		return
	}
	w.pending[model]++
	w.mu.Unlock()

	ws, err := w.open(req)

	w.mu.Lock()
	w.pending[model]--
	w.mu.Unlock()
	if err != nil {
		w.log.Warn("open session", "session", req.Session, "err", err)
		g.Code, g.Message = errorCode(err), err.Error()
		var oe *transcriber.OptionError
		if errors.As(err, &oe) {
			g.Message = oe.Error() // "param: reason", what the gateway tells the client
		}
		_ = w.rebalance()
		reply(g)
		return
	}
	_ = w.rebalance()
	ws.log.Info("session granted", "channels", req.Channels, "resume_sample", req.ResumeSample)
	reply(g)
}

func (w *Worker) validate(model string, req *bus.SessionRequest) (bus.ErrorCode, string) {
	switch {
	case !bus.ValidToken(string(req.Session)):
		return bus.CodeBadRequest, "invalid session id"
	case !bus.ValidToken(string(req.Tenant)):
		return bus.CodeBadRequest, "invalid tenant id"
	case req.Model != model:
		return bus.CodeUnknownModel, fmt.Sprintf("request for model %q on the subject of %q", req.Model, model)
	case req.Channels < 0 || req.Channels > w.cfg.MaxChannels:
		return bus.CodeBadRequest, fmt.Sprintf("channels %d out of range 1..%d", req.Channels, w.cfg.MaxChannels)
	}
	if req.Channels == 0 {
		req.Channels = 1
	}
	return "", ""
}

// open opens the session on the factory, registers it and subscribes to its audio.
// The subscription is in place before the caller replies with the grant: NATS keeps the
// order of one connection's protocol lines, so the server has the interest before the
// gateway can see the grant.
func (w *Worker) open(req bus.SessionRequest) (*session, error) {
	ws := &session{
		w:          w,
		req:        req,
		resultSubj: bus.ResultSubject(req.Tenant, req.Session),
		log:        w.log.With("session", req.Session, "tenant", req.Tenant, "model", req.Model),
	}
	ws.lastAudio.Store(time.Now().UnixNano())
	sess, err := w.f.Open(req, ws.emit)
	if err != nil {
		return nil, err
	}
	ws.mu.Lock()
	ws.sess = sess
	ws.mu.Unlock()
	key := sessionKey{req.Tenant, req.Session}
	w.mu.Lock()
	w.sessions[key] = ws
	w.live[req.Model]++
	w.mu.Unlock()
	sub, err := w.nc.Subscribe(bus.AudioSubject(req.Tenant, req.Session), ws.handleChunk)
	if err != nil {
		ws.finish()
		return nil, fmt.Errorf("subscribe to audio of session %s: %w", req.Session, err)
	}
	ws.mu.Lock()
	ws.sub = sub
	ended := ws.ended
	ws.mu.Unlock()
	if ended { // the session ended during Open; finish raced with the subscription
		_ = sub.Unsubscribe()
	}
	w.m.live.WithLabelValues(req.Model).Inc()
	w.m.opened.WithLabelValues(req.Model).Inc()
	return ws, nil
}

// remove forgets a finished session and frees its slot.
func (w *Worker) remove(ws *session) {
	key := sessionKey{ws.req.Tenant, ws.req.Session}
	w.mu.Lock()
	if w.sessions[key] == ws {
		delete(w.sessions, key)
		w.live[ws.req.Model]--
		w.m.live.WithLabelValues(ws.req.Model).Dec()
	}
	w.mu.Unlock()
	select {
	case w.changed <- struct{}{}:
	default:
	}
	if err := w.rebalance(); err != nil {
		w.log.Warn("update request subscriptions", "err", err)
	}
}

// onControl handles a gateway's Control message (bus.ControlSubject of this worker).
func (w *Worker) onControl(msg *nats.Msg) {
	var c bus.Control
	if err := json.Unmarshal(msg.Data, &c); err != nil {
		return
	}
	w.mu.Lock()
	ws := w.sessions[sessionKey{c.Tenant, c.Session}]
	w.mu.Unlock()
	if ws == nil {
		return
	}
	switch {
	case c.Type == bus.ControlRelease && c.Worker != w.cfg.ID:
		ws.release(c.Worker)
	case c.Type == bus.ControlConfigure && c.Turns != nil:
		ws.mu.Lock()
		sess := ws.sess
		ws.mu.Unlock()
		cf, ok := sess.(transcriber.Configurer)
		if !ok {
			return
		}
		if err := cf.Configure(*c.Turns); err != nil {
			ws.log.Warn("configure refused", "err", err) // the gateway checks the values first
		}
	}
}

func (w *Worker) reapIdle() {
	cutoff := time.Now().Add(-w.cfg.IdleTimeout).UnixNano()
	for _, ws := range w.snapshot() {
		if ws.lastAudio.Load() < cutoff && !ws.inputDone.Load() {
			ws.fail(bus.CodeBadRequest, fmt.Sprintf("no audio or keep-alive for %v", w.cfg.IdleTimeout))
		}
	}
}

// heartbeat publishes the worker's capacity and live sessions.
func (w *Worker) heartbeat() {
	if w.nc.IsClosed() {
		return
	}
	hb := bus.Heartbeat{Worker: w.cfg.ID, Models: make(map[string]bus.Capacity), SentAt: time.Now()}
	w.mu.Lock()
	hb.Draining = w.draining
	for _, model := range w.f.Models() {
		c := bus.Capacity{Slots: w.f.Capacity(model).Slots}
		if !w.draining {
			c.Free = w.freeLocked(model)
		}
		hb.Models[model] = c
	}
	hb.Sessions = make([]bus.SessionID, 0, len(w.sessions))
	for k := range w.sessions {
		hb.Sessions = append(hb.Sessions, k.session)
	}
	w.mu.Unlock()
	slices.Sort(hb.Sessions)
	data, _ := json.Marshal(hb)
	if err := w.nc.Publish(bus.HeartbeatSubject(w.cfg.ID), data); err != nil {
		w.log.Warn("publish heartbeat", "err", err)
	}
}

// errorCode maps a factory or session error to the code a gateway sees.
func errorCode(err error) bus.ErrorCode {
	switch {
	case errors.Is(err, transcriber.ErrOverloaded):
		return bus.CodeOverloaded
	case errors.Is(err, bus.ErrNoCapacity):
		return bus.CodeNoCapacity
	case errors.Is(err, transcriber.ErrUnknownModel):
		return bus.CodeUnknownModel
	case errors.Is(err, transcriber.ErrClosed):
		return bus.CodeShuttingDown
	case errors.As(err, new(*transcriber.OptionError)):
		return bus.CodeBadRequest
	default:
		return bus.CodeInternal
	}
}

// session is one session served by the worker.
type session struct {
	w          *Worker
	req        bus.SessionRequest
	resultSubj string
	log        *slog.Logger
	lastAudio  atomic.Int64 // unix ns of the last chunk or keep-alive
	inputDone  atomic.Bool  // the End chunk arrived: silence from the gateway is expected now

	// Audio in order: chunks are written to the session in Seq order. A chunk after a
	// gap is held while the gateway is asked for the missing ones (ResultResend); see
	// handleChunk. Guarded by inMu.
	inMu      sync.Mutex
	lastSeq   uint64            // last chunk written to the session
	held      []*bus.AudioChunk // chunks after a gap, in Seq order
	gapAsks   int               // resend requests for the current gap
	gapTimer  *time.Timer
	gapOpened time.Time

	mu   sync.Mutex
	sess transcriber.Session
	sub  *nats.Subscription
	seq  uint64 // results published
	// recent keeps the last results published (by seq % len), so that the gateway can
	// ask for them again when some were lost on the way (FlagResendResults).
	recent [resultsKept]sentResult
	ended  bool // a terminal result was published (or the session is being finished)
	// closedChannels counts the ResultClosed published (one per channel).
	closedChannels int
	times          [64]chunkTimes
	latest         chunkTimes
	closing        sync.Once
}

// resultsKept is how many recent results a session keeps for the gateway to ask again.
const resultsKept = 64

type sentResult struct {
	seq  uint64
	data []byte
}

type chunkTimes struct {
	seq          uint64
	sentNs, recv int64
}

func (ws *session) handleChunk(msg *nats.Msg) {
	recv := time.Now().UnixNano()
	m := ws.w.m
	c, err := bus.UnmarshalAudioChunk(msg.Data)
	if err != nil {
		m.dropped.WithLabelValues("malformed").Inc()
		ws.log.Debug("malformed chunk", "err", err)
		return
	}
	if c.Session != ws.req.Session || c.Channel >= ws.req.Channels {
		m.dropped.WithLabelValues("foreign").Inc()
		return
	}
	ws.lastAudio.Store(recv)
	if len(c.PCM) == 0 && c.Flags == 0 {
		return // keep-alive
	}
	if c.Flags&bus.FlagResendResults != 0 {
		ws.resendResults(c.Seq, c.StartSample)
		return
	}
	ws.inMu.Lock()
	defer ws.inMu.Unlock()
	switch {
	case c.Seq <= ws.lastSeq:
		m.dropped.WithLabelValues("duplicate").Inc()
		return
	case ws.lastSeq != 0 && c.Seq > ws.lastSeq+1:
		ws.hold(c, recv)
		return
	}
	ws.writeChunk(c, recv)
	for len(ws.held) > 0 && ws.held[0].Seq == ws.lastSeq+1 {
		h := ws.held[0]
		ws.held = ws.held[1:]
		ws.writeChunk(h, recv)
	}
	if ws.gapTimer != nil && len(ws.held) == 0 {
		ws.gapTimer.Stop()
		ws.gapTimer = nil
		m.gaps.WithLabelValues("recovered").Inc()
		ws.log.Info("audio gap recovered", "took", time.Since(ws.gapOpened).Round(time.Millisecond), "resend_requests", ws.gapAsks)
	}
}

// Gap recovery. The gateway keeps every chunk since the last final for failover
// (remote.ReplayBuffer), so a chunk lost on the way can be asked for again.
const (
	resendWait = 250 * time.Millisecond // between resend requests for one gap
	resendMax  = 8                      // requests before the gap is given up (2 s: NATS clients reconnect every 250 ms)
	// maxHeld bounds the chunks held behind a gap (about 5 s of the gateway's 20–100 ms
	// chunks): past it the gap is given up at once.
	maxHeld = 250
)

// hold keeps c, which follows a gap, and asks the gateway for the missing chunks; inMu
// is held. When the gap cannot be filled (resendMax requests unanswered, or maxHeld
// chunks waiting), the held chunks are written anyway: the stream keeps its timeline
// with silence where the audio was lost, as before gap recovery existed.
func (ws *session) hold(c *bus.AudioChunk, recv int64) {
	i, found := slices.BinarySearchFunc(ws.held, c.Seq, func(h *bus.AudioChunk, s uint64) int { return cmp.Compare(h.Seq, s) })
	if found {
		ws.w.m.dropped.WithLabelValues("duplicate").Inc()
		return
	}
	ws.held = slices.Insert(ws.held, i, c)
	if len(ws.held) > maxHeld {
		ws.giveUpGapLocked("too many chunks behind it")
		return
	}
	if ws.gapTimer == nil {
		ws.gapOpened, ws.gapAsks = time.Now(), 0
		ws.w.m.gaps.WithLabelValues("opened").Inc()
		ws.askResendLocked()
		ws.gapTimer = time.AfterFunc(resendWait, ws.gapTick)
	}
}

// askResendLocked asks for the chunks between the last written and the first held.
func (ws *session) askResendLocked() {
	ws.gapAsks++
	from, to := ws.lastSeq+1, ws.held[0].Seq-1
	ws.log.Info("audio gap: asking the gateway to resend", "from_seq", from, "to_seq", to, "request", ws.gapAsks)
	ws.emit(bus.Result{Type: bus.ResultResend, ResendFrom: from, ResendTo: to})
}

func (ws *session) gapTick() {
	ws.inMu.Lock()
	defer ws.inMu.Unlock()
	ws.mu.Lock()
	ended := ws.ended
	ws.mu.Unlock()
	if ended {
		ws.gapTimer, ws.held = nil, nil
		return
	}
	if ws.gapTimer == nil || len(ws.held) == 0 {
		return
	}
	if ws.gapAsks >= resendMax {
		ws.giveUpGapLocked(fmt.Sprintf("no answer to %d resend requests", ws.gapAsks))
		return
	}
	ws.askResendLocked()
	ws.gapTimer = time.AfterFunc(resendWait, ws.gapTick)
}

// giveUpGapLocked writes the held chunks in order, leaving the gap to silence.
func (ws *session) giveUpGapLocked(why string) {
	if ws.gapTimer != nil {
		ws.gapTimer.Stop()
		ws.gapTimer = nil
	}
	missing := ws.held[0].Seq - ws.lastSeq - 1
	ws.log.Warn("audio gap given up: the lost audio is silence to the decoder", "from_seq", ws.lastSeq+1,
		"chunks", missing, "why", why)
	ws.w.m.gaps.WithLabelValues("lost").Inc()
	held := ws.held
	ws.held = nil
	for _, h := range held {
		ws.writeChunk(h, time.Now().UnixNano())
	}
}

// writeChunk writes c to the session (in Seq order); inMu is held.
func (ws *session) writeChunk(c *bus.AudioChunk, recv int64) {
	m := ws.w.m
	ws.lastSeq = c.Seq
	if c.Flags&bus.FlagEnd != 0 {
		// The gateway has sent everything; the session now ends by its own ResultClosed
		// however long the decoding of its backlog takes, not by the idle timer.
		ws.inputDone.Store(true)
	}
	ws.mu.Lock()
	if ws.ended {
		ws.mu.Unlock()
		return
	}
	t := chunkTimes{seq: c.Seq, sentNs: c.SentNs, recv: recv}
	ws.times[c.Seq%uint64(len(ws.times))] = t
	ws.latest = t
	sess := ws.sess
	ws.mu.Unlock()
	m.chunks.WithLabelValues(ws.req.Model).Inc()
	m.audio.WithLabelValues(ws.req.Model).Add(float64(len(c.PCM)) / bus.SampleRate)
	if err := sess.Write(c); err != nil {
		ws.log.Warn("session write", "seq", c.Seq, "err", err)
		ws.fail(errorCode(err), err.Error())
	}
}

// emit is the session's transcriber.Emitter: it stamps and publishes one result. A terminal
// result (closed or error) ends the session.
func (ws *session) emit(r bus.Result) {
	ws.mu.Lock()
	if ws.ended {
		ws.mu.Unlock()
		return
	}
	terminal := r.Type == bus.ResultError
	if r.Type == bus.ResultClosed {
		// A multichannel session closes channel by channel; it ends with the last.
		ws.closedChannels++
		terminal = ws.closedChannels >= max(1, ws.req.Channels)
	}
	if terminal {
		ws.ended = true
	}
	if len(ws.req.Options.Redact) > 0 && (r.Text != "" || len(r.Words) > 0) {
		// Redacted before the result leaves the worker: the unredacted text never
		// crosses NATS.
		text, words, err := transcriber.Redact(r.Text, r.Words, ws.req.Options.Redact)
		if err != nil {
			r = bus.Result{Type: bus.ResultError, Channel: r.Channel, Code: bus.CodeBadRequest, Message: err.Error()}
			terminal, ws.ended = true, true
		} else {
			r.Text, r.Words = text, words
		}
	}
	ws.publishLocked(r)
	ws.mu.Unlock()
	if terminal {
		go ws.finish()
	}
}

// publishLocked stamps r with the session, worker, seq and timings and publishes it.
func (ws *session) publishLocked(r bus.Result) {
	r.Session = ws.req.Session
	r.Worker = ws.w.cfg.ID
	ws.seq++
	r.Seq = ws.seq
	t := ws.latest
	if r.AudioSeq != 0 {
		if tt := ws.times[r.AudioSeq%uint64(len(ws.times))]; tt.seq == r.AudioSeq {
			t = tt
		}
	} else {
		r.AudioSeq = t.seq
	}
	r.ChunkSentNs, r.WorkerRecvNs = t.sentNs, t.recv
	r.WorkerSentNs = time.Now().UnixNano()
	m := ws.w.m
	m.results.WithLabelValues(ws.req.Model, string(r.Type)).Inc()
	if r.Type == bus.ResultError {
		m.errors.WithLabelValues(string(r.Code)).Inc()
	}
	if t.recv != 0 && (r.Type == bus.ResultFinal || r.Type == bus.ResultPartial) {
		m.delay.WithLabelValues(string(r.Type)).Observe(float64(r.WorkerSentNs-t.recv) / 1e9)
	}
	data, err := json.Marshal(r)
	if err != nil {
		ws.log.Error("marshal result", "err", err)
		return
	}
	ws.recent[r.Seq%resultsKept] = sentResult{seq: r.Seq, data: data}
	if err := ws.w.nc.Publish(ws.resultSubj, data); err != nil {
		ws.log.Warn("publish result", "type", r.Type, "seq", r.Seq, "err", err)
	}
}

// resendResults publishes results from..to again, as they were, for a gateway that
// lost them on the way; those no longer kept are gone (the gateway goes on without).
func (ws *session) resendResults(from, to uint64) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	to = min(to, ws.seq)
	if from == 0 || from > to || to-from >= resultsKept {
		ws.log.Info("gateway asked for results not kept", "from_seq", from, "to_seq", to, "last_seq", ws.seq)
		return
	}
	n := 0
	for q := from; q <= to; q++ {
		if sr := ws.recent[q%resultsKept]; sr.seq == q {
			if err := ws.w.nc.Publish(ws.resultSubj, sr.data); err != nil {
				ws.log.Warn("resend result", "seq", q, "err", err)
				return
			}
			n++
		}
	}
	ws.w.m.resentResults.Add(float64(n))
	ws.log.Info("gateway asked for lost results", "from_seq", from, "to_seq", to, "resent", n)
}

// fail closes the session and publishes a ResultError with code as its last result.
func (ws *session) fail(code bus.ErrorCode, msg string) {
	if !ws.markEnded() {
		return
	}
	ws.closeSession() // no result from the session after this
	ws.mu.Lock()
	ws.publishLocked(bus.Result{Type: bus.ResultError, Code: code, Message: msg})
	ws.mu.Unlock()
	ws.log.Info("session failed", "code", code, "msg", msg)
	ws.finish()
}

// release drops a session another worker serves now: no result (the gateway takes
// none from this worker any more), the slot freed.
func (ws *session) release(now bus.WorkerID) {
	if !ws.markEnded() {
		return
	}
	ws.log.Info("session released: another worker serves it now", "serving", now)
	ws.w.m.released.WithLabelValues(ws.req.Model).Inc()
	ws.finish()
}

// markEnded marks the session ended; false if it already was.
func (ws *session) markEnded() bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.ended {
		return false
	}
	ws.ended = true
	return true
}

func (ws *session) closeSession() {
	ws.closing.Do(func() {
		ws.mu.Lock()
		sess := ws.sess
		ws.mu.Unlock()
		if sess != nil {
			sess.Close()
		}
	})
}

// finish closes the session, stops its audio and frees its slot.
func (ws *session) finish() {
	ws.closeSession()
	ws.mu.Lock()
	ws.ended = true
	sub := ws.sub
	ws.mu.Unlock()
	if sub != nil {
		_ = sub.Unsubscribe()
	}
	ws.w.remove(ws)
}

type metrics struct {
	live          *prometheus.GaugeVec
	opened        *prometheus.CounterVec
	released      *prometheus.CounterVec
	chunks        *prometheus.CounterVec
	audio         *prometheus.CounterVec
	dropped       *prometheus.CounterVec
	results       *prometheus.CounterVec
	errors        *prometheus.CounterVec
	delay         *prometheus.HistogramVec
	gaps          *prometheus.CounterVec
	resentResults prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		live: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "earshot_worker_sessions_live",
			Help: "Sessions open on this worker."}, []string{"model"}),
		opened: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "earshot_worker_sessions_opened_total",
			Help: "Sessions granted by this worker."}, []string{"model"}),
		released: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "earshot_worker_sessions_released_total",
			Help: "Sessions dropped because a gateway said another worker serves them now (a failover while this worker was unreachable)."}, []string{"model"}),
		chunks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "earshot_worker_chunks_total",
			Help: "Audio chunks handed to sessions."}, []string{"model"}),
		audio: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "earshot_worker_audio_seconds_total",
			Help: "Seconds of audio handed to sessions."}, []string{"model"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "earshot_worker_chunks_dropped_total",
			Help: "Chunks ignored: malformed, of another session or channel, or duplicates."}, []string{"reason"}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "earshot_worker_results_total",
			Help: "Results published."}, []string{"model", "type"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "earshot_worker_errors_total",
			Help: "Refused requests and failed sessions, by code."}, []string{"code"}),
		delay: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "earshot_worker_result_delay_seconds",
			Help:    "Time from receiving a chunk to publishing a result that includes it.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}, []string{"type"}),
		gaps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "earshot_worker_audio_gaps_total",
			Help: "Gaps in a session's chunk sequence: opened, recovered (the gateway resent the chunks), lost (given up: silence)."},
			[]string{"outcome"}),
		resentResults: prometheus.NewCounter(prometheus.CounterOpts{Name: "earshot_worker_results_resent_total",
			Help: "Results published again because a gateway lost them on the way (FlagResendResults)."}),
	}
	for _, c := range []prometheus.Collector{m.live, m.opened, m.released, m.chunks, m.audio, m.dropped, m.results, m.errors, m.delay, m.gaps, m.resentResults} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("transcriber: register worker metrics: %w", err)
		}
	}
	return m, nil
}
