package models

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// KneeFile is the name, in the model directory, of the knees `earshot bench --serve`
// measured on this machine (`earshot serve --capacity-file` names another).
const KneeFile = "capacity.json"

// Without --max-sessions or a knee measured on this machine, a worker admits
// DefaultMaxSessions live streams per model: on the CPU DefaultSessionsPerCore per core,
// at least MinDefaultSessions; on the GPU DefaultGPUSessions.
const (
	// DefaultSessionsPerCore is the knee per core of the 2-core development Xeon with
	// the old 1 slot × 2 threads shape, 4 streams (BENCHMARKS.md, Density); the 2-core
	// Ice Lake VM, one slot per core with elastic threads, held at least 16 (8 per core).
	// A 2-core AVX2-only EPYC held 1 stream of tiny.en-q8_0 (2026-12-05): a CPU that slow
	// needs its own knee (planCapacity logs the command that measures it).
	DefaultSessionsPerCore = 2
	// MinDefaultSessions is the least a CPU worker admits by default, whatever its cores.
	MinDefaultSessions = 4
	// DefaultGPUSessions is the GPU worker's default: no GPU knee was measured yet.
	DefaultGPUSessions = 4
)

// DefaultMaxSessions is the live sessions per model a worker with cores CPUs admits when
// neither --max-sessions nor a knee measured on this machine says otherwise (measure it
// with `make bench` or `earshot bench --serve --model M`).
func DefaultMaxSessions(cores int, gpu bool) int {
	if gpu {
		return DefaultGPUSessions
	}
	return max(MinDefaultSessions, DefaultSessionsPerCore*cores)
}

// maxKneeFile bounds what LoadKnees reads: a capacity file holds a few records.
const maxKneeFile = 1 << 20

// maxKnees bounds the records SaveKnee keeps (the newest win).
const maxKnees = 64

// Knee is one measured knee: the most concurrent real-time streams of Model that a
// worker with Threads × Slots on this CPU kept under the benchmark's rule (final p95 ≤
// RuleFinalMs, partial p95 ≤ RulePartialMs, no errors), streamed through /v1/listen by
// `earshot bench --serve`.
type Knee struct {
	Model   string `json:"model"`
	CPU     string `json:"cpu"`   // CPUName: the CPU's model name
	Cores   int    `json:"cores"` // logical CPUs the process saw
	Arch    string `json:"arch"`  // GOARCH
	GPU     bool   `json:"gpu"`   // decoded on the GPU
	Threads int    `json:"threads"`
	Slots   int    `json:"slots"`
	// Streams is the knee: 0 when even one stream was over the rule.
	Streams int `json:"streams"`
	// AtLeast: the largest level tried was still under the rule, so the knee may be
	// higher.
	AtLeast bool `json:"at_least,omitempty"`
	// Over says why the level after the knee was over the rule.
	Over string `json:"over,omitempty"`
	// FinalP95Ms is the final latency p95 at the knee (0 when Streams is 0).
	FinalP95Ms  float64 `json:"final_p95_ms"`
	RuleFinalMs float64 `json:"rule_final_p95_ms"`
	// FinalFrom is where the sweep timed finals from: KneeFromSpeechEnd. Records
	// without it come from builds that timed them from the endpoint, after the
	// endpointing silence, a looser rule: FindKnee skips them.
	FinalFrom     string  `json:"final_from,omitempty"`
	RulePartialMs float64 `json:"rule_partial_p95_ms"`
	Levels        []int   `json:"levels"`     // the levels tried
	DurationS     float64 `json:"duration_s"` // audio per stream per level
	Language      string  `json:"language,omitempty"`
	Date          string  `json:"date"` // UTC, RFC 3339
	Command       string  `json:"command"`
}

// KneeKey is what a knee applies to: the same model, CPU, core count, architecture,
// backend, threads per decode and decode slots.
type KneeKey struct {
	Model   string
	CPU     string
	Cores   int
	Arch    string
	GPU     bool
	Threads int
	Slots   int
}

// KneeOf is a knee measured under key with the current rule (finals timed from the
// speech end), with the rest of it to fill in.
func KneeOf(key KneeKey) Knee {
	return Knee{Model: key.Model, CPU: key.CPU, Cores: key.Cores, Arch: key.Arch, GPU: key.GPU, Threads: key.Threads, Slots: key.Slots,
		FinalFrom: KneeFromSpeechEnd}
}

// Key returns the key k was measured under.
func (k Knee) Key() KneeKey {
	return KneeKey{Model: k.Model, CPU: k.CPU, Cores: k.Cores, Arch: k.Arch, GPU: k.GPU, Threads: k.Threads, Slots: k.Slots}
}

// Sessions is the max-sessions a worker takes from k: the knee, at least 1.
func (k Knee) Sessions() int { return max(1, k.Streams) }

