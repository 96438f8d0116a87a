package transcriber

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
)

// Deterministic stand-ins for whisper and Silero, for unit tests of the streaming policy
// only. The real engine is exercised by TestStreamLongformRealEngine.
//
// Test audio is a sequence of "words": a fakeWordMs burst of a square wave whose
// amplitude encodes the word (fakeVocab[k] ↔ 0.10 + 0.05·k), separated by short gaps.
// scriptedDecoder "recognises" the bursts in a window: a complete burst is its word; a
// burst cut by the window end is an unstable guess that changes as the window grows.

var fakeVocab = []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"}

const (
	fakeWordMs = 240
	fakeGapMs  = 60
	fakeFrame  = 160 // 10 ms
)

func fakeLevel(k int) float64 { return 0.10 + 0.05*float64(k) }

// speech returns PCM16 for the words (indices into fakeVocab).
func speech(words ...int) []int16 {
	var out []int16
	for _, k := range words {
		a := int16(fakeLevel(k) * 32767)
		for i := 0; i < fakeWordMs*bus.SamplesPerMs; i++ {
			if i%2 == 0 {
				out = append(out, a)
			} else {
				out = append(out, -a)
			}
		}
		out = append(out, make([]int16, fakeGapMs*bus.SamplesPerMs)...)
	}
	return out
}

func silence(ms int) []int16 { return make([]int16, ms*bus.SamplesPerMs) }

func cat(parts ...[]int16) []int16 {
	var out []int16
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func rms(x []float32) float64 {
	if len(x) == 0 {
		return 0
	}
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(x)))
}

// scriptedDecoder is the deterministic fake whisper described above. Override, when
// set, replaces the recognised text (guard tests); Delay makes each call take that long
// (or until ctx is cancelled); Block makes calls wait for ctx.
type scriptedDecoder struct {
	Override func(recognised string) Hypothesis
	// Prompted, when set, replaces the recognised text of decodes that have a prompt
	// (trimmed windows, in a session without history).
	Prompted func(recognised string) string
	Delay    time.Duration
	Block    bool
	// OnDecode, when set, sees each request as the call starts.
	OnDecode func(DecodeRequest)
	// Timed gives each word a token whose End is where its burst ends in the window (the
	// stand-in for DTW word times), for texts that are a prefix of what the window holds.
	Timed bool

	calls    atomic.Int64
	inFlight atomic.Int64
	maxIn    atomic.Int64
	aborted  atomic.Int64
	mu       sync.Mutex
	reqs     []DecodeRequest
	heard    [][]int // per request, fakeIDs of what its window holds
}

type scriptedModel struct{ d *scriptedDecoder }

func (m *scriptedModel) Name() string                 { return "fake" }
func (m *scriptedModel) NewDecoder() (Decoder, error) { return m.d, nil }
func (m *scriptedModel) Close() error                 { return nil }

func (d *scriptedDecoder) Tokenize(text string) ([]int, error) {
	f := strings.Fields(text)
	ids := make([]int, len(f))
	for i := range f {
		ids[i] = i + 1
	}
	return ids, nil
}

func (d *scriptedDecoder) Close() error { return nil }

