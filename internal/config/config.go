package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/earshot-dev/earshot/models"
)

// Common settings every service has.
type Common struct {
	NATSURL        string        `flag:"nats" env:"EARSHOT_NATS_URL" help:"NATS server URL, or a comma-separated list of a cluster's seed URLs (earshot serve: empty = embedded server)"`
	JSReplicas     int           `flag:"js-replicas" env:"EARSHOT_JS_REPLICAS" help:"copies of every JetStream stream, bucket and object store Earshot creates (1 for one NATS server; 3 in a cluster, to survive the loss of a node)"`
	NATSCreds      string        `flag:"nats-creds" env:"EARSHOT_NATS_CREDS" help:"NATS credentials file (JWT + nkey)"`
	NATSCA         string        `flag:"nats-ca" env:"EARSHOT_NATS_CA" help:"CA file to verify the NATS server's TLS certificate"`
	NATSCert       string        `flag:"nats-cert" env:"EARSHOT_NATS_CERT" help:"client certificate for NATS TLS"`
	NATSKey        string        `flag:"nats-key" env:"EARSHOT_NATS_KEY" help:"client key for NATS TLS"`
	RedisURL       string        `flag:"redis" env:"EARSHOT_REDIS_URL" help:"Redis URL (redis:// or rediss:// for TLS); with --redis-sentinels or --redis-cluster only its credentials, TLS and database are used"`
	RedisSentinels []string      `flag:"redis-sentinels" env:"EARSHOT_REDIS_SENTINELS" help:"Redis Sentinel addresses host:port,... (with --redis-master): follow the master through failovers"`
	RedisMaster    string        `flag:"redis-master" env:"EARSHOT_REDIS_MASTER" help:"the master's name in Sentinel (with --redis-sentinels)"`
	RedisCluster   []string      `flag:"redis-cluster" env:"EARSHOT_REDIS_CLUSTER" help:"Redis Cluster seed addresses host:port,...: keys are spread over the cluster's masters by slot (every key of a tenant on one slot) and its failovers are followed"`
	RedisWait      int           `flag:"redis-wait-replicas" env:"EARSHOT_REDIS_WAIT_REPLICAS" help:"billing acknowledges a usage event only once its ledger write is on this many replicas (0: 1 with --redis-sentinels or --redis-cluster, else none)"`
	DataDir        string        `flag:"data-dir" env:"EARSHOT_DATA_DIR" help:"directory for JetStream files and other state kept on disk"`
	ModelDir       string        `flag:"model-dir" env:"EARSHOT_MODEL_DIR" help:"directory holding ggml model files"`
	HTTP           string        `flag:"http" env:"EARSHOT_HTTP" help:"deprecated: the same as --ops-listen (wins when set)"`
	LogLevel       string        `flag:"log-level" env:"EARSHOT_LOG_LEVEL" help:"debug, info, warn or error"`
	LogFormat      string        `flag:"log-format" env:"EARSHOT_LOG_FORMAT" help:"text or json"`
	PlansFile      string        `flag:"plans" env:"EARSHOT_PLANS" help:"price plans JSON file {\"plans\":[...]} (default: the built-in payg, payg-min, starter, team, trial, demo; with --demo it must define \"demo\")"`
	DrainTimeout   time.Duration `flag:"drain-timeout" env:"EARSHOT_DRAIN_TIMEOUT" help:"how long SIGTERM waits for live sessions before forcing"`
	// The ops listener and the limits of every HTTP listener (docs/api.md "Connection limits").
	OpsListen        string        `flag:"ops-listen" env:"EARSHOT_OPS_LISTEN" help:"address for /metrics and the detailed /healthz, /readyz (not for clients; empty: none; the default moves to a free loopback port when taken)"`
	HTTPIdleTimeout  time.Duration `flag:"http-idle-timeout" env:"EARSHOT_HTTP_IDLE_TIMEOUT" help:"an idle keep-alive HTTP connection is closed after this long"`
	HTTPBodyMinRate  int           `flag:"http-body-min-rate" env:"EARSHOT_HTTP_BODY_MIN_RATE" help:"after --http-body-grace a request body must have arrived at this average rate (bytes/s) or the request is cut with 408"`
	HTTPBodyGrace    time.Duration `flag:"http-body-grace" env:"EARSHOT_HTTP_BODY_GRACE" help:"time a request body gets before --http-body-min-rate applies"`
	HTTPWriteTimeout time.Duration `flag:"http-write-timeout" env:"EARSHOT_HTTP_WRITE_TIMEOUT" help:"longest one HTTP response write may wait on a client that does not read (WebSocket streams keep their own)"`
}

