package transcriber

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
)

// PoolConfig configures a Pool. Zero values take the documented defaults.
type PoolConfig struct {
	// Models are the loaded weights by name (what SessionRequest.Model names).
	Models map[string]Model
	// NewVAD makes one VAD per stream (Silero in production). Required.
	NewVAD func() (VAD, error)
	// Worker is copied into every Result.
	Worker bus.WorkerID
	// Slots is the number of concurrent whisper calls (decode workers), shared by all
	// models. Default: max(1, NumCPU/4).
	Slots int
	// ThreadsPerDecode is whisper's n_threads per call. Default: max(1, NumCPU/Slots), so
	// Slots × ThreadsPerDecode ≤ cores. More is allowed when every model can cap its
	// threads (ThreadCapper, the whisper models): the decodes running at a time then
	// share the cores, each on at most ThreadsPerDecode (Pool.decodeCall).
	ThreadsPerDecode int
	// MaxSessions is the number of sessions each model accepts (what Capacity reports).
	// Default: 4 × Slots.
	MaxSessions int
	// ModelSessions overrides MaxSessions for the models it names (values ≥ 1): each
	// model's knee measured on this machine (internal/app capacity.go).
	ModelSessions map[string]int
	// SharedModels names models of ModelSessions whose counts are knees measured on this
	// machine alone: they share the machine, a session of a model with knee K taking 1/K
	// of it, so that together they never admit more than it held. (make run on an
	// AVX2-only CPU loads tiny.en-q8_0 and tiny.en, each with a knee of 1 there: one
	// stream at a time, not one of each.) Other models count on their own.
	SharedModels []string
	// Step is the partial cadence: a stream in speech is decoded again once at least Step
	// has passed since its last decode finished and Step of new audio arrived. (Counting
	// from the start instead, so that slow partials follow each other at once, was
	// measured: partials sooner, finals later; see BENCHMARKS.md.)
	// Default 300 ms.
	Step time.Duration
	// MaxSegment forces a final when an utterance window grows this long. Default 15 s.
	MaxSegment time.Duration
	// EndpointSilence is the silence after speech that ends an utterance (a final with
	// SpeechFinal). StreamOptions.EndpointingMs > 0 overrides it per session; < 0
	// disables VAD finals. Default DefaultEndpointSilence.
	EndpointSilence time.Duration
	// MinEndpoint is the shortest endpointing a client may ask for: whisper decodes a
	// one-word utterance badly and without context, so a shorter request (Deepgram's
	// default is 10 ms) is raised to it. Default 500 ms.
	MinEndpoint time.Duration
	// MaxBuffer bounds the audio a stream holds that has not been settled by a final;
	// beyond it Write fails with ErrOverloaded and the session ends with an error
	// result. Default 60 s.
	MaxBuffer time.Duration
	// Pad is the audio kept before the VAD's speech start (and after its end for finals)
	// in each decode window. Default 200 ms.
	Pad time.Duration
	// Warm makes each decode slot create its decoder for every model and run one decode
	// of a second of silence before it serves, so the first stream does not pay for the
	// whisper_state's allocation and first touch of its buffers (about 100 MB each).
	// Off by default (tests count decodes); the service turns it on.
	Warm bool
	// TurnModel is the end-of-turn model of turn-taking sessions (turn.go); nil ends a
	// turn after TurnSilence of silence (VAD only).
	TurnModel TurnModel
	// TurnRecheck, when positive, runs the end-of-turn model again at this interval
	// while a pause grows; 0: once per pause (the default, measured better: turn.go).
	TurnRecheck time.Duration
	// TurnEagerRecheck is how often the end-of-turn model is asked again in a pause
	// that already passed eager_eot_threshold but not eot_threshold (an EagerEndOfTurn
	// is out or wanted), until EndOfTurn, speech or eot_timeout_ms. 0:
	// DefaultTurnEagerRecheck; negative: never (the turn waits for the timeout).
	TurnEagerRecheck time.Duration
	// TurnSilence is the VAD-only end of turn. Default DefaultTurnSilence.
	TurnSilence time.Duration
	// Log is the pool's logger. Default: discard.
	Log *slog.Logger

	now   func() time.Time // clock; tests replace it
	cores int              // CPUs the pool may use: runtime.NumCPU(); tests replace it
}

