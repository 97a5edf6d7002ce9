package wal

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/swapmeet/swapmeet/internal/roundtrip"
)

// Metrics are the reader's Prometheus series. A nil *Metrics records nothing.
type Metrics struct {
	transactions prometheus.Counter
	changes      prometheus.Counter
	batches      prometheus.Counter
	applySeconds prometheus.Histogram
	retries      prometheus.Counter
	sinkErrors   prometheus.Counter
	reconnects   prometheus.Counter
	lagBytes     prometheus.Gauge
	lagSeconds   prometheus.Gauge
	appliedLSN   prometheus.Gauge
	retained     prometheus.Gauge
	slotLag      prometheus.Gauge
	batchDocs    prometheus.Gauge
	batchDone    prometheus.Gauge
	leader       prometheus.Gauge
	halted       prometheus.Gauge
	tailFlushes  prometheus.Counter
	fannedOut    *prometheus.CounterVec
	stageLag     [nStages]prometheus.Observer
	stageSeconds [nStages]prometheus.Counter
	roundTrips   [roundtrip.NStores]prometheus.Observer

	// stageMu guards latest: the moment the batch being applied reached
	// its latest stage so far, from which the next stage's share counts.
	stageMu sync.Mutex
	latest  time.Time

	// What health checks read, as the gauges say it.
	role      atomic.Int32  // a Role
	lag       atomic.Uint64 // bytes
	appliedAt atomic.Uint64
	why       atomic.Pointer[string] // why it is halted; nil or "" when it is not
}

// Role is what a CDC process is doing with its slot.
type Role int32

const (
	RoleConnecting Role = iota // not streaming, and not told that another process streams
	RoleLeader                 // streaming the slot
	RoleStandby                // another process streams the slot; this one takes over when it lets go
)

func (r Role) String() string {
	switch r {
	case RoleLeader:
		return "leader"
	case RoleStandby:
		return "standby"
	}
	return "connecting"
}

// State is what the reader last recorded: its role, how many bytes of WAL
// the server has beyond what it applied, and the applied position.
type State struct {
	Role     Role
	LagBytes uint64
	Applied  pglogrepl.LSN
	Halted   string // why nothing is applied until the read side is rebuilt; "" normally
}

// State returns the reader's last recorded state.
func (m *Metrics) State() State {
	if m == nil {
		return State{}
	}
	s := State{Role: Role(m.role.Load()), LagBytes: m.lag.Load(), Applied: pglogrepl.LSN(m.appliedAt.Load())}
	if why := m.why.Load(); why != nil {
		s.Halted = *why
	}
	return s
}

// Halted records why the process applies nothing until the read side is
// rebuilt ("" once it applies again).
func (m *Metrics) Halted(why string) {
	if m == nil {
		return
	}
	m.why.Store(&why)
	if why != "" {
		m.halted.Set(1)
	} else {
		m.halted.Set(0)
	}
}

