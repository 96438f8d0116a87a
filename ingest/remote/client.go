package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/internal/bus"
)

// Errors of the gateway's side of a bus session.
var (
	// ErrTooFast: the client sends audio faster than ClientOptions.MaxSpeed × real time.
	ErrTooFast = errors.New("audio sent faster than real time allows")
	// ErrSessionClosed: the session was closed, ended, or failed.
	ErrSessionClosed = errors.New("session closed")
	// ErrBadSessionRequest: a tenant, session or model name is not a valid subject token.
	ErrBadSessionRequest = errors.New("bad session request")
)

// GrantError is a worker's refusal of a session, with the worker's code.
type GrantError struct {
	Model   string
	Code    bus.ErrorCode
	Message string
}

// Refusal is the worker's code and message (the gateway turns a BAD_REQUEST one, a
// session option only the worker can check, into a 400 for the client).
func (e *GrantError) Refusal() (bus.ErrorCode, string) { return e.Code, e.Message }

func (e *GrantError) Error() string {
	return fmt.Sprintf("worker refused session for model %s: %s: %s", e.Model, e.Code, e.Message)
}

// Is makes a NO_CAPACITY grant match bus.ErrNoCapacity.
func (e *GrantError) Is(target error) bool {
	return target == bus.ErrNoCapacity && e.Code == bus.CodeNoCapacity
}

// ClientOptions tune a Client. Zero values take the defaults.
type ClientOptions struct {
	// GrantTimeout bounds Open: within it, requests that find no responder or a full
	// worker are retried; after it, bus.ErrNoCapacity. Default 2 s. (A failover has
	// FailoverTimeout.)
	GrantTimeout time.Duration
	// FailoverTimeout bounds the search for another worker when the session's worker
	// is lost: the replay buffer holds the audio meanwhile, so a failover keeps asking
	// longer than Open (a worker behind a frozen or partitioned NATS node comes back,
	// or another frees a slot). Default 10 s.
	FailoverTimeout time.Duration
	// AttemptTimeout bounds one capacity request: a worker whose NATS node froze or
	// was cut off still looks subscribed to its peers for seconds and is picked like
	// any other; its silence must not use up the whole budget. Default 1 s.
	AttemptTimeout time.Duration
	// ReplayLimit is the most audio per channel kept since the last final. Default 120 s.
	ReplayLimit time.Duration
	// LostAfter: a worker that sent no heartbeat listing the session for this long is
	// lost. Default bus.WorkerLostAfter.
	LostAfter time.Duration
	// MaxSpeed is the fastest audio may be sent, in multiples of real time, sustained.
	// Default 2; negative disables the check.
	MaxSpeed float64
	// SpeedBurst is the audio that may be sent at once ahead of MaxSpeed (a client's
	// pre-buffered audio). Default 5 s.
	SpeedBurst time.Duration
	// ResultBuffer is the capacity of a session's Results channel. Partials are dropped
	// when it is full; finals wait for the consumer (NATS holds what arrives meanwhile).
	// Default 8: the channel's buffer is allocated whole when the session opens, at
	// 224 bytes a slot, idle or not (256 slots were 57 KB per session).
	ResultBuffer int
}

func (o *ClientOptions) defaults() {
	if o.GrantTimeout <= 0 {
		o.GrantTimeout = 2 * time.Second
	}
	if o.FailoverTimeout <= 0 {
		o.FailoverTimeout = 10 * time.Second
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = time.Second
	}
	if o.ReplayLimit <= 0 {
		o.ReplayLimit = 120 * time.Second
	}
	if o.LostAfter <= 0 {
		o.LostAfter = bus.WorkerLostAfter
	}
	if o.MaxSpeed == 0 {
		o.MaxSpeed = 2
	}
	if o.SpeedBurst <= 0 {
		o.SpeedBurst = 5 * time.Second
	}
	if o.ResultBuffer <= 0 {
		o.ResultBuffer = 8
	}
}

// Client is the gateway's side of the bus: it opens sessions on workers and watches
// worker heartbeats, once per Client, to fail sessions over. Safe for concurrent use;
// Close it when done.
type Client struct {
	nc   *nats.Conn
	log  *slog.Logger
	opts ClientOptions
	hb   *nats.Subscription
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once

	mu       sync.Mutex
	sessions map[bus.SessionID]*Session

	linkDown time.Time // watch: when our own NATS link stopped answering (zero: fine)
}

