package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/earshot-dev/earshot/billing"
	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/gateway/prerecorded"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/models"
)

// catalog exposes the models catalog to the gateway: speech models only, and synthetic
// (random-weight) models only when allowed.
type catalog struct{ allowSynthetic bool }

func (c catalog) Lookup(name string) (gateway.Model, bool) {
	card, err := models.Lookup(name)
	if err != nil || card.Kind != models.KindASR || (card.Synthetic && !c.allowSynthetic) {
		return gateway.Model{}, false
	}
	return modelOf(card), true
}

func (c catalog) List() []gateway.Model {
	var out []gateway.Model
	for _, card := range models.Catalog() {
		if card.Kind == models.KindASR && (!card.Synthetic || c.allowSynthetic) {
			out = append(out, modelOf(card))
		}
	}
	return out
}

func modelOf(card models.Card) gateway.Model {
	return gateway.Model{Name: card.Name, Version: "whisper.cpp-1.9.1", Arch: "whisper", UUID: card.SHA256, Card: card}
}

// metering starts a billing.Meter per connection, billed to s.Billed (a resumed
// connection continues the usage of the stream it resumes). With resumes set, a new
// stream's record is created and a resume claims its credit (billing.Resumes): the
// connection is not billed for the audio an earlier connection of the stream paid for
// and never got a final for, and for nothing else. Without resumes (pre-recorded
// requests) nothing is credited. Multichannel streams are billed per channel.
type metering struct {
	js      jetstream.JetStream
	resumes *billing.Resumes
}

func (m metering) Start(ctx context.Context, s gateway.SessionInfo) (gateway.Meter, error) {
	billed := s.Billed
	if billed == "" {
		billed = s.Session
	}
	var credit billing.Credit
	if m.resumes != nil {
		if billed != s.Session {
			c, err := m.resumes.Claim(ctx, s.Tenant, billed, s.Session, s.OffsetMs, s.RunUpMs)
			if errors.Is(err, billing.ErrNoResume) {
				return nil, fmt.Errorf("%w: %v", gateway.ErrResumeRefused, err)
			}
			if err != nil {
				return nil, err
			}
			credit = c
		} else if err := m.resumes.Begin(ctx, s.Tenant, billed); err != nil {
			return nil, err
		}
	}
	bm, err := billing.NewMeter(m.js, bus.UsageEvent{Tenant: s.Tenant, Key: s.Key, Model: s.Model, Session: billed, Conn: s.Session, StartMs: s.OffsetMs}, 2*time.Second)
	if err != nil {
		return nil, err
	}
	rm := &resumableMeter{Meter: bm, resumes: m.resumes, tenant: s.Tenant, stream: billed, conn: s.Session,
		pos: s.OffsetMs, offset: s.OffsetMs, credit: credit, channels: int64(max(1, s.Channels)), stop: make(chan struct{})}
	if m.resumes != nil {
		bm.OnAck(func(int64) { rm.mark() })
		go rm.keepAlive()
	}
	return rm, nil
}

// resumableMeter is a billing.Meter fed in stream milliseconds: it leaves the
// connection's credit out, bills each ms once per channel, and keeps the stream's
// resume record up to date (what is billed, where the last final ended).
type resumableMeter struct {
	*billing.Meter
	resumes      *billing.Resumes
	tenant       bus.TenantID
	stream, conn bus.SessionID
	offset       int64
	credit       billing.Credit
	channels     int64
	stop         chan struct{}
	stopOnce     sync.Once
	markMu       sync.Mutex // marks reach Redis in the order their figures were taken

	mu       sync.Mutex
	pos      int64 // stream ms accepted so far
	finalEnd int64 // stream ms: end of the last final delivered
	finished bool  // every final of the connection was delivered (clean end)
}

// Add takes ms more of accepted audio (stream time, per channel).
func (m *resumableMeter) Add(ms int64) {
	if ms <= 0 {
		return
	}
	m.mu.Lock()
	start := m.pos
	m.pos += ms
	free := max(0, min(m.pos, m.credit.ToMs)-max(start, m.credit.FromMs))
	m.mu.Unlock()
	m.Meter.Add((ms - free) * m.channels)
}

// billedPos is the stream time up to which the connection's audio is billed and
// acknowledged (or credited); m.mu is held.
func (m *resumableMeter) billedPosLocked(ackedMs int64) int64 {
	a := ackedMs / m.channels
	before := max(0, m.credit.FromMs-m.offset) // billable ms before the credit
	if a < before {
		return m.offset + a
	}
	return min(m.pos, max(m.credit.ToMs, m.credit.FromMs)+a-before)
}

// FinalDelivered records that a final ending at endMs of this connection's audio was
// sent to the client (after the meter was flushed).
func (m *resumableMeter) FinalDelivered(endMs int64) {
	m.mu.Lock()
	m.finalEnd = max(m.finalEnd, m.offset+endMs)
	m.mu.Unlock()
	m.mark()
}

// Finished records that the connection ended cleanly: every final was delivered, so
// nothing of it is left for a resume to credit.
func (m *resumableMeter) Finished() {
	m.mu.Lock()
	m.finished = true
	m.mu.Unlock()
}

// Settle is gateway.MeterSettler: what was accepted is published and acknowledged, and
// the resume record says so, before the client hears the close.
func (m *resumableMeter) Settle(ctx context.Context) error {
	err := m.Meter.Flush(ctx)
	m.mark()
	return err
}

