package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/billing"
	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/testutil"
	"github.com/earshot-dev/earshot/models"
	"github.com/redis/go-redis/v9"
)

var (
	natsOnce sync.Once
	natsBin  string
	natsErr  error
)

// natsServer builds the nats-server of the module graph once per test process.
func natsServer(t *testing.T) string {
	t.Helper()
	natsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "earshot-chaos-nats-")
		if err != nil {
			natsErr = err
			return
		}
		natsBin = filepath.Join(dir, "nats-server")
		cmd := exec.Command("go", "build", "-o", natsBin, "github.com/nats-io/nats-server/v2")
		cmd.Dir = testutil.ModuleRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			natsErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if natsErr != nil {
		t.Fatalf("build nats-server: %v", natsErr)
	}
	return natsBin
}

// cluster is one Earshot deployment of separate processes on this machine.
type cluster struct {
	t        *testing.T
	bin      string
	redis    *testutil.Redis
	rdb      redis.UniversalClient // how the test itself reaches Redis (nil: redis.Client())
	natsPort int
	natsDir  string
	gwPort   int
	opsPort  int // the gateway's --ops-listen (/metrics)
	dataDir  string
	modelDir string
	gwFlags  []string // extra flags of every gateway
	extraEnv []string // extra environment of every service (Sentinel)

	// A NATS cluster instead of one server (newNATSCluster): one client port, cluster
	// port and store per node; services get every client URL as seeds.
	nodePorts, routePorts []int
	nodeDirs              []string
	nodes                 []*testutil.Proc
	replicas              int
	nodeUID               int // > 0: node i runs as user id nodeUID+i (partitions: cutOff)

	nats        *testutil.Proc
	gateway     *testutil.Proc
	billing     *testutil.Proc
	transcriber []*testutil.Proc
}

// requireModel returns the model dir holding tiny.en, or skips (fails in CI).
func requireModel(t *testing.T) string {
	t.Helper()
	dir := models.DefaultDir()
	if _, err := os.Stat(filepath.Join(dir, "ggml-tiny.en.bin")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs the tiny.en model in %s (make model): %v", dir, err)
		}
		t.Skipf("SKIPPING: no tiny.en model in %s (make model)", dir)
	}
	return dir
}

func newCluster(t *testing.T, transcribers int, gatewayFlags ...string) *cluster {
	t.Helper()
	testdata.Require(t)
	c := &cluster{t: t, modelDir: requireModel(t), gwFlags: gatewayFlags}
	c.redis = testutil.StartRedis(t)
	c.start(transcribers)
	return c
}

// start brings up one NATS server, billing, the transcribers and a gateway, on the
// Redis (and extraEnv) the caller set.
func (c *cluster) start(transcribers int) {
	c.t.Helper()
	c.bin = testutil.Binary(c.t)
	c.natsPort, c.gwPort, c.opsPort = testutil.FreePort(c.t), testutil.FreePort(c.t), testutil.FreePort(c.t)
	c.natsDir, c.dataDir = c.t.TempDir(), c.t.TempDir()
	c.startNATS()
	c.startBilling()
	for i := range transcribers {
		c.startTranscriber(i)
	}
	c.startGateway()
}

func (c *cluster) natsURL() string {
	if len(c.nodePorts) == 0 {
		return "nats://127.0.0.1:" + strconv.Itoa(c.natsPort)
	}
	urls := make([]string, len(c.nodePorts))
	for i, p := range c.nodePorts {
		urls[i] = "nats://127.0.0.1:" + strconv.Itoa(p)
	}
	return strings.Join(urls, ",")
}
func (c *cluster) httpURL() string { return "http://127.0.0.1:" + strconv.Itoa(c.gwPort) }
func (c *cluster) wsURL() string   { return "ws://127.0.0.1:" + strconv.Itoa(c.gwPort) + "/v1/listen" }

func (c *cluster) env() []string {
	env := []string{"EARSHOT_NATS_URL=" + c.natsURL(), "EARSHOT_REDIS_URL=" + c.redis.URL(),
		"EARSHOT_DATA_DIR=" + c.dataDir, "EARSHOT_MODEL_DIR=" + c.modelDir, "EARSHOT_LOG_LEVEL=info",
		"EARSHOT_JS_REPLICAS=" + strconv.Itoa(max(1, c.replicas))}
	return append(env, c.extraEnv...)
}

