package remote_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/ingest/remote"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// These tests drive the Client against scripted responders on a real embedded NATS,
// so that ingest stays testable without whisper.cpp. The end-to-end tests against real
// transcriber.Workers (routing to capacity, failover on kill and on drain) are
// TestWorkerRemote* in transcriber/worker_test.go.

const remoteModel = "fake.en"

// stubWorker is a stand-in worker (a fake, for client unit tests) answering session
// requests on NATS.
type stubWorker struct {
	n    atomic.Int32 // requests answered
	mu   sync.Mutex
	reqs []bus.SessionRequest
}

// requests is a copy of the session requests answered so far.
func (w *stubWorker) requests() []bus.SessionRequest {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]bus.SessionRequest(nil), w.reqs...)
}

// scriptedWorker grants every request as worker id, replying with the codes in refuse
// first, and keeps the requests.
func scriptedWorker(t *testing.T, nc *nats.Conn, id bus.WorkerID, refuse ...bus.ErrorCode) *stubWorker {
	t.Helper()
	w := new(stubWorker)
	_, err := nc.QueueSubscribe(bus.SessionRequestSubject(remoteModel), bus.QueueWorkers(remoteModel), func(m *nats.Msg) {
		var req bus.SessionRequest
		_ = json.Unmarshal(m.Data, &req)
		w.mu.Lock()
		w.reqs = append(w.reqs, req)
		w.mu.Unlock()
		g := bus.SessionGrant{Session: req.Session, Worker: id}
		if i := int(w.n.Add(1)) - 1; i < len(refuse) {
			g.Code, g.Message = refuse[i], "scripted refusal"
		}
		data, _ := json.Marshal(g)
		_ = m.Respond(data)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return w
}

func newRemoteClient(t *testing.T, nc *nats.Conn, opts remote.ClientOptions) *remote.Client {
	t.Helper()
	c, err := remote.NewClient(nc, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func openRemote(t *testing.T, c *remote.Client, req bus.SessionRequest) *remote.Session {
	t.Helper()
	s, err := c.Open(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestRemoteNoCapacityIsAnErrorNotAHang(t *testing.T) {
	srv := testutil.NATS(t)
	c := newRemoteClient(t, testutil.Connect(t, srv), remote.ClientOptions{})
	start := time.Now()
	_, err := c.Open(context.Background(), bus.SessionRequest{Tenant: "acme", Model: remoteModel})
	if !errors.Is(err, bus.ErrNoCapacity) || err.Error() != "no capacity for model fake.en" {
		t.Fatalf("open with no worker: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v", d)
	}
	// A caller's deadline shorter than GrantTimeout is honoured.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := c.Open(ctx, bus.SessionRequest{Tenant: "acme", Model: remoteModel}); err == nil || time.Since(start) > time.Second {
		t.Fatalf("open under a 200ms deadline: %v after %v", err, time.Since(start))
	}
}

// TestRemoteSilentWorkerIsRetried: one member of the workers' queue group never
// answers (a worker behind a frozen NATS node still looks subscribed); requests that
// reach it are asked again after AttemptTimeout, so every Open is granted by the other.
func TestRemoteSilentWorkerIsRetried(t *testing.T) {
	srv := testutil.NATS(t)
	nc := testutil.Connect(t, srv)
	var silent atomic.Int32
	if _, err := nc.QueueSubscribe(bus.SessionRequestSubject(remoteModel), bus.QueueWorkers(remoteModel),
		func(*nats.Msg) { silent.Add(1) }); err != nil {
		t.Fatal(err)
	}
	granted := scriptedWorker(t, nc, "w9")
	// The grant budget holds many attempts, so that an open fails only if every one of
	// them went to the silent worker or found w9 slower than an attempt: with 100 ms
	// attempts in the default 2 s, a loaded CI machine (race detector, other packages'
	// tests) once failed an open after 9 silent attempts.
	c := newRemoteClient(t, nc, remote.ClientOptions{AttemptTimeout: 250 * time.Millisecond, GrantTimeout: 15 * time.Second})
	for i := 0; silent.Load() < 3; i++ {
		if i == 200 {
			t.Fatalf("the silent worker got %d of %d requests", silent.Load(), granted.n.Load())
		}
		s, err := c.Open(context.Background(), bus.SessionRequest{Tenant: "acme", Model: remoteModel})
		if err != nil {
			t.Fatalf("open %d (silent worker asked %d times): %v", i, silent.Load(), err)
		}
		s.Close()
	}
}

// TestRemoteReleasesAWorkerThatStillActs: results for a granted session from a worker
// other than the one serving it (a worker only thought lost, or a late grant) are
// dropped, and that worker is told to let go (bus.ControlRelease naming the serving
// worker), at most once a second.
func TestRemoteReleasesAWorkerThatStillActs(t *testing.T) {
	srv := testutil.NATS(t)
	nc := testutil.Connect(t, srv)
	scriptedWorker(t, nc, "w9")
	ctl, err := nc.SubscribeSync(bus.ControlSubject("w7"))
	if err != nil {
		t.Fatal(err)
	}
	c := newRemoteClient(t, nc, remote.ClientOptions{})
	s := openRemote(t, c, bus.SessionRequest{Tenant: "acme", Model: remoteModel})
	for seq := uint64(1); seq <= 3; seq++ {
		data, _ := json.Marshal(bus.Result{Type: bus.ResultPartial, Session: s.ID(), Worker: "w7", Seq: seq, Text: "zombie"})
		if err := nc.Publish(bus.ResultSubject("acme", s.ID()), data); err != nil {
			t.Fatal(err)
		}
	}
	m, err := ctl.NextMsg(2 * time.Second)
	if err != nil {
		t.Fatalf("no release sent to w7: %v", err)
	}
	var got bus.Control
	if err := json.Unmarshal(m.Data, &got); err != nil || got != (bus.Control{Type: bus.ControlRelease, Tenant: "acme", Session: s.ID(), Worker: "w9"}) {
		t.Fatalf("release %s: %v", m.Data, err)
	}
	if m, err := ctl.NextMsg(300 * time.Millisecond); err == nil {
		t.Fatalf("a second release within a second: %s", m.Data)
	}
	select {
	case r := <-s.Results():
		t.Fatalf("a result of the worker not serving the session was delivered: %+v", r)
	default:
	}
	// A heartbeat listing the session does the same.
	ctl6, err := nc.SubscribeSync(bus.ControlSubject("w6"))
	if err != nil {
		t.Fatal(err)
	}
	hb, _ := json.Marshal(bus.Heartbeat{Worker: "w6", Sessions: []bus.SessionID{s.ID()}, SentAt: time.Now()})
	if err := nc.Publish(bus.HeartbeatSubject("w6"), hb); err != nil {
		t.Fatal(err)
	}
	if m, err := ctl6.NextMsg(2 * time.Second); err != nil || !strings.Contains(string(m.Data), `"worker":"w9"`) {
		t.Fatalf("no release to w6 after its heartbeat listed the session: %v", err)
	}
}

func TestRemoteGrantCodes(t *testing.T) {
	srv := testutil.NATS(t)
	nc := testutil.Connect(t, srv)
	c := newRemoteClient(t, nc, remote.ClientOptions{})
	// Full and draining workers are retried; the third answer grants.
	n := scriptedWorker(t, nc, "w9", bus.CodeNoCapacity, bus.CodeShuttingDown)
	s := openRemote(t, c, bus.SessionRequest{Tenant: "acme", Model: remoteModel})
	if s.Worker() != "w9" || n.n.Load() != 3 {
		t.Fatalf("worker %q after %d requests", s.Worker(), n.n.Load())
	}

	srv2 := testutil.NATS(t)
	nc2 := testutil.Connect(t, srv2)
	scriptedWorker(t, nc2, "w9", bus.CodeQuota)
	_, err := newRemoteClient(t, nc2, remote.ClientOptions{}).Open(context.Background(), bus.SessionRequest{Tenant: "acme", Model: remoteModel})
	var ge *remote.GrantError
	if !errors.As(err, &ge) || ge.Code != bus.CodeQuota {
		t.Fatalf("refusal with a code: %v", err)
	}
}

func TestRemoteRejectsBadRequests(t *testing.T) {
	srv := testutil.NATS(t)
	nc := testutil.Connect(t, srv)
	scriptedWorker(t, nc, "w9")
	c := newRemoteClient(t, nc, remote.ClientOptions{})
	for _, req := range []bus.SessionRequest{
		{Tenant: "a.b", Model: remoteModel},
		{Tenant: "*", Model: remoteModel},
		{Tenant: "acme", Model: ""},
		{Tenant: "acme", Model: "tiny.>"},
		{Tenant: "acme", Session: "x y", Model: remoteModel},
	} {
		if _, err := c.Open(context.Background(), req); !errors.Is(err, remote.ErrBadSessionRequest) {
			t.Errorf("%+v: %v", req, err)
		}
	}
	s := openRemote(t, c, bus.SessionRequest{Tenant: "acme", Model: remoteModel})
	if _, err := c.Open(context.Background(), bus.SessionRequest{Tenant: "globex", Session: s.ID(), Model: remoteModel}); err == nil {
		t.Error("a second session with a live session's id was opened")
	}
}

func TestRemoteSendNumbersChunksOnTheTenantsSubject(t *testing.T) {
	srv := testutil.NATS(t)
	nc := testutil.Connect(t, srv)
	scriptedWorker(t, nc, "w9")
	c := newRemoteClient(t, nc, remote.ClientOptions{})
	s := openRemote(t, c, bus.SessionRequest{Tenant: "acme", Model: remoteModel, Channels: 2})
	audio, _ := nc.SubscribeSync(bus.AudioSubject("acme", s.ID()))
	other, _ := nc.SubscribeSync("earshot.audio.globex.>")
	_ = nc.Flush()
	sends := []struct {
		ch int
		n  int
	}{{0, 100}, {1, 50}, {0, 30}, {1, 70}}
	for _, x := range sends {
		if err := s.Send(make([]int16, x.n), x.ch, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Send(make([]int16, 1), 2, 0); !errors.Is(err, ingest.ErrChannels) {
		t.Fatalf("channel 2 of 2: %v", err)
	}
	want := []struct{ seq, start uint64 }{{1, 0}, {2, 0}, {3, 100}, {4, 50}}
	for i, w := range want {
		m, err := audio.NextMsg(2 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c, err := bus.UnmarshalAudioChunk(m.Data)
		if err != nil || c.Seq != w.seq || c.StartSample != w.start || c.Channel != sends[i].ch || c.SentNs == 0 {
			t.Fatalf("chunk %d: %+v %v", i, c, err)
		}
	}
	if m, err := other.NextMsg(100 * time.Millisecond); err == nil {
		t.Fatalf("another tenant's subject carried audio: %q", m.Subject)
	}
}

func publishResult(t *testing.T, nc *nats.Conn, s *remote.Session, r bus.Result) {
	t.Helper()
	r.Session = s.ID()
	data, _ := json.Marshal(r)
	if err := nc.Publish(bus.ResultSubject("acme", s.ID()), data); err != nil {
		t.Fatal(err)
	}
}

func TestRemoteResultsDeduplicatedAndOrdered(t *testing.T) {
	srv := testutil.NATS(t)
	nc := testutil.Connect(t, srv)
	scriptedWorker(t, nc, "w9")
	c := newRemoteClient(t, nc, remote.ClientOptions{})
	s := openRemote(t, c, bus.SessionRequest{Tenant: "acme", Model: remoteModel})
	for _, r := range []bus.Result{
		{Type: bus.ResultFinal, Worker: "w9", Seq: 1, Text: "one", EndSample: 1600},
		{Type: bus.ResultFinal, Worker: "w9", Seq: 1, Text: "one again", EndSample: 1600},   // duplicate seq
		{Type: bus.ResultFinal, Worker: "ghost", Seq: 2, Text: "not ours", EndSample: 3200}, // another worker
		{Type: bus.ResultFinal, Worker: "w9", Seq: 2, Text: "stale", EndSample: 1600},       // already delivered
		{Type: bus.ResultPartial, Worker: "w9", Seq: 3, Text: "two"},
		{Type: bus.ResultFinal, Worker: "w9", Seq: 4, Text: "two", Start: 0.1, Duration: 0.1}, // end from times
		{Type: bus.ResultClosed, Worker: "w9", Seq: 5},
	} {
		publishResult(t, nc, s, r)
	}
	got := drainResults(t, s, 5*time.Second)
	if strings.Join(got, ",") != "final:one,partial:two,final:two,closed:" {
		t.Fatalf("consumer saw %v", got)
	}
	if err := s.Send(make([]int16, 10), 0, 0); !errors.Is(err, remote.ErrSessionClosed) {
		t.Fatalf("send after closed: %v", err)
	}
}

func TestRemoteReplayBufferBoundsSend(t *testing.T) {
	srv := testutil.NATS(t)
	nc := testutil.Connect(t, srv)
	scriptedWorker(t, nc, "w9")
	c := newRemoteClient(t, nc, remote.ClientOptions{ReplayLimit: time.Second, MaxSpeed: -1})
	s := openRemote(t, c, bus.SessionRequest{Tenant: "acme", Model: remoteModel})
	var err error
	sent := 0
	for ; sent < 100 && err == nil; sent++ {
		err = s.Send(make([]int16, 1000), 0, 0)
	}
	if !errors.Is(err, remote.ErrReplayFull) || sent != 17 {
		t.Fatalf("after %d chunks of 1000 samples with a 16000-sample limit: %v", sent, err)
	}
	// A final settles the first 12000 samples (the last half second of them stays as a
	// replay's run-up): room again.
	publishResult(t, nc, s, bus.Result{Type: bus.ResultFinal, Worker: "w9", Seq: 1, Text: "x", EndSample: 12000})
	<-s.Results()
	if err := s.Send(make([]int16, 1000), 0, 0); err != nil {
		t.Fatalf("after a final freed the buffer: %v", err)
	}
	// Fill it again; a settled mark (silence with nothing open) frees it too, and is
	// not handed to the consumer.
	for err == nil {
		err = s.Send(make([]int16, 1000), 0, 0)
	}
	publishResult(t, nc, s, bus.Result{Type: bus.ResultSettled, Worker: "w9", Seq: 2, EndSample: 16000})
	testutil.Eventually(t, 5*time.Second, "room after a settled mark", func() bool {
		return s.Send(make([]int16, 1000), 0, 0) == nil
	})
	publishResult(t, nc, s, bus.Result{Type: bus.ResultFinal, Worker: "w9", Seq: 3, Text: "y", EndSample: 20000})
	if r := <-s.Results(); r.Type != bus.ResultFinal || r.Text != "y" {
		t.Fatalf("after a settled mark the consumer got %+v, want the final", r)
	}
}

func TestRemoteTooFast(t *testing.T) {
	srv := testutil.NATS(t)
	nc := testutil.Connect(t, srv)
	scriptedWorker(t, nc, "w9")
	c := newRemoteClient(t, nc, remote.ClientOptions{SpeedBurst: time.Second})
	s := openRemote(t, c, bus.SessionRequest{Tenant: "acme", Model: remoteModel})
	// As fast as possible: a second of burst, then 2x real time, then ErrTooFast.
	var err error
	n := 0
	start := time.Now()
	for ; n < 1000 && err == nil; n++ {
		err = s.Send(make([]int16, 320), 0, 0) // 20 ms
	}
	allowed := 50 + int(time.Since(start).Seconds()*2*50) + 1
	if !errors.Is(err, remote.ErrTooFast) || n < 50 || n > allowed+1 {
		t.Fatalf("after %d chunks of 20 ms (allowed about %d): %v", n, allowed, err)
	}
	// At real time, sending goes on.
	time.Sleep(100 * time.Millisecond)
	for i := range 10 {
		if err := s.Send(make([]int16, 320), 0, 0); err != nil {
			t.Fatalf("real-time chunk %d: %v", i, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRemoteCloseEndsTheStream(t *testing.T) {
	srv := testutil.NATS(t)
	nc := testutil.Connect(t, srv)
	scriptedWorker(t, nc, "w9")
	c := newRemoteClient(t, nc, remote.ClientOptions{})
	s, err := c.Open(context.Background(), bus.SessionRequest{Tenant: "acme", Model: remoteModel})
	if err != nil {
		t.Fatal(err)
	}
	audio, _ := nc.SubscribeSync(bus.AudioSubject("acme", s.ID()))
	_ = nc.Flush()
	s.Close()
	s.Close()
	m, err := audio.NextMsg(2 * time.Second)
	if err != nil {
		t.Fatal("Close sent no end chunk: the worker would hold the slot until its idle timeout")
	}
	if ch, err := bus.UnmarshalAudioChunk(m.Data); err != nil || ch.Flags&bus.FlagEnd == 0 {
		t.Fatalf("chunk on close: %+v %v", ch, err)
	}
	if _, ok := <-s.Results(); ok {
		t.Fatal("Results open after Close")
	}
}

// TestRemoteResendsLostChunks: a worker's ResultResend gets the asked chunks published
// again from the replay buffer, unchanged, and nothing reaches the consumer; chunks a
// final already covered are not there to resend.
func TestRemoteResendsLostChunks(t *testing.T) {
	srv := testutil.NATS(t)
	nc := testutil.Connect(t, srv)
	scriptedWorker(t, nc, "w9")
	c := newRemoteClient(t, nc, remote.ClientOptions{})
	s := openRemote(t, c, bus.SessionRequest{Tenant: "acme", Model: remoteModel})
	audio, _ := nc.SubscribeSync(bus.AudioSubject("acme", s.ID()))
	_ = nc.Flush()
	for i := range 6 {
		pcm := make([]int16, 160)
		pcm[0] = int16(i + 1)
		if err := s.Send(pcm, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	for range 6 { // the first publication of each
		if _, err := audio.NextMsg(2 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	publishResult(t, nc, s, bus.Result{Type: bus.ResultFinal, Worker: "w9", Seq: 1, Text: "x", EndSample: 320}) // covers seq 1–2
	if r := <-s.Results(); r.Type != bus.ResultFinal {
		t.Fatalf("consumer got %+v", r)
	}
	publishResult(t, nc, s, bus.Result{Type: bus.ResultResend, Worker: "w9", Seq: 2, ResendFrom: 2, ResendTo: 4})
	var got []uint64
	for {
		m, err := audio.NextMsg(500 * time.Millisecond)
		if err != nil {
			break
		}
		ch, err := bus.UnmarshalAudioChunk(m.Data)
		if err != nil || ch.StartSample != (ch.Seq-1)*160 || ch.PCM[0] != int16(ch.Seq) {
			t.Fatalf("resent chunk %+v: %v", ch, err)
		}
		got = append(got, ch.Seq)
	}
	if fmt.Sprint(got) != "[2 3 4]" {
		t.Fatalf("resent %v, want [2 3 4] (2 was covered by the final but is within the replay's run-up)", got)
	}
	select {
	case r := <-s.Results():
		t.Fatalf("a resend request reached the consumer: %+v", r)
	default:
	}
}

// Results lost on the way (a NATS route flap, a server restart): the session holds
// what follows the gap, asks the worker for the missing seqs in-band on the audio
// subject, and delivers everything in order once they come. Unanswered, it gives the
// gap up after resultResendMax requests and delivers what it held, in order.
func TestRemoteAsksForLostResults(t *testing.T) {
	for _, answer := range []bool{true, false} {
		t.Run(fmt.Sprintf("answered=%v", answer), func(t *testing.T) {
			srv := testutil.NATS(t)
			nc := testutil.Connect(t, srv)
			scriptedWorker(t, nc, "w9")
			c := newRemoteClient(t, nc, remote.ClientOptions{})
			s := openRemote(t, c, bus.SessionRequest{Tenant: "acme", Model: remoteModel})
			lost := bus.Result{Type: bus.ResultFinal, Worker: "w9", Seq: 2, Text: "two", EndSample: 3200}
			var asks []string
			var mu sync.Mutex
			_, err := nc.Subscribe(bus.AudioSubject("acme", s.ID()), func(m *nats.Msg) {
				ch, err := bus.UnmarshalAudioChunk(m.Data)
				if err != nil || ch.Flags&bus.FlagResendResults == 0 {
					return
				}
				mu.Lock()
				asks = append(asks, fmt.Sprintf("%d-%d", ch.Seq, ch.StartSample))
				mu.Unlock()
				if answer {
					publishResult(t, nc, s, lost)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			_ = nc.Flush()
			start := time.Now()
			for _, r := range []bus.Result{
				{Type: bus.ResultFinal, Worker: "w9", Seq: 1, Text: "one", EndSample: 1600},
				{Type: bus.ResultFinal, Worker: "w9", Seq: 3, Text: "three", EndSample: 4800},
				{Type: bus.ResultClosed, Worker: "w9", Seq: 4},
			} {
				publishResult(t, nc, s, r)
			}
			got := drainResults(t, s, 10*time.Second)
			took := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			want, wantAsks := "final:one,final:two,final:three,closed:", 1
			if !answer {
				want, wantAsks = "final:one,final:three,closed:", 8
			}
			if strings.Join(got, ",") != want || len(asks) != wantAsks || asks[0] != "2-2" {
				t.Fatalf("consumer saw %v after asks %v; want %s after %d asks for 2-2", got, asks, want, wantAsks)
			}
			t.Logf("delivered %v after %v, asks %v", got, took.Round(time.Millisecond), asks)
		})
	}
}

// drainResults reads s's results until they close (failing after timeout), checks that
// the consumer's seqs count from 1 without gaps, and returns them as "type:text".
func drainResults(t *testing.T, s *remote.Session, timeout time.Duration) []string {
	t.Helper()
	var got []string
	deadline := time.After(timeout)
	for {
		select {
		case r, ok := <-s.Results():
			if !ok {
				return got
			}
			if r.Seq != uint64(len(got)+1) {
				t.Fatalf("result %q has seq %d", r.Text, r.Seq)
			}
			got = append(got, string(r.Type)+":"+r.Text)
		case <-deadline:
			t.Fatalf("results not closed; got %v", got)
		}
	}
}
