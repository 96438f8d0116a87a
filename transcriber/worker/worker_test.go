package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/earshot-dev/earshot/ingest/remote"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testutil"
	"github.com/earshot-dev/earshot/transcriber"
	"github.com/earshot-dev/earshot/transcriber/worker"
)

const standInModel = "fake.en"

// standInFactory is a deterministic stand-in for the whisper Pool, for testing the bus
// protocol only (a fake, not a recogniser): model "fake.en" with slots sessions; every
// chunk with audio gets a partial "chunk <seq>"; a chunk with FlagFinalize or FlagEnd
// gets a final covering the audio of its channel since the previous final (text
// "<start>-<end>" in samples); FlagEnd then gets ResultClosed.
type standInFactory struct {
	slots int

	mu       sync.Mutex
	live     int
	writeErr error
}

func (f *standInFactory) Models() []string { return []string{standInModel} }

func (f *standInFactory) Capacity(model string) bus.Capacity {
	if model != standInModel {
		return bus.Capacity{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return bus.Capacity{Slots: f.slots, Free: f.slots - f.live}
}

func (f *standInFactory) Open(req bus.SessionRequest, emit transcriber.Emitter) (transcriber.Session, error) {
	if req.Model != standInModel {
		return nil, transcriber.ErrUnknownModel
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.live >= f.slots {
		return nil, bus.ErrNoCapacity
	}
	f.live++
	return &standInSession{f: f, emit: emit, segStart: map[int]uint64{}, inSeg: map[int]bool{}, committed: req.Committed}, nil
}

func (f *standInFactory) liveSessions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.live
}

func (f *standInFactory) failWrites(err error) {
	f.mu.Lock()
	f.writeErr = err
	f.mu.Unlock()
}

type standInSession struct {
	f        *standInFactory
	emit     transcriber.Emitter
	mu       sync.Mutex
	closed   bool
	segStart map[int]uint64
	inSeg    map[int]bool
	// committed: after a failover, per channel, where delivered finals end; the
	// replay's run-up before it is not transcribed again (as the real stream does).
	committed []uint64
}

func (s *standInSession) Write(c *bus.AudioChunk) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return transcriber.ErrClosed
	}
	s.f.mu.Lock()
	err := s.f.writeErr
	s.f.mu.Unlock()
	if err != nil {
		return err
	}
	ch := c.Channel
	if len(c.PCM) > 0 {
		if !s.inSeg[ch] {
			s.segStart[ch], s.inSeg[ch] = c.StartSample, true
		}
		s.emit(bus.Result{Type: bus.ResultPartial, Channel: ch, Text: fmt.Sprintf("chunk %d", c.Seq), AudioSeq: c.Seq})
	}
	if c.Flags&(bus.FlagFinalize|bus.FlagEnd) != 0 && s.inSeg[ch] {
		start, end := s.segStart[ch], c.EndSample()
		if ch < len(s.committed) {
			start = max(start, s.committed[ch])
		}
		s.emit(bus.Result{Type: bus.ResultFinal, Channel: ch, Text: fmt.Sprintf("%d-%d", start, end),
			Start: float64(start) / bus.SampleRate, Duration: float64(end-start) / bus.SampleRate,
			EndSample: end, FromFinalize: c.Flags&bus.FlagFinalize != 0, AudioSeq: c.Seq})
		s.inSeg[ch] = false
	}
	if c.Flags&bus.FlagEnd != 0 {
		s.emit(bus.Result{Type: bus.ResultClosed, AudioSeq: c.Seq})
	}
	return nil
}

func (s *standInSession) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.f.mu.Lock()
	s.f.live--
	s.f.mu.Unlock()
}

type workerHarness struct {
	id     bus.WorkerID
	nc     *nats.Conn
	f      *standInFactory
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

func startWorker(t *testing.T, srv *server.Server, id bus.WorkerID, slots int, cfg worker.Config) *workerHarness {
	t.Helper()
	h := &workerHarness{id: id, nc: testutil.Connect(t, srv), f: &standInFactory{slots: slots},
		reg: prometheus.NewRegistry(), done: make(chan error, 1)}
	cfg.ID, cfg.Registerer = id, h.reg
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = time.Second // sessions a test leaves open must not hold its cleanup
	}
	w, err := worker.New(h.nc, h.f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
			t.Error("worker Run did not return 10s after cancel")
		}
	})
	waitHeartbeat(t, srv, id, func(hb bus.Heartbeat) bool { return true })
	return h
}

// waitHeartbeat waits up to 5s for a heartbeat of worker id that satisfies ok.
func waitHeartbeat(t *testing.T, srv *server.Server, id bus.WorkerID, ok func(bus.Heartbeat) bool) bus.Heartbeat {
	t.Helper()
	nc := testutil.Connect(t, srv)
	sub, err := nc.SubscribeSync(bus.HeartbeatSubject(id))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		m, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			break
		}
		var hb bus.Heartbeat
		if json.Unmarshal(m.Data, &hb) == nil && ok(hb) {
			return hb
		}
	}
	t.Fatalf("no matching heartbeat from %s within 5s", id)
	return bus.Heartbeat{}
}

