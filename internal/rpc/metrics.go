package rpc

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the API's request series. A nil *Metrics records nothing.
type Metrics struct {
	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
	// procs holds each procedure's series, looked up once: the
	// procedures are the registered ones, a fixed set.
	procs sync.Map // procedure -> *procMetrics
}

// procMetrics are one procedure's latency and its count of successes,
// the series nearly every request records.
type procMetrics struct {
	ok      prometheus.Counter
	seconds prometheus.Observer
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
	p, ok := m.procs.Load(procedure)
	if !ok {
		p, _ = m.procs.LoadOrStore(procedure, &procMetrics{
			ok:      m.requests.WithLabelValues(procedure, codeOK),
			seconds: m.seconds.WithLabelValues(procedure),
		})
	}
	pm := p.(*procMetrics)
	if code == codeOK {
		pm.ok.Inc()
	} else {
		m.requests.WithLabelValues(procedure, code).Inc()
	}
	pm.seconds.Observe(took.Seconds())
}
