package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics of one Server, registered on the Registerer passed in Config.
type metrics struct {
	live         *prometheus.GaugeVec   // tenant, model
	audioSeconds *prometheus.CounterVec // tenant, model
	partialLat   prometheus.Histogram   // chunk sent → partial written to the client
	finalLat     prometheus.Histogram   // chunk sent → final written to the client
	errors       *prometheus.CounterVec // code
	sessions     *prometheus.CounterVec // close code
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	buckets := []float64{.025, .05, .1, .15, .2, .3, .5, .75, 1, 1.5, 2, 3, 5, 10}
	m := &metrics{
		live: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "earshot", Subsystem: "gateway",
			Name: "live_streams", Help: "Live WebSocket streams."}, []string{"tenant", "model"}),
		audioSeconds: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "earshot", Subsystem: "gateway",
			Name: "audio_seconds_total", Help: "Seconds of audio accepted from clients."}, []string{"tenant", "model"}),
		partialLat: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "earshot", Subsystem: "gateway",
			Name: "partial_latency_seconds", Help: "From sending the newest audio chunk a partial covers to relaying it.",
			Buckets: buckets}),
		finalLat: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "earshot", Subsystem: "gateway",
			Name: "final_latency_seconds", Help: "From sending the newest audio chunk a final covers to relaying it.",
			Buckets: buckets}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "earshot", Subsystem: "gateway",
			Name: "errors_total", Help: "Errors returned to clients, by wire code."}, []string{"code"}),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "earshot", Subsystem: "gateway",
			Name: "sessions_total", Help: "Finished WebSocket streams, by close code."}, []string{"close_code"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.live, m.audioSeconds, m.partialLat, m.finalLat, m.errors, m.sessions} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
