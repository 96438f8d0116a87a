package testutil

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Serve is an `earshot serve --demo` child process with its own Redis and data dir.
type Serve struct {
	*Proc
	URL     string // http://127.0.0.1:PORT
	WSURL   string // ws://127.0.0.1:PORT/v1/listen
	OpsURL  string // http://127.0.0.1:PORT of /metrics and the detailed /readyz (--ops-listen)
	NATSURL string // the embedded NATS server, with its per-start credentials (user:password@)
	Redis   *Redis
	DataDir string
	t       testing.TB
}

var natsLine = regexp.MustCompile(`embedded NATS ready"? url=(nats://[0-9.:]+)`)

// StartServe builds earshot, starts a Redis and `earshot serve --demo` on free ports and
// waits until /readyz answers 200 (the model is loaded, NATS and Redis are up). Extra
// flags are appended to the command line.
func StartServe(t testing.TB, extra ...string) *Serve {
	t.Helper()
	bin := Binary(t)
	r := StartRedis(t)
	s := &Serve{Redis: r, t: t}
	// freePort's answer is only a guess: another test's server or an outgoing
	// connection can take the port before serve binds it. Serve then exits at once
	// naming the address; choose again, up to five times.
	for attempt := 1; ; attempt++ {
		err := s.start(bin, extra)
		if err == nil {
			break
		}
		if attempt < 5 && s.Exited() && strings.Contains(s.Output(), "address already in use") {
			t.Logf("earshot serve: a chosen port was taken meanwhile; choosing again (%d/5)", attempt+1)
			continue
		}
		t.Fatal(err)
	}
	if m := natsLine.FindStringSubmatch(s.Output()); m != nil {
		s.NATSURL = m[1]
		// The embedded server refuses connections without the credentials it generated
		// at start; they are in the data dir (0600), never in the log.
		if b, err := os.ReadFile(filepath.Join(s.DataDir, "nats.url")); err == nil {
			s.NATSURL = strings.TrimSpace(string(b))
		}
	}
	return s
}

// start starts earshot serve on newly chosen ports with a new data dir and waits until
// /readyz answers 200; an error carries serve's output.
func (s *Serve) start(bin string, extra []string) error {
	t := s.t
	t.Helper()
	s.DataDir = t.TempDir()
	port, opsPort := FreePort(t), FreePort(t)
	s.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
	s.OpsURL = fmt.Sprintf("http://127.0.0.1:%d", opsPort)
	s.WSURL = fmt.Sprintf("ws://127.0.0.1:%d/v1/listen", port)
	args := append([]string{"serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--demo", "--drain-timeout", "5s",
		"--ops-listen", fmt.Sprintf("127.0.0.1:%d", opsPort)}, extra...)
	s.Proc = Start(t, "earshot serve", bin, []string{"EARSHOT_REDIS_URL=" + s.Redis.URL(), "EARSHOT_DATA_DIR=" + s.DataDir}, args...)
	deadline := time.Now().Add(90 * time.Second)
	for {
		if resp, err := http.Get(s.URL + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if s.Exited() {
			return fmt.Errorf("earshot serve exited:\n%s", s.Output())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("earshot serve not ready within 90s:\n%s", s.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// DemoToken gets a short-lived token for the demo tenant.
func (s *Serve) DemoToken() string {
	s.t.Helper()
	resp, err := http.Post(s.URL+"/demo/grant", "application/json", strings.NewReader("{}"))
	if err != nil {
		s.t.Fatalf("demo grant: %v", err)
	}
	defer resp.Body.Close()
	var g struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&g); err != nil || g.AccessToken == "" {
		s.t.Fatalf("demo grant: status %d, %v", resp.StatusCode, err)
	}
	return g.AccessToken
}
