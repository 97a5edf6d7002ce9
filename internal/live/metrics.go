package live

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/swapmeet/swapmeet/internal/feed"
)

// Metrics are the Watch streams' series. A nil *Metrics records nothing.
type Metrics struct {
	streams  prometheus.Gauge
	refusals prometheus.Counter
	messages prometheus.Counter
	resyncs  prometheus.Counter
	fetches  prometheus.Counter
	entries  *prometheus.CounterVec
}

// NewMetrics registers the series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "swapmeet", Subsystem: "live", Name: name, Help: help}
	}
	m := &Metrics{
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "swapmeet", Subsystem: "live", Name: "streams",
			Help: "Open Watch streams.",
		}),
		refusals: prometheus.NewCounter(opts("refused_total", "Watch streams refused by a stream limit.")),
		messages: prometheus.NewCounter(opts("messages_total", "Listing and order states sent on Watch streams.")),
		resyncs:  prometheus.NewCounter(opts("resyncs_total", "Resync messages: a resume older than the feed's history, a slow reader, or a batch too large to list.")),
		fetches:  prometheus.NewCounter(opts("fetches_total", "Changed listings read once for all their watchers.")),
		entries:  prometheus.NewCounterVec(opts("feed_entries_total", "Change feed entries read, by kind."), []string{"kind"}),
	}
	reg.MustRegister(m.streams, m.refusals, m.messages, m.resyncs, m.fetches, m.entries)
	return m
}

func (m *Metrics) opened() {
	if m != nil {
		m.streams.Inc()
	}
}

func (m *Metrics) closed() {
	if m != nil {
		m.streams.Dec()
	}
}

func (m *Metrics) refused() {
	if m != nil {
		m.refusals.Inc()
	}
}

func (m *Metrics) sent() {
	if m != nil {
		m.messages.Inc()
	}
}

func (m *Metrics) resynced() {
	if m != nil {
		m.resyncs.Inc()
	}
}

func (m *Metrics) fetched() {
	if m != nil {
		m.fetches.Inc()
	}
}

func (m *Metrics) entry(k feed.Kind) {
	if m != nil {
		m.entries.WithLabelValues(k.String()).Inc()
	}
}
