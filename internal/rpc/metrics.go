package rpc

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the API's request series. A nil *Metrics records nothing.
type Metrics struct {
	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
}

// NewMetrics registers the request series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "swapmeet", Subsystem: "rpc", Name: "requests_total",
			Help: "RPCs by procedure and Connect code.",
		}, []string{"procedure", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "swapmeet", Subsystem: "rpc", Name: "request_seconds",
			Help:    "RPC latency by procedure.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"procedure"}),
	}
	reg.MustRegister(m.requests, m.seconds)
	return m
}

func (m *Metrics) observe(procedure, code string, took time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(procedure, code).Inc()
	m.seconds.WithLabelValues(procedure).Observe(took.Seconds())
}
