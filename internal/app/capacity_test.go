package app

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/earshot-dev/earshot/internal/config"
	"github.com/earshot-dev/earshot/models"
)

// TestSessionsPerModel: --max-sessions wins; else a model takes the knee measured on
// this machine with the worker's threads and slots; else the default, with the log
// saying why and what to run.
func TestSessionsPerModel(t *testing.T) {
	if models.CPUName() == "" {
		t.Skip("this machine's /proc/cpuinfo names no CPU: no knee can be keyed to it")
	}
	dir := t.TempDir()
	knee := func(model string, threads, streams int) models.Knee {
		k := models.KneeOf(models.HostKey(model, false, threads, 1))
		k.Streams, k.RuleFinalMs, k.Date = streams, 1000, "2026-12-05T17:00:00Z"
		return k
	}
	path := filepath.Join(dir, models.KneeFile)
	for _, k := range []models.Knee{knee("tiny.en", 2, 7), knee("base", 1, 3)} {
		if err := models.SaveKnee(path, k); err != nil {
			t.Fatal(err)
		}
	}
	run := func(t config.Transcriber) (map[string]int, string) {
		var buf bytes.Buffer
		return sessionsPerModel(t, dir, 1, slog.New(slog.NewTextHandler(&buf, nil))), buf.String()
	}
	tr := config.Transcriber{Models: []string{"tiny.en", "base", "tiny.en-q8_0"}, Threads: 2}
	got, log := run(tr)
	// tiny.en: measured with 2 threads × 1 slot, as this worker runs. base: measured
	// with 1 thread, so not this worker's knee. q8_0: never measured.
	if got["tiny.en"] != 7 || got["base"] != models.DefaultMaxSessions || got["tiny.en-q8_0"] != models.DefaultMaxSessions {
		t.Errorf("sessions %v, want tiny.en 7 and the default for the others", got)
	}
	for _, want := range []string{"max sessions from the knee measured on this machine", "1 knee(s) of it in the capacity file were measured on another CPU or with other threads",
		"no knee measured on this machine for it", "earshot bench --serve --model tiny.en-q8_0 --threads 2 --slots 1"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	// --max-sessions holds for every model.
	tr.MaxSessions = 9
	if got, _ = run(tr); got["tiny.en"] != 9 || got["base"] != 9 {
		t.Errorf("--max-sessions 9: %v", got)
	}
	// --capacity-file elsewhere: tiny.en's knee is not there.
	tr.MaxSessions = 0
	tr.CapacityFile = filepath.Join(dir, "other.json")
	if got, _ = run(tr); got["tiny.en"] != models.DefaultMaxSessions {
		t.Errorf("another capacity file: %v", got)
	}
	// A damaged file: the default, and a warning naming the file.
	if err := os.WriteFile(tr.CapacityFile, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, log = run(tr)
	if got["tiny.en"] != models.DefaultMaxSessions || !strings.Contains(log, "capacity file ignored") || !strings.Contains(log, tr.CapacityFile) {
		t.Errorf("damaged file: %v\n%s", got, log)
	}
}
