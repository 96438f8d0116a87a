package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// ConsumerConfig tunes the billing consumer; zero values take the defaults.
type ConsumerConfig struct {
	Durable       string        // durable consumer name, default "billing"
	Batch         int           // messages per fetch, default 64
	MaxAckPending int           // unacked messages outstanding, default 512
	AckWait       time.Duration // redelivery after a crash, default 30 s
	FetchWait     time.Duration // longest wait of one fetch, default 1 s
	RetryMin      time.Duration // first backoff when Redis fails, default 100 ms
	RetryMax      time.Duration // longest backoff, default 5 s
	Replicas      int           // of the USAGE stream (EnsureStream), default 1
}

func (c *ConsumerConfig) defaults() {
	if c.Durable == "" {
		c.Durable = "billing"
	}
	if c.Batch <= 0 {
		c.Batch = 64
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = 512
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.FetchWait <= 0 {
		c.FetchWait = time.Second
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 100 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Second
	}
}

// Consumer applies the USAGE stream to the ledger: a durable pull consumer with
// explicit acks. A message is acked only after the Lua script returned (applied,
// duplicate or unknown tenant) or after it was dead-lettered; when Redis fails the
// message is Nak'ed with a delay and the consumer backs off, so nothing is dropped. A
// crash between the write and the ack leads to a redelivery the script reports as a
// duplicate, which is then acked.
type Consumer struct {
	js    jetstream.JetStream
	store *Store
	cfg   ConsumerConfig
	m     *metrics
	log   *slog.Logger
}

// NewConsumer builds a consumer; reg may be nil (no metrics exported).
func NewConsumer(js jetstream.JetStream, store *Store, reg prometheus.Registerer, log *slog.Logger, cfg ConsumerConfig) *Consumer {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Consumer{js: js, store: store, cfg: cfg, m: newMetrics(reg), log: log.With("component", "billing-consumer")}
}

// Run consumes until ctx ends, and then returns nil. Setting up the stream and the
// durable consumer is retried (with a warning each time) until it works: on a NATS
// cluster that is still forming, or with several billing consumers starting at once,
// a try can time out where a later one succeeds.
func (c *Consumer) Run(ctx context.Context) error {
	backoff := c.cfg.RetryMin
	var cons jetstream.Consumer
	for {
		var err error
		if cons, err = c.setup(ctx); err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		c.m.errors.Inc()
		c.log.Warn("billing consumer not set up yet, trying again", "err", err, "retry_in", backoff)
		sleep(ctx, backoff)
		backoff = min(2*backoff, c.cfg.RetryMax)
	}
	c.log.Info("billing consumer running", "durable", c.cfg.Durable)
	return c.consume(ctx, cons)
}

// setup ensures the stream and the durable consumer, 5 s at most.
func (c *Consumer) setup(ctx context.Context) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := EnsureStream(ctx, c.js, c.cfg.Replicas); err != nil {
		return nil, err
	}
	cons, err := c.js.CreateOrUpdateConsumer(ctx, bus.UsageStream, jetstream.ConsumerConfig{
		Durable:       c.cfg.Durable,
		Description:   "billing: applies usage events to Redis exactly once",
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: bus.UsageWildcard,
		AckWait:       c.cfg.AckWait,
		MaxAckPending: c.cfg.MaxAckPending,
		MaxDeliver:    -1, // never give up on usage: money is never dropped
	})
	if err != nil {
		return nil, fmt.Errorf("billing consumer %s: %w", c.cfg.Durable, err)
	}
	return cons, nil
}

// consume fetches and applies usage events until ctx ends.
func (c *Consumer) consume(ctx context.Context, cons jetstream.Consumer) error {
	backoff := c.cfg.RetryMin
	for ctx.Err() == nil {
		batch, err := cons.Fetch(c.cfg.Batch, jetstream.FetchMaxWait(c.cfg.FetchWait))
		if err != nil {
			c.m.errors.Inc()
			c.log.Warn("fetch usage", "err", err)
			sleep(ctx, backoff)
			backoff = min(2*backoff, c.cfg.RetryMax)
			continue
		}
		failed := false
		for msg := range batch.Messages() {
			if failed || ctx.Err() != nil {
				// Keep order and let a restarted consumer have them at once.
				_ = msg.NakWithDelay(backoff)
				continue
			}
			if err := c.handle(ctx, msg); err != nil {
				failed = true
				c.m.errors.Inc()
				c.log.Warn("usage event not applied, will retry", "err", err, "retry_in", backoff)
				_ = msg.NakWithDelay(backoff)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			c.log.Debug("fetch ended", "err", err)
		}
		if failed {
			sleep(ctx, backoff)
			backoff = min(2*backoff, c.cfg.RetryMax)
		} else {
			backoff = c.cfg.RetryMin
		}
	}
	return nil
}

// handle applies one message and acks it; an error means it was not acked.
func (c *Consumer) handle(ctx context.Context, msg jetstream.Msg) error {
	if msg.Subject() == bus.UsageDeadLetterSubject {
		return msg.Ack()
	}
	meta, err := msg.Metadata()
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	ev, err := DecodeUsageEvent(msg.Data())
	if err == nil && bus.UsageSubject(ev.Tenant) != msg.Subject() {
		err = fmt.Errorf("%w: tenant %q published on %s", ErrBadEvent, ev.Tenant, msg.Subject())
	}
	if err != nil {
		return c.deadLetter(ctx, msg, meta, err)
	}
	out, err := c.store.Apply(ctx, ev, meta.Timestamp)
	if err != nil {
		return err
	}
	switch out {
	case Duplicate:
		c.m.duplicates.Inc()
	case UnknownTenant:
		c.m.unknown.Inc()
		fallthrough
	default:
		c.m.applied.Inc()
		c.m.audioSeconds.Add(float64(ev.DurationMs) / 1000)
	}
	if err := msg.Ack(); err != nil {
		return fmt.Errorf("ack %s: %w", ev.ID, err)
	}
	return nil
}

// deadLetter republishes a rejected message on bus.UsageDeadLetterSubject (deduplicated by its
// stream sequence) with the reason, then acks it.
func (c *Consumer) deadLetter(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, reason error) error {
	dl := nats.NewMsg(bus.UsageDeadLetterSubject)
	dl.Data = msg.Data()
	dl.Header.Set("Earshot-Reason", reason.Error())
	dl.Header.Set("Earshot-Subject", msg.Subject())
	dl.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("dead:%d", meta.Sequence.Stream))
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := c.js.PublishMsg(pctx, dl); err != nil {
		return fmt.Errorf("dead letter: %w", err)
	}
	c.m.dead.Inc()
	c.log.Warn("usage event rejected to dead letter", "reason", reason, "subject", msg.Subject(), "seq", meta.Sequence.Stream)
	return msg.Ack()
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