const (
	// linkProbe bounds the round trip to our NATS server that tells a silent worker
	// (fail over) from a silent link (wait: nats.go moves to another seed).
	linkProbe = time.Second
	// linkWait is how long failovers wait for our own link to come back; then they go
	// ahead and fail with a clear error if no worker can be reached.
	linkWait = 15 * time.Second
)

// NewClient subscribes to every worker's heartbeat and starts the failover watchdog.
func NewClient(nc *nats.Conn, log *slog.Logger, opts ClientOptions) (*Client, error) {
	if nc == nil {
		return nil, errors.New("ingest: NewClient needs a NATS connection")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts.defaults()
	c := &Client{
		nc: nc, opts: opts,
		log:      log.With("component", "remote"),
		stop:     make(chan struct{}),
		sessions: make(map[bus.SessionID]*Session),
	}
	sub, err := nc.Subscribe(bus.HeartbeatWildcard, c.onHeartbeat)
	if err != nil {
		return nil, fmt.Errorf("subscribe to heartbeats: %w", err)
	}
	if err := nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("subscribe to heartbeats: %w", err)
	}
	c.hb = sub
	c.wg.Add(1)
	go c.watch()
	return c, nil
}

// Close stops watching heartbeats. Sessions still open no longer fail over.
func (c *Client) Close() error {
	c.once.Do(func() {
		close(c.stop)
		_ = c.hb.Unsubscribe()
		c.wg.Wait()
	})
	return nil
}

