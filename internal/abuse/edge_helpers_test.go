package abuse

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// edgeTenant creates tenant on plan and returns an API key.
func edgeTenant(t *testing.T, srv *testutil.Serve, tenant, plan string) string {
	_, _, key := newTenant(t, srv, bus.TenantID(tenant), plan, 0)
	return key
}

func edgeWAV(t *testing.T, name string) []byte { return speechWAV(t, name) }

// rawConn dials the HTTP address of base (http://host:port).
func rawConn(t *testing.T, base string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin waits until the server closes c (a read returns EOF or a reset; a
// response the server sends first is read and skipped) and returns how long that
// took, or false when c is still open after d.
func closedWithin(c net.Conn, br *bufio.Reader, d time.Duration) (time.Duration, bool) {
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(d))
	_, err := io.Copy(io.Discard, br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return time.Since(start), false
	}
	return time.Since(start), true
}

// metricValue sums the samples of name whose labels contain every one of labels, from
// the /metrics text at opsURL.
func metricValue(t *testing.T, opsURL, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get(opsURL + "/metrics")
	if err != nil {
		t.Fatalf("GET ops /metrics: %v", err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sum += f
		}
	}
	return sum
}
