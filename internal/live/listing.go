package live

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/swapmeet/swapmeet/internal/app"
	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/feed"
	"github.com/swapmeet/swapmeet/internal/wait"
)

// ListingState is one message of a WatchListing stream. Listing is nil in
// a heartbeat.
type ListingState struct {
	Listing *app.ListingView
	Token   string
}

// state is a fetched listing with the position it is good for: it
// reflects every change of the listing at or before pos.
type state struct {
	view app.ListingView
	pos  uint64
	// trace is the span of the batch that applied the newest change the
	// fetch covers, if that batch was traced: the state is delivered in
	// its trace.
	trace trace.SpanContext
}

// listingTopic is one listing's subscribers and the fetch they share.
type listingTopic struct {
	h  *Hub
	id uuid.UUID

	mu       sync.Mutex
	subs     map[*listingSub]struct{}
	dirty    bool // a change arrived since the running fetch began
	fetching bool
	trace    trace.SpanContext // of the newest traced change not yet fetched
	// changedAt is the feed position of the newest change told of. A
	// fetch reads at least there: the hub raises its own position only
	// after dispatching an entry, so a fetch that started meanwhile would
	// otherwise read at the position before the change, and could be
	// answered from a near cache the change's announcement has not yet
	// evicted.
	changedAt uint64
}

// changed schedules a fetch of the listing, for a change at feed position
// pos applied in the span sc (invalid if none); the hub's lock is held.
func (t *listingTopic) changed(pos uint64, sc trace.SpanContext) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dirty = true
	t.changedAt = max(t.changedAt, pos)
	t.trace = newer(t.trace, sc)
	if !t.fetching {
		t.fetching = true
		go t.fetch()
	}
}

// fetch reads the listing until no change arrived during a read, and
// offers each state read to every subscriber. Failures are retried: the
// subscribers' streams stay up meanwhile, and their heartbeats do not
// move past the change.
func (t *listingTopic) fetch() {
	backoff := wait.NewBackoff(50*time.Millisecond, 5*time.Second)
	for {
		t.mu.Lock()
		t.dirty = false
		tr := t.trace
		t.trace = trace.SpanContext{}
		pos := max(t.h.Position(feed.Listings), t.changedAt)
		t.mu.Unlock()
		ctx, cancel := context.WithTimeout(t.h.life, 10*time.Second)
		// With the position as a token, the read waits until this process
		// has processed the announcement that evicted the change from its
		// near cache: the feed has the change before the announcement.
		v, err := t.h.q.GetListing(ctx, t.id.String(), consistency.Token(pos))
		cancel()
		t.mu.Lock()
		if err != nil {
			if len(t.subs) == 0 || t.h.life.Err() != nil {
				t.fetching = false
				t.mu.Unlock()
				return
			}
			t.dirty = true
			t.trace = newer(tr, t.trace)
			t.mu.Unlock()
			in := backoff.Next()
			t.h.log.Warn("live: fetching a changed listing failed; retrying", "listing", t.id, "err", err, "in", in)
			if !wait.Sleep(t.h.life, in) {
				t.mu.Lock()
				t.fetching = false
				t.mu.Unlock()
				return
			}
			continue
		}
		t.h.metrics.fetched()
		s := &state{view: v, pos: max(pos, v.Position), trace: tr}
		for sub := range t.subs {
			sub.offer(s)
		}
		if !t.dirty || len(t.subs) == 0 {
			t.fetching = false
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
	}
}

// listingSub is one WatchListing stream.
type listingSub struct {
	signal chan struct{} // cap 1: something to send

	mu      sync.Mutex
	pending *state // the newest state not yet sent
}

func (s *listingSub) offer(st *state) {
	s.mu.Lock()
	if s.pending == nil || st.pos > s.pending.pos {
		s.pending = st
	}
	s.mu.Unlock()
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

func (s *listingSub) take() *state {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.pending
	s.pending = nil
	return st
}

// subscribe adds a subscriber to the listing's topic.
func (h *Hub) subscribeListing(id uuid.UUID) (*listingTopic, *listingSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.listings[id]
	if t == nil {
		t = &listingTopic{h: h, id: id, subs: map[*listingSub]struct{}{}}
		h.listings[id] = t
	}
	s := &listingSub{signal: make(chan struct{}, 1)}
	t.mu.Lock()
	t.subs[s] = struct{}{}
	t.mu.Unlock()
	return t, s
}

func (h *Hub) unsubscribeListing(t *listingTopic, s *listingSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t.mu.Lock()
	delete(t.subs, s)
	empty := len(t.subs) == 0
	t.mu.Unlock()
	if empty && h.listings[t.id] == t {
		delete(h.listings, t.id)
	}
}

// idle reports whether the topic has offered every change it was told
// of: no fetch is due or running.
func (t *listingTopic) idle() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.dirty && !t.fetching
}

// WatchListing streams a listing to send: its current state (unless resume
// names a position the listing has not changed since), then each change.
// It returns when ctx ends, the stream's lifetime runs out (nil), or send
// fails.
func (h *Hub) WatchListing(ctx context.Context, st Stream, listingID, resume string, send func(ListingState) error) error {
	id, resumed, err := app.ValidateWatch("listing_id", listingID, resume)
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
	t, sub := h.subscribeListing(id)
	defer h.unsubscribeListing(t, sub)

	// Attached first, then read: a change after the read is offered. A
	// write's token is waited for, so its listing is found.
	pos := h.Position(feed.Listings)
	v, err := h.q.GetListing(ctx, id.String(), resume)
	if err != nil {
		return err
	}
	sentPos := max(after, v.Position) // what the client has
	token := max(after, pos, v.Position)
	if after == 0 || v.Position > after {
		if err := send(ListingState{Listing: &v, Token: consistency.Token(token)}); err != nil {
			return err
		}
		h.metrics.sent()
	} else if err := send(ListingState{Token: consistency.Token(token)}); err != nil {
		return err
	}
	next := func() error {
		s := sub.take()
		if s == nil {
			return nil
		}
		token = max(token, s.pos)
		if s.view.Position <= sentPos {
			return nil // nothing newer than what the client has
		}
		sentPos = s.view.Position
		h.metrics.sent()
		return deliver(ctx, s.trace, func() error {
			return send(ListingState{Listing: &s.view, Token: consistency.Token(token)})
		})
	}
	beat := func() error {
		// The hub's position first: a change at or before it is either
		// pending, or in a fetch, or sent.
		p := h.Position(feed.Listings)
		if t.idle() {
			sub.mu.Lock()
			idle := sub.pending == nil
			sub.mu.Unlock()
			if idle {
				token = max(token, p)
			}
		}
		return send(ListingState{Token: consistency.Token(token)})
	}
	return h.loop(ctx, st, sub.signal, next, beat)
}