func (c *Client) onHeartbeat(msg *nats.Msg) {
	var hb bus.Heartbeat
	if err := json.Unmarshal(msg.Data, &hb); err != nil || hb.Worker == "" {
		return
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range hb.Sessions {
		if s := c.sessions[id]; s != nil {
			s.alive(hb.Worker, now)
		}
	}
}

// watch starts a failover for every session whose worker fell silent.
func (c *Client) watch() {
	defer c.wg.Done()
	tick := time.NewTicker(max(c.opts.LostAfter/20, 20*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case now := <-tick.C:
			c.mu.Lock()
			all := make([]*Session, 0, len(c.sessions))
			for _, s := range c.sessions {
				all = append(all, s)
			}
			c.mu.Unlock()
			var silent []*Session
			for _, s := range all {
				if s.silent(now) {
					silent = append(silent, s)
				}
			}
			if len(silent) == 0 || c.linkHeld(now, all) {
				continue
			}
			for _, s := range silent {
				s.checkAlive(now)
			}
		}
	}
}

// linkHeld decides, when workers seem silent, whether the silence is our own: a
// frozen or partitioned NATS server, or a reconnect under way. Then failovers wait (up
// to linkWait) while nats.go moves to another seed, and once the link answers again
// every session gets a heartbeat's grace: its worker is most likely alive and the
// audio and results lost meanwhile are asked for again (gap recovery).
func (c *Client) linkHeld(now time.Time, all []*Session) bool {
	if err := c.nc.FlushTimeout(linkProbe); err != nil {
		if c.linkDown.IsZero() {
			c.linkDown = now
			c.log.Warn("NATS link not answering: holding failovers while it reconnects", "err", err, "sessions", len(all))
		}
		return time.Since(c.linkDown) < linkWait
	}
	if !c.linkDown.IsZero() {
		c.log.Info("NATS link answering again", "after", time.Since(c.linkDown).Round(time.Millisecond), "url", c.nc.ConnectedUrlRedacted())
		c.linkDown = time.Time{}
		for _, s := range all {
			s.grace(time.Now())
		}
		return true
	}
	return false
}

// Open asks a worker with a free slot for req.Model to take the session (a new
// SessionID when req.Session is empty) and returns it once granted. With no worker
// free within GrantTimeout it returns an error wrapping bus.ErrNoCapacity ("no capacity for
// model X"); a worker's refusal is a *GrantError.
func (c *Client) Open(ctx context.Context, req bus.SessionRequest) (*Session, error) {
	if req.Session == "" {
		req.Session = bus.NewSessionID()
	}
	if req.Channels <= 0 {
		req.Channels = 1
	}
	for what, tok := range map[string]string{"tenant": string(req.Tenant), "session": string(req.Session)} {
		if !bus.ValidToken(tok) {
			return nil, fmt.Errorf("%w: %s %q", ErrBadSessionRequest, what, tok)
		}
	}
	if !bus.ValidModel(req.Model) {
		return nil, fmt.Errorf("%w: model %q", ErrBadSessionRequest, req.Model)
	}
	s := &Session{
		c:         c,
		req:       req,
		log:       c.log.With("session", req.Session, "tenant", req.Tenant, "model", req.Model),
		audioSubj: bus.AudioSubject(req.Tenant, req.Session),
		pos:       make([]uint64, req.Channels),
		lastEnd:   make([]uint64, req.Channels),
		closedCh:  make([]bool, req.Channels),
		endedCh:   make([]bool, req.Channels),
		replay:    NewReplayBuffer(int(c.opts.ReplayLimit.Seconds() * bus.SampleRate)),
		rate: newRateLimit(c.opts.MaxSpeed*float64(req.Channels),
			c.opts.SpeedBurst*time.Duration(req.Channels), time.Now()),
		out:  make(chan bus.Result, c.opts.ResultBuffer),
		done: make(chan struct{}),
	}
	// Results first, so nothing the worker publishes after the grant is missed.
	sub, err := c.nc.Subscribe(bus.ResultSubject(req.Tenant, req.Session), s.onResult)
	if err != nil {
		return nil, fmt.Errorf("subscribe to results of %s: %w", req.Session, err)
	}
	s.sub = sub
	c.mu.Lock()
	if c.sessions[req.Session] != nil {
		c.mu.Unlock()
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("%w: session %s is already open", ErrBadSessionRequest, req.Session)
	}
	c.sessions[req.Session] = s
	c.mu.Unlock()
	g, err := c.requestAside(ctx, req, c.opts.GrantTimeout)
	if err != nil {
		c.forget(s)
		_ = sub.Unsubscribe()
		return nil, err
	}
	s.mu.Lock()
	s.worker, s.accept, s.lastHB = g.Worker, g.Worker, time.Now()
	s.mu.Unlock()
	s.log.Debug("session granted", "worker", g.Worker)
	return s, nil
}

func (c *Client) forget(s *Session) {
	c.mu.Lock()
	if c.sessions[s.req.Session] == s {
		delete(c.sessions, s.req.Session)
	}
	c.mu.Unlock()
}

// requestAside is request run on a goroutine of its own. Its JSON and NATS calls go
// deep, and the gateway calls Open on the goroutine that then serves the stream, for
// hours, with whatever stack the call grew it to: 16 KiB instead of 8 KiB per stream.
func (c *Client) requestAside(ctx context.Context, req bus.SessionRequest, budget time.Duration) (bus.SessionGrant, error) {
	type reply struct {
		g   bus.SessionGrant
		err error
	}
	ch := make(chan reply, 1)
	go func() {
		g, err := c.request(ctx, req, budget)
		ch <- reply{g, err}
	}()
	r := <-ch
	return r.g, r.err
}

// request asks for a grant until one comes, a worker refuses for good, or budget
// passes. No responders, a full worker, a draining worker and a request nobody answered
// within AttemptTimeout are retried: a worker resubscribes as soon as a slot frees, and
// the next request may reach another worker. (A grant that arrives after its attempt
// gave up opens a second copy of the session on that worker; its next heartbeat lists
// it, and the gateway tells it to let go: releaseLocked.)
func (c *Client) request(ctx context.Context, req bus.SessionRequest, budget time.Duration) (bus.SessionGrant, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return bus.SessionGrant{}, fmt.Errorf("marshal session request: %w", err)
	}
	subj := bus.SessionRequestSubject(req.Model)
	noCap := fmt.Errorf("%w for model %s", bus.ErrNoCapacity, req.Model)
	rctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	backoff := 10 * time.Millisecond
	for {
		actx, acancel := context.WithTimeout(rctx, c.opts.AttemptTimeout)
		msg, err := c.nc.RequestWithContext(actx, subj, data)
		acancel()
		switch {
		case err == nil:
			var g bus.SessionGrant
			if err := json.Unmarshal(msg.Data, &g); err != nil {
				return g, fmt.Errorf("grant for model %s: %w", req.Model, err)
			}
			switch g.Code {
			case "":
				if g.Worker == "" {
					return g, fmt.Errorf("grant for model %s names no worker", req.Model)
				}
				return g, nil
			case bus.CodeNoCapacity, bus.CodeShuttingDown:
				// full or draining: another worker may take it
			default:
				return g, &GrantError{Model: req.Model, Code: g.Code, Message: g.Message}
			}
		case ctx.Err() != nil:
			return bus.SessionGrant{}, fmt.Errorf("request worker for model %s: %w", req.Model, ctx.Err())
		case errors.Is(err, nats.ErrNoResponders):
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
			if rctx.Err() != nil {
				return bus.SessionGrant{}, noCap
			}
			c.log.Debug("no answer to a capacity request, asking again", "model", req.Model, "after", c.opts.AttemptTimeout)
		default:
			return bus.SessionGrant{}, fmt.Errorf("request worker for model %s: %w", req.Model, err)
		}
		select {
		case <-rctx.Done():
			if ctx.Err() != nil {
				return bus.SessionGrant{}, fmt.Errorf("request worker for model %s: %w", req.Model, ctx.Err())
			}
			return bus.SessionGrant{}, noCap
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// Session is one session as the gateway sees it: audio out, results in, with
// failover to another worker. Send and Close are safe to call from other goroutines
// than the one reading Results.
type Session struct {
	c         *Client
	req       bus.SessionRequest
	log       *slog.Logger
	audioSubj string
	sub       *nats.Subscription

	mu            sync.Mutex
	worker        bus.WorkerID // the worker serving the session
	accept        bus.WorkerID // results are taken from it; "" while failing over
	lastHB        time.Time
	failing       bool
	failovers     int
	seq           uint64   // last audio chunk seq
	pos           []uint64 // next StartSample per channel
	replay        *ReplayBuffer
	rate          *rateLimit
	ended         bool                  // FlagEnd sent on every channel
	endedCh       []bool                // per channel: FlagEnd sent
	terminal      bool                  // closed, failed, or Close called
	closedCh      []bool                // per channel: its ResultClosed arrived
	closedN       int                   // how many channels closed
	lastWorkerSeq uint64                // last result seq taken from the current worker
	heldRes       map[uint64]bus.Result // results after a gap in the worker's seqs
	resAsks       int                   // requests for the current gap's results
	resTimer      *time.Timer           // next request, or giving up the gap
	resOpened     time.Time
	lastEnd       []uint64 // per channel, EndSample of the last delivered final
	prompt        string
	released      map[bus.WorkerID]time.Time // last release sent to a worker that still acts on the session

	outMu     sync.Mutex // serialises delivery and the closing of out
	outSeq    uint64     // Seq of the last result delivered (guarded by outMu)
	out       chan bus.Result
	outClosed bool
	done      chan struct{}
	closeOnce sync.Once
}

// ID is the session id.
func (s *Session) ID() bus.SessionID { return s.req.Session }

// Worker is the worker serving the session now.
func (s *Session) Worker() bus.WorkerID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.worker
}

// Failovers counts the times the session moved to another worker.
func (s *Session) Failovers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failovers
}

// Results delivers the session's results in order, each final once, with Seq
// renumbered from 1 across failovers. It is closed after a terminal result (closed or
// error) or Close.
func (s *Session) Results() <-chan bus.Result { return s.out }

// Send publishes one chunk of 16 kHz PCM16 audio of channel with flags, assigning its
// Seq and StartSample, and keeps it for replay until a final covers it. An empty chunk
// without flags is a keep-alive. Errors: ErrTooFast (the chunk is dropped), ErrReplayFull
// (too long without a final), ingest.ErrChannels, ErrSessionClosed.
func (s *Session) Send(pcm []int16, channel int, flags bus.ChunkFlag) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.terminal:
		return fmt.Errorf("send to session %s: %w", s.req.Session, ErrSessionClosed)
	case s.ended:
		return fmt.Errorf("send to session %s after its end: %w", s.req.Session, ErrSessionClosed)
	case channel < 0 || channel >= s.req.Channels:
		return fmt.Errorf("%w: channel %d of a %d-channel session", ingest.ErrChannels, channel, s.req.Channels)
	case s.endedCh[channel]:
		return fmt.Errorf("send to channel %d of session %s after its end: %w", channel, s.req.Session, ErrSessionClosed)
	}
	flags &^= bus.FlagReplay
	if len(pcm) == 0 && flags == 0 {
		if s.failing {
			return nil
		}
		c := bus.AudioChunk{Session: s.req.Session, Channel: channel, StartSample: s.pos[channel], SentNs: time.Now().UnixNano()}
		return s.publish(&c)
	}
	if !s.rate.take(len(pcm), time.Now()) {
		return fmt.Errorf("%w: more than %.3gx real time", ErrTooFast, s.c.opts.MaxSpeed)
	}
	c := &bus.AudioChunk{
		Session: s.req.Session, Seq: s.seq + 1, Channel: channel,
		StartSample: s.pos[channel], SentNs: time.Now().UnixNano(), Flags: flags,
		PCM: append([]int16(nil), pcm...),
	}
	if err := s.replay.Add(c); err != nil {
		return fmt.Errorf("send chunk %d of session %s: %w", c.Seq, s.req.Session, err)
	}
	s.seq++
	s.pos[channel] += uint64(len(pcm))
	if flags&bus.FlagEnd != 0 {
		s.endedCh[channel] = true
		s.ended = !slices.Contains(s.endedCh, false)
	}
	if s.failing {
		return nil // replayed to the next worker
	}
	return s.publish(c)
}

