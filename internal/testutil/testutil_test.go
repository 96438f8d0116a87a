package testutil

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestNATSAndRedisHarness(t *testing.T) {
	s := NATS(t)
	nc := Connect(t, s)
	sub, err := nc.SubscribeSync("x")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("x", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(2 * time.Second)
	if err != nil || string(m.Data) != "hi" {
		t.Fatalf("nats round trip: %v", err)
	}
	r := StartRedis(t)
	c := r.Client()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	r.Restart()
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("value lost across an AOF restart: %q %v", v, err)
	}
}

// TestRedisChoosesAgainWhenItsPortIsTaken: a port FreePort chose can be taken before
// redis-server binds it (TestLedgerOnRedisCluster failed so once in CI); the harness then
// starts the server on other ports instead of failing the test after 10 s.
func TestRedisChoosesAgainWhenItsPortIsTaken(t *testing.T) {
	bin := redisServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	r := &Redis{Dir: t.TempDir(), t: t}
	chosen := 0
	start := time.Now()
	r.startOnFreePorts(bin, func() {
		chosen++
		if chosen == 1 {
			r.Port, r.Addr = taken, "127.0.0.1:"+strconv.Itoa(taken)
		}
	})
	t.Cleanup(r.Stop)
	if chosen != 2 || r.Port == taken {
		t.Fatalf("ports chosen %d times, server on %d (taken: %d)", chosen, r.Port, taken)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the taken port cost %v: the exit should be noticed at once", d)
	}
	if err := r.Client().Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestFreePortReserves: FreePort's ports lie outside the kernel's ephemeral range, are
// never handed out twice, and skip a port another test process holds (its lock file
// locked through another open file, as another process's would be) and one a program
// listens on.
func TestFreePortReserves(t *testing.T) {
	seen := map[int]bool{}
	elo, ehi, haveRange := ephemeralRange()
	for range 50 {
		p := FreePort(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		if haveRange && p >= elo && p <= ehi {
			t.Fatalf("port %d inside the ephemeral range %d–%d", p, elo, ehi)
		}
	}
	// a draw that always names the same port: once reserved, it is not given again
	fixed := func(int) int { return 7 }
	p, err := reservePort(fixed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reservePort(fixed); err == nil {
		t.Fatalf("port %d reserved twice", p)
	}

	// a port whose lock another open file holds, then a port a program listens on
	lo, k := p-7, 100
	for seen[lo+k] || seen[lo+k+1] || seen[lo+k+2] {
		k += 3
	}
	draws := []int{k, k, k + 1, k + 2}
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "earshot-test-ports", strconv.Itoa(lo+k)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Skipf("port %d reserved by another test process", lo+k)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(lo+k+1))
	if err != nil {
		t.Skipf("port %d in use: %v", lo+k+1, err)
	}
	defer l.Close()
	i := 0
	got, err := reservePort(func(int) int { d := draws[min(i, len(draws)-1)]; i++; return d })
	if err != nil {
		t.Fatal(err)
	}
	if got != lo+k+2 {
		t.Fatalf("reserved %d, want %d (past the locked %d and the listened %d)", got, lo+k+2, lo+k, lo+k+1)
	}
}
