package remote_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/ingest/remote"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// TestRemoteConfigureTurns: Flux's Configure reaches the worker serving a turn-taking
// session as a ControlConfigure with all the knobs, and a worker taking the session
// over after a failover is asked with the new knobs.
func TestRemoteConfigureTurns(t *testing.T) {
	srv := testutil.NATS(t)
	nc := testutil.Connect(t, srv)
	requests := scriptedWorker(t, nc, "w9").requests
	ctl, err := nc.SubscribeSync(bus.ControlSubject("w9"))
	if err != nil {
		t.Fatal(err)
	}
	c := newRemoteClient(t, nc, remote.ClientOptions{LostAfter: 400 * time.Millisecond})
	first := bus.TurnOptions{EOTThreshold: 0.7, EOTTimeoutMs: 5000}
	s := openRemote(t, c, bus.SessionRequest{Tenant: "acme", Model: remoteModel,
		Options: bus.StreamOptions{Turns: &first}})

	next := bus.TurnOptions{EOTThreshold: 0.9, EagerEOTThreshold: 0.5, EOTTimeoutMs: 2000}
	if err := s.Configure(next); err != nil {
		t.Fatal(err)
	}
	m, err := ctl.NextMsg(2 * time.Second)
	if err != nil {
		t.Fatalf("no configure sent to w9: %v", err)
	}
	var got bus.Control
	if err := json.Unmarshal(m.Data, &got); err != nil || got.Type != bus.ControlConfigure || got.Tenant != "acme" ||
		got.Session != s.ID() || got.Turns == nil || *got.Turns != next {
		t.Fatalf("control %s: %v", m.Data, err)
	}

	// The scripted worker sends no heartbeats: the session fails over (to it again),
	// and the new request carries the configured knobs, not the first ones.
	testutil.Eventually(t, 5*time.Second, "a failover request", func() bool { return len(requests()) >= 2 })
	reqs := requests()
	if o := reqs[0].Options.Turns; o == nil || *o != first {
		t.Fatalf("first request turns %+v", o)
	}
	if o := reqs[len(reqs)-1].Options.Turns; o == nil || *o != next {
		t.Fatalf("failover request turns %+v, want %+v", o, next)
	}
}

func TestRemoteConfigureRefusals(t *testing.T) {
	srv := testutil.NATS(t)
	nc := testutil.Connect(t, srv)
	scriptedWorker(t, nc, "w9")
	c := newRemoteClient(t, nc, remote.ClientOptions{})
	plain := openRemote(t, c, bus.SessionRequest{Tenant: "acme", Model: remoteModel})
	if err := plain.Configure(bus.TurnOptions{EOTThreshold: 0.8, EOTTimeoutMs: 1000}); !errors.Is(err, remote.ErrBadSessionRequest) {
		t.Fatalf("configure of a session without turns: %v", err)
	}
	turns := openRemote(t, c, bus.SessionRequest{Tenant: "acme", Model: remoteModel,
		Options: bus.StreamOptions{Turns: &bus.TurnOptions{EOTThreshold: 0.7, EOTTimeoutMs: 5000}}})
	turns.Close()
	if err := turns.Configure(bus.TurnOptions{EOTThreshold: 0.8, EOTTimeoutMs: 1000}); !errors.Is(err, remote.ErrSessionClosed) {
		t.Fatalf("configure of a closed session: %v", err)
	}
}