func (s *Session) publish(c *bus.AudioChunk) error {
	if err := s.c.nc.Publish(s.audioSubj, c.Marshal()); err != nil {
		return fmt.Errorf("publish chunk %d of session %s: %w", c.Seq, s.req.Session, err)
	}
	return nil
}

// Close ends the session here: it stops results and failover and closes Results. If
// the stream was not ended with FlagEnd, it sends an End chunk so the worker frees its
// slot. For a graceful end, Send FlagEnd and read Results until it closes first.
func (s *Session) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		if !s.ended && !s.terminal && !s.failing {
			s.seq++
			c := bus.AudioChunk{Session: s.req.Session, Seq: s.seq, StartSample: s.pos[0], SentNs: time.Now().UnixNano(), Flags: bus.FlagEnd}
			_ = s.publish(&c)
		}
		s.ended, s.terminal = true, true
		s.mu.Unlock()
		close(s.done)
		_ = s.sub.Unsubscribe()
		s.c.forget(s)
		s.outMu.Lock()
		if !s.outClosed {
			s.outClosed = true
			close(s.out)
		}
		s.outMu.Unlock()
	})
}

// alive records a heartbeat of w listing the session.
func (s *Session) alive(w bus.WorkerID, now time.Time) {
	s.mu.Lock()
	if s.worker == w && !s.failing {
		s.lastHB = now
	}
	s.releaseLocked(w, now)
	s.mu.Unlock()
}