// gateway is the test's raw-NATS gateway side of one session.
type busGateway struct {
	t       *testing.T
	nc      *nats.Conn
	req     bus.SessionRequest
	results *nats.Subscription
}

func newGateway(t *testing.T, nc *nats.Conn, tenant bus.TenantID, session bus.SessionID) *busGateway {
	t.Helper()
	g := &busGateway{t: t, nc: nc, req: bus.SessionRequest{Session: session, Tenant: tenant, Model: standInModel, Channels: 1}}
	var err error
	if g.results, err = nc.SubscribeSync(bus.ResultSubject(tenant, session)); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *busGateway) request() (bus.SessionGrant, error) {
	data, _ := json.Marshal(g.req)
	m, err := g.nc.Request(bus.SessionRequestSubject(standInModel), data, 2*time.Second)
	if err != nil {
		return bus.SessionGrant{}, err
	}
	var grant bus.SessionGrant
	if err := json.Unmarshal(m.Data, &grant); err != nil {
		g.t.Fatalf("grant is not JSON: %q", m.Data)
	}
	return grant, nil
}

func (g *busGateway) mustGrant() bus.SessionGrant {
	g.t.Helper()
	grant, err := g.request()
	if err != nil || grant.Code != "" {
		g.t.Fatalf("no grant: %v %+v", err, grant)
	}
	return grant
}

func (g *busGateway) send(seq, start uint64, samples int, flags bus.ChunkFlag) {
	g.t.Helper()
	c := bus.AudioChunk{Session: g.req.Session, Seq: seq, StartSample: start, SentNs: time.Now().UnixNano(),
		Flags: flags, PCM: make([]int16, samples)}
	if err := g.nc.Publish(bus.AudioSubject(g.req.Tenant, g.req.Session), c.Marshal()); err != nil {
		g.t.Fatal(err)
	}
}

// collect reads results until a terminal one (closed or error), for up to 5s.
func (g *busGateway) collect() []bus.Result {
	g.t.Helper()
	var out []bus.Result
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, err := g.results.NextMsg(time.Until(deadline))
		if err != nil {
			g.t.Fatalf("after %d results (%+v): %v", len(out), out, err)
		}
		var r bus.Result
		if err := json.Unmarshal(m.Data, &r); err != nil {
			g.t.Fatal(err)
		}
		out = append(out, r)
		if r.Type == bus.ResultClosed || r.Type == bus.ResultError {
			return out
		}
	}
}

func resultTexts(rs []bus.Result, typ bus.ResultType) []string {
	var out []string
	for _, r := range rs {
		if r.Type == typ {
			out = append(out, r.Text)
		}
	}
	return out
}

func TestWorkerGrantAudioResults(t *testing.T) {
	srv := testutil.NATS(t)
	h := startWorker(t, srv, "w1", 2, worker.Config{})
	g := newGateway(t, testutil.Connect(t, srv), "acme", bus.NewSessionID())
	grant := g.mustGrant()
	if grant.Worker != "w1" || grant.Session != g.req.Session {
		t.Fatalf("grant %+v", grant)
	}
	// Audio published right after the grant reaches the session: the worker
	// subscribed before replying.
	for i := uint64(1); i <= 4; i++ {
		g.send(i, (i-1)*160, 160, 0)
	}
	g.send(5, 640, 160, bus.FlagEnd)
	rs := g.collect()
	if got := fmt.Sprint(resultTexts(rs, bus.ResultPartial)); got != "[chunk 1 chunk 2 chunk 3 chunk 4 chunk 5]" {
		t.Fatalf("partials %s", got)
	}
	if got := fmt.Sprint(resultTexts(rs, bus.ResultFinal)); got != "[0-800]" {
		t.Fatalf("finals %s", got)
	}
	if last := rs[len(rs)-1]; last.Type != bus.ResultClosed {
		t.Fatalf("last result %+v", last)
	}
	for i, r := range rs {
		if r.Seq != uint64(i+1) || r.Worker != "w1" || r.Session != g.req.Session {
			t.Fatalf("result %d: seq %d worker %q session %q", i, r.Seq, r.Worker, r.Session)
		}
		if r.ChunkSentNs == 0 || r.WorkerRecvNs < r.ChunkSentNs || r.WorkerSentNs < r.WorkerRecvNs {
			t.Fatalf("result %d timings: sent %d recv %d out %d", i, r.ChunkSentNs, r.WorkerRecvNs, r.WorkerSentNs)
		}
	}
	testutil.Eventually(t, 3*time.Second, "slot freed", func() bool { return h.f.liveSessions() == 0 })
	if v := metricSum(t, h.reg, "earshot_worker_chunks_total"); v != 5 {
		t.Fatalf("chunks metric %v", v)
	}
	if v := metricSum(t, h.reg, "earshot_worker_sessions_opened_total"); v != 1 {
		t.Fatalf("opened metric %v", v)
	}
	testutil.Eventually(t, 3*time.Second, "live gauge back to 0", func() bool {
		return metricSum(t, h.reg, "earshot_worker_sessions_live") == 0
	})
}