func (c *PoolConfig) defaults() error {
	if len(c.Models) == 0 {
		return errors.New("transcriber: pool without models")
	}
	if c.NewVAD == nil {
		return errors.New("transcriber: pool without a VAD factory")
	}
	if c.cores <= 0 {
		c.cores = runtime.NumCPU()
	}
	cores := c.cores
	if c.Slots <= 0 {
		c.Slots = max(1, cores/4)
	}
	if c.ThreadsPerDecode <= 0 {
		c.ThreadsPerDecode = max(1, cores/c.Slots)
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 4 * c.Slots
	}
	for m, n := range c.ModelSessions {
		if n < 1 {
			return fmt.Errorf("transcriber: %d sessions for model %q: want at least 1", n, m)
		}
	}
	for _, m := range c.SharedModels {
		if _, ok := c.ModelSessions[m]; !ok {
			return fmt.Errorf("transcriber: shared model %q has no sessions of its own in ModelSessions", m)
		}
	}
	if c.Step <= 0 {
		c.Step = 300 * time.Millisecond
	}
	if c.MaxSegment <= 0 {
		c.MaxSegment = 15 * time.Second
	}
	if c.MinEndpoint <= 0 {
		c.MinEndpoint = DefaultMinEndpoint
	}
	if c.EndpointSilence <= 0 {
		c.EndpointSilence = DefaultEndpointSilence
	}
	if c.MaxBuffer <= 0 {
		c.MaxBuffer = 60 * time.Second
	}
	if c.MaxBuffer < c.MaxSegment+5*time.Second {
		return fmt.Errorf("transcriber: MaxBuffer %v must exceed MaxSegment %v by 5 s", c.MaxBuffer, c.MaxSegment)
	}
	if c.TurnSilence <= 0 {
		c.TurnSilence = DefaultTurnSilence
	}
	if c.Pad <= 0 {
		c.Pad = 200 * time.Millisecond
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.now == nil {
		c.now = time.Now
	}
	return nil
}

// Pool serves streaming sessions on a fixed number of decode slots: it implements
// SessionFactory. Safe for concurrent use. Decoders (one whisper_state each) belong to
// the decode workers, not to sessions, so memory grows with Slots, not with sessions.
type Pool struct {
	cfg    PoolConfig
	log    *slog.Logger
	sched  *scheduler
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	warmed chan struct{} // closed once every slot has warmed up (PoolConfig.Warm)

	turnCalls    atomic.Int64 // end-of-turn model calls (tests, metrics)
	turnInFlight atomic.Int64 // of which running now

	capMu      sync.Mutex
	capCalls   int // end-of-turn model calls running (turnCall)
	capDecodes int // decodes running (decodeCall)
	capNow     int // the decodes' thread cap now (0: none)

	mu       sync.Mutex
	sessions map[string]int // open sessions per model
	closed   bool
}

var _ SessionFactory = (*Pool)(nil)

// turnCall counts an end-of-turn model call in (+1) and out (−1), and decodeCall a
// decode (+1 as it starts, −1 as it returns). Whenever the decodes running, each on
// ThreadsPerDecode threads, and the end-of-turn model's calls (one thread each) would
// need more threads than there are cores, every decode graph that starts from then on
// takes fewer threads (threadCap; ThreadCapper, whisper patch 0012): otherwise the
// kernel parks one of a decode's threads in turn, and ggml's barriers after every graph
// node keep the decode's other threads waiting for it. A decode's graphs that already
// run keep their threads; the cap is lifted as soon as everything fits again.
//
// So a pool of 2 slots × 2 threads on 2 cores decodes one stream on both cores and two
// at once on one core each. 12 live streams on this project's 2-vCPU VM: final p95
// 705–720 ms (median of 3: 709) against 1 423–1 769 ms with 1 slot × 2 threads
// (BENCHMARKS.md, Density, "Elastic decode threads"). The end-of-turn model's call
// beside one decode of 2 threads on 2 cores: one thread while Smart Turn runs;
// EndOfTurn p50 200 against 212 ms ("A turn's own prompt, one decode thread beside
// Smart Turn").
func (p *Pool) turnCall(delta int) { p.recap(delta, 0) }

func (p *Pool) decodeCall(delta int) { p.recap(0, delta) }

func (p *Pool) recap(calls, decodes int) {
	p.capMu.Lock()
	defer p.capMu.Unlock()
	p.capCalls += calls
	p.capDecodes += decodes
	n := threadCap(p.capDecodes, p.cfg.ThreadsPerDecode, p.capCalls, p.cfg.cores)
	if n == p.capNow {
		return
	}
	p.capNow = n
	for _, m := range p.cfg.Models {
		if c, ok := m.(ThreadCapper); ok {
			c.CapThreads(n)
		}
	}
}

// threadCap is the cap on each decode's threads (0: none) while decodes decodes of
// threads threads each and calls end-of-turn model calls of one thread run (a call
// with no decode running counts one, the decode that may start beside it): none when
// they fit the cores, else an even share of the cores the calls leave, at least one.
func threadCap(decodes, threads, calls, cores int) int {
	decodes = max(decodes, 1)
	if decodes*threads+calls <= cores {
		return 0
	}
	if n := max(1, (cores-calls)/decodes); n < threads {
		return n
	}
	return 0
}

// capped reports whether every model's decodes can be capped (ThreadCapper): then
// slots × threads may exceed the cores, the decodes sharing them (Pool.decodeCall).
func (c *PoolConfig) capped() bool {
	for _, m := range c.Models {
		if _, ok := m.(ThreadCapper); !ok {
			return false
		}
	}
	return true
}

// NewPool validates cfg, applies defaults and starts cfg.Slots decode workers. Close
// stops them.
func NewPool(cfg PoolConfig) (*Pool, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if cfg.Slots*cfg.ThreadsPerDecode > cfg.cores && !cfg.capped() {
		cfg.Log.Warn("decode threads exceed cores, and a model cannot cap them (threads fight at ggml's barriers)",
			"slots", cfg.Slots, "threads", cfg.ThreadsPerDecode, "cores", cfg.cores)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{
		cfg:      cfg,
		log:      cfg.Log.With("component", "pool"),
		sched:    newScheduler(cfg.Slots),
		ctx:      ctx,
		cancel:   cancel,
		sessions: make(map[string]int),
		warmed:   make(chan struct{}),
	}
	var warming sync.WaitGroup
	for i := 0; i < cfg.Slots; i++ {
		w := &decodeSlot{id: i, pool: p, decoders: make(map[string]Decoder)}
		p.wg.Add(1)
		warming.Add(1)
		go func() {
			defer p.wg.Done()
			w.run(ctx, warming.Done)
		}()
	}
	go func() { warming.Wait(); close(p.warmed) }()
	return p, nil
}

// Warmed is closed once every decode slot has made its decoders and run its warm-up
// decode (at once without PoolConfig.Warm): from then on the pool's memory holds every
// model's weights and one whisper_state per model and slot.
func (p *Pool) Warmed() <-chan struct{} { return p.warmed }

// Models lists the model names, sorted.
func (p *Pool) Models() []string {
	names := make([]string, 0, len(p.cfg.Models))
	for n := range p.cfg.Models {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Capacity reports the sessions model accepts in all and how many are free.
func (p *Pool) Capacity(model string) bus.Capacity {
	if _, ok := p.cfg.Models[model]; !ok {
		return bus.Capacity{}
	}
	n := p.maxSessions(model)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return bus.Capacity{Slots: n}
	}
	return bus.Capacity{Slots: n, Free: p.free(model)}
}

// free is the sessions of model that can still open (p.mu held): its own count less
// its live sessions, and for a shared model (SharedModels) no more than its knee's
// share of what the shared models' live sessions leave of the machine.
func (p *Pool) free(model string) int {
	n := p.maxSessions(model)
	free := n - p.sessions[model]
	if slices.Contains(p.cfg.SharedModels, model) {
		used := 0.0
		for _, m := range p.cfg.SharedModels {
			used += float64(p.sessions[m]) / float64(p.maxSessions(m))
		}
		free = min(free, int(math.Floor((1-used)*float64(n)+1e-9)))
	}
	return max(0, free)
}

// maxSessions is the sessions model accepts.
func (p *Pool) maxSessions(model string) int {
	if n, ok := p.cfg.ModelSessions[model]; ok {
		return n
	}
	return p.cfg.MaxSessions
}

// Open starts a session; emit receives its results in order until Close returns.
func (p *Pool) Open(req bus.SessionRequest, emit Emitter) (Session, error) {
	m, ok := p.cfg.Models[req.Model]
	if !ok {
		return nil, fmt.Errorf("open session %s model %q: %w", req.Session, req.Model, ErrUnknownModel)
	}
	spec, err := sessionLanguage(m, req)
	if err != nil {
		return nil, fmt.Errorf("open session %s: %w", req.Session, err)
	}
	kt, err := tokenizeKeyterms(m, req.Options.Keyterms)
	if err != nil {
		return nil, fmt.Errorf("open session %s: %w", req.Session, err)
	}
	p.mu.Lock()
	switch {
	case p.closed:
		p.mu.Unlock()
		return nil, fmt.Errorf("open session %s: %w", req.Session, ErrClosed)
	case p.free(req.Model) < 1:
		p.mu.Unlock()
		return nil, fmt.Errorf("open session %s model %q: %w", req.Session, req.Model, bus.ErrNoCapacity)
	}
	p.sessions[req.Model]++
	p.mu.Unlock()
	s, err := newSession(p, req, emit)
	if err != nil {
		p.release(req.Model)
		return nil, err
	}
	s.keyterms, s.lang = kt, spec // before any audio, so before any decode
	return s, nil
}

func (p *Pool) release(model string) {
	p.mu.Lock()
	p.sessions[model]--
	p.mu.Unlock()
}

// Close stops the decode workers (aborting in-flight decodes) and closes their
// decoders. Sessions should be closed first; their later Writes still buffer but no
// longer decode. The models are the caller's to close.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.sched.close()
	p.wg.Wait()
	return nil
}