// NewMetrics registers the reader's series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "swapmeet", Subsystem: "cdc", Name: name, Help: help})
		reg.MustRegister(c)
		return c
	}
	g := func(name, help string) prometheus.Gauge {
		c := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "swapmeet", Subsystem: "cdc", Name: name, Help: help})
		reg.MustRegister(c)
		return c
	}
	m := &Metrics{
		transactions: f("transactions_applied_total", "Committed transactions applied to the read side."),
		changes:      f("changes_applied_total", "Row changes applied to the read side."),
		batches:      f("batches_applied_total", "Batches of transactions applied together."),
		retries:      f("apply_retries_total", "Retries of a batch after the sink failed."),
		sinkErrors:   f("sink_errors_total", "Sink failures (Mongo, Redis or the Postgres re-read)."),
		reconnects:   f("reconnects_total", "Replication connections re-established after an error."),
		lagBytes:     g("lag_bytes", "Bytes of WAL the server has sent or announced beyond what is applied."),
		lagSeconds:   g("lag_seconds", "Age of the newest applied commit when it was applied; 0 when caught up."),
		appliedLSN:   g("applied_lsn", "The WAL position applied and acknowledged."),
		retained:     g("slot_retained_wal_bytes", "WAL the server keeps for the slot (from pg_replication_slots)."),
		slotLag:      g("slot_lag_bytes", "WAL written since the slot's confirmed position (from pg_replication_slots)."),
		batchDocs:    g("batch_documents", "Documents queued so far for the batch being applied; 0 between batches."),
		batchDone:    g("batch_documents_done", "Documents of the batch being applied that are written; 0 between batches."),
		tailFlushes:  f("wal_tail_flushes_total", "Empty transactions committed so that WAL other sessions inserted without committing is flushed and streamed past."),
		leader:       g("leader", "1 while this process streams the slot (leads), 0 while it is a standby or reconnecting."),
		halted:       g("halted", "1 while this process applies nothing because the write Postgres follows another history than the read side (a failover, a restore or a move): rebuild the read side."),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "swapmeet", Subsystem: "cdc", Name: "apply_seconds",
			Help:    "Time to apply one batch to the read side.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
	}
	m.fannedOut = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "swapmeet", Subsystem: "cdc", Name: "fanout_documents_total",
		Help: "Documents rebuilt because a row they embed changed (a seller's rename or rating, a listing's media), by collection: what one write cost the read side beyond its own document.",
	}, []string{"collection"})
	stageLag := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "swapmeet", Subsystem: "cdc", Name: "stage_lag_seconds",
		Help: "Seconds from a batch's last commit to the moment the batch reached a stage: received and decoded by the reader; " +
			"written (documents, search rows, history), evicted (cache tombstones), fed (change feed) and announced (applied position published) by the projector.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18),
	}, []string{"stage"})
	stageSeconds := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "swapmeet", Subsystem: "cdc", Name: "stage_seconds_total",
		Help: "Seconds of the batches' lag that each stage added: from the last commit to its receipt (received), then from the latest stage the batch had reached to this one. " +
			"The stages of a batch sum to its lag from commit to announced, so each stage's rate over their sum is its share of the time a write takes to show.",
	}, []string{"stage"})
	for s := range Stage(nStages) {
		m.stageLag[s] = stageLag.WithLabelValues(s.String())
		m.stageSeconds[s] = stageSeconds.WithLabelValues(s.String())
	}
	roundTrips := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "swapmeet", Subsystem: "cdc", Name: "batch_round_trips",
		Help: "Round trips one applied batch made to each store (postgres: the re-reads; search: search rows and history; readstore: documents; redis: tombstones, page epoch, change feed and announcement), " +
			"counting requests made in parallel one each.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 14),
	}, []string{"store"})
	for s := range roundtrip.Store(roundtrip.NStores) {
		m.roundTrips[s] = roundTrips.WithLabelValues(s.String())
	}
	reg.MustRegister(m.applySeconds, m.fannedOut, stageLag, stageSeconds, roundTrips)
	return m
}

// Stage is a point a batch reaches on its way to the read side. The
// reader gets it to StageDecoded; the sink (projection.Projector) takes
// it the rest of the way.
type Stage int

const (
	// StageReceived: the reader has received the batch's last COMMIT.
	StageReceived Stage = iota
	// StageDecoded: the reader has decoded it into the batch, which is
	// complete.
	StageDecoded
	// StageWritten: the batch's documents, search rows and history are
	// written.
	StageWritten
	// StageEvicted: the cache tombstones of every document written, and
	// the listings page epoch, are done.
	StageEvicted
	// StageFed: the change feed has the batch's changes.
	StageFed
	// StageAnnounced: the batch's end is published as applied: readers
	// waiting for it go on.
	StageAnnounced
	nStages
)

var stageNames = [nStages]string{"received", "decoded", "written", "evicted", "fed", "announced"}