func TestWorkerDeduplicatesChunks(t *testing.T) {
	srv := testutil.NATS(t)
	startWorker(t, srv, "w1", 1, worker.Config{})
	g := newGateway(t, testutil.Connect(t, srv), "acme", bus.NewSessionID())
	g.mustGrant()
	g.send(1, 0, 160, 0)
	g.send(2, 160, 160, 0)
	g.send(2, 160, 160, 0)
	g.send(1, 0, 160, 0)
	g.send(3, 320, 160, bus.FlagEnd)
	rs := g.collect()
	if got := fmt.Sprint(resultTexts(rs, bus.ResultPartial)); got != "[chunk 1 chunk 2 chunk 3]" {
		t.Fatalf("partials %s: duplicates reached the session", got)
	}
}

func TestWorkerSubscribesOnlyWithFreeSlot(t *testing.T) {
	srv := testutil.NATS(t)
	h := startWorker(t, srv, "w1", 1, worker.Config{})
	nc := testutil.Connect(t, srv)
	g1 := newGateway(t, nc, "acme", bus.NewSessionID())
	g1.mustGrant()
	hb := waitHeartbeat(t, srv, "w1", func(hb bus.Heartbeat) bool { return len(hb.Sessions) == 1 })
	if c := hb.Models[standInModel]; c.Slots != 1 || c.Free != 0 || hb.Sessions[0] != g1.req.Session {
		t.Fatalf("heartbeat while full: %+v", hb)
	}
	g2 := newGateway(t, nc, "acme", bus.NewSessionID())
	if grant, err := g2.request(); !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("full worker still in the queue group: %+v %v", grant, err)
	}
	g1.send(1, 0, 160, bus.FlagEnd)
	g1.collect()
	testutil.Eventually(t, 3*time.Second, "worker back in the queue group", func() bool {
		grant, err := g2.request()
		return err == nil && grant.Code == "" && grant.Worker == h.id
	})
}

func TestWorkerDrainFinishesLiveSessionsAndRefusesNew(t *testing.T) {
	srv := testutil.NATS(t)
	h := startWorker(t, srv, "w1", 2, worker.Config{DrainTimeout: 10 * time.Second})
	nc := testutil.Connect(t, srv)
	g := newGateway(t, nc, "acme", bus.NewSessionID())
	g.mustGrant()
	g.send(1, 0, 160, 0)
	start := time.Now()
	h.cancel()
	waitHeartbeat(t, srv, "w1", func(hb bus.Heartbeat) bool {
		return hb.Draining && len(hb.Sessions) == 1 && hb.Models[standInModel].Free == 0
	})
	g2 := newGateway(t, nc, "acme", bus.NewSessionID())
	if grant, err := g2.request(); err == nil && grant.Code == "" {
		t.Fatalf("draining worker granted a new session: %+v", grant)
	}
	g.send(2, 160, 160, bus.FlagEnd)
	rs := g.collect()
	if got := fmt.Sprint(resultTexts(rs, bus.ResultFinal)); got != "[0-320]" || rs[len(rs)-1].Type != bus.ResultClosed {
		t.Fatalf("live session did not finish normally during drain: %+v", rs)
	}
	select {
	case err := <-h.done:
		if err != nil {
			t.Fatal(err)
		}
		h.done <- nil // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its last session ended")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("drain took %v although the only session ended", d)
	}
}

func TestWorkerDrainDeadlineClosesWithShuttingDown(t *testing.T) {
	srv := testutil.NATS(t)
	h := startWorker(t, srv, "w1", 1, worker.Config{DrainTimeout: 300 * time.Millisecond})
	g := newGateway(t, testutil.Connect(t, srv), "acme", bus.NewSessionID())
	g.mustGrant()
	g.send(1, 0, 160, 0)
	h.cancel()
	rs := g.collect()
	if last := rs[len(rs)-1]; last.Type != bus.ResultError || last.Code != bus.CodeShuttingDown {
		t.Fatalf("last result %+v, want an error SHUTTING_DOWN", last)
	}
	if h.f.liveSessions() != 0 {
		t.Fatal("session left open after drain")
	}
}

func TestWorkerTenantsIsolated(t *testing.T) {
	srv := testutil.NATS(t)
	startWorker(t, srv, "w1", 2, worker.Config{})
	nc := testutil.Connect(t, srv)
	// The same session id in two tenants: two distinct sessions.
	sid := bus.NewSessionID()
	a, b := newGateway(t, nc, "acme", sid), newGateway(t, nc, "globex", sid)
	spyA, err := nc.SubscribeSync(bus.TenantResultsWildcard("acme"))
	if err != nil {
		t.Fatal(err)
	}
	a.mustGrant()
	b.mustGrant()
	a.send(1, 0, 160, bus.FlagEnd)
	ra := a.collect()
	b.send(1, 0, 320, 0)
	b.send(2, 320, 320, bus.FlagEnd)
	rb := b.collect()
	if fmt.Sprint(resultTexts(ra, bus.ResultFinal)) != "[0-160]" || fmt.Sprint(resultTexts(rb, bus.ResultFinal)) != "[0-640]" {
		t.Fatalf("tenant sessions mixed: acme %+v globex %+v", ra, rb)
	}
	n := 0
	for {
		m, err := spyA.NextMsg(200 * time.Millisecond)
		if err != nil {
			break
		}
		n++
		var r bus.Result
		_ = json.Unmarshal(m.Data, &r)
		if r.Type == bus.ResultFinal && r.Text != "0-160" {
			t.Fatalf("tenant acme's wildcard saw another tenant's result: %+v", r)
		}
	}
	if n != len(ra) {
		t.Fatalf("acme wildcard saw %d results, acme's session had %d", n, len(ra))
	}
}

