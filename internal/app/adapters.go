package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/earshot-dev/earshot/billing"
	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/models"
)

// backend adapts ingest.Client (the NATS side of a session) to gateway.Backend.
type backend struct{ c *ingest.Client }

func (b backend) Open(ctx context.Context, req bus.SessionRequest) (gateway.Stream, error) {
	s, err := b.c.Open(ctx, req)
	if err != nil {
		if errors.Is(err, ingest.ErrNoCapacity) {
			return nil, fmt.Errorf("%w: %v", gateway.ErrNoCapacity, err)
		}
		return nil, err
	}
	return s, nil
}

// pipelines builds ingest pipelines for the formats clients declare.
func pipelines(f gateway.AudioFormat) (gateway.AudioPipeline, error) {
	rate := ""
	if f.SampleRate > 0 {
		rate = fmt.Sprint(f.SampleRate)
	}
	ch := ""
	if f.Channels > 0 {
		ch = fmt.Sprint(f.Channels)
	}
	format, err := ingest.ParseFormat(f.Encoding, rate, ch)
	if err != nil {
		switch {
		case errors.Is(err, ingest.ErrSampleRate):
			return nil, &wire.ParamError{Param: "sample_rate", Reason: err.Error()}
		case errors.Is(err, ingest.ErrChannels):
			return nil, &wire.ParamError{Param: "channels", Reason: err.Error()}
		default:
			return nil, &wire.ParamError{Param: "encoding", Reason: err.Error()}
		}
	}
	mode := ingest.ModeDownmix
	if f.Multichannel {
		mode = ingest.ModePerChannel
	}
	return ingest.NewPipeline(format, mode)
}

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

// metering starts a billing.Meter per session, billed to s.Billed from s.OffsetMs (a
// resumed stream continues the usage of the stream it resumes).
type metering struct{ js jetstream.JetStream }

func (m metering) Start(_ context.Context, s gateway.SessionInfo) (gateway.Meter, error) {
	billed := s.Billed
	if billed == "" {
		billed = s.Session
	}
	return billing.NewMeter(m.js, bus.UsageEvent{Tenant: s.Tenant, Key: s.Key, Model: s.Model, Session: billed, StartMs: s.OffsetMs}, 2*time.Second)
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
	err := a.q.Check(ctx, tenant, model)
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
