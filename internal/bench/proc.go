package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/<pid>/stat (100 on every
// Linux architecture Go supports).
const clockTicks = 100

// ProcStat is one service process over one level.
type ProcStat struct {
	Pid        int     `json:"pid"`
	Name       string  `json:"name"` // command line, shortened
	CPUSec     float64 `json:"cpu_sec"`
	CPUPercent float64 `json:"cpu_percent"` // of one core, averaged over the level
	PeakRSSMB  float64 `json:"peak_rss_mb"` // largest VmRSS sampled during the level
}

// FindPids lists processes whose executable name is name, other than this one.
func FindPids(name string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err == nil && strings.TrimSpace(string(comm)) == name {
			pids = append(pids, pid)
		}
	}
	return pids
}

// cpuTicks is utime+stime of pid (fields 14 and 15 of /proc/<pid>/stat).
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after its ')' are fixed.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return u + s, nil
}

// rssKB is VmRSS of pid in kB.
func rssKB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	parts := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	if len(parts) > 0 {
		parts[0] = filepath.Base(parts[0])
	}
	s := strings.Join(parts, " ")
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return s
}

// procSampler measures pids from start to stop: CPU from the stat counters, peak RSS
// by sampling every interval.
type procSampler struct {
	pids   []int
	t0     time.Time
	ticks0 map[int]int64
	mu     sync.Mutex
	peak   map[int]int64
	stop   chan struct{}
	done   chan struct{}
}

func startProcSampler(pids []int, every time.Duration) *procSampler {
	s := &procSampler{pids: pids, t0: time.Now(), ticks0: map[int]int64{}, peak: map[int]int64{},
		stop: make(chan struct{}), done: make(chan struct{})}
	for _, p := range pids {
		if t, err := cpuTicks(p); err == nil {
			s.ticks0[p] = t
		}
	}
	s.sample()
	go func() {
		defer close(s.done)
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tk.C:
				s.sample()
			}
		}
	}()
	return s
}

func (s *procSampler) sample() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pids {
		if kb, err := rssKB(p); err == nil && kb > s.peak[p] {
			s.peak[p] = kb
		}
	}
}

func (s *procSampler) finish() []ProcStat {
	close(s.stop)
	<-s.done
	s.sample()
	wall := time.Since(s.t0).Seconds()
	var out []ProcStat
	for _, p := range s.pids {
		t0, ok := s.ticks0[p]
		t1, err := cpuTicks(p)
		if !ok || err != nil {
			out = append(out, ProcStat{Pid: p, Name: cmdline(p) + " (exited)"})
			continue
		}
		cpu := float64(t1-t0) / clockTicks
		out = append(out, ProcStat{Pid: p, Name: cmdline(p), CPUSec: cpu, CPUPercent: 100 * cpu / wall,
			PeakRSSMB: float64(s.peak[p]) / 1024})
	}
	return out
}

// GPUStat is what nvidia-smi reported during a level.
type GPUStat struct {
	UtilMeanPct float64 `json:"util_mean_pct"`
	UtilMaxPct  float64 `json:"util_max_pct"`
	MemPeakMiB  float64 `json:"mem_peak_mib"`
	Samples     int     `json:"samples"`
}

// gpuSampler polls nvidia-smi every interval; it records nothing where nvidia-smi is
// missing.
type gpuSampler struct {
	mu     sync.Mutex
	st     GPUStat
	sum    float64
	cancel context.CancelFunc
	done   chan struct{}
}

func startGPUSampler(every time.Duration) *gpuSampler {
	ctx, cancel := context.WithCancel(context.Background())
	g := &gpuSampler{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(g.done)
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			out, err := exec.CommandContext(ctx, "nvidia-smi", "--query-gpu=utilization.gpu,memory.used",
				"--format=csv,noheader,nounits").Output()
			if err != nil {
				return
			}
			line := strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
			f := strings.Split(line, ",")
			if len(f) == 2 {
				u, _ := strconv.ParseFloat(strings.TrimSpace(f[0]), 64)
				m, _ := strconv.ParseFloat(strings.TrimSpace(f[1]), 64)
				g.mu.Lock()
				g.st.Samples++
				g.sum += u
				g.st.UtilMeanPct = g.sum / float64(g.st.Samples)
				g.st.UtilMaxPct = max(g.st.UtilMaxPct, u)
				g.st.MemPeakMiB = max(g.st.MemPeakMiB, m)
				g.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
		}
	}()
	return g
}

func (g *gpuSampler) finish() *GPUStat {
	g.cancel()
	<-g.done
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.st.Samples == 0 {
		return nil
	}
	st := g.st
	return &st
}
