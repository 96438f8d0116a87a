package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"
)

// WritePeerTable writes dir/peers.md for `make bench-peers`: for each server (a
// subdirectory of dir) and each level, the median over its runs (dir/<server>/run*/
// bench.json) of WER, first text p50 / p95, final p95, partial p95, CPU %, peak RSS,
// errors and streams without a final, and the knee; with the machine, the date and
// command. It returns the file's path.
func WritePeerTable(dir, command string) (string, error) {
	servers, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Peer comparison (`make bench-peers`), %s UTC, on %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04"), machine())
	if command != "" {
		fmt.Fprintf(&b, "Command: `%s`\n\n", command)
	}
	b.WriteString("| server | streams | runs | WER | first text p50 / p95 ms | final p95 ms | partial p95 ms | CPU % (of one core) | peak RSS MB | errors / streams without a final | knee (streams) |\n")
	b.WriteString("|---|---:|---:|---:|---|---:|---:|---:|---:|---|---:|\n")
	var targets []string
	rows := 0
	kneeP, kneeF := 2*time.Second, time.Second // the bench's defaults
	for _, s := range servers {
		if !s.IsDir() {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(dir, s.Name(), "run*", "bench.json"))
		sort.Strings(files)
		var reps []*Report
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return "", err
			}
			var r Report
			if err := json.Unmarshal(data, &r); err != nil {
				return "", fmt.Errorf("%s: %w", f, err)
			}
			reps = append(reps, &r)
		}
		if len(reps) == 0 {
			continue
		}
		targets = append(targets, fmt.Sprintf("%s: %s", s.Name(), reps[0].Target))
		var knees []float64
		levels := map[int][]Level{}
		for _, r := range reps {
			// The script runs every level whatever its latency (so that every server
			// has a row per level); the knee is judged here with the bench's defaults.
			knees = append(knees, float64(kneeOf(r.Levels, kneeP, kneeF)))
			for _, l := range r.Levels {
				levels[l.Streams] = append(levels[l.Streams], l)
			}
		}
		ns := make([]int, 0, len(levels))
		for n := range levels {
			ns = append(ns, n)
		}
		slices.Sort(ns)
		for _, n := range ns {
			ls := levels[n]
			med := func(f func(Level) float64) float64 {
				v := make([]float64, len(ls))
				for i, l := range ls {
					v[i] = f(l)
				}
				return median(v)
			}
			cpu := med(func(l Level) float64 {
				var c float64
				for _, p := range l.Procs {
					c += p.CPUPercent
				}
				return c
			})
			rss := med(func(l Level) float64 {
				var m float64
				for _, p := range l.Procs {
					m += p.PeakRSSMB
				}
				return m
			})
			missing := med(func(l Level) float64 {
				k := 0
				for _, s := range l.PerStream {
					if s.Finals == 0 {
						k++
					}
				}
				return float64(k)
			})
			fmt.Fprintf(&b, "| %s | %d | %d | %.1f%% | %.0f / %.0f | %.0f | %.0f | %.0f | %.0f | %g / %g | %g |\n",
				s.Name(), n, len(ls), 100*med(func(l Level) float64 { return l.WER }),
				med(func(l Level) float64 { return l.FirstMs.P50 }), med(func(l Level) float64 { return l.FirstMs.P95 }),
				med(func(l Level) float64 { return l.FinalMs.P95 }), med(func(l Level) float64 { return l.PartialMs.P95 }),
				cpu, rss, med(func(l Level) float64 { return float64(l.Errors) }), missing, median(knees))
			rows++
		}
	}
	if rows == 0 {
		return "", fmt.Errorf("%s: no <server>/run*/bench.json", dir)
	}
	b.WriteString("\nEach figure is the median over the runs of that server and level (a level is missing from a run that stopped before it). ")
	b.WriteString("Definitions as in bench.md (internal/bench/report.go): first text from the start of an utterance, final from its end (the end of speech), partial from the end of the audio the partial covers; ")
	b.WriteString("WER over all finals of a stream against the references; CPU % and peak RSS summed over the measured server processes; knee: most streams under partial p95 ≤ ")
	fmt.Fprintf(&b, "%d ms, final p95 ≤ %d ms, no errors, partials, and a final on every stream. ", kneeP.Milliseconds(), kneeF.Milliseconds())
	b.WriteString("How each peer's messages map onto partials and finals: internal/bench/peers.go.\n\nTargets: ")
	b.WriteString(strings.Join(targets, "; "))
	b.WriteString(".\n")
	path := filepath.Join(dir, "peers.md")
	return path, os.WriteFile(path, []byte(b.String()), 0o644)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// machine is "N cores, CPU model" from /proc/cpuinfo.
func machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d cores (nproc), %s", runtime.NumCPU(), model)
}

// kneeOf is the most streams of levels (ascending) before the first level past the
// knee by Run's rule (Level.overKnee) or with a stream that got no final; 0 when the
// first level already is.
func kneeOf(levels []Level, partial, final time.Duration) int {
	knee := 0
	for _, l := range levels {
		missing := slices.ContainsFunc(l.PerStream, func(s StreamResult) bool { return s.Finals == 0 })
		if l.overKnee(partial, final) != "" || missing {
			break
		}
		knee = l.Streams
	}
	return knee
}
