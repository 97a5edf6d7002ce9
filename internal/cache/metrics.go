package cache

import "github.com/prometheus/client_golang/prometheus"

// Metrics count cache outcomes by kind (document, page) and result (hit,
// miss, error). A nil *Metrics counts nothing.
type Metrics struct {
	lookups *prometheus.CounterVec
}

// NewMetrics registers the cache's series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "swapmeet", Subsystem: "cache", Name: "lookups_total",
		Help: "Cache lookups by kind and result; the hit ratio is hit / (hit + miss + error).",
	}, []string{"kind", "result"})}
	reg.MustRegister(m.lookups)
	return m
}

func (m *Metrics) count(kind, result string) {
	if m != nil {
		m.lookups.WithLabelValues(kind, result).Inc()
	}
}
