package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// checkCompose loads deploy/compose.yaml with the compose-spec loader (schema validation,
// interpolation, depends_on and volume references) and checks the topology against the
// code: the service counts of the issue, flags and variables Earshot knows, health checks,
// stop grace periods longer than the drain, haproxy pointing at the gateways.
func checkCompose(dir string, src *source, r *report) (int, error) {
	path := filepath.Join(dir, "compose.yaml")
	load := func(env map[string]string) (*types.Project, error) {
		return loader.LoadWithContext(context.Background(), types.ConfigDetails{
			WorkingDir:  dir,
			ConfigFiles: []types.ConfigFile{{Filename: path}},
			Environment: env,
		}, func(o *loader.Options) { o.SetProjectName("earshot", true) })
	}
	// Without the shared token secret the file must refuse to load (gateways must share it).
	if _, err := load(map[string]string{}); err == nil || !strings.Contains(err.Error(), "EARSHOT_TOKEN_SECRET") {
		r.add("compose.yaml", "loads without EARSHOT_TOKEN_SECRET (want a ${EARSHOT_TOKEN_SECRET:?...} guard); err=%v", err)
	}
	p, err := load(map[string]string{"EARSHOT_TOKEN_SECRET": strings.Repeat("s", 64)})
	if err != nil {
		return 0, err
	}
	byRole := map[string][]string{}
	for name, s := range p.Services {
		byRole[composeRole(s)] = append(byRole[composeRole(s)], name)
	}
	for role, want := range map[string]int{"nats": 3, "redis-master": 1, "redis-replica": 1, "sentinel": 3,
		"gateway": 2, "transcriber": 2, "billing": 2, "haproxy": 1} {
		if got := len(byRole[role]); got != want {
			r.add("compose.yaml", "%d %s service(s) %v, want %d", got, role, byRole[role], want)
		}
	}
	names := make([]string, 0, len(p.Services))
	for name := range p.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := p.Services[name]
		where := "compose.yaml service " + name
		if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) == 0 {
			if role := composeRole(s); role != "haproxy" {
				r.add(where, "needs a healthcheck (depends_on waits for it)")
			}
		}
		if !strings.Contains(s.Image, "earshot") {
			continue
		}
		composeEarshot(where, s, p, byRole, src, r)
	}
	checkHAProxy(filepath.Join(dir, "haproxy.cfg"), byRole["gateway"], r)
	return len(p.Services), nil
}

// composeRole names what a service is from its image and command.
func composeRole(s types.ServiceConfig) string {
	cmd := strings.Join(append(append([]string{}, s.Entrypoint...), s.Command...), " ")
	switch {
	case strings.Contains(s.Image, "earshot") && len(s.Command) > 0:
		return s.Command[0]
	case strings.Contains(s.Image, "nats"):
		return "nats"
	case strings.Contains(s.Image, "haproxy"):
		return "haproxy"
	case strings.Contains(cmd, "--sentinel"):
		return "sentinel"
	case strings.Contains(cmd, "--replicaof"):
		return "redis-replica"
	case strings.Contains(s.Image, "redis"):
		return "redis-master"
	}
	return "other"
}

func composeEarshot(where string, s types.ServiceConfig, p *types.Project, byRole map[string][]string, src *source, r *report) {
	drain := src.earshotArgs(where, s.Command, r)
	env := map[string]string{}
	var names []string
	for k, v := range s.Environment {
		names = append(names, k)
		if v != nil {
			env[k] = *v
		}
	}
	sort.Strings(names)
	src.envNames(where, names, r)
	d, _ := src.drain(where, drain, env, r)
	grace := 10 * time.Second // the engine's default
	if s.StopGracePeriod != nil {
		grace = time.Duration(*s.StopGracePeriod)
	}
	if grace < d+5*time.Second {
		r.add(where, "stop_grace_period %v < drain %v + 5s: the engine would SIGKILL mid-drain", grace, d)
	}
	if s.StopSignal != "" && s.StopSignal != "SIGTERM" {
		r.add(where, "stop_signal %s: Earshot drains on SIGTERM", s.StopSignal)
	}
	if ops := env["EARSHOT_OPS_LISTEN"]; strings.HasPrefix(ops, "127.") {
		r.add(where, "EARSHOT_OPS_LISTEN %s is loopback inside the container", ops)
	}
	if s.Command[0] == "gateway" {
		if i := slices.Index(s.Command, "--listen"); i < 0 || i+1 >= len(s.Command) || strings.HasPrefix(s.Command[i+1], "127.") {
			if env["EARSHOT_LISTEN"] == "" || strings.HasPrefix(env["EARSHOT_LISTEN"], "127.") {
				r.add(where, "a gateway in a container must listen on 0.0.0.0 (--listen 0.0.0.0:8080)")
			}
		}
		if len(env["EARSHOT_TOKEN_SECRET"]) < 32 {
			r.add(where, "gateways must share EARSHOT_TOKEN_SECRET (32+ characters)")
		}
	}
	// The cluster the services are pointed at is the one in the file.
	if n := len(byRole["nats"]); env["EARSHOT_JS_REPLICAS"] != fmt.Sprint(n) {
		r.add(where, "EARSHOT_JS_REPLICAS %q, but the file runs %d NATS servers", env["EARSHOT_JS_REPLICAS"], n)
	}
	hostsIn := func(list, role string) {
		var hosts []string
		for _, u := range strings.Split(list, ",") {
			u = strings.TrimPrefix(strings.TrimSpace(u), "nats://")
			hosts = append(hosts, strings.Split(u, ":")[0])
		}
		sort.Strings(hosts)
		want := append([]string{}, byRole[role]...)
		sort.Strings(want)
		if strings.Join(hosts, ",") != strings.Join(want, ",") {
			r.add(where, "%s lists %v, but the %s services are %v", list, hosts, role, want)
		}
	}
	hostsIn(env["EARSHOT_NATS_URL"], "nats")
	hostsIn(env["EARSHOT_REDIS_SENTINELS"], "sentinel")
	for dep := range s.DependsOn {
		if _, ok := p.Services[dep]; !ok {
			r.add(where, "depends_on %s: no such service", dep)
		}
	}
}

// checkHAProxy: the load balancer's servers are exactly the gateways, health-checked on
// /readyz, with a tunnel timeout for WebSockets.
func checkHAProxy(path string, gateways []string, r *report) {
	f, err := os.Open(path)
	if err != nil {
		r.add("haproxy.cfg", "%v", err)
		return
	}
	defer f.Close()
	var servers []string
	var readyz, tunnel bool
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		switch {
		case fields[0] == "server" && len(fields) >= 3:
			servers = append(servers, strings.Split(fields[2], ":")[0])
		case strings.Contains(sc.Text(), "/readyz"):
			readyz = true
		case fields[0] == "timeout" && len(fields) > 1 && fields[1] == "tunnel":
			tunnel = true
		}
	}
	sort.Strings(servers)
	want := append([]string{}, gateways...)
	sort.Strings(want)
	if strings.Join(servers, ",") != strings.Join(want, ",") {
		r.add("haproxy.cfg", "servers %v, but the gateways are %v", servers, want)
	}
	if !readyz {
		r.add("haproxy.cfg", "no health check on /readyz (a draining gateway would keep getting streams)")
	}
	if !tunnel {
		r.add("haproxy.cfg", "no `timeout tunnel`: WebSockets would be cut at the client/server timeout")
	}
}