// releaseLocked tells w to let go of the session if w is not the worker serving it but
// still acts on it (lists it in its heartbeat, sends its results): it was failed over
// while w was unreachable, or w's grant came after its request was given up. At most
// once a second per worker; s.mu is held.
func (s *Session) releaseLocked(w bus.WorkerID, now time.Time) {
	if s.terminal || s.accept == "" || w == "" || w == s.accept || now.Sub(s.released[w]) < time.Second {
		return
	}
	if s.released == nil {
		s.released = make(map[bus.WorkerID]time.Time)
	}
	s.released[w] = now
	go s.release(w, s.accept)
}

// silent reports whether the session's worker missed its heartbeats.
func (s *Session) silent(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.terminal && !s.failing && s.worker != "" && now.Sub(s.lastHB) > s.c.opts.LostAfter
}

// grace counts the worker as heard from at now (after our own link came back).
func (s *Session) grace(now time.Time) {
	s.mu.Lock()
	if !s.failing {
		s.lastHB = now
	}
	s.mu.Unlock()
}

func (s *Session) checkAlive(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.terminal && !s.failing && s.worker != "" && now.Sub(s.lastHB) > s.c.opts.LostAfter {
		s.failoverLocked(fmt.Sprintf("no heartbeat for %v", now.Sub(s.lastHB).Round(time.Millisecond)))
	}
}

func (s *Session) onResult(msg *nats.Msg) {
	var r bus.Result
	if err := json.Unmarshal(msg.Data, &r); err != nil || r.Session != s.req.Session {
		return
	}
	s.mu.Lock()
	s.releaseLocked(r.Worker, time.Now())
	if s.terminal || s.accept == "" || r.Worker != s.accept || r.Channel < 0 || r.Channel >= s.req.Channels {
		s.mu.Unlock()
		return
	}
	if r.Seq != 0 && r.Seq <= s.lastWorkerSeq {
		s.mu.Unlock()
		return // duplicate
	}
	if r.Seq > s.lastWorkerSeq+1 {
		// Results lost on the way (the worker numbers them from 1 without gaps): hold
		// this one and ask the worker to publish the missing ones again.
		s.holdResultLocked(r)
		s.mu.Unlock()
		return
	}
	out := s.takeResultLocked(r, nil)
	out = s.takeHeldLocked(out)
	s.mu.Unlock()
	for _, d := range out {
		s.deliver(d.r, d.terminal)
	}
}

type delivery struct {
	r        bus.Result
	terminal bool
}