// DefaultOpsListen is the default ops address: loopback only.
const DefaultOpsListen = "127.0.0.1:9090"

// OpsAddr is the address of the ops listener: --http (deprecated) when set, else
// --ops-listen; empty means none.
func (c *Common) OpsAddr() string {
	if c.HTTP != "" {
		return c.HTTP
	}
	return c.OpsListen
}

// Gateway settings.
type Gateway struct {
	Listen           string        `flag:"listen" env:"EARSHOT_LISTEN" help:"address the gateway serves HTTP and WebSocket on"`
	TLSCert          string        `flag:"tls-cert" env:"EARSHOT_TLS_CERT" help:"TLS certificate file (with --tls-key: serve HTTPS/WSS)"`
	TLSKey           string        `flag:"tls-key" env:"EARSHOT_TLS_KEY" help:"TLS private key file"`
	TokenSecret      string        `flag:"token-secret" env:"EARSHOT_TOKEN_SECRET" help:"secret that signs browser tokens (empty: generated once and kept in the data dir)"`
	TokenTTL         time.Duration `flag:"token-ttl" env:"EARSHOT_TOKEN_TTL" help:"lifetime of tokens from POST /v1/auth/grant"`
	MaxCalls         int           `flag:"max-calls-per-tenant" env:"EARSHOT_MAX_CALLS_PER_TENANT" help:"concurrent phone calls (Twilio) one tenant may hold, across all gateways on the same Redis"`
	MaxCallDuration  time.Duration `flag:"max-call-duration" env:"EARSHOT_MAX_CALL_DURATION" help:"longest phone call; a longer one ends with reason max_duration"`
	PhoneTurns       bool          `flag:"phone-turns" env:"EARSHOT_PHONE_TURNS" help:"turn-taking on every phone call by default: turn.* and barge_in events (docs/phone.md); a call may still send turns=false"`
	MaxStreams       int           `flag:"max-streams-per-tenant" env:"EARSHOT_MAX_STREAMS_PER_TENANT" help:"concurrent live streams one tenant may hold, across all gateways on the same Redis"`
	MaxPrerecorded   int           `flag:"max-prerecorded-per-tenant" env:"EARSHOT_MAX_PRERECORDED_PER_TENANT" help:"pre-recorded requests one tenant may have running (across all gateways on the same Redis), and callback jobs waiting or running"`
	MaxUploadMB      int           `flag:"max-upload-mb" env:"EARSHOT_MAX_UPLOAD_MB" help:"largest pre-recorded upload or url= file, in MiB (larger: 413)"`
	MaxAudio         time.Duration `flag:"max-prerecorded-audio" env:"EARSHOT_MAX_PRERECORDED_AUDIO" help:"longest audio one pre-recorded request may hold, whatever the plan (longer: 413 MAX_DURATION)"`
	MaxSession       time.Duration `flag:"max-session" env:"EARSHOT_MAX_SESSION" help:"longest a live stream may last"`
	Demo             bool          `flag:"demo" env:"EARSHOT_DEMO" help:"enable the one-machine demo: POST /demo/grant issues tokens for the demo tenant without a key"`
	DemoTenant       string        `flag:"demo-tenant" env:"EARSHOT_DEMO_TENANT" help:"tenant used by the demo page"`
	AllowSynthetic   bool          `flag:"allow-synthetic-models" env:"EARSHOT_ALLOW_SYNTHETIC" help:"serve models with random weights (benchmarks only)"`
	TwilioAuthToken  string        `flag:"twilio-auth-token" env:"EARSHOT_TWILIO_AUTH_TOKEN" help:"Twilio auth token: when set, /v1/twilio handshakes must carry a valid X-Twilio-Signature"`
	PublicURL        string        `flag:"public-url" env:"EARSHOT_PUBLIC_URL" help:"scheme and host clients reach the gateway at (wss://stt.example.com), for Twilio signatures behind a proxy"`
	OutboundLoopback bool          `flag:"outbound-allow-loopback" env:"EARSHOT_OUTBOUND_ALLOW_LOOPBACK" help:"let url= fetches, callbacks and phone webhooks reach loopback addresses (tests on one machine only; never in production)"`
	URLAllowList     []string      `flag:"url-allow-list" env:"EARSHOT_URL_ALLOW_LIST" help:"hosts POST /v1/listen may fetch {\"url\": ...} from (comma-separated, *.example.com allowed); empty: none"`
	DefaultModel     string        `flag:"default-model" env:"EARSHOT_DEFAULT_MODEL" help:"model used when a client names none"`
}

