package testutil

import (
	"context"
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
