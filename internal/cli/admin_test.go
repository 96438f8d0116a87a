package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// runCLI runs one earshot command with only the given environment (no EARSHOT_* of the
// machine running the test) and returns its stdout, stderr and error.
func runCLI(t *testing.T, environ []string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb, environ: environ}
	c, ok := commands[args[0]]
	if !ok {
		t.Fatalf("no command %q", args[0])
	}
	err := c.run(context.Background(), e, args[1:])
	return out.String(), errb.String(), err
}

// TestKeysCreateRefusesUnknownTenant: a key for a tenant billing does not know would
// authenticate and then get 402 on every stream; keys create refuses it, stores
// nothing, and says what to run. Once the tenant exists, the same command works.
func TestKeysCreateRefusesUnknownTenant(t *testing.T) {
	r := testutil.StartRedis(t)
	environ := []string{"EARSHOT_DATA_DIR=" + t.TempDir(), "EARSHOT_NATS_URL=nats://127.0.0.1:1"}
	_, _, err := runCLI(t, environ, "keys", "create", "--tenant", "ghost", "--redis", r.URL())
	if err == nil {
		t.Fatal("keys create for an unknown tenant succeeded")
	}
	for _, want := range []string{"tenant ghost does not exist", "earshot tenants create ghost --redis " + r.URL(),
		"earshot tenants topup ghost"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if keys, err := gateway.NewKeyStore(r.Client()).List(context.Background(), "ghost"); err != nil || len(keys) != 0 {
		t.Fatalf("keys stored for the unknown tenant: %v, %v", keys, err)
	}
	// What the error says to run, then the key.
	if _, _, err := runCLI(t, environ, "tenants", "create", "ghost", "--plan", "trial", "--redis", r.URL()); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, environ, "keys", "create", "--tenant", "ghost", "--redis", r.URL())
	if err != nil || !strings.Contains(out, "secret: esk_") {
		t.Fatalf("keys create after tenants create: %v\n%s", err, out)
	}
}

// TestAdminFindsRunningServe: after `make run` (scripts/run.sh writes <data dir>/redis.url,
// serve writes <data dir>/nats.url with its embedded server's credentials), tenants
// create and keys create run without --redis or --nats reach both: the key is stored in
// serve's Redis and recorded in the audit log, without a warning.
func TestAdminFindsRunningServe(t *testing.T) {
	r := testutil.StartRedis(t)
	ns := testutil.NATS(t)
	data := t.TempDir()
	for file, u := range map[string]string{redisURLFile: r.URL(), natsURLFile: ns.ClientURL()} {
		if err := os.WriteFile(filepath.Join(data, file), []byte(u+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	environ := []string{"EARSHOT_DATA_DIR=" + data}
	if _, _, err := runCLI(t, environ, "tenants", "create", "acme"); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := runCLI(t, environ, "keys", "create", "--tenant", "acme")
	if err != nil || stderr != "" {
		t.Fatalf("keys create: %v\nstdout: %s\nstderr: %s", err, out, stderr)
	}
	id, _, _ := strings.Cut(strings.TrimPrefix(out, "key id: "), "\n")
	if keys, err := gateway.NewKeyStore(r.Client()).List(context.Background(), "acme"); err != nil || len(keys) != 1 || string(keys[0].ID) != id {
		t.Fatalf("key %s not in serve's Redis: %v, %v", id, keys, err)
	}
	audit, _, err := runCLI(t, environ, "tenants", "audit", "acme")
	if err != nil || !strings.Contains(strings.Join(strings.Fields(audit), " "), "cli key.created "+id) {
		t.Fatalf("audit log: %v\n%s", err, audit)
	}
	// Without the files, the defaults are the local servers' usual ports.
	if got := defaultRedis(&env{environ: []string{"EARSHOT_DATA_DIR=" + t.TempDir()}}); got != "redis://127.0.0.1:6379/0" {
		t.Errorf("default Redis without redis.url: %s", got)
	}
	if got := defaultNATS(&env{environ: []string{"EARSHOT_DATA_DIR=" + data, "EARSHOT_NATS_URL=nats://x:4222"}}); got != "nats://x:4222" {
		t.Errorf("EARSHOT_NATS_URL does not win over nats.url: %s", got)
	}
}
