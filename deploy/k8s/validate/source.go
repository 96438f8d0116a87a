package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// source is what the deployment files must agree with, read from the Go sources: the
// flags and EARSHOT_* variables of internal/config (a service refuses unknown EARSHOT_*
// variables), the metric names transcriber/ registers, and the default drain timeout.
type source struct {
	flags        map[string]bool            // every flag of every service
	structFlags  map[string]map[string]bool // by config struct: Common, Gateway, Transcriber
	env          map[string]bool
	metrics      map[string]bool
	defaultDrain time.Duration
}

var (
	tagRe    = regexp.MustCompile("flag:\"([a-z0-9-]+)\" env:\"(EARSHOT_[A-Z0-9_]+)\"")
	metricRe = regexp.MustCompile(`Name:\s*"(earshot_[a-z0-9_]+)"`)
	drainRe  = regexp.MustCompile(`DrainTimeout:\s*(\d+)\s*\*\s*time\.Second`)
	structRe = regexp.MustCompile(`(?s)type (Common|Gateway|Transcriber) struct \{(.*?)\n\}`)
	// The config structs each role binds (internal/cli/serve.go runService).
	roleStructs = map[string][]string{
		"gateway":     {"Common", "Gateway"},
		"transcriber": {"Common", "Transcriber"},
		"billing":     {"Common"},
		"serve":       {"Common", "Gateway", "Transcriber"},
	}
)

func readSource(root string) (*source, error) {
	s := &source{flags: map[string]bool{}, env: map[string]bool{}, metrics: map[string]bool{},
		structFlags: map[string]map[string]bool{}}
	cfg, err := filepath.Glob(filepath.Join(root, "internal", "config", "*.go"))
	if err != nil || len(cfg) == 0 {
		return nil, fmt.Errorf("no internal/config/*.go under %s (-root is the repository root)", root)
	}
	for _, f := range cfg {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for _, m := range tagRe.FindAllStringSubmatch(string(b), -1) {
			s.flags[m[1]] = true
			s.env[m[2]] = true
		}
		for _, st := range structRe.FindAllStringSubmatch(string(b), -1) {
			if s.structFlags[st[1]] == nil {
				s.structFlags[st[1]] = map[string]bool{}
			}
			for _, m := range tagRe.FindAllStringSubmatch(st[2], -1) {
				s.structFlags[st[1]][m[1]] = true
			}
		}
		if m := drainRe.FindStringSubmatch(string(b)); m != nil {
			var n int
			fmt.Sscan(m[1], &n)
			s.defaultDrain = time.Duration(n) * time.Second
		}
	}
	tr, _ := filepath.Glob(filepath.Join(root, "transcriber", "*.go"))
	sub, _ := filepath.Glob(filepath.Join(root, "transcriber", "*", "*.go"))
	for _, f := range append(tr, sub...) {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for _, m := range metricRe.FindAllStringSubmatch(string(b), -1) {
			s.metrics[m[1]] = true
		}
	}
	// A transcriber alone also takes --allow-synthetic-models (a Gateway field).
	if s.structFlags["Transcriber"] != nil {
		s.structFlags["Transcriber"]["allow-synthetic-models"] = true
	}
	if len(s.flags) == 0 || len(s.metrics) == 0 || s.defaultDrain == 0 || len(s.structFlags) != 3 {
		return nil, fmt.Errorf("read %d flags, %d metrics, drain %v from the sources: the patterns in source.go need updating",
			len(s.flags), len(s.metrics), s.defaultDrain)
	}
	return s, nil
}

// earshotArgs checks an earshot command line (role, then flags) and returns the value of
// --drain-timeout when given.
func (s *source) earshotArgs(where string, args []string, r *report) (drain string) {
	if len(args) == 0 || roleStructs[args[0]] == nil {
		r.add(where, "earshot command %q: the first argument must be gateway, transcriber, billing or serve", args)
		return ""
	}
	for i := 1; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			continue // a flag's value
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		known := false
		for _, st := range roleStructs[args[0]] {
			known = known || s.structFlags[st][name]
		}
		if !known {
			r.add(where, "earshot %s: unknown flag --%s (not among the %v settings of internal/config)", args[0], name, roleStructs[args[0]])
			continue
		}
		if name == "drain-timeout" {
			if !hasVal && i+1 < len(args) {
				val = args[i+1]
			}
			drain = val
		}
	}
	return drain
}

// envNames checks that every EARSHOT_* name is one Earshot knows.
func (s *source) envNames(where string, names []string, r *report) {
	for _, n := range names {
		if strings.HasPrefix(n, "EARSHOT_") && !s.env[n] {
			r.add(where, "%s is not an Earshot setting (internal/config): the service would refuse to start", n)
		}
	}
}

// drain is a service's drain timeout: the --drain-timeout flag's value when given, else
// EARSHOT_DRAIN_TIMEOUT from env, else the source's default; false (and a finding) when
// the value given does not parse.
func (src *source) drain(where, flag string, env map[string]string, r *report) (time.Duration, bool) {
	if flag == "" {
		flag = env["EARSHOT_DRAIN_TIMEOUT"]
	}
	if flag == "" {
		return src.defaultDrain, true
	}
	d, err := time.ParseDuration(flag)
	if err != nil {
		r.add(where, "drain timeout %q: %v", flag, err)
		return src.defaultDrain, false
	}
	return d, true
}
