package app

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/config"
)

// serveLimited runs newHTTPServer with h on a loopback port and returns its address.
func serveLimited(t *testing.T, h http.Handler, grace time.Duration, rate int) string {
	t.Helper()
	c, _, _ := config.Defaults()
	c.HTTPBodyGrace, c.HTTPBodyMinRate, c.HTTPIdleTimeout, c.HTTPWriteTimeout = grace, rate, time.Second, time.Second
	srv := newHTTPServer("127.0.0.1:0", h, c)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestBodyMinRate(t *testing.T) {
	got := make(chan error, 1)
	addr := serveLimited(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		got <- err
		fmt.Fprint(w, n)
	}), 500*time.Millisecond, 1000)
	send := func(total int, every time.Duration, chunk int) error {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", total)
		for sent := 0; sent < total; sent += chunk {
			if _, err := c.Write([]byte(strings.Repeat("a", min(chunk, total-sent)))); err != nil {
				break
			}
			time.Sleep(every)
		}
		select {
		case err := <-got:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("handler did not finish")
			return nil
		}
	}
	// 4000 bytes at 2000 B/s: 2 s, four times the grace, above the minimum rate.
	if err := send(4000, 100*time.Millisecond, 200); err != nil {
		t.Fatalf("body at twice the minimum rate: %v", err)
	}
	// A byte every 300 ms (about 3 B/s) falls below 1000 B/s once the grace is over.
	start := time.Now()
	err := send(100, 300*time.Millisecond, 1)
	if !errors.Is(err, errBodyTooSlow) {
		t.Fatalf("trickled body: %v, want errBodyTooSlow", err)
	}
	if d := time.Since(start); d < 500*time.Millisecond || d > 2*time.Second {
		t.Fatalf("trickled body cut after %v, want soon after the 500ms grace", d)
	}
}

func TestUpgradeKeepsNoDeadlines(t *testing.T) {
	addr := serveLimited(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		// Longer than every limit of the server (1 s): the hijacked stream still reads.
		line, err := brw.ReadString('\n')
		if err != nil {
			t.Errorf("read after 2 s on a hijacked conn: %v", err)
			return
		}
		brw.WriteString(line)
		brw.Flush()
	}), 200*time.Millisecond, 1000)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	time.Sleep(2 * time.Second)
	fmt.Fprint(c, "ping\n")
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("echo after 2 s: %q %v", line, err)
	}
}
