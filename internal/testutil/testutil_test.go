package testutil

import (
	"context"
	"net"
	"strconv"
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

// TestRedisChoosesAgainWhenItsPortIsTaken: a port freePort chose can be taken before
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
