// Package live serves the Watch streams: it reads the change feed (package
// feed) once per process and fans each change out to the process's own
// subscribers, in memory.
//
// A listing's subscribers share one topic: a change is fetched once, with
// fresh image URLs, and offered to each of them; a subscriber that reads
// slowly holds only the newest state. An order's change is offered to the
// subscribers of its buyer and of its seller; each holds the ids of the
// orders it has yet to send, up to a bound past which it is told to
// resync.
//
// Positions are WAL positions, as in consistency tokens. The hub's
// position for a kind is how far the feed has been dispatched: every
// change at or before it has been offered to the topics that existed.
package live

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/swapmeet/swapmeet/internal/app"
	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/feed"
	"github.com/swapmeet/swapmeet/internal/wait"
)

// Options bound the streams of one process.
type Options struct {
	// Heartbeat is how often an idle stream sends a message with only a
	// resume token.
	Heartbeat time.Duration `env:"SWAPMEET_WATCH_HEARTBEAT"`
	// MaxLifetime ends a stream cleanly; the client resumes with its token.
	MaxLifetime time.Duration `env:"SWAPMEET_WATCH_MAX_LIFETIME"`
	// MaxStreams bounds the open streams of the process.
	MaxStreams int `env:"SWAPMEET_WATCH_MAX_STREAMS"`
	// MaxStreamsPerOwner bounds the streams of one user, or of one client
	// address for anonymous streams.
	MaxStreamsPerOwner int `env:"SWAPMEET_WATCH_MAX_STREAMS_PER_USER"`
	// Buffer is how many changed orders a subscriber may have yet to send
	// before it is told to resync instead.
	Buffer int `env:"SWAPMEET_WATCH_BUFFER"`
	// SessionCheck is how often a signed-in stream checks that its session
	// still stands.
	SessionCheck time.Duration
}

// DefaultOptions are the settings' defaults.
var DefaultOptions = Options{
	Heartbeat:          15 * time.Second,
	MaxLifetime:        30 * time.Minute,
	MaxStreams:         20_000,
	MaxStreamsPerOwner: 16,
	Buffer:             256,
	SessionCheck:       time.Second,
}

// Hub fans the feed out to one process's subscribers.
type Hub struct {
	rdb     redis.UniversalClient
	keys    [2]feed.Keys
	applied func() uint64 // the applied position the process knows of
	q       *app.Queries
	opts    Options
	log     *slog.Logger
	metrics *Metrics

	pos [2]atomic.Uint64 // by feed.Kind

	mu        sync.Mutex
	listings  map[uuid.UUID]*listingTopic
	users     map[uuid.UUID]map[*orderSub]struct{}
	streams   int
	owners    map[string]int
	ready     chan struct{} // closed once both kinds are followed
	stopped   chan struct{} // closed when Run returns: every stream ends
	following [2]bool

	// life ends when Run returns: the work the hub starts on its own
	// (fetches of changed listings) stops with it.
	life context.Context
	end  context.CancelFunc
}

// NewHub returns a hub; Run feeds it. applied returns the highest position
// the process knows the projections have applied.
func NewHub(rdb redis.UniversalClient, prefix string, applied func() uint64, q *app.Queries, opts Options, log *slog.Logger) *Hub {
	life, end := context.WithCancel(context.Background())
	return &Hub{
		life: life, end: end,
		rdb: rdb, keys: [2]feed.Keys{feed.KeysFor(prefix, feed.Listings), feed.KeysFor(prefix, feed.Orders)},
		applied: applied, q: q, opts: opts, log: log,
		listings: map[uuid.UUID]*listingTopic{}, users: map[uuid.UUID]map[*orderSub]struct{}{},
		owners: map[string]int{}, ready: make(chan struct{}), stopped: make(chan struct{}),
	}
}

// WithMetrics makes the hub report on m.
func (h *Hub) WithMetrics(m *Metrics) *Hub {
	h.metrics = m
	return h
}

// Run follows both kinds of the feed until ctx ends. Then every stream
// ends cleanly, as at the end of its lifetime, so that a server shutting
// down is not held up by them; their clients resume elsewhere.
func (h *Hub) Run(ctx context.Context) {
	defer close(h.stopped)
	defer h.end()
	var wg sync.WaitGroup
	for k := range feed.Kind(2) {
		wg.Go(func() { h.follow(ctx, k) })
	}
	wg.Wait()
}

// afterDispatch, set only by tests, runs between dispatching an entry and
// raising the position to it: the moment a fetch the entry started may
// already be reading.
var afterDispatch atomic.Pointer[func(feed.Kind)]

// readCount is how many entries one read of the feed returns at most.
const readCount = 256

// follow reads one kind of the feed from its end and dispatches every
// entry. Its position rises to each entry's, and to the applied position
// seen before a read that found the feed drained: the CDC writes a
// batch's entries before it announces the batch applied.
func (h *Hub) follow(ctx context.Context, k feed.Kind) {
	last := ""
	backoff := wait.NewBackoff(100*time.Millisecond, 5*time.Second)
	for ctx.Err() == nil {
		applied := h.applied()
		var entries []feed.Entry
		var err error
		if last == "" {
			last, err = feed.LastID(ctx, h.rdb, h.keys[k])
			if err == nil {
				if p, _, perr := feed.ParseID(last); perr == nil {
					h.raise(k, max(p, applied))
				}
				h.started(k)
				continue
			}
		} else {
			entries, err = feed.Read(ctx, h.rdb, k, h.keys[k], last, readCount, time.Second)
		}
		if err != nil {
			if ctx.Err() == nil {
				in := backoff.Next()
				h.log.Warn("live: reading the change feed failed; retrying", "kind", k, "err", err, "in", in)
				wait.Sleep(ctx, in)
			}
			continue
		}
		backoff.Reset()
		for _, e := range entries {
			h.dispatch(k, e)
			if f := afterDispatch.Load(); f != nil {
				(*f)(k)
			}
			last = e.ID()
			h.raise(k, e.Position)
		}
		if len(entries) < readCount {
			h.raise(k, applied)
		}
	}
}

