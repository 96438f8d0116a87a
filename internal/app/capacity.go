package app

import (
	"fmt"
	"log/slog"

	"github.com/earshot-dev/earshot/internal/config"
	"github.com/earshot-dev/earshot/models"
)

// capacityPlan is how a worker decodes and how many live streams it admits.
type capacityPlan struct {
	threads, slots int
	sessions       map[string]int // per model
	// shared are the models whose sessions are knees measured on this machine: they
	// share it (transcriber.PoolConfig.SharedModels).
	shared []string
}

// planCapacity resolves t's threads, slots and sessions per model from the knees
// `earshot bench --serve` measured on this machine (the capacity file), logging every
// choice with its reason and what to run to measure it. A capacity file that cannot be
// read is logged and ignored: the defaults hold.
//
//   - Threads and slots: --threads when set (slots: --slots, else config's SlotsFor: one
//     per core on the CPU).
//     Otherwise, with --slots 0, the shape whose knee for the first model is the
//     highest, when it beats config.DefaultThreads' (ties keep the default), else
//     config.DefaultThreads.
//   - Sessions: --max-sessions, when set, for every model. Otherwise each model's knee
//     measured with these threads and slots (at least 1), else models.DefaultMaxSessions:
//     2 per core on the CPU (at least 4), 4 on the GPU.
//     Models with knees share the machine: a stream of one with knee K takes 1/K of it.
func planCapacity(t config.Transcriber, modelDir string, cores int, log *slog.Logger) capacityPlan {
	path := models.KneeFilePath(t.CapacityFile, modelDir)
	var knees []models.Knee
	if t.MaxSessions == 0 || t.Threads == 0 {
		var err error
		if knees, err = models.LoadKnees(path); err != nil {
			log.Warn("capacity file ignored: the default threads, slots and sessions hold", "err", err)
		}
	}
	p := capacityPlan{threads: t.Threads, slots: t.Slots, sessions: map[string]int{}}
	if p.threads == 0 {
		p.threads = config.DefaultThreads
		if t.Slots == 0 && len(t.Models) > 0 {
			p.threads, p.slots = bestShape(knees, t.Models[0], t.GPU, cores, path, log)
		}
	}
	if p.slots == 0 {
		p.slots = (&config.Transcriber{Threads: p.threads, GPU: t.GPU}).SlotsFor(cores)
	}
	for _, m := range t.Models {
		if t.MaxSessions > 0 {
			p.sessions[m] = t.MaxSessions
			continue
		}
		if k, ok := models.FindKnee(knees, models.HostKey(m, t.GPU, p.threads, p.slots)); ok {
			p.sessions[m] = k.Sessions()
			p.shared = append(p.shared, m)
			log.Info("max sessions from the knee measured on this machine", "model", m, "max_sessions", p.sessions[m], "knee", k.String(), "file", path)
			if k.Streams == 0 {
				log.Warn("this machine kept not even one stream of the model under the benchmark's rule: it admits one, and its finals may lag", "model", m)
			}
			continue
		}
		p.sessions[m] = models.DefaultMaxSessions(cores, t.GPU)
		other, stale := 0, 0
		for _, k := range knees {
			switch {
			case k.Model == m && !k.Current():
				stale++
			case k.Model == m:
				other++
			}
		}
		why := "no knee measured on this machine for it"
		switch {
		case stale > 0:
			why = fmt.Sprintf("%d knee(s) of it in the capacity file were measured by an older earshot, which timed finals from the endpoint instead of the speech end", stale)
		case other > 0:
			why = fmt.Sprintf("%d knee(s) of it in the capacity file were measured on another CPU or with other threads, slots or backend", other)
		}
		log.Info("max sessions: the default", "model", m, "max_sessions", p.sessions[m], "default", defaultSessionsRule(cores, t.GPU), "why", why,
			"measure", fmt.Sprintf("earshot bench --serve --model %s --threads %d --slots %d (writes %s), or set --max-sessions", m, p.threads, p.slots, path))
	}
	if len(p.shared) > 1 {
		log.Info("models with measured knees share this machine: a stream of a model whose knee is K takes 1/K of it", "models", p.shared)
	}
	return p
}

// defaultSessionsRule says how models.DefaultMaxSessions came to its number, for the log.
func defaultSessionsRule(cores int, gpu bool) string {
	if gpu {
		return fmt.Sprintf("%d on the GPU (not measured)", models.DefaultGPUSessions)
	}
	return fmt.Sprintf("%d per core on %d cores, at least %d", models.DefaultSessionsPerCore, cores, models.MinDefaultSessions)
}

// bestShape picks threads and slots for a worker whose first model is model: those of
// its highest knee on this machine, when higher than the default shape's (0 when that
// was not measured), else the default shape (slots 0: config's SlotsFor).
func bestShape(knees []models.Knee, model string, gpu bool, cores int, path string, log *slog.Logger) (threads, slots int) {
	defSlots := (&config.Transcriber{Threads: config.DefaultThreads, GPU: gpu}).SlotsFor(cores)
	def, haveDef := models.FindKnee(knees, models.HostKey(model, gpu, config.DefaultThreads, defSlots))
	var best models.Knee
	found := false
	for _, k := range models.KneesHere(knees, model) {
		if k.GPU != gpu || k.Threads*k.Slots > cores*2 {
			continue // another backend, or a shape this machine refuses
		}
		if !found || k.Streams > best.Streams {
			best, found = k, true
		}
	}
	if !found || best.Streams <= def.Streams { // def.Streams is 0 when not measured
		return config.DefaultThreads, 0
	}
	log.Info("threads and slots from the knees measured on this machine", "model", model, "threads", best.Threads, "slots", best.Slots,
		"knee", best.String(), "default_shape", fmt.Sprintf("%d thread(s) × %d slot(s): %s", config.DefaultThreads, defSlots, kneeOrNone(def, haveDef)), "file", path)
	return best.Threads, best.Slots
}

func kneeOrNone(k models.Knee, ok bool) string {
	if !ok {
		return "not measured"
	}
	return fmt.Sprintf("%d stream(s)", k.Streams)
}