func (d *scriptedDecoder) Decode(ctx context.Context, req DecodeRequest) (Hypothesis, error) {
	d.calls.Add(1)
	n := d.inFlight.Add(1)
	defer d.inFlight.Add(-1)
	for {
		m := d.maxIn.Load()
		if n <= m || d.maxIn.CompareAndSwap(m, n) {
			break
		}
	}
	d.mu.Lock()
	// Samples keeps only the length (a zero-filled slice), not the caller's buffer.
	d.reqs = append(d.reqs, DecodeRequest{AudioCtx: req.AudioCtx, PromptTokens: req.PromptTokens, MaxTokens: req.MaxTokens, Draft: req.Draft,
		WordTimes: req.WordTimes, Script: req.Script, Samples: make([]float32, len(req.Samples))})
	d.heard = append(d.heard, fakeIDs(recognise(req.Samples)))
	d.mu.Unlock()
	if d.OnDecode != nil {
		d.OnDecode(req)
	}
	if d.Block {
		<-ctx.Done()
		d.aborted.Add(1)
		return Hypothesis{}, ctx.Err()
	}
	if d.Delay > 0 {
		select {
		case <-time.After(d.Delay):
		case <-ctx.Done():
			d.aborted.Add(1)
			return Hypothesis{}, ctx.Err()
		}
	}
	text := recognise(req.Samples)
	if d.Prompted != nil && len(req.PromptTokens) > 0 {
		text = d.Prompted(text)
	}
	if d.Override != nil {
		return d.Override(text), nil
	}
	h := Hypothesis{Text: text, AvgLogprob: -0.1, NoSpeechProb: 0.01, Tokens: []Token{{ID: 1}}, Sampled: fakeIDs(text)}
	if d.Timed {
		words, ends := recogniseTimed(req.Samples)
		got := strings.Fields(text)
		if len(got) <= len(words) && slices.Equal(got, words[:len(got)]) {
			h.Tokens = nil
			for i, w := range got {
				h.Tokens = append(h.Tokens, Token{ID: i + 1, Text: " " + w, End: ends[i], P: 0.9})
			}
		}
	}
	return h, nil
}

// recognise maps the bursts of a window to words.
func recognise(x []float32) string {
	words, _ := recogniseTimed(x)
	return strings.Join(words, " ")
}

// recogniseTimed is recognise with where each word's burst ends (seconds into x).
func recogniseTimed(x []float32) (words []string, ends []float64) {
	runStart, peak := -1, 0.0
	frames := len(x) / fakeFrame
	flush := func(end int, cut bool) {
		n := end - runStart
		k := int(math.Round((peak - 0.10) / 0.05))
		k = max(0, min(k, len(fakeVocab)-1))
		switch {
		case cut && n < fakeWordMs/10:
			words = append(words, fmt.Sprintf("%s~%d", fakeVocab[k][:2], n))
			ends = append(ends, float64(end*fakeFrame)/bus.SampleRate)
		case n >= fakeWordMs/10-2:
			words = append(words, fakeVocab[k])
			ends = append(ends, float64(end*fakeFrame)/bus.SampleRate)
		}
		runStart, peak = -1, 0
	}
	for f := 0; f < frames; f++ {
		r := rms(x[f*fakeFrame : (f+1)*fakeFrame])
		switch {
		case r > 0.02 && runStart < 0:
			runStart, peak = f, r
		case r > 0.02:
			peak = math.Max(peak, r)
		case runStart >= 0:
			flush(f, false)
		}
	}
	if runStart >= 0 {
		flush(frames, true)
	}
	return words, ends
}

// energyVAD is a deterministic stand-in for Silero: p = 1 when a 512-sample window's
// RMS exceeds 0.02, else 0.
type energyVAD struct {
	carry  []float32
	closed atomic.Bool
}

func (v *energyVAD) WindowSamples() int { return 512 }
func (v *energyVAD) Reset()             { v.carry = v.carry[:0] }
func (v *energyVAD) Close() error       { v.closed.Store(true); return nil }
func (v *energyVAD) Process(x []float32) ([]float32, error) {
	if v.closed.Load() {
		return nil, ErrClosed
	}
	v.carry = append(v.carry, x...)
	var out []float32
	for len(v.carry) >= 512 {
		p := float32(0)
		if rms(v.carry[:512]) > 0.02 {
			p = 1
		}
		out = append(out, p)
		v.carry = v.carry[512:]
	}
	return out, nil
}

// testClock is a manual clock for PoolConfig.now.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// collector records a session's results with the stream position fed when each came.
type collector struct {
	mu     sync.Mutex
	rs     []bus.Result
	at     []uint64 // samples fed when the result arrived
	fed    atomic.Uint64
	closed atomic.Bool // set by the test after Close returned
	late   atomic.Int64
}