func (h *Hub) started(k feed.Kind) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.following[k] {
		return
	}
	h.following[k] = true
	if h.following[0] && h.following[1] {
		close(h.ready)
	}
}

// raise lifts a kind's position to p; it never lowers it.
func (h *Hub) raise(k feed.Kind, p uint64) {
	for {
		cur := h.pos[k].Load()
		if p <= cur || h.pos[k].CompareAndSwap(cur, p) {
			return
		}
	}
}

// Position is how far a kind of the feed has been dispatched.
func (h *Hub) Position(k feed.Kind) uint64 { return h.pos[k].Load() }

// dispatch offers one entry's changes to the topics that want them.
// Each change carries the entry's trace to the streams that send it.
func (h *Hub) dispatch(k feed.Kind, e feed.Entry) {
	h.metrics.entry(k)
	sc := traceOf(e)
	h.mu.Lock()
	defer h.mu.Unlock()
	if k == feed.Listings {
		if e.All {
			for _, t := range h.listings {
				t.changed(e.Position, sc)
			}
			return
		}
		for _, c := range e.Changes {
			if t := h.listings[c.ID]; t != nil {
				t.changed(e.Position, sc)
			}
		}
		return
	}
	if e.All {
		for _, subs := range h.users {
			for s := range subs {
				s.resync(e.Position, sc)
			}
		}
		return
	}
	for _, c := range e.Changes {
		for s := range h.users[c.Buyer] {
			if s.role != app.RoleSeller {
				s.offer(c.ID, c.Position, e.Position, sc)
			}
		}
		if c.Seller == c.Buyer {
			continue
		}
		for s := range h.users[c.Seller] {
			if s.role != app.RoleBuyer {
				s.offer(c.ID, c.Position, e.Position, sc)
			}
		}
	}
}

// admit counts a new stream against the limits, or refuses it.
func (h *Hub) admit(owner string) (release func(), err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.streams >= h.opts.MaxStreams {
		h.metrics.refused()
		return nil, &app.Error{Code: app.CodeRateLimited, Message: "this server has as many live streams as it serves; retry shortly", RetryAfter: time.Second}
	}
	if h.owners[owner] >= h.opts.MaxStreamsPerOwner {
		h.metrics.refused()
		return nil, &app.Error{Code: app.CodeRateLimited, Message: "too many live streams open at once; close one first", RetryAfter: time.Second}
	}
	h.streams++
	h.owners[owner]++
	h.metrics.opened()
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.streams--
			if h.owners[owner]--; h.owners[owner] <= 0 {
				delete(h.owners, owner)
			}
			h.metrics.closed()
		})
	}, nil
}

// readSidePosition is the read side's position of a resume token (a
// stream's, or a write's consistency token, which names its history).
func (h *Hub) readSidePosition(ctx context.Context, p consistency.Position) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, h.q.ConsistencyWait())
	defer cancel()
	return h.q.ReadSidePosition(ctx, p)
}

// open admits a stream and waits until the hub follows the feed, so that
// a position it gives means something. release gives the stream's place
// back.
func (h *Hub) open(ctx context.Context, owner string) (release func(), err error) {
	if release, err = h.admit(owner); err != nil {
		return nil, err
	}
	if err := h.waitReady(ctx); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// waitReady waits until the hub follows the feed.
func (h *Hub) waitReady(ctx context.Context) error {
	select {
	case <-h.ready:
		return nil
	case <-h.stopped:
		return &app.Error{Code: app.CodeUnavailable, Message: "this server is shutting down; retry"}
	case <-ctx.Done():
		return &app.Error{Code: app.CodeUnavailable, Message: "live updates are not available yet; retry shortly", Err: ctx.Err()}
	}
}

// Stream is what every Watch stream shares: its limits, its heartbeat, its
// lifetime and its session.
type Stream struct {
	// Owner is the user id, or the client address of an anonymous caller,
	// whose streams MaxStreamsPerOwner counts.
	Owner string
	// Session, if set, is checked every SessionCheck; the stream ends with
	// its error.
	Session func(context.Context) error
}

// errEnded ends a stream cleanly at its maximum lifetime.
var errEnded = errors.New("stream reached its maximum lifetime")

// loop runs a stream's sender: next is called whenever the subscriber is
// signalled, beat on every heartbeat. It returns nil at the end of the
// lifetime, and the first error of next, beat, the session or ctx.
func (h *Hub) loop(ctx context.Context, st Stream, signal <-chan struct{}, next, beat func() error) error {
	heartbeat := time.NewTicker(h.opts.Heartbeat)
	defer heartbeat.Stop()
	lifetime := time.NewTimer(h.opts.MaxLifetime)
	defer lifetime.Stop()
	var check <-chan time.Time
	if st.Session != nil {
		t := time.NewTicker(h.opts.SessionCheck)
		defer t.Stop()
		check = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-lifetime.C:
			return nil
		case <-h.stopped:
			return nil
		case <-check:
			if err := st.Session(ctx); err != nil {
				return err
			}
		case <-signal:
			if err := next(); err != nil {
				return err
			}
		case <-heartbeat.C:
			if err := beat(); err != nil {
				return err
			}
		}
	}
}
