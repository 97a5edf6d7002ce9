package cache

import "github.com/prometheus/client_golang/prometheus"

// Metrics count cache outcomes by layer (near, redis), kind (document,
// page) and result (hit, miss, error; bypass for a near cache that is
// suspended). A nil *Metrics counts nothing.
type Metrics struct {
	lookups *prometheus.CounterVec
	shared  prometheus.Counter
}

// NewMetrics registers the cache's series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "swapmeet", Subsystem: "cache", Name: "lookups_total",
		Help: "Cache lookups by layer, kind and result; a layer's hit ratio is hit / (hit + miss + error).",
	}, []string{"layer", "kind", "result"}),
		shared: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "swapmeet", Subsystem: "cache", Name: "shared_loads_total",
			Help: "Misses answered by another request's load of the same key (a single flight), not by a query of their own.",
		})}
	reg.MustRegister(m.lookups, m.shared)
	return m
}

func (m *Metrics) sharedLoad() {
	if m != nil {
		m.shared.Inc()
	}
}

func (m *Metrics) count(kind, result string) {
	if m != nil {
		m.lookups.WithLabelValues("redis", kind, result).Inc()
	}
}

// nearMetrics are the near cache's series. A nil one counts nothing.
type nearMetrics struct {
	lookups  *prometheus.CounterVec // the cache's, layer "near"
	resets   *prometheus.CounterVec
	refusals prometheus.Counter
}

func newNearMetrics(reg prometheus.Registerer, n *Near, lookups *Metrics) *nearMetrics {
	m := &nearMetrics{
		lookups: lookups.lookups,
		resets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "swapmeet", Subsystem: "cache", Name: "near_resets_total",
			Help: "Times the near cache was emptied whole, by reason (subscribed, gap, lagging, bulk).",
		}, []string{"reason"}),
		refusals: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "swapmeet", Subsystem: "cache", Name: "near_refused_total",
			Help: "Documents read from Redis but not kept, because an announcement evicted their key meanwhile.",
		}),
	}
	entries := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "swapmeet", Subsystem: "cache", Name: "near_entries",
		Help: "Documents in the near cache.",
	}, func() float64 { e, _ := n.Len(); return float64(e) })
	bytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "swapmeet", Subsystem: "cache", Name: "near_bytes",
		Help: "Bytes the near cache counts against its budget.",
	}, func() float64 { _, b := n.Len(); return float64(b) })
	reg.MustRegister(m.resets, m.refusals, entries, bytes)
	return m
}

func (m *nearMetrics) lookup(result string) {
	if m != nil {
		m.lookups.WithLabelValues("near", "document", result).Inc()
	}
}

func (m *nearMetrics) reset(reason string) {
	if m != nil {
		m.resets.WithLabelValues(reason).Inc()
	}
}

func (m *nearMetrics) refused() {
	if m != nil {
		m.refusals.Inc()
	}
}