// Transcriber settings.
type Transcriber struct {
	WorkerID     string        `flag:"worker-id" env:"EARSHOT_WORKER_ID" help:"this worker's id (default: host name and pid)"`
	Models       []string      `flag:"models" env:"EARSHOT_MODELS" help:"comma-separated models this worker loads"`
	ModelMemMB   int           `flag:"model-memory-mb" env:"EARSHOT_MODEL_MEMORY_MB" help:"memory budget of the loaded models and their decoders, MB: a worker whose --models take more once warmed up refuses to start (0: no budget)"`
	VADModel     string        `flag:"vad-model" env:"EARSHOT_VAD_MODEL" help:"Silero VAD ggml file (name in the model dir or a path)"`
	Slots        int           `flag:"slots" env:"EARSHOT_SLOTS" help:"concurrent whisper decodes (0: one per core, each on up to --threads threads while the decodes running fit the cores, on fewer when more run at once; with --gpu: cores / threads)"`
	Threads      int           `flag:"threads" env:"EARSHOT_THREADS" help:"threads per decode, at most (fewer while more decodes run than the cores hold; 0: with --slots 0, the threads and slots whose knee earshot bench --serve measured highest on this machine for the first model, else 2)"`
	MaxSessions  int           `flag:"max-sessions" env:"EARSHOT_MAX_SESSIONS" help:"live sessions per model on this worker (0: the knee earshot bench --serve measured for the model on this machine, with these threads and slots, else 2 per core, at least 4; with --gpu 4. Measure it: make bench, or earshot bench --serve --model M)"`
	CapacityFile string        `flag:"capacity-file" env:"EARSHOT_CAPACITY_FILE" help:"the measured knees --max-sessions 0 reads (default: capacity.json in --model-dir, written by earshot bench --serve)"`
	Step         time.Duration `flag:"step" env:"EARSHOT_STEP" help:"partial decode cadence"`
	GPU          bool          `flag:"gpu" env:"EARSHOT_GPU" help:"use the GPU backend when whisper.cpp was built with one"`
	Engine       string        `flag:"engine" env:"EARSHOT_ENGINE" help:"whisper, or standin: a stand-in that emits words at real-time pace without recognising anything (transport and scale benchmarks only)"`
	WordTimes    string        `flag:"word-times" env:"EARSHOT_WORD_TIMES" help:"model: word times by DTW over the model's alignment heads (flash attention in the encoder only); estimate: spread over the audio by length (flash attention throughout)"`
	TurnModel    string        `flag:"turn-model" env:"EARSHOT_TURN_MODEL" help:"end-of-turn model of /v2/listen: auto (Smart Turn v3.2 when installed by make turn-model, else VAD only, with a warning), a path to smart-turn-v3.2-cpu.onnx (required), or none (VAD only: a turn ends after 600 ms of silence)"`
	ORTLib       string        `flag:"ort-lib" env:"EARSHOT_ORT_LIB" help:"ONNX Runtime's shared library for --turn-model (default: where scripts/smartturn.sh installs libonnxruntime.so.1.31.1)"`
}