func TestWorkerSurvivesMalformedInput(t *testing.T) {
	srv := testutil.NATS(t)
	h := startWorker(t, srv, "w1", 1, worker.Config{})
	nc := testutil.Connect(t, srv)
	subj := bus.SessionRequestSubject(standInModel)
	requests := map[string]string{
		"not json":        `{"session":`,
		"wrong type":      `[1,2,3]`,
		"dotted tenant":   `{"session":"s1","tenant":"a.b","model":"fake.en"}`,
		"wildcard tenant": `{"session":"s1","tenant":"*","model":"fake.en"}`,
		"empty session":   `{"session":"","tenant":"acme","model":"fake.en"}`,
		"session >":       `{"session":">","tenant":"acme","model":"fake.en"}`,
		"other model":     `{"session":"s1","tenant":"acme","model":"big"}`,
		"999 channels":    `{"session":"s1","tenant":"acme","model":"fake.en","channels":999}`,
		"negative chans":  `{"session":"s1","tenant":"acme","model":"fake.en","channels":-1}`,
	}
	for name, body := range requests {
		t.Run(name, func(t *testing.T) {
			_ = nc.Publish(subj, []byte(body)) // no reply subject: ignored
			m, err := nc.Request(subj, []byte(body), 2*time.Second)
			if err != nil {
				t.Fatalf("no reply to a malformed request: %v", err)
			}
			var g bus.SessionGrant
			if err := json.Unmarshal(m.Data, &g); err != nil || g.Code == "" {
				t.Fatalf("malformed request granted: %q", m.Data)
			}
		})
	}
	g := newGateway(t, nc, "acme", bus.NewSessionID())
	g.mustGrant()
	good := (&bus.AudioChunk{Session: g.req.Session, Seq: 1, PCM: make([]int16, 4)}).Marshal()
	other := (&bus.AudioChunk{Session: "someone-else", Seq: 1, PCM: make([]int16, 4)}).Marshal()
	chan9 := (&bus.AudioChunk{Session: g.req.Session, Seq: 1, Channel: 9, PCM: make([]int16, 4)}).Marshal()
	for _, b := range [][]byte{nil, {1}, good[:20], append([]byte{7}, good[1:]...), good[:len(good)-1], other, chan9,
		append(append([]byte{}, good[:28]...), 255)} {
		if err := nc.Publish(bus.AudioSubject(g.req.Tenant, g.req.Session), b); err != nil {
			t.Fatal(err)
		}
	}
	g.send(1, 0, 160, bus.FlagEnd)
	rs := g.collect()
	if got := fmt.Sprint(resultTexts(rs, bus.ResultPartial)); got != "[chunk 1]" || rs[len(rs)-1].Type != bus.ResultClosed {
		t.Fatalf("after malformed chunks: %+v", rs)
	}
	select {
	case err := <-h.done:
		t.Fatalf("worker stopped: %v", err)
	default:
	}
	if v := metricSum(t, h.reg, "earshot_worker_chunks_dropped_total"); v != 8 {
		t.Fatalf("dropped chunks metric %v, want 8", v)
	}
}

func TestWorkerSessionErrorFreesSlot(t *testing.T) {
	srv := testutil.NATS(t)
	h := startWorker(t, srv, "w1", 1, worker.Config{})
	g := newGateway(t, testutil.Connect(t, srv), "acme", bus.NewSessionID())
	g.mustGrant()
	h.f.failWrites(fmt.Errorf("queue full: %w", transcriber.ErrOverloaded))
	g.send(1, 0, 160, 0)
	rs := g.collect()
	if last := rs[len(rs)-1]; last.Type != bus.ResultError || last.Code != bus.CodeOverloaded {
		t.Fatalf("want an OVERLOADED error, got %+v", rs)
	}
	h.f.failWrites(nil)
	g2 := newGateway(t, testutil.Connect(t, srv), "acme", bus.NewSessionID())
	testutil.Eventually(t, 3*time.Second, "slot free again", func() bool {
		grant, err := g2.request()
		return err == nil && grant.Code == ""
	})
}