// replayRunUp is the audio kept before the end of the last final (16 kHz samples): a
// failover's replay starts with it so that the next word is decoded with its run-up;
// the new worker does not send the words in it again (bus.SessionRequest.Committed).
const replayRunUp = bus.SampleRate / 2

const (
	resultResendWait = 250 * time.Millisecond // between requests for one gap's results
	resultResendMax  = 8                      // requests before a gap is given up
	maxHeldResults   = 256                    // results held behind one gap
)

// holdResultLocked keeps r until the results before it arrive; s.mu is held.
func (s *Session) holdResultLocked(r bus.Result) {
	if s.heldRes == nil {
		s.heldRes = make(map[uint64]bus.Result)
	}
	if len(s.heldRes) < maxHeldResults {
		s.heldRes[r.Seq] = r
	}
	if s.resTimer == nil {
		s.resAsks, s.resOpened = 0, time.Now()
		s.askResultsLocked()
	}
}

// askResultsLocked asks the worker for the results between the last taken and the
// first held (an in-band chunk flagged FlagResendResults: Seq is the first result
// seq, StartSample the last), and schedules the next request; s.mu is held.
func (s *Session) askResultsLocked() {
	from, to := s.lastWorkerSeq+1, uint64(0)
	for q := range s.heldRes {
		if to == 0 || q-1 < to {
			to = q - 1
		}
	}
	s.resAsks++
	s.log.Info("results lost in transit: asking the worker again", "from_seq", from, "to_seq", to, "request", s.resAsks)
	c := bus.AudioChunk{Session: s.req.Session, Seq: from, StartSample: to, SentNs: time.Now().UnixNano(), Flags: bus.FlagResendResults}
	if err := s.publish(&c); err != nil {
		s.log.Warn("ask for results", "err", err)
	}
	s.resTimer = time.AfterFunc(resultResendWait, s.resultGapTick)
}

func (s *Session) resultGapTick() {
	s.mu.Lock()
	if s.resTimer == nil || len(s.heldRes) == 0 || s.terminal || s.failing {
		s.mu.Unlock()
		return
	}
	if s.resAsks < resultResendMax {
		s.askResultsLocked()
		s.mu.Unlock()
		return
	}
	// Unanswered: take what is held, in order, over the gap. A lost final's audio
	// stays in the replay buffer until a later final covers it.
	first := uint64(0)
	for q := range s.heldRes {
		if first == 0 || q < first {
			first = q
		}
	}
	s.log.Warn("results lost in transit", "after_seq", s.lastWorkerSeq, "next_seq", first, "requests", s.resAsks)
	s.lastWorkerSeq = first - 1
	out := s.takeHeldLocked(nil)
	s.mu.Unlock()
	for _, d := range out {
		s.deliver(d.r, d.terminal)
	}
}

// takeHeldLocked takes the held results that now follow in order, and ends the gap
// when none is left (a later gap starts over); s.mu is held.
func (s *Session) takeHeldLocked(out []delivery) []delivery {
	for !s.terminal {
		h, ok := s.heldRes[s.lastWorkerSeq+1]
		if !ok {
			break
		}
		delete(s.heldRes, h.Seq)
		out = s.takeResultLocked(h, out)
	}
	if s.resTimer != nil && (len(s.heldRes) == 0 || s.terminal) {
		s.resTimer.Stop()
		s.resTimer = nil
		clear(s.heldRes)
		s.log.Info("results recovered", "took", time.Since(s.resOpened).Round(time.Millisecond), "requests", s.resAsks)
	} else if s.resTimer != nil && len(s.heldRes) > 0 {
		// A further gap behind the one just filled: ask for it from the start.
		s.resTimer.Stop()
		s.resAsks, s.resOpened = 0, time.Now()
		s.askResultsLocked()
	}
	return out
}