func (c *collector) emit(r bus.Result) {
	if c.closed.Load() {
		c.late.Add(1)
	}
	c.mu.Lock()
	c.rs = append(c.rs, r)
	c.at = append(c.at, c.fed.Load())
	c.mu.Unlock()
}

func (c *collector) results() []bus.Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]bus.Result(nil), c.rs...)
}

func (c *collector) ofType(t bus.ResultType) []bus.Result {
	var out []bus.Result
	for _, r := range c.results() {
		if r.Type == t {
			out = append(out, r)
		}
	}
	return out
}

// fakeRig is a Pool on the scripted decoder with a manual clock.
type fakeRig struct {
	t     *testing.T
	pool  *Pool
	dec   *scriptedDecoder
	clock *testClock
}

func newFakeRig(t *testing.T, cfg PoolConfig, dec *scriptedDecoder) *fakeRig {
	t.Helper()
	if dec == nil {
		dec = &scriptedDecoder{}
	}
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	if cfg.Models == nil {
		cfg.Models = map[string]Model{"fake": &scriptedModel{d: dec}}
	}
	cfg.NewVAD = func() (VAD, error) { return &energyVAD{}, nil }
	if cfg.now == nil {
		cfg.now = clk.Now
	}
	if cfg.Slots == 0 {
		cfg.Slots = 1
	}
	p, err := NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return &fakeRig{t: t, pool: p, dec: dec, clock: clk}
}

func (r *fakeRig) open(opts bus.StreamOptions) (Session, *collector) {
	r.t.Helper()
	c := &collector{}
	s, err := r.pool.Open(bus.SessionRequest{Session: "s", Model: "fake", Channels: 1, Options: opts}, c.emit)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(s.Close)
	return s, c
}

// waitIdle waits until no decode is queued or running. The rig also runs real engines
// (simulatedSession): one base decode of a 10 s window took over 6 s on a slow 2-vCPU
// machine, so the limit only catches a scheduler that hangs.
func (r *fakeRig) waitIdle() {
	r.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for r.pool.turnInFlight.Load() > 0 || !r.pool.sched.idle() {
		if time.Now().After(deadline) {
			r.t.Fatal("scheduler never became idle")
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// feed writes pcm in 20 ms chunks from start, advancing the manual clock by 20 ms per
// chunk and letting every due decode finish before the next chunk ("instant" decoder
// in simulated real time). flags go on the last chunk. It returns the next position.
func (r *fakeRig) feed(s Session, c *collector, pcm []int16, start uint64, flags bus.ChunkFlag) uint64 {
	r.t.Helper()
	return r.write(s, c, pcm, start, flags, true)
}

// write is feed; without wait it does not wait for decodes (audio arriving faster than
// it is decoded).
func (r *fakeRig) write(s Session, c *collector, pcm []int16, start uint64, flags bus.ChunkFlag, wait bool) uint64 {
	r.t.Helper()
	const chunk = 20 * bus.SamplesPerMs
	for i := 0; i < len(pcm); i += chunk {
		j := min(i+chunk, len(pcm))
		ch := &bus.AudioChunk{Session: "s", Seq: start/chunk + 1, StartSample: start, PCM: pcm[i:j]}
		if j == len(pcm) {
			ch.Flags = flags
		}
		r.clock.Advance(20 * time.Millisecond)
		start += uint64(j - i)
		if c != nil {
			c.fed.Store(start)
		}
		if err := s.Write(ch); err != nil {
			r.t.Fatalf("write at %d: %v", start, err)
		}
		if wait {
			r.waitIdle()
		}
	}
	return start
}

// fakeIDs are the scripted decoder's sampled token ids: one per word, the word's length
// and first letter, so the same words give the same ids.
func fakeIDs(text string) []int {
	var ids []int
	for _, w := range strings.Fields(text) {
		ids = append(ids, 1000*len(w)+int(w[0]))
	}
	return ids
}