func (m *resumableMeter) mark() {
	if m.resumes == nil {
		return
	}
	m.markMu.Lock()
	defer m.markMu.Unlock()
	acked := m.Meter.Acked()
	m.mu.Lock()
	b, f := m.billedPosLocked(acked), m.finalEnd
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// A lost mark only shrinks a later resume's credit: the client pays, never less.
	_ = m.resumes.Mark(ctx, m.tenant, m.stream, m.conn, b, f)
}

// keepAlive marks the record while the connection lives, so that it expires
// billing.ResumeWindow after the connection ended, however quiet the stream is.
func (m *resumableMeter) keepAlive() {
	t := time.NewTicker(billing.ResumeWindow / 4)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.mark()
		}
	}
}

// Close publishes the rest and marks the record one last time: a clean end leaves no
// credit (the client has every final).
func (m *resumableMeter) Close(ctx context.Context) error {
	err := m.Meter.Close(ctx)
	m.stopOnce.Do(func() { close(m.stop) })
	if m.resumes == nil {
		return err
	}
	m.mu.Lock()
	clean := m.finished && err == nil
	if clean {
		m.finalEnd = m.pos
	}
	m.mu.Unlock()
	if clean {
		mctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		m.mu.Lock()
		pos := m.pos
		m.mu.Unlock()
		// A lost mark leaves an older one: a resume gets less credit, never more.
		_ = m.resumes.Mark(mctx, m.tenant, m.stream, m.conn, pos, pos)
		return err
	}
	m.mark()
	return err
}

// callMetering meters one phone-call track per session, with the call id on its events.
type callMetering struct{ js jetstream.JetStream }

func (m callMetering) Start(_ context.Context, t bus.TenantID, model string, s bus.SessionID, call, track string) (gateway.Meter, error) {
	return billing.NewMeter(m.js, bus.UsageEvent{Tenant: t, Model: model, Session: s, Call: call, Track: track}, 2*time.Second)
}

// quota maps billing's refusals onto the gateway's sentinel errors, so that they become
// 402/403 before the upgrade and close 4002 during a stream.
type quota struct{ q *billing.Quota }

func (a quota) Check(ctx context.Context, tenant bus.TenantID, model string) error {
	return mapQuota(a.q.Check(ctx, tenant, model))
}

// Hold is gateway.QuotaHolder: the connection's share of what its tenant has left,
// held in Redis for every gateway to see.
func (a quota) Hold(ctx context.Context, s gateway.SessionInfo, member string, billable, want int64) (int64, bool, error) {
	limit, unlimited, err := a.q.Hold(ctx, s.Tenant, s.Model, s.Billed, member, billable, want)
	return limit, unlimited, mapQuota(err)
}

// ReleaseHold ends the connection's hold at its final billable ms.
func (a quota) ReleaseHold(ctx context.Context, s gateway.SessionInfo, member string, billable int64) error {
	return a.q.Release(ctx, s.Tenant, s.Billed, member, billable)
}

// CheckFile is prerecorded.Config.FileAdmit: a file of ms milliseconds against the
// plan's longest file and what the balance or quota still covers, then a hold of its ms
// beside the tenant's live streams and other files on every gateway (billing.Quota.Hold),
// ended by release.
func (a quota) CheckFile(ctx context.Context, tenant bus.TenantID, model string, session bus.SessionID, ms int64) (release func(), err error) {
	err = a.q.CheckFile(ctx, tenant, model, ms)
	if errors.Is(err, billing.ErrFileTooLong) {
		return nil, fmt.Errorf("%w: %v", prerecorded.ErrTooLong, err)
	}
	if err != nil {
		return nil, mapQuota(err)
	}
	member := "file:" + string(session)
	grant, unlimited, err := a.q.Hold(ctx, tenant, model, session, member, 0, ms)
	switch {
	case unlimited:
		return func() {}, nil
	case err != nil && !errors.Is(err, billing.ErrNoBalance) && !errors.Is(err, billing.ErrQuotaExhausted):
		// Redis could not be asked about the holds (the ledger check above passed).
		return func() {}, nil
	case grant < ms:
		_ = a.q.Release(ctx, tenant, session, member, 0)
		what := billing.ErrNoBalance
		if errors.Is(err, billing.ErrQuotaExhausted) {
			what = billing.ErrQuotaExhausted
		}
		return nil, mapQuota(fmt.Errorf("%w: the file holds %.1f s of audio; the tenant's live streams and other files in flight hold what is left (%.1f s free)",
			what, float64(ms)/1000, float64(grant)/1000))
	}
	return func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = a.q.Release(rctx, tenant, session, member, ms)
	}, nil
}

func mapQuota(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, billing.ErrNoBalance), errors.Is(err, billing.ErrUnknownTenant):
		// A key whose tenant has no billing account cannot pay either.
		return fmt.Errorf("%w: %v", gateway.ErrNoBalance, err)
	case errors.Is(err, billing.ErrQuotaExhausted):
		return fmt.Errorf("%w: %v", gateway.ErrQuotaExhausted, err)
	case errors.Is(err, billing.ErrModelNotInPlan):
		return fmt.Errorf("%w: %v", gateway.ErrModelNotInPlan, err)
	}
	return err
}