// takeResultLocked applies r, the next result of the current worker, to the session
// (replay trimming, failover, resend of audio) and appends it to out when it is for
// the consumer; s.mu is held.
func (s *Session) takeResultLocked(r bus.Result, out []delivery) []delivery {
	s.lastWorkerSeq = max(s.lastWorkerSeq, r.Seq)
	terminal := false
	switch r.Type {
	case bus.ResultFinal:
		end := r.EndSample
		if end == 0 && r.Start+r.Duration > 0 {
			end = uint64((r.Start+r.Duration)*bus.SampleRate + 0.5)
			r.EndSample = end
		}
		if end > 0 {
			if end <= s.lastEnd[r.Channel] {
				return out // delivered before a failover
			}
			s.lastEnd[r.Channel] = end
			s.replay.TrimKeeping(r.Channel, end, replayRunUp)
		}
		if r.Channel == 0 {
			s.prompt = promptTail(s.prompt, r.Text)
		}
	case bus.ResultError:
		if r.Code == bus.CodeShuttingDown {
			s.failoverLocked("worker shutting down")
			return out
		}
		terminal = true
	case bus.ResultSettled:
		// Nothing open before EndSample: drop that audio from the replay buffer. Not
		// for the consumer.
		if r.EndSample > s.lastEnd[r.Channel] {
			s.replay.TrimKeeping(r.Channel, r.EndSample, replayRunUp)
		}
		return out
	case bus.ResultResend:
		// The worker saw a gap in the chunk sequence: publish the missing chunks again
		// (they are in the replay buffer until a final covers them). Not for the consumer.
		var n int
		if r.ResendTo >= r.ResendFrom && r.ResendTo-r.ResendFrom < 10_000 && !s.failing {
			chunks := s.replay.Range(r.ResendFrom, r.ResendTo)
			for i := range chunks {
				if err := s.publish(&chunks[i]); err != nil {
					s.log.Warn("resend chunk", "seq", chunks[i].Seq, "err", err)
					break
				}
				n++
			}
		}
		s.log.Info("worker asked for lost audio", "from_seq", r.ResendFrom, "to_seq", r.ResendTo, "resent", n)
		return out
	case bus.ResultClosed:
		// One per channel: the session is over once every channel closed.
		if !s.closedCh[r.Channel] {
			s.closedCh[r.Channel] = true
			s.closedN++
		}
		terminal = s.closedN >= s.req.Channels
	}
	s.terminal = s.terminal || terminal
	return append(out, delivery{r, terminal})
}

// deliver hands r to the consumer. A partial that does not fit is dropped (a later one
// supersedes it); anything else waits for the consumer or Close.
func (s *Session) deliver(r bus.Result, terminal bool) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if s.outClosed {
		return
	}
	// Numbered here, as delivered: a dropped partial leaves no gap.
	r.Seq = s.outSeq + 1
	if r.Type == bus.ResultPartial {
		select {
		case s.out <- r:
		default:
			return
		}
	} else {
		select {
		case s.out <- r:
		case <-s.done:
			return
		}
	}
	s.outSeq++
	if terminal {
		s.outClosed = true
		close(s.out)
		go func() {
			_ = s.sub.Unsubscribe()
			s.c.forget(s)
		}()
	}
}

// failoverLocked starts moving the session to another worker; s.mu is held.
func (s *Session) failoverLocked(reason string) {
	if s.failing || s.terminal {
		return
	}
	s.failing = true
	s.accept = ""
	req := s.req
	req.ResumeSample = s.pos[0]
	if start, ok := s.replay.Start(0); ok {
		req.ResumeSample = start
	}
	req.Prompt = s.prompt
	req.Committed = append([]uint64(nil), s.lastEnd...)
	old := s.worker
	s.log.Warn("worker lost, failing over", "worker", old, "reason", reason, "resume_sample", req.ResumeSample,
		"replay_chunks", s.replay.Len())
	go s.failover(req, old)
}

func (s *Session) failover(req bus.SessionRequest, old bus.WorkerID) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	g, err := s.c.request(ctx, req, s.c.opts.FailoverTimeout)
	s.mu.Lock()
	if s.terminal {
		s.mu.Unlock()
		return
	}
	if err != nil {
		s.terminal = true
		r := bus.Result{Type: bus.ResultError, Session: s.req.Session, Worker: old,
			Code: bus.CodeNoCapacity, Message: fmt.Sprintf("worker lost and no other worker took over: %v", err)}
		var ge *GrantError
		if errors.As(err, &ge) {
			r.Code = ge.Code
		}
		s.mu.Unlock()
		s.log.Warn("failover failed", "err", err)
		s.deliver(r, true)
		return
	}
	s.worker, s.accept, s.lastHB = g.Worker, g.Worker, time.Now()
	s.lastWorkerSeq = 0
	if s.resTimer != nil { // the old worker's results are not wanted any more
		s.resTimer.Stop()
		s.resTimer = nil
	}
	clear(s.heldRes)
	s.failing = false
	s.failovers++
	if s.req.Options.Turns != req.Options.Turns { // a Configure came while failing over
		if err := s.configureLocked(g.Worker); err != nil {
			s.log.Warn("configure after failover", "err", err)
		}
	}
	// The old worker may only have been unreachable: if it hears this it frees the slot
	// now; if not, its next heartbeat or result here brings another release.
	s.releaseLocked(old, time.Now())
	var perr error
	chunks := s.replay.Chunks()
	for i := range chunks {
		chunks[i].Flags |= bus.FlagReplay
		if err := s.publish(&chunks[i]); err != nil && perr == nil {
			perr = err
		}
	}
	s.mu.Unlock()
	s.log.Info("failed over", "from", old, "to", g.Worker, "replayed_chunks", len(chunks), "err", perr)
}