// String is the stage's label value.
func (s Stage) String() string {
	if s < 0 || s >= nStages {
		return fmt.Sprintf("stage(%d)", int(s))
	}
	return stageNames[s]
}

// StageReached records that a batch whose last transaction committed at
// lastCommit reached stage s at the moment at. A batch applied again after
// a failure is recorded again at each stage it reaches again.
func (m *Metrics) StageReached(s Stage, lastCommit, at time.Time) {
	m.stageAt(s, lastCommit, at)
}

// stageAt records that a batch reached stage s at t.
func (m *Metrics) stageAt(s Stage, lastCommit, t time.Time) {
	if m == nil || s < 0 || s >= nStages || lastCommit.IsZero() {
		return
	}
	// The commit time is the server's clock: a skew never makes a lag
	// negative.
	m.stageLag[s].Observe(max(t.Sub(lastCommit), 0).Seconds())
	m.stageMu.Lock()
	from := m.latest
	if s == StageReceived {
		from = lastCommit
	}
	if t.After(m.latest) || s == StageReceived {
		m.latest = t
	}
	m.stageMu.Unlock()
	m.stageSeconds[s].Add(max(t.Sub(from), 0).Seconds())
}

// RoundTrips records the round trips of one applied batch.
func (m *Metrics) RoundTrips(c *roundtrip.Counts) {
	if m == nil || c == nil {
		return
	}
	for s := range roundtrip.Store(roundtrip.NStores) {
		m.roundTrips[s].Observe(float64(c.Get(s)))
	}
}

// FannedOut counts documents of collection rebuilt by a fan-out.
func (m *Metrics) FannedOut(collection string, n int) {
	if m != nil {
		m.fannedOut.WithLabelValues(collection).Add(float64(n))
	}
}

func (m *Metrics) applied(txns, rows int, took time.Duration, lastCommit time.Time) {
	if m == nil {
		return
	}
	m.transactions.Add(float64(txns))
	m.changes.Add(float64(rows))
	m.batches.Inc()
	m.applySeconds.Observe(took.Seconds())
	m.lagSeconds.Set(time.Since(lastCommit).Seconds())
}

// Slot records what Postgres says about the slot.
func (m *Metrics) Slot(s SlotStatus) {
	if m != nil {
		m.retained.Set(float64(s.RetainedBytes))
		m.slotLag.Set(float64(s.LagBytes))
	}
}

func (m *Metrics) retry() {
	if m != nil {
		m.retries.Inc()
		m.sinkErrors.Inc()
	}
}

func (m *Metrics) reconnect() {
	if m != nil {
		m.reconnects.Inc()
	}
}

func (m *Metrics) position(applied, serverEnd uint64) {
	if m == nil {
		return
	}
	m.appliedLSN.Set(float64(applied))
	m.appliedAt.Store(applied)
	if serverEnd > applied {
		m.lagBytes.Set(float64(serverEnd - applied))
		m.lag.Store(serverEnd - applied)
	} else {
		m.lagBytes.Set(0)
		m.lagSeconds.Set(0)
		m.lag.Store(0)
	}
}

// BatchProgress records how far the sink has got with the batch being
// applied.
func (m *Metrics) BatchProgress(done, total int64) {
	if m != nil {
		m.batchDone.Set(float64(done))
		m.batchDocs.Set(float64(total))
	}
}

// leading records whether this process streams the slot.
func (m *Metrics) leading(on bool) {
	if m == nil {
		return
	}
	if on {
		m.leader.Set(1)
		m.role.Store(int32(RoleLeader))
	} else {
		m.leader.Set(0)
		m.role.Store(int32(RoleConnecting))
	}
}

// standingBy records that another process streams the slot.
func (m *Metrics) standingBy() {
	if m != nil {
		m.role.Store(int32(RoleStandby))
	}
}

func (m *Metrics) tailFlush() {
	if m != nil {
		m.tailFlushes.Inc()
	}
}
