package gateway

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/earshot-dev/earshot/gateway/internal/standin"
	"github.com/earshot-dev/earshot/internal/bus"
)

// standInBackend is the stand-in transcriber of the gateway's tests (gatewaytest's,
// which the gateway's own tests cannot import).
type standInBackend struct{ standin.Backend }

func (b *standInBackend) Open(ctx context.Context, req bus.SessionRequest) (Stream, error) {
	return b.Backend.Open(ctx, req)
}

// standInCatalog is a fixed two-model catalog.
type standInCatalog struct{}

var standInModels = []Model{
	{Name: "tiny.en", Version: "2024-01-01", Arch: "whisper", UUID: "uuid-tiny", Card: map[string]string{"name": "tiny.en"}},
	{Name: "base.en", Version: "2024-01-01", Arch: "whisper", UUID: "uuid-base", Card: map[string]string{"name": "base.en"}},
	{Name: "base", Version: "2024-01-01", Arch: "whisper", UUID: "uuid-base-multi", Card: map[string]string{"name": "base"}},
}

func (standInCatalog) Lookup(name string) (Model, bool) {
	for _, m := range standInModels {
		if m.Name == name {
			return m, true
		}
	}
	return Model{}, false
}

func (standInCatalog) List() []Model { return standInModels }

// standInQuota refuses what its fields say.
type standInQuota struct {
	mu      sync.Mutex
	err     error
	notPlan map[string]bool
}

func (q *standInQuota) Check(_ context.Context, _ bus.TenantID, model string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.notPlan[model] {
		return fmt.Errorf("plan: %w", ErrModelNotInPlan)
	}
	return q.err
}

func (q *standInQuota) set(err error) { q.mu.Lock(); q.err = err; q.mu.Unlock() }

// standInMetering records the milliseconds metered per session.
type standInMetering struct {
	mu      sync.Mutex
	ms      map[bus.SessionID]int64
	closed  map[bus.SessionID]bool
	infos   map[bus.SessionID]SessionInfo
	flushes map[bus.SessionID]int
	settled map[bus.SessionID]bool
	settle  time.Duration // how long a Settle takes
}

type standInMeter struct {
	m  *standInMetering
	id bus.SessionID
}

func (m *standInMetering) Start(_ context.Context, s SessionInfo) (Meter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ms == nil {
		m.ms, m.closed = map[bus.SessionID]int64{}, map[bus.SessionID]bool{}
		m.infos, m.flushes = map[bus.SessionID]SessionInfo{}, map[bus.SessionID]int{}
		m.settled = map[bus.SessionID]bool{}
	}
	m.infos[s.Session] = s
	return standInMeter{m, s.Session}, nil
}

func (m standInMeter) Flush(context.Context) error {
	m.m.mu.Lock()
	m.m.flushes[m.id]++
	m.m.mu.Unlock()
	return nil
}

func (m standInMeter) Settle(context.Context) error {
	m.m.mu.Lock()
	d := m.m.settle
	m.m.mu.Unlock()
	time.Sleep(d)
	m.m.mu.Lock()
	m.m.settled[m.id] = true
	m.m.mu.Unlock()
	return nil
}

func (m *standInMetering) isSettled(id bus.SessionID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.settled[id]
}

func (m standInMeter) Add(ms int64) { m.m.mu.Lock(); m.m.ms[m.id] += ms; m.m.mu.Unlock() }
func (m standInMeter) Close(context.Context) error {
	m.m.mu.Lock()
	m.m.closed[m.id] = true
	m.m.mu.Unlock()
	return nil
}
