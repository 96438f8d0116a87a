package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/config"
	"github.com/earshot-dev/earshot/models"
	"github.com/earshot-dev/earshot/transcriber"
	"github.com/earshot-dev/earshot/transcriber/smartturn"
	"github.com/earshot-dev/earshot/transcriber/worker"
)

// startWorker loads the models and runs a transcriber worker (--engine) on the bus.
func (p *process) startWorker() error {
	w, err := newWorker(p.nc, p.o, p.ops, p.log)
	if err != nil {
		return err
	}
	p.g.Go(func() error { return w.Run(p.gctx) })
	return nil
}

func newWorker(nc *nats.Conn, o Options, ops *Ops, log *slog.Logger) (*worker.Worker, error) {
	t := o.Transcriber
	cores := runtime.NumCPU()
	if err := t.Validate(cores); err != nil {
		return nil, err
	}
	if t.Engine == "standin" {
		return newStandInWorker(nc, o, ops, log)
	}
	plan := planCapacity(t, o.Common.ModelDir, cores, log)
	t.Threads, t.Slots = plan.threads, plan.slots
	if err := t.Validate(cores); err != nil {
		return nil, fmt.Errorf("%w (threads and slots from the capacity file %s: measure again or delete it)", err, models.KneeFilePath(t.CapacityFile, o.Common.ModelDir))
	}
	loaded := map[string]transcriber.Model{}
	rss0 := transcriber.RSSBytes()
	for _, name := range t.Models {
		card, err := models.Lookup(name)
		if err == nil && card.Synthetic && !o.Gateway.AllowSynthetic {
			return nil, fmt.Errorf("model %s has random weights: start with --allow-synthetic-models to serve it (benchmarks only)", name)
		}
		path, err := models.Resolve(o.Common.ModelDir, name)
		if err != nil {
			return nil, err
		}
		if info, err := models.ReadGGMLInfo(path); err == nil && info.Synthetic && !o.Gateway.AllowSynthetic {
			return nil, fmt.Errorf("%s is a synthetic (random-weight) model: start with --allow-synthetic-models to serve it", path)
		}
		m, err := transcriber.LoadWhisper(path, transcriber.LoadOptions{Name: name, Threads: t.Threads, UseGPU: t.GPU,
			EstimateWordTimes: t.WordTimes == "estimate", Log: log})
		if err != nil {
			return nil, err
		}
		loaded[name] = m
	}
	vadPath, err := models.Resolve(o.Common.ModelDir, strings.TrimSuffix(strings.TrimPrefix(t.VADModel, "ggml-"), ".bin"))
	if err != nil {
		if _, serr := os.Stat(t.VADModel); serr == nil {
			vadPath = t.VADModel
		} else {
			return nil, fmt.Errorf("VAD model: %w", err)
		}
	}
	id := t.WorkerID
	if id == "" {
		host, _ := os.Hostname()
		id = fmt.Sprintf("%s-%d", strings.ReplaceAll(host, ".", "-"), os.Getpid())
	}
	turn, err := loadTurnModel(t.TurnModel, t.ORTLib, log)
	if err != nil {
		return nil, err
	}
	pool, err := transcriber.NewPool(transcriber.PoolConfig{
		TurnModel:        turn,
		Models:           loaded,
		NewVAD:           func() (transcriber.VAD, error) { return transcriber.NewSileroVAD(vadPath) },
		Worker:           bus.WorkerID(id),
		Slots:            t.Slots,
		ThreadsPerDecode: t.Threads,
		ModelSessions:    plan.sessions,
		SharedModels:     plan.shared,
		Step:             t.Step,
		Warm:             true,
		Log:              log.With("component", "transcriber"),
	})
	if err != nil {
		return nil, err
	}
	if err := checkModelMemory(pool, loaded, rss0, t, log); err != nil {
		return nil, err
	}
	ops.AddCheck("models", func(context.Context) error {
		if len(loaded) == 0 {
			return errors.New("no model loaded")
		}
		return nil
	})
	return worker.New(nc, pool, worker.Config{
		ID: bus.WorkerID(id), Log: log.With("component", "worker"), Registerer: ops.Registry,
		DrainTimeout: o.Common.DrainTimeout,
	})
}

