package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	goredis "github.com/redis/go-redis/v9"

	"github.com/earshot-dev/earshot/billing"
	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/ingest/remote"
	"github.com/earshot-dev/earshot/internal/app"
	"github.com/earshot-dev/earshot/internal/bench"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/config"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/models"
	"github.com/earshot-dev/earshot/transcriber"
	"github.com/earshot-dev/earshot/transcriber/worker"
)

func init() {
	register(&command{
		name:    "bench",
		summary: "load benchmark: N concurrent real-time streams through the public WebSocket API",
		usage: `Streams the WAV files of a speech manifest (looped, each followed by 1 s of silence) on N
concurrent connections in real time, for each N of --streams, and measures partial, word and final
latency, WER against the references, RTF, CPU and peak RSS of the service processes (--pids, else
every process named "earshot" but this one), and audio billed (GET /v1/usage). The sweep stops
after the first level over the knee: partial p95 above --knee (1.5 s), final p95 above
--knee-final (1 s), a stream that fell behind real time by more than --knee-final (its
results still coming that long after its audio ended), or errors. Every stream of every
level sends the same clips, each stream from its own start, so levels score the same
audio. Writes bench.json, bench.md, latency.svg and cpu.svg to --out. Credentials: --key,
--token (one stream), or demo tokens (earshot serve --demo; one per stream); --serve makes
a key of its own, and records the knee for this machine, model, threads and slots
(--save-knee): earshot serve and transcriber then admit that many streams of the model when
--max-sessions is not set. --serve's log is kept in $EARSHOT_BENCH_SERVE_LOG when it is set
(EARSHOT_LOG_LEVEL=debug logs every decode and its time).

--engine skips the gateway: sessions are opened on transcriber workers over NATS (--nats URL, or
--nats-port P to run an embedded NATS server here that 'earshot transcriber --nats
nats://127.0.0.1:P' joins). For hosts without Redis (the GPU benchmark); billing is then n/a.

--peer whisperlive|whisperlivekit streams to another server at --url in that server's own
protocol, with the same metrics (make bench-peers; internal/bench/peers.go says how its
messages map onto partials and finals); pass its processes with --pids.`,
		run: runBench,
	})
}