// Defaults returns the settings a fresh machine runs with.
func Defaults() (Common, Gateway, Transcriber) {
	return Common{
			RedisURL:     "redis://127.0.0.1:6379/0",
			DataDir:      "data",
			JSReplicas:   1,
			LogLevel:     "info",
			LogFormat:    "text",
			DrainTimeout: 30 * time.Second,

			OpsListen:        DefaultOpsListen,
			HTTPIdleTimeout:  2 * time.Minute,
			HTTPBodyMinRate:  16 << 10,
			HTTPBodyGrace:    30 * time.Second,
			HTTPWriteTimeout: time.Minute,
		}, Gateway{
			Listen:     "127.0.0.1:8080",
			TokenTTL:   30 * time.Second,
			MaxStreams: 20,
			MaxCalls:   20, MaxCallDuration: 4 * time.Hour,
			MaxPrerecorded: 4,
			MaxUploadMB:    100,
			MaxAudio:       4 * time.Hour,
			MaxSession:     4 * time.Hour,
			DemoTenant:     "demo",
			DefaultModel:   models.Default,
		}, Transcriber{
			Models:    []string{models.Default},
			VADModel:  models.SileroFile,
			Step:      300 * time.Millisecond,
			WordTimes: "model",
			TurnModel: "auto",
			Engine:    "whisper",
		}
}

