package testutil

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary builds the earshot binary once per test process (with the cgo settings of the
// environment: run tests through `make test`) and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		root := ModuleRoot(t)
		dir, err := os.MkdirTemp("", "earshot-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "earshot")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/earshot")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			binErr = &buildError{out: string(out), err: err}
		}
	})
	if binErr != nil {
		t.Fatalf("build earshot (run tests with `make test` so cgo finds whisper.cpp): %v", binErr)
	}
	return binPath
}

type buildError struct {
	out string
	err error
}

func (b *buildError) Error() string { return b.err.Error() + "\n" + b.out }

// ModuleRoot is the directory holding go.mod.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Proc is a child process of a test: an earshot service or a redis/nats server.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	t    testing.TB
}

// Start runs bin with args and extra environment; its output is kept (and printed when
// the test fails). The process is killed when the test ends.
func Start(t testing.TB, name, bin string, env []string, args ...string) *Proc {
	t.Helper()
	return StartAs(t, name, -1, bin, env, args...)
}

// StartAs is Start with the process running as user id uid (and group id uid) when
// uid >= 0: a test that runs as root can then tell its packets apart (iptables
// -m owner), e.g. to cut one server off the network.
func StartAs(t testing.TB, name string, uid int, bin string, env []string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, t: t, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	// Workers of tests admit the default sessions, not the knee `earshot bench --serve`
	// recorded on this machine (a developer's capacity file), unless a test names one.
	noKnee := "EARSHOT_CAPACITY_FILE=" + filepath.Join(t.TempDir(), "no-capacity.json")
	p.cmd.Env = append(append(os.Environ(), noKnee), env...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if uid >= 0 {
		p.cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}
	}
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	go func() { _ = p.cmd.Wait(); pw.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", name, p.Output())
		}
	})
	return p
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Output returns what the process printed so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// WaitOutput waits until the output contains s.
func (p *Proc) WaitOutput(s string, timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.Output(), s) {
		select {
		case <-p.done:
			p.t.Fatalf("%s exited before printing %q:\n%s", p.Name, s, p.Output())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s did not print %q within %v:\n%s", p.Name, s, timeout, p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill sends SIGKILL (kill -9) and waits for the exit.
func (p *Proc) Kill() {
	if p.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Terminate sends SIGTERM and waits up to timeout for a clean exit (then kills).
func (p *Proc) Terminate(timeout time.Duration) (exitedCleanly bool) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.cmd.ProcessState != nil && p.cmd.ProcessState.Success()
	case <-time.After(timeout):
		p.Kill()
		return false
	}
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}
