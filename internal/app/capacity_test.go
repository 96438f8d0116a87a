package app

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/earshot-dev/earshot/internal/config"
	"github.com/earshot-dev/earshot/models"
)

// kn is a knee measured on this machine: model, threads, slots, streams.
type kn = struct {
	model                   string
	threads, slots, streams int
}

// kneeDir writes knees measured on this machine into a capacity file in a new
// directory and returns the directory.
func kneeDir(t *testing.T, knees ...kn) string {
	t.Helper()
	if models.CPUName() == "" {
		t.Skip("this machine's /proc/cpuinfo names no CPU: no knee can be keyed to it")
	}
	dir := t.TempDir()
	for _, kn := range knees {
		k := models.KneeOf(models.HostKey(kn.model, false, kn.threads, kn.slots))
		k.Streams, k.RuleFinalMs, k.Date = kn.streams, 1000, "2026-12-05T17:00:00Z"
		if err := models.SaveKnee(filepath.Join(dir, models.KneeFile), k); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func plan(t config.Transcriber, dir string) (capacityPlan, string) {
	var buf bytes.Buffer
	return planCapacity(t, dir, runtime.NumCPU(), slog.New(slog.NewTextHandler(&buf, nil))), buf.String()
}

// TestPlanCapacitySessions: --max-sessions wins; else a model takes the knee measured on
// this machine with the worker's threads and slots; else the default, with the log
// saying why and what to run.
func TestPlanCapacitySessions(t *testing.T) {
	defSlots := (&config.Transcriber{}).SlotsFor(runtime.NumCPU())
	def := models.DefaultMaxSessions(runtime.NumCPU(), false) // 2 per core, at least 4
	dir := kneeDir(t, kn{"tiny.en", 2, defSlots, 7}, kn{"base", 1, defSlots, 3})
	tr := config.Transcriber{Models: []string{"tiny.en", "base", "tiny.en-q8_0"}, Threads: 2}
	p, log := plan(tr, dir)
	// tiny.en: measured with 2 threads, as this worker runs. base: measured with 1
	// thread, so not this worker's knee. q8_0: never measured.
	if p.sessions["tiny.en"] != 7 || p.sessions["base"] != def || p.sessions["tiny.en-q8_0"] != def {
		t.Errorf("sessions %v, want tiny.en 7 and the default for the others", p.sessions)
	}
	if len(p.shared) != 1 || p.shared[0] != "tiny.en" {
		t.Errorf("shared %v, want tiny.en alone (the only knee)", p.shared)
	}
	for _, want := range []string{"max sessions from the knee measured on this machine", "1 knee(s) of it in the capacity file were measured on another CPU or with other threads",
		"no knee measured on this machine for it", "earshot bench --serve --model tiny.en-q8_0 --threads 2 --slots ",
		"2 per core on " + strconv.Itoa(runtime.NumCPU()) + " cores, at least 4"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	// --max-sessions holds for every model.
	tr.MaxSessions = 9
	if p, _ = plan(tr, dir); p.sessions["tiny.en"] != 9 || p.sessions["base"] != 9 || len(p.shared) != 0 {
		t.Errorf("--max-sessions 9: %v, shared %v", p.sessions, p.shared)
	}
	// --capacity-file elsewhere: tiny.en's knee is not there.
	tr.MaxSessions = 0
	tr.CapacityFile = filepath.Join(dir, "other.json")
	if p, _ = plan(tr, dir); p.sessions["tiny.en"] != def {
		t.Errorf("another capacity file: %v", p.sessions)
	}
	// A damaged file: the defaults, and a warning naming the file.
	if err := os.WriteFile(tr.CapacityFile, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, log = plan(tr, dir)
	if p.sessions["tiny.en"] != def || !strings.Contains(log, "capacity file ignored") || !strings.Contains(log, tr.CapacityFile) {
		t.Errorf("damaged file: %v\n%s", p.sessions, log)
	}
	// A knee from an older build, which timed finals from the endpoint (a looser rule):
	// the default, and the log says why.
	old := models.KneeOf(models.HostKey("tiny.en", false, 2, defSlots))
	old.Streams, old.RuleFinalMs, old.Date, old.FinalFrom = 7, 1000, "2026-12-05T17:00:00Z", ""
	tr.CapacityFile = filepath.Join(dir, "old.json")
	if err := models.SaveKnee(tr.CapacityFile, old); err != nil {
		t.Fatal(err)
	}
	p, log = plan(tr, dir)
	if p.sessions["tiny.en"] != def || !strings.Contains(log, "measured by an older earshot, which timed finals from the endpoint") {
		t.Errorf("a knee timed from the endpoint: %v\n%s", p.sessions, log)
	}
	// On the GPU nothing was measured: 4, whatever the cores.
	gpu := config.Transcriber{Models: []string{"tiny.en"}, Threads: 2, GPU: true}
	if p, log = plan(gpu, t.TempDir()); p.sessions["tiny.en"] != models.DefaultGPUSessions || !strings.Contains(log, "on the GPU (not measured)") {
		t.Errorf("GPU: %v, want %d\n%s", p.sessions, models.DefaultGPUSessions, log)
	}
}

// TestPlanCapacityShape: without --threads and --slots a worker decodes with the
// threads and slots whose knee for its first model was measured highest on this
// machine, when that beats the default shape's; --threads or --slots keep theirs.
func TestPlanCapacityShape(t *testing.T) {
	cores := runtime.NumCPU()
	defSlots := (&config.Transcriber{}).SlotsFor(cores)
	def := models.DefaultMaxSessions(cores, false)
	tr := config.Transcriber{Models: []string{"tiny.en", "base"}}
	for name, tc := range map[string]struct {
		knees                   []kn
		threads, slots, streams int // want
	}{
		"nothing measured":                  {nil, config.DefaultThreads, defSlots, def},
		"one thread a decode":               {[]kn{{"tiny.en", 2, defSlots, 1}, {"tiny.en", 1, defSlots, 2}}, 1, defSlots, 2},
		"a tie keeps the default":           {[]kn{{"tiny.en", 2, defSlots, 2}, {"tiny.en", 1, defSlots, 2}}, config.DefaultThreads, defSlots, 2},
		"no better than unmeasured default": {[]kn{{"tiny.en", 1, defSlots, 0}}, config.DefaultThreads, defSlots, def},
		"another model's knee":              {[]kn{{"base", 1, defSlots, 3}}, config.DefaultThreads, defSlots, def},
		"oversubscribed shape":              {[]kn{{"tiny.en", 4, cores, 9}}, config.DefaultThreads, defSlots, def},
	} {
		p, log := plan(tr, kneeDir(t, tc.knees...))
		if p.threads != tc.threads || p.slots != tc.slots || p.sessions["tiny.en"] != tc.streams {
			t.Errorf("%s: %d threads × %d slots, %d sessions; want %d × %d, %d\n%s", name, p.threads, p.slots, p.sessions["tiny.en"], tc.threads, tc.slots, tc.streams, log)
		}
		if p.threads != config.DefaultThreads && !strings.Contains(log, "threads and slots from the knees measured on this machine") {
			t.Errorf("%s: the log does not say why:\n%s", name, log)
		}
	}
	// --threads or --slots set: the knees do not change them.
	dir := kneeDir(t, kn{"tiny.en", 1, defSlots, 5})
	explicit := tr
	explicit.Threads = 2
	if p, _ := plan(explicit, dir); p.threads != 2 || p.slots != defSlots {
		t.Errorf("--threads 2: %d × %d", p.threads, p.slots)
	}
	explicit = tr
	explicit.Slots = 1
	if p, _ := plan(explicit, dir); p.threads != config.DefaultThreads || p.slots != 1 {
		t.Errorf("--slots 1: %d × %d", p.threads, p.slots)
	}
}