// Validate checks the common settings.
func (c *Common) Validate(needNATS bool) error {
	if needNATS && c.NATSURL == "" {
		return fmt.Errorf("--nats (EARSHOT_NATS_URL) is required: point it at your NATS server, e.g. nats://127.0.0.1:4222")
	}
	if c.NATSURL != "" {
		for _, u := range strings.Split(c.NATSURL, ",") {
			if p, err := url.Parse(strings.TrimSpace(u)); err != nil || p.Host == "" {
				return fmt.Errorf("--nats %q is not a URL like nats://host:4222", u)
			}
		}
	}
	if err := c.ValidateRedis(); err != nil {
		return err
	}
	if c.JSReplicas < 1 || c.JSReplicas > 5 {
		return fmt.Errorf("--js-replicas %d: use 1 to 5 (JetStream's limit), and at most the number of NATS servers", c.JSReplicas)
	}
	if (c.NATSCert == "") != (c.NATSKey == "") {
		return fmt.Errorf("--nats-cert and --nats-key go together: give both or neither")
	}
	if c.RedisURL != "" {
		if p, err := url.Parse(c.RedisURL); err != nil || (p.Scheme != "redis" && p.Scheme != "rediss" && p.Scheme != "unix") {
			return fmt.Errorf("--redis %q is not a Redis URL like redis://127.0.0.1:6379/0", c.RedisURL)
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("--log-level %q: use debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("--log-format %q: use text or json", c.LogFormat)
	}
	if c.DrainTimeout <= 0 {
		return fmt.Errorf("--drain-timeout must be positive, like 30s")
	}
	if c.HTTP != "" {
		if _, _, err := net.SplitHostPort(c.HTTP); err != nil {
			return fmt.Errorf("--http %q is not host:port (like :9090)", c.HTTP)
		}
	}
	if c.OpsListen != "" {
		if _, _, err := net.SplitHostPort(c.OpsListen); err != nil {
			return fmt.Errorf("--ops-listen %q is not host:port (like 127.0.0.1:9090)", c.OpsListen)
		}
	}
	if c.HTTPIdleTimeout <= 0 || c.HTTPBodyGrace <= 0 || c.HTTPWriteTimeout <= 0 {
		return fmt.Errorf("--http-idle-timeout, --http-body-grace and --http-write-timeout must be positive, like 2m")
	}
	if c.HTTPBodyMinRate < 1 {
		return fmt.Errorf("--http-body-min-rate must be at least 1 byte/s (default 16384)")
	}
	return nil
}

// Validate checks the gateway settings.
func (g *Gateway) Validate() error {
	if _, _, err := net.SplitHostPort(g.Listen); err != nil {
		return fmt.Errorf("--listen %q is not host:port (like 127.0.0.1:8080, or :8080 for every interface)", g.Listen)
	}
	if (g.TLSCert == "") != (g.TLSKey == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together: give both or neither")
	}
	for _, f := range []string{g.TLSCert, g.TLSKey} {
		if f != "" {
			if _, err := os.Stat(f); err != nil {
				return fmt.Errorf("TLS file: %w", err)
			}
		}
	}
	if g.TokenTTL < time.Second || g.TokenTTL > 24*time.Hour {
		return fmt.Errorf("--token-ttl %v: use between 1s and 24h", g.TokenTTL)
	}
	if g.MaxPrerecorded < 1 {
		return fmt.Errorf("--max-prerecorded-per-tenant must be at least 1")
	}
	if g.MaxUploadMB < 1 || g.MaxUploadMB > 4096 {
		return fmt.Errorf("--max-upload-mb %d: use between 1 and 4096", g.MaxUploadMB)
	}
	if g.MaxAudio < time.Second {
		return fmt.Errorf("--max-prerecorded-audio %v is too short", g.MaxAudio)
	}
	if g.MaxStreams < 1 {
		return fmt.Errorf("--max-streams-per-tenant must be at least 1")
	}
	if g.MaxSession < time.Second {
		return fmt.Errorf("--max-session %v is too short", g.MaxSession)
	}
	if g.TokenSecret != "" && len(g.TokenSecret) < 32 {
		return fmt.Errorf("--token-secret is too short: use at least 32 random characters")
	}
	return nil
}

// Validate checks the transcriber settings.
func (t *Transcriber) Validate(cores int) error {
	if len(t.Models) == 0 {
		return fmt.Errorf("--models is empty: name at least one model, e.g. --models tiny.en")
	}
	if t.Threads < 0 {
		return fmt.Errorf("--threads must be at least 1, or 0 (chosen for this machine)")
	}
	if t.ModelMemMB < 0 {
		return fmt.Errorf("--model-memory-mb must be 0 (no budget) or more")
	}
	if t.Slots < 0 || t.MaxSessions < 0 {
		return fmt.Errorf("--slots and --max-sessions must be >= 0 (0: chosen for this machine)")
	}
	if t.Slots*t.ThreadsOrDefault() > cores*2 {
		return fmt.Errorf("--slots %d x --threads %d oversubscribes %d cores: lower one of them", t.Slots, t.ThreadsOrDefault(), cores)
	}
	if t.Step < 50*time.Millisecond || t.Step > 5*time.Second {
		return fmt.Errorf("--step %v: use between 50ms and 5s", t.Step)
	}
	if t.WordTimes != "model" && t.WordTimes != "estimate" {
		return fmt.Errorf("--word-times %q: use model or estimate", t.WordTimes)
	}
	if t.Engine != "whisper" && t.Engine != "standin" {
		return fmt.Errorf("--engine %q: use whisper, or standin (benchmarks only)", t.Engine)
	}
	return nil
}

// DefaultThreads is the threads per decode where neither --threads nor a measured knee
// chose them.
const DefaultThreads = 2

// ThreadsOrDefault is --threads, or DefaultThreads when it is 0 (not chosen yet).
func (t *Transcriber) ThreadsOrDefault() int {
	if t.Threads > 0 {
		return t.Threads
	}
	return DefaultThreads
}

// SlotsFor returns the decode slots to run: the setting, else one per core on the CPU
// (the pool gives each decode up to the threads per decode while the decodes running
// fit the cores, fewer when more run at once: transcriber Pool.decodeCall), else, with
// --gpu, cores / threads (at least 1).
func (t *Transcriber) SlotsFor(cores int) int {
	if t.Slots > 0 {
		return t.Slots
	}
	if !t.GPU {
		return max(1, cores)
	}
	if n := cores / t.ThreadsOrDefault(); n > 0 {
		return n
	}
	return 1
}

// Abs makes p absolute relative to the working directory (for logs and errors).
func Abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
