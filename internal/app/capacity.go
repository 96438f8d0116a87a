package app

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/earshot-dev/earshot/internal/config"
	"github.com/earshot-dev/earshot/models"
)

// KneeFilePath is the capacity file a worker reads and `earshot bench --serve`
// writes: --capacity-file, else capacity.json in the model directory.
func KneeFilePath(t config.Transcriber, modelDir string) string {
	if t.CapacityFile != "" {
		return t.CapacityFile
	}
	return filepath.Join(modelDir, models.KneeFile)
}

// sessionsPerModel resolves the live sessions each model of t admits. --max-sessions,
// when set, holds for every model. Otherwise each model takes the knee `earshot bench
// --serve` measured on this machine (same CPU, cores, backend, threads and slots), and
// models.DefaultMaxSessions where none was measured. Every choice is logged with its
// reason, and what to run to measure it; a capacity file that cannot be read is
// logged and ignored (the default holds).
func sessionsPerModel(t config.Transcriber, modelDir string, slots int, log *slog.Logger) map[string]int {
	out := map[string]int{}
	if t.MaxSessions > 0 {
		for _, m := range t.Models {
			out[m] = t.MaxSessions
		}
		return out
	}
	path := KneeFilePath(t, modelDir)
	knees, err := models.LoadKnees(path)
	if err != nil {
		log.Warn("capacity file ignored: each model admits the default sessions", "err", err, "max_sessions", models.DefaultMaxSessions)
	}
	for _, m := range t.Models {
		key := models.HostKey(m, t.GPU, t.Threads, slots)
		if k, ok := models.FindKnee(knees, key); ok {
			out[m] = k.Sessions()
			log.Info("max sessions from the knee measured on this machine", "model", m, "max_sessions", out[m], "knee", k.String(), "file", path)
			if k.Streams == 0 {
				log.Warn("this machine kept not even one stream of the model under the benchmark's rule: it admits one, and its finals may lag", "model", m)
			}
			continue
		}
		out[m] = models.DefaultMaxSessions
		other := 0
		for _, k := range knees {
			if k.Model == m {
				other++
			}
		}
		why := "no knee measured on this machine for it"
		if other > 0 {
			why = fmt.Sprintf("%d knee(s) of it in the capacity file were measured on another CPU or with other threads, slots or backend", other)
		}
		log.Info("max sessions: the default", "model", m, "max_sessions", out[m], "why", why,
			"measure", fmt.Sprintf("earshot bench --serve --model %s --threads %d --slots %d (writes %s), or set --max-sessions", m, t.Threads, slots, path))
	}
	return out
}
