package config

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestBindDefaultsEnvThenFlags(t *testing.T) {
	c, g, _ := Defaults()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	env := []string{"EARSHOT_LISTEN=:9000", "EARSHOT_DRAIN_TIMEOUT=5s", "PATH=/bin"}
	if err := Bind(fs, &c, env); err != nil {
		t.Fatal(err)
	}
	if err := Bind(fs, &g, env); err != nil {
		t.Fatal(err)
	}
	if err := fs.Parse([]string{"--redis", "redis://h:1/2", "--demo"}); err != nil {
		t.Fatal(err)
	}
	if g.Listen != ":9000" || c.DrainTimeout != 5*time.Second || c.RedisURL != "redis://h:1/2" || !g.Demo {
		t.Fatalf("got listen %q drain %v redis %q demo %v", g.Listen, c.DrainTimeout, c.RedisURL, g.Demo)
	}
}

func TestBadEnvValueNamesVariable(t *testing.T) {
	_, g, _ := Defaults()
	err := Bind(flag.NewFlagSet("x", flag.ContinueOnError), &g, []string{"EARSHOT_TOKEN_TTL=soon"})
	if err == nil || !strings.Contains(err.Error(), "EARSHOT_TOKEN_TTL") {
		t.Fatalf("err = %v", err)
	}
}

func TestUnknownEnvIsAnError(t *testing.T) {
	c, _, _ := Defaults()
	err := CheckEnv([]string{"EARSHOT_LISTN=:1", "HOME=/root"}, EnvNames(&c))
	if !errors.Is(err, ErrUnknownEnv) || !strings.Contains(err.Error(), "EARSHOT_LISTN") {
		t.Fatalf("err = %v", err)
	}
	if err := CheckEnv([]string{"EARSHOT_REDIS_URL=x"}, EnvNames(&c)); err != nil {
		t.Fatal(err)
	}
}

func TestValidateSaysHowToFix(t *testing.T) {
	c, g, tr := Defaults()
	for name, tc := range map[string]struct {
		err  error
		want string
	}{
		"nats required": {c.Validate(true), "--nats"},
		"listen":        {func() error { g2 := g; g2.Listen = "8080"; return g2.Validate() }(), "host:port"},
		"tls pair":      {func() error { g2 := g; g2.TLSCert = "a"; return g2.Validate() }(), "go together"},
		"oversubscribe": {func() error { t2 := tr; t2.Slots = 8; t2.Threads = 4; return t2.Validate(2) }(), "oversubscribes"},
		"log level":     {func() error { c2 := c; c2.LogLevel = "loud"; return c2.Validate(false) }(), "--log-level"},
		"cluster and sentinel": {func() error {
			c2 := c
			c2.RedisCluster, c2.RedisSentinels, c2.RedisMaster = []string{"a:1"}, []string{"b:2"}, "m"
			return c2.Validate(false)
		}(), "exclude each other"},
		"cluster address": {func() error { c2 := c; c2.RedisCluster = []string{"redis1"}; return c2.Validate(false) }(), "host:port"},
		"cluster database": {func() error {
			c2 := c
			c2.RedisCluster, c2.RedisURL = []string{"a:1"}, "redis://a:1/3"
			_, err := c2.RedisClient()
			return err
		}(), "only database 0"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want mention of %q", name, tc.err, tc.want)
		}
	}
	if err := c.Validate(false); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	for _, tc := range []struct {
		c    Common
		kind string
		wait int
	}{
		{c, "*redis.Client", 0},
		{func() Common { c2 := c; c2.RedisSentinels, c2.RedisMaster = []string{"a:1"}, "m"; return c2 }(), "*redis.Client", 1},
		{func() Common { c2 := c; c2.RedisCluster = []string{"a:1", "b:2"}; return c2 }(), "*redis.ClusterClient", 1},
		{func() Common { c2 := c; c2.RedisCluster, c2.RedisWait = []string{"a:1"}, 2; return c2 }(), "*redis.ClusterClient", 2},
	} {
		rdb, err := tc.c.RedisClient()
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%T", rdb); got != tc.kind || tc.c.RedisReplicas() != tc.wait {
			t.Errorf("cluster %v sentinels %v: %s waiting for %d replicas, want %s and %d", tc.c.RedisCluster, tc.c.RedisSentinels, got, tc.c.RedisReplicas(), tc.kind, tc.wait)
		}
		_ = rdb.Close()
	}
	if err := g.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if err := tr.Validate(2); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
}
