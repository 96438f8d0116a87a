package testutil

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/redislog"
	"github.com/redis/go-redis/v9"
)

// Redis is a real redis-server started for one test on a random port.
type Redis struct {
	Addr string
	Dir  string
	Port int
	cmd  *exec.Cmd
	// exited is closed when cmd has exited (its one Wait runs in launch's goroutine).
	exited chan struct{}
	t      testing.TB
	args   []string // extra arguments (a replica's --replicaof)
}

// StartRedis starts redis-server (AOF on, everysec) on a free port in a temp dir. When
// redis-server is absent it skips the test with a loud message, except in CI (CI=true)
// where that is a failure.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	r := &Redis{Dir: t.TempDir(), t: t}
	bin := redisServer(t)
	t.Cleanup(r.Stop)
	r.startOnFreePorts(bin, nil)
	return r
}

// redisServer is redis-server's path. When it is absent it skips the test with a loud
// message, except in CI (CI=true) where that is a failure.
func redisServer(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server not found: CI must install it (apt-get install redis-server)")
		}
		t.Skip("SKIPPING: redis-server not found; install it (apt-get install redis-server) to run this test")
	}
	return bin
}

// errPortTaken: redis-server exited because a port FreePort had chosen was taken before
// it could bind it (by another test's server, or as an outgoing connection's ephemeral
// port: FreePort can only check and reserve it against other tests).
var errPortTaken = errors.New("a port was taken before redis-server could bind it")

// startOnFreePorts chooses free ports (r.Port, and whatever more chooses sets) and
// starts the server, choosing again when one was taken meanwhile (errPortTaken), up to
// five times.
func (r *Redis) startOnFreePorts(bin string, chooses func()) {
	r.t.Helper()
	var err error
	for range 5 {
		r.Port = FreePort(r.t)
		r.Addr = "127.0.0.1:" + strconv.Itoa(r.Port)
		if chooses != nil {
			chooses()
		}
		if err = r.launch(bin); !errors.Is(err, errPortTaken) {
			break
		}
	}
	if err != nil {
		r.t.Fatalf("redis-server on %s: %v", r.Addr, err)
	}
}

// start starts the server again on its port (Restart).
func (r *Redis) start(bin string) {
	r.t.Helper()
	if err := r.launch(bin); err != nil {
		r.t.Fatalf("redis-server on %s: %v", r.Addr, err)
	}
}

// launch starts redis-server and waits until it answers.
func (r *Redis) launch(bin string) error {
	redislog.Route(nil) // tests stop Redis on purpose: keep go-redis's retries off stderr
	cmd := exec.Command(bin, "--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--dir", r.Dir, "--appendonly", "yes", "--appendfsync", "everysec",
		"--save", "", "--logfile", filepath.Join(r.Dir, "redis.log"))
	cmd.Args = append(cmd.Args, r.args...)
	logPath := filepath.Join(r.Dir, "redis.log")
	var logFrom int64 // this start's part of the log (a restart appends to it)
	if fi, err := os.Stat(logPath); err == nil {
		logFrom = fi.Size()
	}
	thisLog := func() string {
		b, _ := os.ReadFile(logPath)
		return string(b[min(int64(len(b)), logFrom):])
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	r.cmd, r.exited = cmd, exited
	// Short timeouts and no retries: whatever holds a taken port may accept and say
	// nothing, and the loop must notice the server's exit at once.
	c := redis.NewClient(&redis.Options{Addr: r.Addr, DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		select {
		case <-exited:
			r.cmd = nil
			log := thisLog()
			if strings.Contains(log, "Address already in use") {
				r.t.Logf("redis-server on %s: %v; choosing other ports", r.Addr, errPortTaken)
				return errPortTaken
			}
			return fmt.Errorf("redis-server exited at start:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after 10s:\n%s", thisLog())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// Client returns a go-redis client for this server, closed when the test ends.
func (r *Redis) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	r.t.Cleanup(func() { c.Close() })
	return c
}

// URL is the redis:// URL of this server.
func (r *Redis) URL() string { return fmt.Sprintf("redis://%s/0", r.Addr) }

// Stop terminates the server (SIGTERM, so the AOF is flushed) and waits for it.
func (r *Redis) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(os.Interrupt)
	select {
	case <-r.exited:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.exited
	}
	r.cmd = nil
}

// StartReplica starts a redis-server replicating master and waits until the link is up.
func StartReplica(t testing.TB, master *Redis) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server not found")
	}
	r := &Redis{Dir: t.TempDir(), t: t, args: []string{"--replicaof", "127.0.0.1", strconv.Itoa(master.Port)}}
	t.Cleanup(r.Stop)
	r.startOnFreePorts(bin, nil)
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		info, _ := c.Info(context.Background(), "replication").Result()
		if strings.Contains(info, "master_link_status:up") {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s of %s not linked after 15 s:\n%s", r.Addr, master.Addr, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill stops the server with SIGKILL (a crash: no AOF flush, no goodbye).
func (r *Redis) Kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.exited
	r.cmd = nil
}

// StartSentinel starts one redis-server in sentinel mode watching master under name
// (quorum 1, down after 1 s) and returns its address.
func StartSentinel(t testing.TB, master *Redis, name string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server not found")
	}
	dir := t.TempDir()
	port := FreePort(t)
	conf := filepath.Join(dir, "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\n"+
		"sentinel monitor %s 127.0.0.1 %d 1\nsentinel down-after-milliseconds %s 1000\n"+
		"sentinel failover-timeout %s 10000\nsentinel parallel-syncs %s 1\n",
		port, dir, filepath.Join(dir, "sentinel.log"), name, master.Port, name, name, name)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, conf, "--sentinel")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis sentinel: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	c := redis.NewSentinelClient(&redis.Options{Addr: addr})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := c.GetMasterAddrByName(context.Background(), name).Result(); err == nil {
			return addr
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "sentinel.log"))
			t.Fatalf("sentinel %s does not know master %s after 10 s:\n%s", addr, name, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Restart stops the server and starts it again on the same port and data dir.
func (r *Redis) Restart() {
	r.t.Helper()
	r.Stop()
	bin, _ := exec.LookPath("redis-server")
	r.start(bin)
}