func (c *cluster) startNATS() {
	c.t.Helper()
	c.nats = testutil.Start(c.t, "nats-server", natsServer(c.t), nil,
		"-a", "127.0.0.1", "-p", strconv.Itoa(c.natsPort), "-js", "-sd", c.natsDir)
	c.nats.WaitOutput("Server is ready", 20*time.Second)
}

func (c *cluster) startBilling() {
	c.t.Helper()
	c.billing = testutil.Start(c.t, "billing", c.bin, c.env(), "billing")
	c.billing.WaitOutput("billing consumer running", 30*time.Second)
}

func (c *cluster) startTranscriber(i int) {
	c.t.Helper()
	p := testutil.Start(c.t, fmt.Sprintf("transcriber-%d", i), c.bin, c.env(), "transcriber",
		"--worker-id", fmt.Sprintf("w%d", i), "--models", "tiny.en", "--threads", "1", "--slots", "1")
	p.WaitOutput("worker serving", 60*time.Second)
	if i < len(c.transcriber) {
		c.transcriber[i] = p
	} else {
		c.transcriber = append(c.transcriber, p)
	}
}

func (c *cluster) startGateway() {
	c.t.Helper()
	c.gateway = testutil.Start(c.t, "gateway", c.bin, c.env(), append([]string{"gateway",
		"--listen", "127.0.0.1:" + strconv.Itoa(c.gwPort), "--demo", "--token-ttl", "10m",
		"--ops-listen", "127.0.0.1:" + strconv.Itoa(c.opsPort)}, c.gwFlags...)...)
	c.gateway.WaitOutput("msg=serving", 30*time.Second)
}

// token is an API key of tenant "chaos" (team plan), sent as "Bearer <key>" like a
// token. A signed token opens one stream and cannot read /v1/usage, and the demo tenant
// is capped, so the chaos streams use a key.
func (c *cluster) token() string {
	c.t.Helper()
	ctx := context.Background()
	var rdb redis.UniversalClient = c.rdb
	if rdb == nil {
		rdb = c.redis.Client()
	}
	if _, err := billing.NewStore(rdb, billing.DefaultPlans(), nil).CreateTenant(ctx, "chaos", "team"); err != nil && !errors.Is(err, billing.ErrTenantExists) {
		c.t.Fatalf("chaos tenant: %v", err)
	}
	_, key, err := gateway.NewKeyStore(rdb).Create(ctx, "chaos")
	if err != nil {
		c.t.Fatalf("chaos key: %v", err)
	}
	return key
}

// billedMs is the chaos tenant's total_ms from GET /v1/usage.
func (c *cluster) billedMs(token string) (int64, error) {
	req, _ := http.NewRequest(http.MethodGet, c.httpURL()+"/v1/usage", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /v1/usage: HTTP %d", resp.StatusCode)
	}
	var u struct {
		TotalMs int64 `json:"total_ms"`
	}
	return u.TotalMs, json.NewDecoder(resp.Body).Decode(&u)
}

// waitBilled polls until the tenant's billed ms equal want or timeout passes, and
// returns the last value read.
func (c *cluster) waitBilled(token string, want int64, timeout time.Duration) int64 {
	deadline := time.Now().Add(timeout)
	var got int64
	for {
		v, err := c.billedMs(token)
		if err == nil {
			got = v
		}
		if got >= want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// serving returns the index of the transcriber that granted the most recent session.
func (c *cluster) serving(session string) int {
	for i, p := range c.transcriber {
		if p != nil && !p.Exited() && strings.Contains(p.Output(), "session="+session) {
			return i
		}
	}
	return -1
}

// gatewayMetric reads one unlabelled sample from the gateway's /metrics (on its ops address).
func (c *cluster) gatewayMetric(name string) (float64, bool) {
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(c.opsPort) + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

var _ = context.Background

func testdataDir(t *testing.T) string { return testdata.Require(t) }