func runBench(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, commands["bench"], "[flags]")
	url := fs.String("url", "ws://localhost:8080/v1/listen", "gateway WebSocket URL")
	key := fs.String("key", "", "API key (or env EARSHOT_API_KEY)")
	token := fs.String("token", "", "token from POST /v1/auth/grant (opens one stream: use --key for more)")
	model := fs.String("model", "", "model (default: the server's; --engine: tiny.en; with --serve the server loads it)")
	endpointing := fs.Int("endpointing", 0, "endpointing= of every stream, in ms (0: the server's default, 600 ms; the server raises values under 500 ms to 500); a sweep with it records no knee")
	language := fs.String("language", "", "language= of every stream (zh-CN, multi, …; default: the server's, English); zh, ja, ko are scored by CER")
	manifest := fs.String("manifest", "", "speech manifest (default: the shared test data's speech/manifest.tsv)")
	streams := fs.String("streams", "1,2,4,8,12,16", "concurrent streams per level, ascending")
	dur := fs.Duration("duration", 60*time.Second, "audio per stream per level")
	chunk := fs.Int("chunk-ms", 100, "audio per frame")
	knee := fs.Duration("knee", 1500*time.Millisecond, "stop after a level whose partial p95 is above this (a looser rule records no knee)")
	kneeFinal := fs.Duration("knee-final", time.Second, "stop after a level whose final p95 is above this, or one of whose streams fell behind real time by more than this (its results still coming that long after its audio ended; a looser rule records no knee)")
	out := fs.String("out", "bench/out", "directory for bench.json, bench.md, latency.svg, cpu.svg")
	asJSON := fs.Bool("json", false, "print the report as JSON on stdout (else the Markdown table)")
	pids := fs.String("pids", "", "comma-separated pids of the service processes (default: every 'earshot' process but this one)")
	gpu := fs.Bool("gpu", false, "sample GPU utilisation and memory with nvidia-smi")
	serve := fs.Bool("serve", false, "start redis-server and 'earshot serve --demo' on free loopback ports for the run (ignores --url)")
	engine := fs.Bool("engine", false, "open sessions on workers over NATS instead of the WebSocket gateway")
	natsURL := fs.String("nats", "", "--engine: NATS URL of the workers")
	natsPort := fs.Int("nats-port", 0, "--engine: run an embedded NATS server on this loopback port")
	wait := fs.Duration("wait-worker", 3*time.Minute, "--engine: how long to wait for a worker's heartbeat")
	peer := fs.String("peer", "", "stream to a peer server at --url with its own protocol instead of Earshot: "+strings.Join(bench.Peers, " or ")+" (make bench-peers)")
	peerTrace := fs.String("peer-trace", "", "--peer: write every message the peer sent into this directory, one file per stream")
	mergePeers := fs.String("merge-peers", "", "write DIR/peers.md, the median table of DIR/<server>/run*/bench.json (make bench-peers), and exit")
	mergeCmd := fs.String("merge-command", "", "--merge-peers: the command to name under the table")
	var lw localWorker
	fs.StringVar(&lw.model, "worker-model", "", "--engine: run a worker in this process on this ggml file (random weights allowed: benchmarks only)")
	fs.StringVar(&lw.vad, "vad", "", "Silero VAD ggml file: where the clips' speech ends, which final latency is timed from, and the --worker-model's VAD (default: ggml-silero-v6.2.0.bin in the model dir, or beside --worker-model)")
	fs.BoolVar(&lw.gpu, "gpu-decode", false, "--worker-model: decode on the GPU (needs a CUDA build of whisper.cpp)")
	fs.IntVar(&lw.slots, "slots", 0, "--worker-model or --serve: concurrent decodes (0: as earshot serve's --slots 0: one per core on the CPU, sharing the cores)")
	fs.IntVar(&lw.threads, "threads", 2, "--worker-model or --serve: threads per decode")
	fs.IntVar(&lw.maxSessions, "max-sessions", 0, "--worker-model or --serve: live sessions the worker accepts (0: the largest level)")
	saveKnee := fs.Bool("save-knee", true, "--serve: record the knee in the capacity file (EARSHOT_CAPACITY_FILE, else capacity.json in the model dir); earshot serve and transcriber on this machine then admit that many streams of the model by default (--max-sessions 0)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *mergePeers != "" {
		path, err := bench.WritePeerTable(*mergePeers, *mergeCmd)
		if err == nil {
			fmt.Fprintf(e.stderr, "wrote %s\n", path)
		}
		return err
	}
	log := newBenchLog(e)
	cfg := bench.Config{Duration: *dur, ChunkMs: *chunk, KneeP95: *knee, KneeFinalP95: *kneeFinal, GPU: *gpu, Log: log, Language: *language,
		EndpointingMs: *endpointing}
	if *endpointing < 0 {
		return fmt.Errorf("--endpointing %d: give milliseconds, or 0 for the server's default", *endpointing)
	}
	var err error
	if cfg.Streams, err = parseInts(*streams); err != nil {
		return fmt.Errorf("--streams: %w", err)
	}
	if *pids != "" {
		if cfg.Pids, err = parseInts(*pids); err != nil {
			return fmt.Errorf("--pids: %w", err)
		}
	} else if *peer == "" {
		cfg.Pids = bench.FindPids("earshot")
	}
	if *manifest == "" {
		if *manifest, err = testdata.Path(testdata.SpeechManifest); err != nil {
			return fmt.Errorf("no --manifest and %w", err)
		}
	}
	if cfg.Clips, err = bench.LoadClips(*manifest); err != nil {
		return err
	}
	markSpeech(cfg.Clips, lw.vadPath(), transcriber.EndpointFor(*endpointing), log)
	if *peer != "" {
		if err := cfg.UsePeer(*peer, *url, *peerTrace); err != nil {
			return err
		}
	} else if *engine {
		if lw.model != "" {
			if lw.maxSessions == 0 {
				lw.maxSessions = cfg.Streams[len(cfg.Streams)-1]
			}
			if *model == "" {
				*model = strings.TrimSuffix(strings.TrimPrefix(filepath.Base(lw.model), "ggml-"), ".bin")
			}
			if *natsPort == 0 && *natsURL == "" {
				*natsPort = -1
			}
		}
		stop, err := useEngine(ctx, &cfg, *natsURL, *natsPort, *model, *wait, e, &lw)
		if err != nil {
			return err
		}
		defer stop()
		switch {
		case *pids != "":
		case lw.model != "":
			cfg.Pids = []int{os.Getpid()} // the worker runs here
		default:
			cfg.Pids = bench.FindPids("earshot")
		}
	} else {
		if *serve {
			if lw.maxSessions == 0 {
				lw.maxSessions = cfg.Streams[len(cfg.Streams)-1]
			}
			// The worker admits every stream of the largest level (the default, 2 per core,
			// could refuse the rest: the sweep measures decoding, not admission).
			extra := []string{"--max-sessions", strconv.Itoa(lw.maxSessions), "--threads", strconv.Itoa(lw.threads)}
			if lw.slots > 0 {
				extra = append(extra, "--slots", strconv.Itoa(lw.slots))
			}
			u, pid, stop, err := startServe(ctx, e, key, *model, extra...)
			if err != nil {
				return err
			}
			defer stop()
			*url = u
			if *pids == "" {
				cfg.Pids = []int{pid}
			}
		}
		if *key == "" {
			for _, kv := range e.environ {
				if v, ok := strings.CutPrefix(kv, "EARSHOT_API_KEY="); ok {
					*key = v
				}
			}
		}
		cfg.UseWebSocket(*url, *model, &bench.Credentials{Key: *key, Token: *token, Base: bench.HTTPBase(*url)})
	}
	rep, err := bench.Run(ctx, cfg)
	if rep == nil {
		return err
	}
	if werr := bench.WriteFiles(*out, rep); werr != nil {
		return werr
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		bench.WriteMarkdown(e.stdout, rep)
	}
	abs, _ := filepath.Abs(*out)
	fmt.Fprintf(e.stderr, "wrote %s/{bench.json,bench.md,latency.svg,cpu.svg}\n", abs)
	if err == nil && *serve && *saveKnee && *peer == "" && !*engine {
		saveBenchKnee(e, rep, cfg, *model, lw, args)
	}
	return err
}