func TestWorkerIdleSessionClosed(t *testing.T) {
	srv := testutil.NATS(t)
	h := startWorker(t, srv, "w1", 1, worker.Config{IdleTimeout: 300 * time.Millisecond})
	g := newGateway(t, testutil.Connect(t, srv), "acme", bus.NewSessionID())
	g.mustGrant()
	rs := g.collect()
	if last := rs[len(rs)-1]; last.Type != bus.ResultError {
		t.Fatalf("idle session: %+v", rs)
	}
	testutil.Eventually(t, 3*time.Second, "slot freed", func() bool { return h.f.liveSessions() == 0 })
}

func TestWorkerRejectsBadConfig(t *testing.T) {
	srv := testutil.NATS(t)
	nc := testutil.Connect(t, srv)
	if _, err := worker.New(nc, &standInFactory{slots: 1}, worker.Config{ID: "a.b"}); err == nil {
		t.Fatal("worker id with a dot accepted")
	}
	reg := prometheus.NewRegistry()
	cfg := worker.Config{ID: "w1", Registerer: reg}
	if _, err := worker.New(nc, &standInFactory{slots: 1}, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := worker.New(nc, &standInFactory{slots: 1}, cfg); err == nil {
		t.Fatal("second worker on one registerer: metrics registered twice without error")
	}
}

// metricSum adds up every series of the metric family name.
func metricSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

// The tests below run the gateway side (remote.Client) against real Workers over
// embedded NATS.

func newRemoteClient(t *testing.T, srv *server.Server, opts remote.ClientOptions) *remote.Client {
	t.Helper()
	c, err := remote.NewClient(testutil.Connect(t, srv), nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// kill stops a worker abruptly: its connection closes with no drain and no goodbye.
func (h *workerHarness) kill(t *testing.T) {
	t.Helper()
	h.nc.Close()
	h.cancel()
	select {
	case <-h.done:
		h.done <- nil
	case <-time.After(5 * time.Second):
		t.Fatal("killed worker's Run did not return")
	}
}

func openRemote(t *testing.T, c *remote.Client, tenant bus.TenantID) *remote.Session {
	t.Helper()
	s, err := c.Open(context.Background(), bus.SessionRequest{Tenant: tenant, Model: standInModel})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// consume collects a session's results until Results closes (at most 15s).
func consumeResults(s *remote.Session) <-chan []bus.Result {
	out := make(chan []bus.Result, 1)
	go func() {
		var rs []bus.Result
		timeout := time.After(15 * time.Second)
		for {
			select {
			case r, ok := <-s.Results():
				if !ok {
					out <- rs
					return
				}
				rs = append(rs, r)
			case <-timeout:
				out <- append(rs, bus.Result{Type: bus.ResultError, Message: "test: results did not close in 15s"})
				return
			}
		}
	}()
	return out
}

// checkFinalsCover asserts that the finals' sample ranges ("start-end") tile [0, total)
// exactly once, in order.
func checkFinalsCover(t *testing.T, rs []bus.Result, total uint64) {
	t.Helper()
	var next uint64
	for _, r := range rs {
		if r.Type != bus.ResultFinal {
			continue
		}
		var a, b uint64
		if _, err := fmt.Sscanf(r.Text, "%d-%d", &a, &b); err != nil {
			t.Fatalf("final text %q", r.Text)
		}
		if a != next {
			t.Fatalf("final %q: expected it to start at %d (gap or overlap); finals %v", r.Text, next, resultTexts(rs, bus.ResultFinal))
		}
		next = b
	}
	if next != total {
		t.Fatalf("finals cover [0,%d), audio sent [0,%d): %v", next, total, resultTexts(rs, bus.ResultFinal))
	}
	for i, r := range rs {
		if r.Seq != uint64(i+1) {
			t.Fatalf("result %d has seq %d: not re-sequenced", i, r.Seq)
		}
	}
}

func TestWorkerRemoteRoutesToCapacity(t *testing.T) {
	srv := testutil.NATS(t)
	startWorker(t, srv, "w1", 1, worker.Config{})
	startWorker(t, srv, "w2", 1, worker.Config{})
	c := newRemoteClient(t, srv, remote.ClientOptions{})
	s1, s2 := openRemote(t, c, "acme"), openRemote(t, c, "acme")
	if s1.Worker() == s2.Worker() {
		t.Fatalf("both sessions on %s, which has one slot", s1.Worker())
	}
	start := time.Now()
	_, err := c.Open(context.Background(), bus.SessionRequest{Tenant: "acme", Model: standInModel})
	if !errors.Is(err, bus.ErrNoCapacity) || err.Error() != "no capacity for model fake.en" {
		t.Fatalf("third session: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("no-capacity answer took %v", d)
	}
	res := consumeResults(s1)
	if err := s1.Send(make([]int16, 320), 0, bus.FlagEnd); err != nil {
		t.Fatal(err)
	}
	if rs := <-res; rs[len(rs)-1].Type != bus.ResultClosed {
		t.Fatalf("s1 results %+v", rs)
	}
	s3 := openRemote(t, c, "acme")
	if s3.Worker() != s1.Worker() {
		t.Fatalf("new session on %s, the free slot is on %s", s3.Worker(), s1.Worker())
	}
}

func TestWorkerRemoteGrantThenAudioNoLoss(t *testing.T) {
	srv := testutil.NATS(t)
	startWorker(t, srv, "w1", 1, worker.Config{})
	// Every partial is counted below: a buffer that holds them all, since by default a
	// session drops partials that pile up behind a slow reader (ResultBuffer 8).
	c := newRemoteClient(t, srv, remote.ClientOptions{MaxSpeed: -1, ResultBuffer: 256})
	s := openRemote(t, c, "acme")
	res := consumeResults(s)
	const n, size = 60, 320
	for i := 1; i <= n; i++ {
		var fl bus.ChunkFlag
		if i%10 == 0 {
			fl = bus.FlagFinalize
		}
		if i == n {
			fl |= bus.FlagEnd
		}
		if err := s.Send(make([]int16, size), 0, fl); err != nil {
			t.Fatal(err)
		}
	}
	rs := <-res
	checkFinalsCover(t, rs, n*size)
	if p := resultTexts(rs, bus.ResultPartial); len(p) != n || p[0] != "chunk 1" || p[n-1] != fmt.Sprintf("chunk %d", n) {
		t.Fatalf("%d partials for %d chunks: %v", len(p), n, p)
	}
	if rs[len(rs)-1].Type != bus.ResultClosed {
		t.Fatalf("last %+v", rs[len(rs)-1])
	}
}

// streamThroughFailover sends 100 ms chunks (5x real time, Finalize every 4th) until the
// session has moved off its first worker and 20 chunks more, then ends the stream and
// returns everything the consumer saw and the samples sent.
// checkCleanFailover: the consumer saw no error across a failover and the finals tile
// the audio exactly once.
func checkCleanFailover(t *testing.T, rs []bus.Result, total uint64) {
	t.Helper()
	for _, r := range rs {
		if r.Type == bus.ResultError {
			t.Fatalf("consumer saw an error across the failover: %+v", r)
		}
	}
	checkFinalsCover(t, rs, total)
}

func streamThroughFailover(t *testing.T, s *remote.Session, kill func()) ([]bus.Result, uint64, time.Duration) {
	t.Helper()
	res := consumeResults(s)
	first := s.Worker()
	var total uint64
	var killedAt time.Time
	var movedAfter time.Duration
	after := 0
	for i := 1; after < 20; i++ {
		if time.Since(killedAt) > 8*time.Second && !killedAt.IsZero() {
			t.Fatalf("no failover 8s after the kill (worker %s)", s.Worker())
		}
		var fl bus.ChunkFlag
		if i%4 == 0 {
			fl = bus.FlagFinalize
		}
		if err := s.Send(make([]int16, 1600), 0, fl); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		total += 1600
		if i == 10 {
			killedAt = time.Now()
			kill()
		}
		if w := s.Worker(); !killedAt.IsZero() && w != first {
			if movedAfter == 0 {
				movedAfter = time.Since(killedAt)
			}
			after++
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Send(nil, 0, bus.FlagEnd); err != nil {
		t.Fatal(err)
	}
	return <-res, total, movedAfter
}

func TestWorkerRemoteFailoverWhenWorkerKilled(t *testing.T) {
	srv := testutil.NATS(t)
	hs := map[bus.WorkerID]*workerHarness{
		"w1": startWorker(t, srv, "w1", 1, worker.Config{}),
		"w2": startWorker(t, srv, "w2", 1, worker.Config{}),
	}
	c := newRemoteClient(t, srv, remote.ClientOptions{MaxSpeed: -1})
	s := openRemote(t, c, "acme")
	victim := hs[s.Worker()]
	rs, total, moved := streamThroughFailover(t, s, func() { victim.kill(t) })
	if moved > 3*time.Second {
		t.Fatalf("failover took %v after the kill", moved)
	}
	if s.Failovers() != 1 || s.Worker() == victim.id {
		t.Fatalf("failovers %d, worker %s", s.Failovers(), s.Worker())
	}
	checkCleanFailover(t, rs, total)
	if rs[len(rs)-1].Type != bus.ResultClosed {
		t.Fatalf("last %+v", rs[len(rs)-1])
	}
}

func TestWorkerRemoteFailoverWhenWorkerDrains(t *testing.T) {
	srv := testutil.NATS(t)
	cfg := worker.Config{DrainTimeout: 200 * time.Millisecond}
	hs := map[bus.WorkerID]*workerHarness{
		"w1": startWorker(t, srv, "w1", 1, cfg),
		"w2": startWorker(t, srv, "w2", 1, cfg),
	}
	c := newRemoteClient(t, srv, remote.ClientOptions{MaxSpeed: -1})
	s := openRemote(t, c, "acme")
	victim := hs[s.Worker()]
	rs, total, moved := streamThroughFailover(t, s, victim.cancel)
	if moved > 2*time.Second {
		t.Fatalf("failover after SHUTTING_DOWN took %v", moved)
	}
	checkCleanFailover(t, rs, total)
}

// TestWorkerRemoteFailoverWaitsForAWorker: the only worker is killed and another one
// starts 3 s later, longer than Open's GrantTimeout (2 s) but within FailoverTimeout: the
// session moves to it with no error and every chunk finalised (RELIABILITY.md gap 9: a
// worker behind a frozen NATS node came back 0.5 s after its sessions were failed).
func TestWorkerRemoteFailoverWaitsForAWorker(t *testing.T) {
	srv := testutil.NATS(t)
	h := startWorker(t, srv, "w1", 1, worker.Config{})
	c := newRemoteClient(t, srv, remote.ClientOptions{MaxSpeed: -1})
	s := openRemote(t, c, "acme")
	late := make(chan struct{})
	rs, total, moved := streamThroughFailover(t, s, func() {
		h.kill(t)
		time.AfterFunc(3*time.Second, func() { startWorker(t, srv, "w2", 1, worker.Config{}); close(late) })
	})
	<-late
	if s.Worker() != "w2" || s.Failovers() != 1 {
		t.Fatalf("worker %s after %d failovers", s.Worker(), s.Failovers())
	}
	if moved < 3*time.Second {
		t.Fatalf("moved %v after the kill, before the new worker started", moved)
	}
	checkCleanFailover(t, rs, total)
}

// TestWorkerReleasesAMovedSession: a gateway's ControlRelease (another worker serves
// the session now) makes the worker drop the session without a result and free its
// slot; a release naming the worker itself, or a session it does not hold, changes
// nothing.
func TestWorkerReleasesAMovedSession(t *testing.T) {
	srv := testutil.NATS(t)
	h := startWorker(t, srv, "w1", 1, worker.Config{})
	nc := testutil.Connect(t, srv)
	g := newGateway(t, nc, "acme", bus.NewSessionID())
	g.mustGrant()
	g.send(1, 0, 160, 0)
	release := func(session bus.SessionID, serving bus.WorkerID) {
		data, _ := json.Marshal(bus.Control{Type: bus.ControlRelease, Tenant: "acme", Session: session, Worker: serving})
		if err := nc.Publish(bus.ControlSubject("w1"), data); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	release(g.req.Session, "w1")      // names the worker itself
	release(bus.NewSessionID(), "w2") // a session it does not hold
	_ = nc.Publish(bus.ControlSubject("w1"), []byte("{not json"))
	time.Sleep(300 * time.Millisecond)
	if gr, err := newGateway(t, nc, "acme", bus.NewSessionID()).request(); err == nil && gr.Code == "" {
		t.Fatalf("the worker's one slot is free before any real release: %+v", gr)
	}
	release(g.req.Session, "w2")
	testutil.Eventually(t, 3*time.Second, "the slot freed by the release", func() bool {
		gr, err := newGateway(t, nc, "acme", bus.NewSessionID()).request()
		return err == nil && gr.Code == "" && gr.Worker == "w1"
	})
	g.send(2, 160, 160, bus.FlagEnd)
	for {
		m, err := g.results.NextMsg(500 * time.Millisecond)
		if err != nil {
			break
		}
		var r bus.Result
		_ = json.Unmarshal(m.Data, &r)
		if r.Type == bus.ResultError || r.Type == bus.ResultClosed || (r.Type == bus.ResultPartial && r.Text == "chunk 2") {
			t.Fatalf("the released session answered: %+v", r)
		}
	}
	if got := metricSum(t, h.reg, "earshot_worker_sessions_released_total"); got != 1 {
		t.Fatalf("released counter %v, want 1", got)
	}
}

func TestWorkerRemoteNoWorkerLeftForFailover(t *testing.T) {
	srv := testutil.NATS(t)
	h := startWorker(t, srv, "w1", 1, worker.Config{})
	c := newRemoteClient(t, srv, remote.ClientOptions{FailoverTimeout: time.Second})
	s := openRemote(t, c, "acme")
	res := consumeResults(s)
	if err := s.Send(make([]int16, 1600), 0, 0); err != nil {
		t.Fatal(err)
	}
	h.kill(t)
	rs := <-res
	if last := rs[len(rs)-1]; last.Type != bus.ResultError || last.Code != bus.CodeNoCapacity {
		t.Fatalf("want a NO_CAPACITY error after losing the only worker, got %+v", rs)
	}
	if err := s.Send(make([]int16, 160), 0, 0); !errors.Is(err, remote.ErrSessionClosed) {
		t.Fatalf("send after failure: %v", err)
	}
}

// TestWorkerRecoversAudioGap (stand-in session, real NATS): a chunk lost on the way
// (seq 3 never published) makes the worker hold what follows and ask the gateway for
// seq 3 (ResultResend); once it comes, the session gets 1, 2, 3, 4, 5 in order, each once.
func TestWorkerRecoversAudioGap(t *testing.T) {
	srv := testutil.NATS(t)
	h := startWorker(t, srv, "w1", 1, worker.Config{})
	g := newGateway(t, testutil.Connect(t, srv), "acme", bus.NewSessionID())
	g.mustGrant()
	g.send(1, 0, 160, 0)
	g.send(2, 160, 160, 0)
	g.send(4, 480, 160, 0) // 3 is lost
	g.send(5, 640, 160, 0)
	g.send(4, 480, 160, 0) // a duplicate of a held chunk
	var resend bus.Result
	var before []bus.Result
	for resend.Type != bus.ResultResend {
		m, err := g.results.NextMsg(2 * time.Second)
		if err != nil {
			t.Fatalf("no resend request after %+v: %v", before, err)
		}
		var r bus.Result
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatal(err)
		}
		if r.Type == bus.ResultResend {
			resend = r
		} else {
			before = append(before, r)
		}
	}
	if resend.ResendFrom != 3 || resend.ResendTo != 3 {
		t.Fatalf("resend %d–%d, want 3–3", resend.ResendFrom, resend.ResendTo)
	}
	if got := fmt.Sprint(resultTexts(before, bus.ResultPartial)); got != "[chunk 1 chunk 2]" {
		t.Fatalf("before the gap was filled the session got %s", got)
	}
	answered := time.Now()
	g.send(3, 320, 160, 0) // the gateway's answer
	g.send(6, 800, 160, bus.FlagEnd)
	rs := g.collect()
	if got := fmt.Sprint(resultTexts(rs, bus.ResultPartial)); got != "[chunk 3 chunk 4 chunk 5 chunk 6]" {
		t.Fatalf("after the gap: %s", got)
	}
	if d := time.Since(answered); d > time.Second { // giving up would take 2 s
		t.Errorf("the gap closed %v after the missing chunk came", d)
	}
	for outcome, want := range map[string]float64{"opened": 1, "recovered": 1, "lost": 0} {
		if n := metricWith(t, h.reg, "earshot_worker_audio_gaps_total", "outcome", outcome); n != want {
			t.Errorf("earshot_worker_audio_gaps_total{outcome=%q} = %v, want %v", outcome, n, want)
		}
	}
}

// TestWorkerGivesUpAudioGap: when the gateway never answers (the chunk is gone), the
// worker asks a few times, then writes what it held, so the stream goes on (the lost
// audio is silence to the decoder) within about a second.
func TestWorkerGivesUpAudioGap(t *testing.T) {
	srv := testutil.NATS(t)
	startWorker(t, srv, "w1", 1, worker.Config{})
	g := newGateway(t, testutil.Connect(t, srv), "acme", bus.NewSessionID())
	g.mustGrant()
	g.send(1, 0, 160, 0)
	g.send(3, 320, 160, 0)
	start := time.Now()
	g.send(4, 480, 160, bus.FlagEnd)
	rs := g.collect()
	asks := 0
	for _, r := range rs {
		if r.Type == bus.ResultResend {
			asks++
		}
	}
	if got := fmt.Sprint(resultTexts(rs, bus.ResultPartial)); got != "[chunk 1 chunk 3 chunk 4]" || asks < 2 {
		t.Fatalf("partials %s after %d resend requests", got, asks)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("gave up after %v", d)
	}
}

// metricWith is the value of the series of name whose label has value (0 if none).
func metricWith(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value && m.Counter != nil {
					return m.Counter.GetValue()
				}
			}
		}
	}
	return 0
}

// A gateway that lost results on the way asks for them by seq (FlagResendResults, in
// band on the audio subject): the worker publishes exactly those again, byte for byte
// as the first time, and answers a range it no longer keeps with nothing.
func TestWorkerResendsLostResults(t *testing.T) {
	srv := testutil.NATS(t)
	h := startWorker(t, srv, "w1", 1, worker.Config{})
	g := newGateway(t, testutil.Connect(t, srv), "acme", bus.NewSessionID())
	g.mustGrant()
	first := map[uint64]string{}
	for i := range 3 {
		g.send(uint64(i+1), uint64(i*160), 160, 0)
		m, err := g.results.NextMsg(2 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var r bus.Result
		_ = json.Unmarshal(m.Data, &r)
		first[r.Seq] = string(m.Data)
	}
	ask := func(from, to uint64) {
		c := bus.AudioChunk{Session: g.req.Session, Seq: from, StartSample: to, Flags: bus.FlagResendResults}
		if err := g.nc.Publish(bus.AudioSubject(g.req.Tenant, g.req.Session), c.Marshal()); err != nil {
			t.Fatal(err)
		}
	}
	ask(2, 3)
	for want := uint64(2); want <= 3; want++ {
		m, err := g.results.NextMsg(2 * time.Second)
		if err != nil {
			t.Fatalf("result %d not resent: %v", want, err)
		}
		if string(m.Data) != first[want] {
			t.Fatalf("resent %s, first sent %s", m.Data, first[want])
		}
	}
	ask(5, 9) // never published
	ask(0, 1) // seqs start at 1
	if m, err := g.results.NextMsg(300 * time.Millisecond); err == nil {
		t.Fatalf("a range not kept got %s", m.Data)
	}
	if n := metricSum(t, h.reg, "earshot_worker_results_resent_total"); n != 2 {
		t.Fatalf("earshot_worker_results_resent_total = %v, want 2", n)
	}
	g.send(4, 480, 160, bus.FlagEnd)
	if rs := g.collect(); rs[len(rs)-1].Type != bus.ResultClosed {
		t.Fatalf("session did not close after resends: %+v", rs)
	}
}
