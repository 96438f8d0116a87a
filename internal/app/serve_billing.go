package app

import (
	"context"
	"fmt"
	"time"

	"github.com/earshot-dev/earshot/billing"
)

// startBilling loads the plans, opens the ledger on Redis (p.store, with the gateway or
// billing), makes sure the usage stream exists, and with billing runs its consumer.
func (p *process) startBilling(ctx context.Context) error {
	c, log := p.o.Common, p.log
	var err error
	p.plans = billing.DefaultPlans()
	if c.PlansFile != "" {
		if p.plans, err = billing.LoadPlans(c.PlansFile); err != nil {
			return fmt.Errorf("--plans: %w", err)
		}
	}
	if p.rdb != nil {
		p.store = billing.NewStore(p.rdb, p.plans, log.With("component", "billing"))
		if wait := c.RedisReplicas(); wait > 0 {
			// Exactly once across a failover: an event is acked to JetStream only once
			// its ledger write is on a replica that Sentinel or the cluster can promote.
			p.store.SetReplicaWait(wait, 2*time.Second)
		}
	}
	if p.o.Parts.Billing || p.o.Parts.Gateway {
		err := retryJS(ctx, log, "usage stream", func(ctx context.Context) error {
			_, err := billing.EnsureStream(ctx, p.js, c.JSReplicas)
			return err
		})
		if err != nil {
			return fmt.Errorf("usage stream: %w", err)
		}
	}
	if p.o.Parts.Billing {
		cons := billing.NewConsumer(p.js, p.store, p.ops.Registry, log.With("component", "billing"), billing.ConsumerConfig{Replicas: c.JSReplicas})
		p.g.Go(func() error { return cons.Run(p.gctx) })
	}
	return nil
}
