package billing

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// TestLedgerOnRedisCluster: the ledger on a real Redis Cluster (3 masters, 2 replicas
// each: after a failover the promoted master still has a replica to take the WAIT)
// with the replica wait the services use there. Tenants land on different
// masters (every key of a tenant on its own slot). The master of one tenant is killed
// (SIGKILL) after its events were acknowledged; once the cluster has promoted its
// replica, every acknowledged event delivered again is a duplicate (none was lost
// with the master, none is counted twice), new events apply, and each tenant's usage
// and prepaid balance are exact. Last, a tenant whose master has lost both replicas gets
// ErrNotReplicated (the WAIT goes to that tenant's master, not to any node).
func TestLedgerOnRedisCluster(t *testing.T) {
	rc := testutil.StartRedisCluster(t, 3, 2)
	s := NewStore(rc.Client(), nil, testLog(t))
	s.SetReplicaWait(1, 2*time.Second)
	ctx := context.Background()

	tenants := []bus.TenantID{"acme", "globex", "initech", "umbrella", "hooli", "stark"}
	masters := map[string]bool{}
	for _, tn := range tenants {
		masters[rc.MasterOf(tenantKey(tn)).Addr] = true
		if _, err := s.CreateTenant(ctx, tn, "payg"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TopUp(ctx, tn, 1000); err != nil {
			t.Fatal(err)
		}
	}
	if len(masters) < 2 {
		t.Fatalf("all %d tenants on one master: the test would not cross slots", len(tenants))
	}
	now := time.Now()
	const n, dur = 10, 1000
	events := map[bus.TenantID][]bus.UsageEvent{}
	for _, tn := range tenants {
		for i := range n {
			ev := usage(tn, "tiny.en", bus.SessionID("s-"+string(tn)), "", int64(i*dur), dur, now, i == n-1)
			if out, err := s.Apply(ctx, ev, now); err != nil || out != Applied {
				t.Fatalf("apply %s: %v %v", ev.ID, out, err)
			}
			events[tn] = append(events[tn], ev)
		}
	}

	victim := tenants[0]
	old := rc.MasterOf(tenantKey(victim))
	old.Kill()
	start := time.Now()
	rc.WaitHealthy(30 * time.Second)
	promoted := rc.MasterOf(tenantKey(victim))
	if promoted == old {
		t.Fatalf("tenant %s is still on the killed master %s", victim, old.Addr)
	}
	t.Logf("master %s of %s killed; replica %s promoted after %v", old.Addr, victim, promoted.Addr, time.Since(start).Round(10*time.Millisecond))

	// Redelivery of everything acknowledged: duplicates, wherever the tenant lives now.
	apply := func(ev bus.UsageEvent) Outcome {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			out, err := s.Apply(ctx, ev, now)
			if err == nil {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("apply %s after the failover: %v", ev.ID, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, tn := range tenants {
		for _, ev := range events[tn] {
			if out := apply(ev); out != Duplicate {
				t.Errorf("%s delivered again after the failover: %s, want duplicate (its first write was lost with the master)", ev.ID, out)
			}
		}
	}
	// New audio of the victim's stream applies on the promoted master.
	more := usage(victim, "tiny.en", "s2-"+bus.SessionID(victim), "", 0, 2500, now, true)
	if out := apply(more); out != Applied {
		t.Fatalf("new event after the failover: %s", out)
	}

	// Another tenant's master without its replicas: the write cannot be made safe, so the
	// event is not acknowledged (a WAIT sent to any other node would count that node's
	// replicas and say yes).
	other := tenants[1]
	for _, tn := range tenants[1:] {
		if rc.MasterOf(tenantKey(tn)) != promoted {
			other = tn
			break
		}
	}
	m := rc.MasterOf(tenantKey(other))
	reps := rc.ReplicasOf(m)
	if len(reps) != 2 {
		t.Fatalf("master %s of %s has %d replicas, want 2", m.Addr, other, len(reps))
	}
	for _, r := range reps {
		r.Kill()
	}
	lone := usage(other, "tiny.en", "s3-"+bus.SessionID(other), "", 0, 1000, now, false)
	if out, err := s.Apply(ctx, lone, now); !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("apply on a master with no replica: %v %v, want ErrNotReplicated", out, err)
	}
	// The replicas come back; the event, delivered again, counts once.
	for _, r := range reps {
		r.Restart()
	}
	rc.WaitHealthy(30 * time.Second)
	if out := apply(lone); out != Duplicate {
		t.Errorf("the unacknowledged event delivered again: %s, want duplicate (its write stayed on the master)", out)
	}

	month := now.UTC().Format("2006-01")
	for _, tn := range tenants {
		want := int64(n * dur)
		switch tn {
		case victim:
			want += 2500
		case other:
			want += 1000
		}
		got, err := s.MonthUsage(ctx, tn, month)
		if err != nil {
			t.Fatal(err)
		}
		if got["tiny.en"] != want {
			t.Errorf("%s: %d ms counted, want %d", tn, got["tiny.en"], want)
		}
		tt, err := s.Get(ctx, tn)
		if err != nil {
			t.Fatal(err)
		}
		// payg: 72 minor units an hour, whole seconds; 2 500 ms rounds up to 3 s.
		billedMs := want
		if tn == victim {
			billedMs = n*dur + 3000
		}
		if wantU := 1000*UnitsPerMinor - billedMs*72; tt.BalanceU != wantU {
			t.Errorf("%s: balance %d u, want %d (%d ms debited)", tn, tt.BalanceU, wantU, billedMs)
		}
	}
}
