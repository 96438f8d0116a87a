package testutil

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Ports a test hands to a server it starts (nats-server, earshot serve, redis-server)
// are chosen by FreePort, not by asking the kernel for an ephemeral one with :0: a port
// the kernel gave and took back is the next outgoing connection's (any process's) or
// the next :0 listener's as easily as the server's, and a test then fails with "address
// already in use" for nothing it tests. FreePort chooses outside the kernel's ephemeral
// range, where neither outgoing connections nor :0 listeners are given ports, and
// reserves each port it gives for the life of the process with a lock file that every
// test process (packages run in parallel) honours; the kernel drops the lock when the
// process ends, so no reservation outlives its process (the empty lock files stay in
// $TMPDIR/earshot-test-ports and are reused).

const (
	portLow  = 20000 // the range FreePort chooses from, where it lies outside the ephemeral range
	portHigh = 32000
)

var (
	portMu   sync.Mutex
	portHeld = map[int]*os.File{} // the lock files of the ports this process reserved
)

// FreePort returns a TCP port on 127.0.0.1 that nothing listened on when it was chosen,
// outside the kernel's ephemeral range and reserved against every other FreePort in any
// process until this one exits. The server it is for must still bind it (another
// program could); servers that can retry on another port should.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := reservePort(rand.IntN)
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	return p
}

// reservePort tries up to 200 ports drawn by pick from the range outside the ephemeral
// one, and reserves the first that is not reserved and can be bound.
func reservePort(pick func(int) int) (int, error) {
	lo, hi := portLow, portHigh
	if elo, ehi, ok := ephemeralRange(); ok && elo < hi && ehi >= lo {
		// a lowered ephemeral range: below it, or above it if there is no room below
		if elo-1024 >= 1000 {
			lo, hi = 1024, elo
		} else {
			lo, hi = ehi+1, 65536
		}
	}
	if hi-lo < 100 {
		return 0, fmt.Errorf("no room outside the ephemeral range (%d–%d)", lo, hi)
	}
	dir := filepath.Join(os.TempDir(), "earshot-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, err
	}
	portMu.Lock()
	defer portMu.Unlock()
	for range 200 {
		p := lo + pick(hi-lo)
		if _, mine := portHeld[p]; mine {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(p)), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			return 0, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close() // another test process holds it
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			f.Close() // a program outside the tests listens there
			continue
		}
		l.Close()
		portHeld[p] = f // kept open: the lock lasts as long as the process
		return p, nil
	}
	return 0, fmt.Errorf("no free port in 200 tries between %d and %d", lo, hi)
}

// ephemeralRange reads the kernel's ephemeral port range (Linux).
func ephemeralRange() (lo, hi int, ok bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, false
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	return lo, hi, err1 == nil && err2 == nil && lo <= hi
}
