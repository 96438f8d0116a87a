package billing

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	applied, duplicates, unknown, dead, errors prometheus.Counter
	audioSeconds                               prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	c := func(name, help string) prometheus.Counter {
		ctr := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "earshot", Subsystem: "billing", Name: name, Help: help})
		if reg == nil {
			return ctr
		}
		if err := reg.Register(ctr); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) { // a restarted consumer in the same process
				return are.ExistingCollector.(prometheus.Counter)
			}
			panic(err)
		}
		return ctr
	}
	return &metrics{
		applied:      c("events_applied_total", "Usage events applied to the ledger (first delivery)."),
		duplicates:   c("events_duplicate_total", "Usage events already applied (redelivery or replay), acked without change."),
		unknown:      c("events_unknown_tenant_total", "Usage events counted for a tenant with no record."),
		dead:         c("events_dead_letter_total", "Usage events rejected to the dead-letter subject."),
		errors:       c("errors_total", "Failures to apply or ack an event (retried)."),
		audioSeconds: c("audio_seconds_total", "Audio seconds applied to the ledger."),
	}
}
