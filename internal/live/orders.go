package live

import (
	"cmp"
	"context"
	"slices"
	"sync"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/swapmeet/swapmeet/internal/app"
	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/feed"
)

// OrderState is one message of a WatchOrders stream: an order, or a
// resync, or neither (a heartbeat).
type OrderState struct {
	Order  *app.OrderView
	Token  string
	Resync bool
}

// orderSub is one WatchOrders stream: the orders it has yet to send, each
// with the position of its earliest change not yet sent.
type orderSub struct {
	user   uuid.UUID
	role   string // "", app.RoleBuyer or app.RoleSeller
	max    int
	signal chan struct{}

	mu       sync.Mutex
	pending  map[uuid.UUID]uint64
	resyncAt uint64 // if not 0: tell the client to refetch at this position
	seen     uint64 // changes at or before it the client has: its resume position
	// The spans of the batches that applied the newest traced change of
	// a pending order, and the resync: each is delivered in its trace.
	// traces is nil until a traced change arrives.
	traces      map[uuid.UUID]trace.SpanContext
	resyncTrace trace.SpanContext
}

// offer records that order changed at pos, in the feed entry ending at
// entry, applied in the span sc (invalid if none). Past the buffer, the
// subscriber resyncs at entry instead, which covers this change and those
// before it.
func (s *orderSub) offer(order uuid.UUID, pos, entry uint64, sc trace.SpanContext) {
	s.mu.Lock()
	switch p, ok := s.pending[order]; {
	case pos <= s.resyncAt, pos <= s.seen:
	case ok:
		s.pending[order] = min(p, pos)
		s.traceLocked(order, sc)
	case len(s.pending) >= s.max:
		s.resyncLocked(entry, sc)
	default:
		s.pending[order] = pos
		s.traceLocked(order, sc)
	}
	s.mu.Unlock()
	s.wake()
}

func (s *orderSub) traceLocked(order uuid.UUID, sc trace.SpanContext) {
	if !sc.IsValid() {
		return
	}
	if s.traces == nil {
		s.traces = map[uuid.UUID]trace.SpanContext{}
	}
	s.traces[order] = sc
}

func (s *orderSub) resync(at uint64, sc trace.SpanContext) {
	s.mu.Lock()
	s.resyncLocked(at, sc)
	s.mu.Unlock()
	s.wake()
}

func (s *orderSub) resyncLocked(at uint64, sc trace.SpanContext) {
	s.resyncAt = max(s.resyncAt, at)
	s.resyncTrace = newer(s.resyncTrace, sc)
	clear(s.pending)
	s.traces = nil
}

func (s *orderSub) wake() {
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

// floor is the position below every pending change: a token no higher
// than it misses none of them.
func (s *orderSub) floorLocked(limit uint64) uint64 {
	for _, p := range s.pending {
		limit = min(limit, p-1)
	}
	return limit
}

func (h *Hub) subscribeOrders(user uuid.UUID, role string, after uint64) *orderSub {
	s := &orderSub{user: user, role: role, max: max(1, h.opts.Buffer), signal: make(chan struct{}, 1), pending: map[uuid.UUID]uint64{}, seen: after}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.users[user] == nil {
		h.users[user] = map[*orderSub]struct{}{}
	}
	h.users[user][s] = struct{}{}
	return s
}

func (h *Hub) unsubscribeOrders(s *orderSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.users[s.user], s)
	if len(h.users[s.user]) == 0 {
		delete(h.users, s.user)
	}
}

// replayPage is how many feed entries a resuming stream reads at a time.
const replayPage = 512

// replay offers the subscriber every change of its orders after position
// after and up to position to, from the feed's history. It returns false
// if the history no longer reaches back to after.
func (h *Hub) replay(ctx context.Context, s *orderSub, after, to uint64) (bool, error) {
	keys := h.keys[feed.Orders]
	floor, ok, err := feed.Floor(ctx, h.rdb, keys)
	if err != nil || !ok || after < floor {
		return false, err
	}
	from := feed.After(after)
	for {
		entries, err := feed.Range(ctx, h.rdb, feed.Orders, keys, from, replayPage)
		if err != nil {
			return false, err
		}
		for _, e := range entries {
			if e.Position > to {
				break
			}
			sc := traceOf(e)
			if e.All {
				s.resync(e.Position, sc)
				continue
			}
			for _, c := range e.Changes {
				mine := (c.Buyer == s.user && s.role != app.RoleSeller) || (c.Seller == s.user && s.role != app.RoleBuyer)
				if mine && c.Position > after {
					s.offer(c.ID, c.Position, e.Position, sc)
				}
			}
		}
		if len(entries) < replayPage || entries[len(entries)-1].Position > to {
			break
		}
		from = "(" + entries[len(entries)-1].ID()
	}
	// The floor rises before entries are trimmed: if it passed after
	// meanwhile, some of what was read may be missing.
	floor, ok, err = feed.Floor(ctx, h.rdb, keys)
	if err != nil || !ok || after < floor {
		return false, err
	}
	return true, nil
}