// saveBenchKnee records the knee of a --serve sweep for this machine (models.SaveKnee),
// or says why it does not.
func saveBenchKnee(e *env, rep *bench.Report, cfg bench.Config, model string, lw localWorker, args []string) {
	if model == "" {
		model = models.Default
		if m := os.Getenv("EARSHOT_DEFAULT_MODEL"); m != "" {
			model = m
		}
	}
	gpu, _ := strconv.ParseBool(os.Getenv("EARSHOT_GPU"))
	tc := config.Transcriber{Slots: lw.slots, Threads: lw.threads, GPU: gpu}
	key := models.HostKey(model, gpu, lw.threads, tc.SlotsFor(runtime.NumCPU()))
	path := models.KneeFilePath(envOr(e, "EARSHOT_CAPACITY_FILE", ""), models.DefaultDir())
	k, err := bench.KneeRecord(rep, cfg, key, strings.Join(append([]string{"earshot bench"}, args...), " "))
	if err == nil {
		err = models.SaveKnee(path, k)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "knee not recorded (earshot serve keeps its default max sessions): %v\n", err)
		return
	}
	fmt.Fprintf(e.stderr, "knee recorded in %s: earshot serve and transcriber on this machine now admit %d live streams of %s by default (with --threads %d --slots %d; --max-sessions overrides it)\n",
		path, k.Sessions(), model, key.Threads, key.Slots)
}

