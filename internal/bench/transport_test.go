package bench

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/ingest/remote"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testutil"
	"github.com/earshot-dev/earshot/transcriber"
	"github.com/earshot-dev/earshot/transcriber/worker"
)

// echoFactory is a stand-in SessionFactory for transport measurements only: it does
// no recognition and answers every chunk at once with one partial naming the chunk,
// and FlagEnd with ResultClosed, so what is timed is the bus and the worker alone.
type echoFactory struct {
	model string // "": echoModel
	slots int    // 0: 64
	mu    sync.Mutex
	open  int
}

const echoModel = "echo"

func (f *echoFactory) Models() []string {
	if f.model != "" {
		return []string{f.model}
	}
	return []string{echoModel}
}

func (f *echoFactory) Capacity(string) bus.Capacity {
	f.mu.Lock()
	defer f.mu.Unlock()
	slots := f.slots
	if slots == 0 {
		slots = 64
	}
	return bus.Capacity{Slots: slots, Free: slots - f.open}
}

func (f *echoFactory) Open(_ bus.SessionRequest, emit transcriber.Emitter) (transcriber.Session, error) {
	f.mu.Lock()
	f.open++
	f.mu.Unlock()
	return &echoSession{f: f, emit: emit}, nil
}

type echoSession struct {
	f    *echoFactory
	emit transcriber.Emitter
	once sync.Once
	end  uint64 // samples received
}

// Write echoes each chunk as a partial over it, and at the stream's end a final over
// all of it.
func (s *echoSession) Write(c *bus.AudioChunk) error {
	if len(c.PCM) > 0 {
		s.emit(bus.Result{Type: bus.ResultPartial, AudioSeq: c.Seq, Start: float64(c.StartSample) / bus.SampleRate,
			Duration: float64(len(c.PCM)) / bus.SampleRate, Text: "echo"})
		s.end = max(s.end, c.StartSample+uint64(len(c.PCM)))
	}
	if c.Flags&bus.FlagEnd != 0 {
		s.emit(bus.Result{Type: bus.ResultFinal, AudioSeq: c.Seq, Duration: float64(s.end) / bus.SampleRate, Text: "echo"})
		s.emit(bus.Result{Type: bus.ResultClosed})
	}
	return nil
}

func (s *echoSession) Close() {
	s.once.Do(func() { s.f.mu.Lock(); s.f.open--; s.f.mu.Unlock() })
}

// transportRig is an embedded NATS server, one worker on the echo factory and the
// gateway's remote.Client, all in this process.
type transportRig struct {
	cl *remote.Client
}

func newTransportRig(tb testing.TB) *transportRig {
	tb.Helper()
	ns := testutil.NATS(tb)
	w, err := worker.New(testutil.Connect(tb, ns), &echoFactory{}, worker.Config{ID: "echo-worker"})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	tb.Cleanup(func() { cancel(); <-done })
	cl, err := remote.NewClient(testutil.Connect(tb, ns), nil, remote.ClientOptions{MaxSpeed: -1})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cl.Close() })
	return &transportRig{cl: cl}
}

// hops of one round trip, in microseconds.
type hops struct{ total, toWorker, inWorker, back float64 }

// roundTrips sends n 100 ms chunks one at a time on one session and times each from
// Send to the result's arrival at the gateway side.
func (r *transportRig) roundTrips(tb testing.TB, n int) []hops {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := r.cl.Open(ctx, bus.SessionRequest{Tenant: "bench", Model: echoModel, Channels: 1})
	if err != nil {
		tb.Fatalf("open session: %v", err)
	}
	defer s.Close()
	pcm := make([]int16, 1600)
	out := make([]hops, 0, n)
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if err := s.Send(pcm, 0, 0); err != nil {
			tb.Fatalf("send: %v", err)
		}
		for {
			select {
			case res, ok := <-s.Results():
				if !ok {
					tb.Fatal("results closed")
				}
				if res.Type != bus.ResultPartial {
					continue
				}
				now := time.Now()
				out = append(out, hops{
					total:    float64(now.Sub(t0).Nanoseconds()) / 1e3,
					toWorker: float64(res.WorkerRecvNs-res.ChunkSentNs) / 1e3,
					inWorker: float64(res.WorkerSentNs-res.WorkerRecvNs) / 1e3,
					back:     float64(now.UnixNano()-res.WorkerSentNs) / 1e3,
				})
			case <-time.After(5 * time.Second):
				tb.Fatalf("no echo for chunk %d within 5 s", i+1)
			}
			break
		}
	}
	return out
}

func pct(h []hops, f func(hops) float64, q float64) float64 {
	v := make([]float64, len(h))
	for i, x := range h {
		v[i] = f(x)
	}
	slices.Sort(v)
	return quantile(v, q)
}

// BenchmarkTransport times gateway → NATS → worker → gateway for one 100 ms chunk
// (remote.Client and worker.Worker over an embedded NATS server, echo stand-in
// instead of whisper). Reports p50/p99 of the round trip and of each hop in µs.
func BenchmarkTransport(b *testing.B) {
	r := newTransportRig(b)
	r.roundTrips(b, 20) // warm up
	b.ResetTimer()
	h := r.roundTrips(b, b.N)
	b.StopTimer()
	total := func(x hops) float64 { return x.total }
	b.ReportMetric(pct(h, total, 0.50), "p50-µs")
	b.ReportMetric(pct(h, total, 0.99), "p99-µs")
	b.ReportMetric(pct(h, func(x hops) float64 { return x.toWorker }, 0.50), "to-worker-p50-µs")
	b.ReportMetric(pct(h, func(x hops) float64 { return x.back }, 0.50), "back-p50-µs")
}

// TestTransportRoundTrip checks the bus's share of latency: the median round trip of
// a chunk through NATS, the worker and back is under the 5 ms target.
func TestTransportRoundTrip(t *testing.T) {
	r := newTransportRig(t)
	r.roundTrips(t, 20)
	h := r.roundTrips(t, 300)
	total := func(x hops) float64 { return x.total }
	p50, p99 := pct(h, total, 0.50), pct(h, total, 0.99)
	t.Logf("round trip over %d chunks: p50 %.0f µs, p99 %.0f µs (to worker p50 %.0f µs, in worker %.0f µs, back %.0f µs)",
		len(h), p50, p99, pct(h, func(x hops) float64 { return x.toWorker }, 0.5),
		pct(h, func(x hops) float64 { return x.inWorker }, 0.5), pct(h, func(x hops) float64 { return x.back }, 0.5))
	if p50 > 5000 {
		t.Fatalf("median round trip %.0f µs is over the 5 ms target", p50)
	}
}
