package transcriber_test

import (
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/earshot-dev/earshot/transcriber"
)

// countingModel is a deterministic fake Model for the registry's unit tests.
type countingModel struct{ closed *atomic.Int32 }

func (c countingModel) Name() string                             { return "fake" }
func (c countingModel) NewDecoder() (transcriber.Decoder, error) { return nil, errors.New("fake") }
func (c countingModel) Close() error                             { c.closed.Add(1); return nil }

func TestRegistryRefcountFake(t *testing.T) {
	var loads, closed atomic.Int32
	fail := true
	r := transcriber.NewRegistry(func(path string, _ transcriber.LoadOptions) (transcriber.Model, error) {
		loads.Add(1)
		if filepath.Base(path) == "bad.bin" && fail {
			return nil, transcriber.ErrModelFile
		}
		return countingModel{&closed}, nil
	})
	path := filepath.Join(t.TempDir(), "m.bin")
	var wg sync.WaitGroup
	models := make([]transcriber.Model, 8)
	for i := range models {
		wg.Go(func() {
			m, err := r.Acquire(path, transcriber.LoadOptions{})
			if err != nil {
				t.Error(err)
			}
			models[i] = m
		})
	}
	wg.Wait()
	if loads.Load() != 1 || r.Loaded()[path] != 8 {
		t.Fatalf("8 concurrent Acquires: %d loads, refs %v", loads.Load(), r.Loaded())
	}
	for i, m := range models {
		m.Close()
		m.Close() // a second Close of the same handle is a no-op
		if want := int32(0); i == len(models)-1 {
			want = 1
			if closed.Load() != want {
				t.Errorf("after the last Close: closed %d times", closed.Load())
			}
		} else if closed.Load() != want {
			t.Errorf("closed after %d of 8 releases", i+1)
		}
	}
	if len(r.Paths()) != 0 {
		t.Errorf("still held: %v", r.Paths())
	}
	if err := r.Release(path); !errors.Is(err, transcriber.ErrUnknownModel) {
		t.Errorf("Release of an unheld path = %v", err)
	}
	// A failed load is not cached: the next Acquire tries again.
	bad := filepath.Join(t.TempDir(), "bad.bin")
	if _, err := r.Acquire(bad, transcriber.LoadOptions{}); !errors.Is(err, transcriber.ErrModelFile) {
		t.Fatalf("bad load: %v", err)
	}
	fail = false
	if m, err := r.Acquire(bad, transcriber.LoadOptions{}); err != nil {
		t.Fatalf("retry: %v", err)
	} else if err := r.Release(bad); err != nil || closed.Load() != 2 {
		t.Errorf("Release by path: %v, closed %d", err, closed.Load())
	} else {
		_ = m
	}
}

func TestRegistryWhisperShared(t *testing.T) {
	p := whisperModelPath(t)
	r := transcriber.NewRegistry(transcriber.LoadWhisper)
	a, err := r.Acquire(p, transcriber.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Acquire(p, transcriber.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Name() != "tiny.en" || r.Loaded()[r.Paths()[0]] != 2 {
		t.Errorf("name %q, held %v", a.Name(), r.Loaded())
	}
	a.Close()
	d, err := b.NewDecoder() // still loaded: b holds a reference
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	b.Close()
	if _, err := b.NewDecoder(); !errors.Is(err, transcriber.ErrClosed) {
		t.Errorf("NewDecoder after the last release = %v, want ErrClosed", err)
	}
}