// String describes k for a log line.
func (k Knee) String() string {
	on := fmt.Sprintf("on %s, %d cores, %d thread(s) × %d slot(s), measured %s", k.CPU, k.Cores, k.Threads, k.Slots, k.Date)
	if k.Streams == 0 {
		return fmt.Sprintf("not even 1 stream of %s kept final p95 ≤ %.0f ms (%s) %s", k.Model, k.RuleFinalMs, k.Over, on)
	}
	s := fmt.Sprintf("%d streams of %s kept final p95 ≤ %.0f ms (%.0f ms at the knee) %s", k.Streams, k.Model, k.RuleFinalMs, k.FinalP95Ms, on)
	if k.AtLeast {
		s += " (the most tried: it may hold more)"
	} else if k.Over != "" {
		s += "; over at " + k.Over
	}
	return s
}

// KneeFilePath is the capacity file: capacityFile (--capacity-file,
// EARSHOT_CAPACITY_FILE) when set, else KneeFile in modelDir.
func KneeFilePath(capacityFile, modelDir string) string {
	if capacityFile != "" {
		return capacityFile
	}
	return filepath.Join(modelDir, KneeFile)
}

// KneesHere returns the knees of model measured on this machine (its CPU, cores and
// architecture) with the current rule (Knee.Current), whatever their backend, threads
// and slots.
func KneesHere(knees []Knee, model string) []Knee {
	host := HostKey(model, false, 0, 0)
	var here []Knee
	for _, k := range knees {
		if k.Current() && k.Model == model && k.CPU == host.CPU && k.Cores == host.Cores && k.Arch == host.Arch {
			here = append(here, k)
		}
	}
	return here
}

// HostKey is the key of a worker on this machine serving model with threads × slots.
func HostKey(model string, gpu bool, threads, slots int) KneeKey {
	return KneeKey{Model: model, CPU: CPUName(), Cores: runtime.NumCPU(), Arch: runtime.GOARCH, GPU: gpu, Threads: threads, Slots: slots}
}

// CPUName is the CPU's model name from /proc/cpuinfo ("" where there is none).
func CPUName() string { return cpuName(cpuinfoPath) }

var cpuinfoPath = "/proc/cpuinfo"

func cpuName(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 4<<20))
	for sc.Scan() {
		// x86: "model name"; arm64 kernels give "CPU part" lines only, and some "Model".
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model name", "Model", "cpu model":
			if v = strings.TrimSpace(v); v != "" {
				return v
			}
		}
	}
	return ""
}

// ErrBadKneeFile wraps every reason a capacity file is refused.
var ErrBadKneeFile = errors.New("bad capacity file")

type kneeDoc struct {
	Knees []Knee `json:"knees"`
}

// ParseKnees reads a capacity file's contents. Each record must name a model and a
// CPU and have positive cores, threads and slots and a knee between 0 and 100 000.
func ParseKnees(b []byte) ([]Knee, error) {
	if len(b) > maxKneeFile {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrBadKneeFile, len(b), maxKneeFile)
	}
	var doc kneeDoc
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKneeFile, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: more than one JSON value", ErrBadKneeFile)
	}
	for i, k := range doc.Knees {
		if err := k.check(); err != nil {
			return nil, fmt.Errorf("%w: record %d: %v", ErrBadKneeFile, i, err)
		}
	}
	return doc.Knees, nil
}

// check says what k lacks to be a record: a model and a CPU, positive cores, threads and
// slots, and a knee between 0 and 100 000 streams.
func (k Knee) check() error {
	switch {
	case k.Model == "" || k.CPU == "":
		return fmt.Errorf("knee of %q on %q: names no model or CPU", k.Model, k.CPU)
	case k.Cores < 1 || k.Threads < 1 || k.Slots < 1:
		return fmt.Errorf("knee of %s: cores, threads and slots must be at least 1", k.Model)
	case k.Streams < 0 || k.Streams > 100_000:
		return fmt.Errorf("knee of %s: %d streams is out of range", k.Model, k.Streams)
	}
	return nil
}

// LoadKnees reads the capacity file at path; a missing file is no knees and no error.
func LoadKnees(path string) ([]Knee, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKneeFile+1))
	if err != nil {
		return nil, err
	}
	knees, err := ParseKnees(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (measure again with `earshot bench --serve`, or delete it)", path, err)
	}
	return knees, nil
}

// KneeFromSpeechEnd is Knee.FinalFrom of a sweep that timed finals from the speech end.
const KneeFromSpeechEnd = "speech end"

// Current reports whether k was measured with finals timed from the speech end (the
// rule a knee sets defaults by).
func (k Knee) Current() bool { return k.FinalFrom == KneeFromSpeechEnd }

// FindKnee returns the newest of knees measured under key with the current rule
// (Knee.Current).
func FindKnee(knees []Knee, key KneeKey) (Knee, bool) {
	var best Knee
	found := false
	for _, k := range knees {
		if k.Current() && k.Key() == key && (!found || k.Date >= best.Date) {
			best, found = k, true
		}
	}
	return best, found
}

// SaveKnee records k in the capacity file at path, replacing a record with the same key
// and keeping the newest maxKnees. The file is replaced atomically.
func SaveKnee(path string, k Knee) error {
	if err := k.check(); err != nil {
		return err
	}
	old, err := LoadKnees(path)
	if err != nil {
		return err
	}
	knees := []Knee{k}
	for _, o := range old {
		if o.Key() != k.Key() && len(knees) < maxKnees {
			knees = append(knees, o)
		}
	}
	return writeAtomic(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(kneeDoc{Knees: knees})
	}, nil)
}
