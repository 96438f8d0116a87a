package app

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check reports whether one dependency is ready; nil means ready.
type Check func(ctx context.Context) error

// Ops serves /healthz (the process is up), /readyz (every check passes) and /metrics on
// the ops listener (--ops-listen, loopback by default); MountPublic the two probes a
// load balancer needs on the public one.
type Ops struct {
	Registry *prometheus.Registry
	mu       sync.Mutex
	checks   map[string]Check
	draining bool
}

// NewOps returns ops endpoints with a fresh registry holding the Go and process collectors.
func NewOps() *Ops {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Ops{Registry: r, checks: map[string]Check{}}
}

// AddCheck adds a readiness check.
func (o *Ops) AddCheck(name string, c Check) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.checks[name] = c
}

// SetDraining makes /readyz fail so load balancers stop sending new streams.
func (o *Ops) SetDraining() {
	o.mu.Lock()
	o.draining = true
	o.mu.Unlock()
}

// Mount adds the ops routes to mux.
func (o *Ops) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("GET /readyz", o.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{}))
}

// MountPublic adds /healthz and a terse /readyz (ready or not, without the checks'
// details, which may name internal hosts) for load balancers on the public listener.
func (o *Ops) MountPublic(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ok, _ := o.check(r.Context())
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ready": ok})
	})
}

func (o *Ops) ready(w http.ResponseWriter, r *http.Request) {
	ok, status := o.check(r.Context())
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"ready": ok, "checks": status})
}

// check runs every readiness check.
func (o *Ops) check(ctx context.Context) (bool, map[string]string) {
	o.mu.Lock()
	names := make([]string, 0, len(o.checks))
	for n := range o.checks {
		names = append(names, n)
	}
	checks, draining := o.checks, o.draining
	o.mu.Unlock()
	sort.Strings(names)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	status := map[string]string{}
	ok := !draining
	if draining {
		status["process"] = "draining"
	}
	for _, n := range names {
		if err := checks[n](ctx); err != nil {
			status[n] = err.Error()
			ok = false
		} else {
			status[n] = "ok"
		}
	}
	return ok, status
}