// WatchOrders streams the caller's orders in role ("" for both) to send:
// with a resume position, first every order changed after it, then each
// change as it comes.
func (h *Hub) WatchOrders(ctx context.Context, st Stream, user uuid.UUID, role, resume string, send func(OrderState) error) error {
	_, resumed, err := app.ValidateWatch("", "", resume)
	if err != nil {
		return err
	}
	after, err := h.readSidePosition(ctx, resumed)
	if err != nil {
		return err
	}
	release, err := h.open(ctx, st.Owner)
	if err != nil {
		return err
	}
	defer release()
	sub := h.subscribeOrders(user, role, after)
	defer h.unsubscribeOrders(sub)

	// Attached first, then replayed up to a position read after: a change
	// after it is offered live, one before it is in the history.
	pos := h.Position(feed.Orders)
	token := max(after, pos)
	if after != 0 && after < pos {
		complete, err := h.replay(ctx, sub, after, pos)
		if err != nil {
			return &app.Error{Code: app.CodeUnavailable, Message: "the change feed is unavailable; retry shortly", Err: err}
		}
		if !complete {
			sub.resync(pos, trace.SpanContext{})
		}
		token = after
	}
	sent := map[uuid.UUID]uint64{}
	next := func() error {
		through := h.Position(feed.Orders)
		sub.mu.Lock()
		resyncAt, resyncTrace := sub.resyncAt, sub.resyncTrace
		sub.resyncAt, sub.resyncTrace = 0, trace.SpanContext{}
		type item struct {
			id    uuid.UUID
			pos   uint64
			trace trace.SpanContext
		}
		work := make([]item, 0, len(sub.pending))
		for id, p := range sub.pending {
			work = append(work, item{id, p, sub.traces[id]})
		}
		clear(sub.pending)
		sub.traces = nil
		sub.mu.Unlock()
		if resyncAt != 0 {
			token = max(token, resyncAt)
			clear(sent)
			h.metrics.resynced()
			err := deliver(ctx, resyncTrace, func() error {
				return send(OrderState{Token: consistency.Token(token), Resync: true})
			})
			if err != nil {
				return err
			}
		}
		slices.SortFunc(work, func(a, b item) int { return cmp.Compare(a.pos, b.pos) })
		for i, it := range work {
			v, err := h.q.GetOrder(ctx, user, it.id.String(), consistency.Token(it.pos))
			if app.ErrorCode(err) == app.CodeNotFound {
				continue
			}
			if err != nil {
				return err
			}
			// Safe for the client to resume from: below every change not
			// yet sent, here or newly pending.
			limit := through
			if i+1 < len(work) {
				limit = min(limit, work[i+1].pos-1)
			}
			sub.mu.Lock()
			limit = sub.floorLocked(limit)
			sub.mu.Unlock()
			token = max(token, limit)
			if v.Position <= sent[it.id] {
				continue
			}
			if len(sent) >= 4*sub.max {
				clear(sent) // only a guard against repeats; the client compares too
			}
			sent[it.id] = v.Position
			h.metrics.sent()
			err = deliver(ctx, it.trace, func() error {
				return send(OrderState{Order: &v, Token: consistency.Token(token)})
			})
			if err != nil {
				return err
			}
		}
		return nil
	}
	beat := func() error {
		p := h.Position(feed.Orders)
		sub.mu.Lock()
		if sub.resyncAt == 0 {
			token = max(token, sub.floorLocked(p))
		}
		sub.mu.Unlock()
		return send(OrderState{Token: consistency.Token(token)})
	}
	// The first message gives the client a position at once.
	if len(sub.signal) == 0 {
		if err := beat(); err != nil {
			return err
		}
	}
	return h.loop(ctx, st, sub.signal, next, beat)
}