// Configure changes a turn-taking session's end-of-turn knobs (Flux's Configure): the
// worker serving the session gets a bus.ControlConfigure on its control subject, and
// the session request keeps the new values, so a worker taking over after a failover
// starts with them (one granted while this call ran gets them once the grant is in).
// Control messages are core NATS: one lost on the way is not repeated.
func (s *Session) Configure(t bus.TurnOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.terminal || s.ended:
		return fmt.Errorf("configure session %s: %w", s.req.Session, ErrSessionClosed)
	case s.req.Options.Turns == nil:
		return fmt.Errorf("%w: configure session %s: not a turn-taking session", ErrBadSessionRequest, s.req.Session)
	}
	s.req.Options.Turns = &t // a new pointer: failover compares them
	if s.failing || s.worker == "" {
		return nil // the failover's grant sends it
	}
	return s.configureLocked(s.worker)
}

// configureLocked sends the session's turn options to worker w; s.mu is held.
func (s *Session) configureLocked(w bus.WorkerID) error {
	data, err := json.Marshal(bus.Control{Type: bus.ControlConfigure, Tenant: s.req.Tenant, Session: s.req.Session,
		Worker: w, Turns: s.req.Options.Turns})
	if err == nil {
		err = s.c.nc.Publish(bus.ControlSubject(w), data)
	}
	if err != nil {
		return fmt.Errorf("configure session %s on %s: %w", s.req.Session, w, err)
	}
	s.log.Info("sent new turn options", "worker", w, "eot_threshold", s.req.Options.Turns.EOTThreshold,
		"eager_eot_threshold", s.req.Options.Turns.EagerEOTThreshold, "eot_timeout_ms", s.req.Options.Turns.EOTTimeoutMs)
	return nil
}

// release tells worker w that serving now serves the session (bus.ControlRelease).
func (s *Session) release(w, serving bus.WorkerID) {
	data, err := json.Marshal(bus.Control{Type: bus.ControlRelease, Tenant: s.req.Tenant, Session: s.req.Session, Worker: serving})
	if err == nil {
		err = s.c.nc.Publish(bus.ControlSubject(w), data)
	}
	if err != nil {
		s.log.Debug("release the old worker", "worker", w, "err", err)
		return
	}
	s.log.Info("told a worker to let go of the session", "worker", w, "serving", serving)
}

// promptTail appends text to the committed text and keeps its last ~200 bytes, cut at
// a space, as decoding context for the next worker.
func promptTail(prompt, text string) string {
	text = strings.TrimSpace(text)
	if text == "" {
		return prompt
	}
	if prompt != "" {
		prompt += " "
	}
	prompt += text
	const keep = 200
	if len(prompt) > keep {
		cut := prompt[len(prompt)-keep:]
		if i := strings.IndexByte(cut, ' '); i >= 0 {
			cut = cut[i+1:]
		}
		prompt = cut
	}
	return prompt
}

// rateLimit is a token bucket of audio samples: it refills at speed × real time and
// holds at most burst. Not safe for concurrent use.
type rateLimit struct {
	speed  float64 // samples per second of wall time
	burst  float64
	tokens float64
	last   time.Time
}

func newRateLimit(speed float64, burst time.Duration, now time.Time) *rateLimit {
	if speed < 0 {
		return nil
	}
	b := burst.Seconds() * bus.SampleRate
	return &rateLimit{speed: speed * bus.SampleRate, burst: b, tokens: b, last: now}
}

// take spends n samples if the bucket holds them.
func (r *rateLimit) take(n int, now time.Time) bool {
	if r == nil {
		return true
	}
	if d := now.Sub(r.last).Seconds(); d > 0 {
		r.tokens = min(r.burst, r.tokens+d*r.speed)
		r.last = now
	}
	if float64(n) > r.tokens {
		return false
	}
	r.tokens -= float64(n)
	return true
}
