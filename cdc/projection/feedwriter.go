package projection

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/swapmeet/swapmeet/internal/feed"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

// FeedWriter appends what each batch changed to the change feed (package
// feed), which the Watch streams read.
type FeedWriter struct {
	Keys [2]feed.Keys // by feed.Kind
	// MaxChanges bounds the changes of one kind a batch lists; a batch
	// that changed more (a bulk import, a rename of a prolific seller)
	// writes one entry that asks every watcher to look again.
	MaxChanges int
	// Retention is how long the feed keeps history for a client that
	// resumes with an old position.
	Retention time.Duration

	mu      sync.Mutex
	marks   []mark // when each recent batch ended, oldest first
	trimmed time.Time
}

// mark records that the batch ending at pos was fed at t.
type mark struct {
	t   time.Time
	pos uint64
}

// WithFeedWriter makes the projector write the change feed, after each
// batch's documents and before its applied position.
func (p *Projector) WithFeedWriter(f *FeedWriter) *Projector {
	p.feed = f
	return p
}

// changes collects what a run changed, for the feed. It is safe for the
// run's workers to add to at once.
type changes struct {
	max int
	mu  sync.Mutex
	of  [2][]feed.Change
	all [2]bool
}

func (c *changes) add(k feed.Kind, ch feed.Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.all[k] {
		return
	}
	if len(c.of[k]) >= c.max {
		c.all[k], c.of[k] = true, nil
		return
	}
	c.of[k] = append(c.of[k], ch)
}

// record adds a written page's documents to the run's changes: listings
// by id, orders with their parties. Deleted documents are changes too
// (with the batch's end as their position), but only listings and orders
// are watched.
func (r *run) record(proj Collection, ids []uuid.UUID, docs map[uuid.UUID]any) {
	if r.changes == nil {
		return
	}
	end := uint64(r.t.end())
	for _, id := range ids {
		d, ok := docs[id]
		switch proj.collection {
		case readstore.Listings:
			pos := end
			if ok {
				pos = uint64(lsnOf(d))
			}
			r.changes.add(feed.Listings, feed.Change{ID: id, Position: pos})
		case readstore.Orders:
			o, isOrder := d.(readstore.Order)
			if !ok || !isOrder {
				continue // orders are never deleted
			}
			buyer, _ := uuid.Parse(o.Buyer.ID)
			seller, _ := uuid.Parse(o.Seller.ID)
			r.changes.add(feed.Orders, feed.Change{ID: id, Buyer: buyer, Seller: seller, Position: uint64(o.LSN)})
		}
	}
}

// publish appends a run's changes to the feed and trims its history.
// traceParent, if not "", is the W3C traceparent of the span that applied
// the batch: every entry carries it (feed.Entry.TraceParent), so that the
// Watch streams deliver the changes in the batch's trace.
func (f *FeedWriter) publish(ctx context.Context, p *Projector, c *changes, from, end uint64, traceParent string) error {
	pipe := p.rdb.Pipeline()
	check := f.queue(ctx, pipe, c, from, end, traceParent)
	_, _ = pipe.Exec(ctx)
	if err := check(); err != nil {
		return err
	}
	return f.trim(ctx, p, end)
}

// queue queues publish's appends in pipe, with others, and returns their
// check; the trim is left to the caller.
func (f *FeedWriter) queue(ctx context.Context, pipe redis.Pipeliner, c *changes, from, end uint64, traceParent string) func() error {
	var checks [2]func() error
	for k := range feed.Kind(2) {
		entries := feed.Entries(end, c.of[k], c.all[k])
		for i := range entries {
			entries[i].TraceParent = traceParent
		}
		checks[k] = feed.AppendIn(ctx, pipe, k, f.Keys[k], from, entries)
	}
	return func() error { return errors.Join(checks[0](), checks[1]()) }
}

// trim drops history older than the retention, once a minute. The marks
// are in memory: a process that just started trims nothing until it has
// fed for longer than the retention, so the feed keeps at least that.
func (f *FeedWriter) trim(ctx context.Context, p *Projector, end uint64) error {
	f.mu.Lock()
	now := time.Now()
	if n := len(f.marks); n == 0 || now.Sub(f.marks[n-1].t) >= time.Second {
		f.marks = append(f.marks, mark{now, end})
	}
	var cut uint64
	i := 0
	for i < len(f.marks) && now.Sub(f.marks[i].t) > f.Retention {
		cut = f.marks[i].pos
		i++
	}
	due := cut != 0 && now.Sub(f.trimmed) >= time.Minute
	if due {
		f.marks = f.marks[i:]
		f.trimmed = now
	}
	f.mu.Unlock()
	if !due {
		return nil
	}
	for k := range feed.Kind(2) {
		if err := feed.Trim(ctx, p.rdb, f.Keys[k], cut); err != nil {
			return fmt.Errorf("trim the %s feed: %w", k, err)
		}
	}
	return nil
}