// useEngine connects cfg to workers over NATS (embedding a NATS server when natsPort
// > 0) and waits for the first worker heartbeat.
func useEngine(ctx context.Context, cfg *bench.Config, url string, port int, model string, wait time.Duration, e *env, lw *localWorker) (func(), error) {
	var stops []func()
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if port != 0 {
		dir, err := os.MkdirTemp("", "earshot-bench-nats-")
		if err != nil {
			return nil, err
		}
		ns, err := app.StartEmbeddedNATS(dir, max(port, 0), cfg.Log)
		if err != nil {
			return nil, err
		}
		stops = append(stops, func() { ns.Shutdown(); ns.WaitForShutdown(); os.RemoveAll(dir) })
		url = ns.ClientURL()
		fmt.Fprintf(e.stderr, "bench: NATS ready on %s\n", url)
	}
	if url == "" {
		return nil, fmt.Errorf("--engine needs --nats URL or --nats-port P")
	}
	nc, err := nats.Connect(url, nats.Name("earshot-bench"), nats.MaxReconnects(-1))
	if err != nil {
		stop()
		return nil, fmt.Errorf("nats %s: %w", url, err)
	}
	stops = append(stops, nc.Close)
	if lw.model != "" {
		wstop, err := lw.start(nc, cfg.Log)
		if err != nil {
			stop()
			return nil, err
		}
		stops = append(stops, wstop)
	}
	hb := make(chan struct{}, 1)
	sub, err := nc.Subscribe(bus.HeartbeatWildcard, func(*nats.Msg) {
		select {
		case hb <- struct{}{}:
		default:
		}
	})
	if err != nil {
		stop()
		return nil, err
	}
	select {
	case <-hb:
	case <-time.After(wait):
		stop()
		return nil, fmt.Errorf("no transcriber heartbeat on %s within %v", url, wait)
	case <-ctx.Done():
		stop()
		return nil, ctx.Err()
	}
	_ = sub.Unsubscribe()
	cl, err := remote.NewClient(nc, cfg.Log, remote.ClientOptions{GrantTimeout: 5 * time.Second})
	if err != nil {
		stop()
		return nil, err
	}
	stops = append(stops, func() { _ = cl.Close() })
	if model == "" {
		model = models.Default
	}
	cfg.UseBus(cl, model, "bus "+url+" model "+model)
	return stop, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func newBenchLog(e *env) *slog.Logger {
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// markSpeech finds where each clip's speech lies as the server's VAD hears it at the
// streams' endpointing (transcriber.SpeechRuns with Silero), so that finals are timed
// from the speech end. Without the model it says so, and finals are timed from their
// own end (the endpoint): the report says which.
func markSpeech(clips []bench.Clip, vadPath string, endpointing time.Duration, log *slog.Logger) {
	fail := func(err error) {
		for i := range clips {
			clips[i].Speech = nil
		}
		log.Warn("final latency is timed from the endpoint, not the speech end: the clips' speech could not be measured (make model installs Silero; --vad names it)", "err", err)
	}
	v, err := transcriber.NewSileroVAD(vadPath)
	if err != nil {
		fail(err)
		return
	}
	defer v.Close()
	for i := range clips {
		runs, err := transcriber.SpeechRuns(v, ingest.FromPCM16Bytes(clips[i].PCM), endpointing)
		if err != nil {
			fail(fmt.Errorf("%s: %w", clips[i].ID, err))
			return
		}
		clips[i].Speech = make([]bench.Span, 0, len(runs))
		for _, r := range runs {
			clips[i].Speech = append(clips[i].Speech, bench.Span{From: float64(r[0]) / 16000, To: float64(r[1]) / 16000})
		}
	}
}

// vadPath is --vad, else Silero beside --worker-model, else in the model dir.
func (lw *localWorker) vadPath() string {
	switch {
	case lw.vad != "":
		return lw.vad
	case lw.model != "":
		return filepath.Join(filepath.Dir(lw.model), models.SileroFile)
	}
	return filepath.Join(models.DefaultDir(), models.SileroFile)
}

// localWorker is a transcriber worker run inside the bench process (--worker-model):
// for hosts with no Redis and no other earshot services, and for random-weight models.
type localWorker struct {
	model, vad                  string
	gpu                         bool
	slots, threads, maxSessions int
}

func (lw *localWorker) start(nc *nats.Conn, log *slog.Logger) (func(), error) {
	name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(lw.model), "ggml-"), ".bin")
	m, err := transcriber.LoadWhisper(lw.model, transcriber.LoadOptions{Name: name, Threads: lw.threads, UseGPU: lw.gpu, Log: log})
	if err != nil {
		return nil, err
	}
	vad := lw.vadPath()
	slots := (&config.Transcriber{Slots: lw.slots, Threads: lw.threads, GPU: lw.gpu}).SlotsFor(runtime.NumCPU())
	pool, err := transcriber.NewPool(transcriber.PoolConfig{
		Models:           map[string]transcriber.Model{name: m},
		NewVAD:           func() (transcriber.VAD, error) { return transcriber.NewSileroVAD(vad) },
		Worker:           "bench-local",
		Slots:            slots,
		ThreadsPerDecode: lw.threads,
		MaxSessions:      lw.maxSessions,
		Log:              log.With("component", "transcriber"),
	})
	if err != nil {
		return nil, err
	}
	w, err := worker.New(nc, pool, worker.Config{ID: "bench-local", Log: log})
	if err != nil {
		_ = pool.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	log.Info("local worker", "model", name, "gpu", lw.gpu, "slots", slots, "threads", lw.threads, "max_sessions", lw.maxSessions)
	return func() { cancel(); <-done; _ = pool.Close() }, nil
}

// startServe runs a private redis-server and `earshot serve --demo` (this binary) on
// free loopback ports, with extra flags of serve, and returns the WebSocket URL, the serve
// pid and a stop function.
// It sets *key to an API key of a tenant "bench" on the team plan: demo tokens open one
// stream each and the demo tenant is capped, so the bench does not run on them.
//
// The ports are picked free and then handed to the processes, so another process can
// take one in between: when redis-server or serve exits saying its address is in use,
// it starts again on new ports (three tries), rather than waiting on, or talking to,
// whatever took the port.
func startServe(ctx context.Context, e *env, key *string, model string, extra ...string) (url string, pid int, stop func(), err error) {
	for try := 1; ; try++ {
		url, pid, stop, err = startServeOnce(ctx, e, key, model, extra...)
		if !errors.Is(err, errPortTaken) || try == 3 {
			return url, pid, stop, err
		}
		fmt.Fprintf(e.stderr, "bench: %v; starting again on other ports\n", err)
	}
}

// errPortTaken: a process startServe started exited because its port was taken.
var errPortTaken = errors.New("a port picked for the bench's services was taken meanwhile")

func startServeOnce(ctx context.Context, e *env, key *string, model string, extra ...string) (url string, pid int, stop func(), err error) {
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", 0, nil, fmt.Errorf("--serve needs redis-server on PATH (apt-get install redis-server)")
	}
	self, err := os.Executable()
	if err != nil {
		return "", 0, nil, err
	}
	dir, err := os.MkdirTemp("", "earshot-bench-serve-")
	if err != nil {
		return "", 0, nil, err
	}
	var procs []*exec.Cmd
	var waits []<-chan struct{} // waits[i] is closed when procs[i] has exited (and been reaped)
	stop = func() {
		for i := len(procs) - 1; i >= 0; i-- {
			_ = procs[i].Process.Signal(syscall.SIGTERM)
			select {
			case <-waits[i]:
			case <-time.After(10 * time.Second):
				_ = procs[i].Process.Kill()
				<-waits[i]
			}
		}
		os.RemoveAll(dir)
	}
	rport, gport, err := freePort(), freePort(), nil
	redis := exec.Command(redisBin, "--port", strconv.Itoa(rport), "--bind", "127.0.0.1", "--save", "", "--dir", dir,
		"--logfile", filepath.Join(dir, "redis.log"))
	if err = redis.Start(); err != nil {
		stop()
		return "", 0, nil, err
	}
	redisExited := exited(redis)
	procs, waits = append(procs, redis), append(waits, redisExited)
	// EARSHOT_BENCH_SERVE_LOG keeps serve's log (with EARSHOT_LOG_LEVEL=debug, every
	// decode's time) where the run leaves it; by default it goes with the run's temp dir.
	logPath := filepath.Join(dir, "serve.log")
	if p := os.Getenv("EARSHOT_BENCH_SERVE_LOG"); p != "" {
		logPath = p
	}
	logf, err := os.Create(logPath)
	if err != nil {
		stop()
		return "", 0, nil, err
	}
	args := []string{"serve", "--listen", "127.0.0.1:" + strconv.Itoa(gport), "--demo"}
	if model != "" {
		args = append(args, "--models", model, "--default-model", model)
	}
	srv := exec.Command(self, append(args, extra...)...)
	srv.Env = append(os.Environ(), fmt.Sprintf("EARSHOT_REDIS_URL=redis://127.0.0.1:%d/0", rport),
		"EARSHOT_DATA_DIR="+filepath.Join(dir, "data"))
	srv.Stdout, srv.Stderr = logf, logf
	if err = srv.Start(); err != nil {
		stop()
		return "", 0, nil, err
	}
	srvExited := exited(srv)
	procs, waits = append(procs, srv), append(waits, srvExited)
	// serveExited is the error for serve's exit: errPortTaken when its address was
	// taken, else its log.
	serveExited := func() error {
		out, _ := os.ReadFile(logPath)
		if strings.Contains(string(out), "address already in use") {
			return fmt.Errorf("%w: earshot serve on port %d", errPortTaken, gport)
		}
		return fmt.Errorf("earshot serve exited before it was ready:\n%s", out)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", gport)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case <-redisExited:
			out, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			stop()
			if strings.Contains(string(out), "already in use") {
				return "", 0, nil, fmt.Errorf("%w: redis-server on port %d", errPortTaken, rport)
			}
			return "", 0, nil, fmt.Errorf("the bench's redis-server on port %d exited:\n%s", rport, out)
		case <-srvExited:
			err := serveExited()
			stop()
			return "", 0, nil, err
		default:
		}
		resp, herr := http.Get(base + "/readyz")
		if herr == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			out, _ := os.ReadFile(logPath)
			stop()
			return "", 0, nil, fmt.Errorf("earshot serve not ready on %s within 2 minutes:\n%s", base, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Ready, but whose /readyz answered? serve binds its address before anything else,
	// so had another process held it, serve would have exited by now.
	select {
	case <-srvExited:
		err := serveExited()
		stop()
		return "", 0, nil, err
	case <-time.After(300 * time.Millisecond):
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", rport)})
	defer rdb.Close()
	if _, err = billing.NewStore(rdb, billing.DefaultPlans(), nil).CreateTenant(ctx, "bench", "team"); err == nil {
		_, *key, err = gateway.NewKeyStore(rdb).Create(ctx, "bench")
	}
	if err != nil {
		stop()
		return "", 0, nil, fmt.Errorf("bench tenant: %w", err)
	}
	fmt.Fprintf(e.stderr, "bench: earshot serve (pid %d) on %s, redis on port %d\n", srv.Process.Pid, base, rport)
	return fmt.Sprintf("ws://127.0.0.1:%d/v1/listen", gport), srv.Process.Pid, stop, nil
}

// exited is closed once c's process has exited; it waits for it (the one Wait of c).
func exited(c *exec.Cmd) <-chan struct{} {
	ch := make(chan struct{})
	go func() { _ = c.Wait(); close(ch) }()
	return ch
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
