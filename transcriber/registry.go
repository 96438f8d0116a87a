package transcriber

import (
	"fmt"
	"path/filepath"
	"sort"
	"sync"
)

// LoadFunc loads a model file; LoadWhisper is the real one.
type LoadFunc func(path string, opts LoadOptions) (Model, error)

// Registry loads each model file once and shares it: Acquire by path counts a
// reference, Release (or Close on the Model Acquire returned) drops it, and
// the last drop closes the weights. Concurrent Acquires of a file that is
// still loading wait for that one load. Safe for concurrent use.
type Registry struct {
	load   LoadFunc
	mu     sync.Mutex
	models map[string]*regEntry
}

type regEntry struct {
	ready chan struct{} // closed when the load finished
	m     Model
	err   error
	refs  int
}

// NewRegistry returns an empty registry that loads with load.
func NewRegistry(load LoadFunc) *Registry {
	return &Registry{load: load, models: make(map[string]*regEntry)}
}

var shared = NewRegistry(LoadWhisper)

// Shared is the process-wide registry of whisper models (LoadWhisper).
func Shared() *Registry { return shared }

func regKey(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("model path %q: %w", path, err)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	return abs, nil
}

// Acquire returns the model loaded from path, loading it on first use with
// opts (later Acquires share that load and ignore their opts). The caller
// must Release the path or Close the returned Model exactly once.
func (r *Registry) Acquire(path string, opts LoadOptions) (Model, error) {
	key, err := regKey(path)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	e, ok := r.models[key]
	if ok {
		e.refs++
		r.mu.Unlock()
		<-e.ready
		if e.err != nil {
			return nil, e.err
		}
		return &sharedModel{Model: e.m, r: r, key: key}, nil
	}
	e = &regEntry{ready: make(chan struct{}), refs: 1}
	r.models[key] = e
	r.mu.Unlock()

	e.m, e.err = r.load(key, opts)
	if e.err != nil {
		r.mu.Lock()
		delete(r.models, key) // the next Acquire tries again
		r.mu.Unlock()
	}
	close(e.ready)
	if e.err != nil {
		return nil, e.err
	}
	return &sharedModel{Model: e.m, r: r, key: key}, nil
}

// Release drops one reference to the model loaded from path; the last one
// closes it.
func (r *Registry) Release(path string) error {
	key, err := regKey(path)
	if err != nil {
		return err
	}
	return r.release(key)
}

func (r *Registry) release(key string) error {
	r.mu.Lock()
	e, ok := r.models[key]
	if !ok || e.err != nil {
		r.mu.Unlock()
		return fmt.Errorf("release %s: %w", key, ErrUnknownModel)
	}
	select {
	case <-e.ready:
	default:
		r.mu.Unlock()
		return fmt.Errorf("release %s while it loads: %w", key, ErrUnknownModel)
	}
	e.refs--
	if e.refs > 0 {
		r.mu.Unlock()
		return nil
	}
	delete(r.models, key)
	r.mu.Unlock()
	return e.m.Close()
}

// Loaded lists the paths of the models held, with their reference counts.
func (r *Registry) Loaded() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.models))
	for k, e := range r.models {
		out[k] = e.refs
	}
	return out
}

// Paths lists the held model paths, sorted.
func (r *Registry) Paths() []string {
	l := r.Loaded()
	out := make([]string, 0, len(l))
	for k := range l {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// sharedModel is one reference to a registry model; Close releases it once.
type sharedModel struct {
	Model
	r    *Registry
	key  string
	once sync.Once
	err  error
}

func (s *sharedModel) Close() error {
	s.once.Do(func() { s.err = s.r.release(s.key) })
	return s.err
}