// loadTurnModel opens the end-of-turn model of turn-taking sessions (--turn-model): auto
// uses Smart Turn v3.2 when `make turn-model` installed it and says so when it did not
// (turns then end after 600 ms of silence, as with none); a path must load.
func loadTurnModel(spec, lib string, log *slog.Logger) (transcriber.TurnModel, error) {
	switch spec {
	case "none":
		log.Info("end of turn: VAD only (--turn-model none): a turn ends after 600 ms of silence")
		return nil, nil
	case "", "auto":
		p := smartturn.DefaultModelPath()
		if _, err := os.Stat(p); err != nil {
			log.Warn("end of turn: Smart Turn v3.2 is not installed, /v2/listen turns end after 600 ms of silence (VAD only); run `make turn-model` or scripts/smartturn.sh", "path", p)
			return nil, nil
		}
		spec = p
	}
	m, err := smartturn.Open(spec, smartturn.Options{LibPath: lib})
	if err != nil {
		return nil, fmt.Errorf("--turn-model %s: %w (install it with `make turn-model`, or start with --turn-model none for VAD-only turns)", spec, err)
	}
	log.Info("end of turn: Smart Turn v3.2", "path", spec)
	return m, nil
}

// checkModelMemory holds the worker to --model-memory-mb: with a budget it waits for the
// pool's warm-up (every model's weights and one decoder per model and slot in memory)
// and refuses to start when the process grew by more than the budget since before the
// models loaded, naming what it measured. Without one it returns at once.
func checkModelMemory(pool *transcriber.Pool, loaded map[string]transcriber.Model, rss0 int64, t config.Transcriber, log *slog.Logger) error {
	if t.ModelMemMB == 0 || rss0 == 0 {
		return nil
	}
	select {
	case <-pool.Warmed():
	case <-time.After(5 * time.Minute):
		pool.Close()
		return fmt.Errorf("--model-memory-mb: the models did not warm up within 5 minutes")
	}
	used := (transcriber.RSSBytes() - rss0) >> 20
	log.Info("model memory", "models", t.Models, "slots", t.SlotsFor(runtime.NumCPU()), "used_mb", used, "budget_mb", t.ModelMemMB)
	if used <= int64(t.ModelMemMB) {
		return nil
	}
	pool.Close()
	for _, m := range loaded {
		_ = m.Close()
	}
	return fmt.Errorf("--models %s take %d MB once loaded and warmed up on %d decode slots, more than --model-memory-mb %d: "+
		"load fewer or smaller models (e.g. base-q8_0 for base), use fewer --slots, or raise the budget",
		strings.Join(t.Models, ","), used, t.SlotsFor(runtime.NumCPU()), t.ModelMemMB)
}

// newStandInWorker is a worker whose sessions are transcriber.StandIn: no model, no
// decoding, words at real-time pace. For transport and scale benchmarks only.
func newStandInWorker(nc *nats.Conn, o Options, ops *Ops, log *slog.Logger) (*worker.Worker, error) {
	t := o.Transcriber
	id := t.WorkerID
	if id == "" {
		host, _ := os.Hostname()
		id = fmt.Sprintf("%s-%d", strings.ReplaceAll(host, ".", "-"), os.Getpid())
	}
	n := t.MaxSessions
	if n == 0 {
		n = models.DefaultMaxSessions(runtime.NumCPU(), t.GPU)
	}
	log.Warn("stand-in engine: sessions get placeholder words at real-time pace, nothing is recognised (benchmarks only)",
		"models", t.Models, "max_sessions", n)
	return worker.New(nc, transcriber.NewStandIn(t.Models, n), worker.Config{
		ID: bus.WorkerID(id), Log: log.With("component", "worker"), Registerer: ops.Registry,
		DrainTimeout: o.Common.DrainTimeout,
	})
}
