package gatewaytest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/models"
)

// What TestStreamContract asks of the backends it is given.
const (
	// Model is the model the contract opens streams on.
	Model = models.Default
	// Slots is how many streams of Model a fresh backend must take at once, and no
	// more: the next Open fails with bus.ErrNoCapacity until one closes.
	Slots = 2
)

// wait bounds every wait of the contract: a backend slower than this is broken.
const wait = 10 * time.Second

// TestStreamContract checks newBackend's backends against the rules of gateway.Backend
// and gateway.Stream. Each subtest gets a fresh backend, which must serve Model with
// Slots slots and deliver results at any speed of audio.
func TestStreamContract(t *testing.T, newBackend func(t *testing.T) gateway.Backend) {
	t.Run("ResultsInOrderOneClosedPerChannel", func(t *testing.T) { testResults(t, newBackend(t)) })
	t.Run("CloseIsIdempotentAndClosesResults", func(t *testing.T) { testCloseTwice(t, newBackend(t)) })
	t.Run("CloseDuringSend", func(t *testing.T) { testCloseDuringSend(t, newBackend(t)) })
	t.Run("CloseWithNoReader", func(t *testing.T) { testCloseNoReader(t, newBackend(t)) })
	t.Run("NoCapacity", func(t *testing.T) { testNoCapacity(t, newBackend(t)) })
}

func open(t *testing.T, b gateway.Backend, channels int) gateway.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	s, err := b.Open(ctx, bus.SessionRequest{Tenant: "contract", Session: bus.NewSessionID(), Model: Model, Channels: channels})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// audio is n samples of a 1 kHz-ish square wave: never silence.
func audio(n int) []int16 {
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = 4000
		if i/8%2 == 1 {
			pcm[i] = -4000
		}
	}
	return pcm
}

// drain reads r until it is closed and returns what it read, or fails after wait.
func drain(t *testing.T, r <-chan bus.Result) []bus.Result {
	t.Helper()
	var out []bus.Result
	timeout := time.After(wait)
	for {
		select {
		case x, ok := <-r:
			if !ok {
				return out
			}
			out = append(out, x)
		case <-timeout:
			t.Fatalf("Results not closed within %v", wait)
		}
	}
}

// Two channels of audio, a Finalize on one, FlagEnd on both: Results is one channel;
// Seq rises; each channel gets exactly one ResultClosed, with nothing
// of that channel after it; after Close, Results is closed.
func testResults(t *testing.T, b gateway.Backend) {
	s := open(t, b, 2)
	if s.Results() != s.Results() {
		t.Fatal("Results returned two channels")
	}
	chunk := audio(bus.SampleRate / 4)
	for i := range 8 { // 2 s per channel
		for ch := range 2 {
			var flags bus.ChunkFlag
			if ch == 0 && i == 3 {
				flags = bus.FlagFinalize
			}
			if err := s.Send(chunk, ch, flags); err != nil {
				t.Fatalf("Send: %v", err)
			}
		}
	}
	for ch := range 2 {
		if err := s.Send(nil, ch, bus.FlagEnd); err != nil {
			t.Fatalf("Send FlagEnd: %v", err)
		}
	}
	var got []bus.Result
	closed := map[int]int{}
	timeout := time.After(wait)
	for len(closed) < 2 {
		select {
		case r, ok := <-s.Results():
			if !ok {
				t.Fatalf("Results closed before a ResultClosed on every channel (got %v)", closed)
			}
			got = append(got, r)
			if r.Type == bus.ResultClosed {
				closed[r.Channel]++
			}
			if r.Type == bus.ResultError {
				t.Fatalf("ResultError: %s %s", r.Code, r.Message)
			}
		case <-timeout:
			t.Fatalf("no ResultClosed on every channel within %v (got %v)", wait, closed)
		}
	}
	s.Close()
	got = append(got, drain(t, s.Results())...)
	closes := map[int]int{}
	var seq uint64
	for _, r := range got {
		if r.Seq <= seq {
			t.Fatalf("Seq %d after %d: results out of order", r.Seq, seq)
		}
		seq = r.Seq
		if closes[r.Channel] > 0 {
			t.Fatalf("a %s on channel %d after its ResultClosed", r.Type, r.Channel)
		}
		if r.Type == bus.ResultClosed {
			closes[r.Channel]++
		}
	}
	for ch := range 2 {
		if closes[ch] != 1 {
			t.Errorf("channel %d: %d ResultClosed, want 1", ch, closes[ch])
		}
	}
}

// Close twice, at once, then again: Results is closed, and Send after Close fails or
// is ignored without a panic.
func testCloseTwice(t *testing.T, b gateway.Backend) {
	s := open(t, b, 1)
	if err := s.Send(audio(bus.SampleRate), 0, 0); err != nil {
		t.Fatalf("Send: %v", err)
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); s.Close() }()
	}
	wg.Wait()
	s.Close()
	drain(t, s.Results())
	_ = s.Send(audio(160), 0, 0)
}

// Close from another goroutine while audio is being sent (and results read): both
// return.
func testCloseDuringSend(t *testing.T, b gateway.Backend) {
	s := open(t, b, 1)
	go func() {
		for range s.Results() {
		}
	}()
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		chunk := audio(bus.SampleRate / 10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if s.Send(chunk, 0, 0) != nil {
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	returns(t, "Close during Send", s.Close)
	close(stop)
	returns(t, "Send after Close", func() { <-sent })
}

// Close returns even when nobody reads Results and the stream has much to say.
func testCloseNoReader(t *testing.T, b gateway.Backend) {
	s := open(t, b, 1)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		chunk := audio(bus.SampleRate / 2)
		for range 120 { // a minute of audio: a result or more per chunk
			if s.Send(chunk, 0, 0) != nil {
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	returns(t, "Close with nobody reading Results", s.Close)
	returns(t, "Send after Close", func() { <-sent })
}

// With every slot taken, Open fails with bus.ErrNoCapacity, and within a short ctx
// deadline; once a stream closes, Open succeeds again.
func testNoCapacity(t *testing.T, b gateway.Backend) {
	held := make([]gateway.Stream, Slots)
	for i := range held {
		held[i] = open(t, b, 1)
	}
	req := bus.SessionRequest{Tenant: "contract", Model: Model, Channels: 1}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	req.Session = bus.NewSessionID()
	_, err := b.Open(ctx, req)
	cancel()
	if !errors.Is(err, bus.ErrNoCapacity) {
		t.Fatalf("Open with %d streams open = %v, want an error wrapping bus.ErrNoCapacity", Slots, err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	req.Session = bus.NewSessionID()
	began := time.Now()
	_, err = b.Open(ctx, req)
	cancel()
	if took := time.Since(began); err == nil || took > 300*time.Millisecond+time.Second {
		t.Fatalf("Open when full with a 300ms deadline: %v after %v, want an error within the deadline", err, took)
	}
	held[0].Close()
	deadline := time.Now().Add(wait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		req.Session = bus.NewSessionID()
		s, err := b.Open(ctx, req)
		cancel()
		if err == nil {
			s.Close()
			return
		}
		if !errors.Is(err, bus.ErrNoCapacity) || time.Now().After(deadline) {
			t.Fatalf("Open after a Close: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// returns fails the test if f does not return within wait.
func returns(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatalf("%s did not return within %v", what, wait)
	}
}
