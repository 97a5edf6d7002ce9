package projection

import (
	"context"
	"fmt"

	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/search"
)

// WithSearch makes the projector write every listing, order and review
// it rebuilds to the search store too, in the same page and before the
// batch's position is announced. The generation written is the projections pointer's (the
// search store's live one while the pointer names none).
func (p *Projector) WithSearch(s *search.Store) *Projector {
	p.search = s
	return p
}

// searchGeneration is the search generation a batch writes, or 0 when the
// projector writes no search rows: none configured, or a rebuild's
// catch-up that does not rebuild the listings (a rebuild rebuilds the
// listings, orders and reviews together, or none of them: see
// SearchCollections).
func (p *Projector) searchGeneration(ctx context.Context) (int64, error) {
	if p.search == nil || p.target(readstore.Listings) == "" {
		return 0, nil
	}
	if p.shadow {
		return p.searchShadow, nil
	}
	if ptr, ok := p.reads.Current(); ok && ptr.Search != 0 {
		return ptr.Search, nil
	}
	// Until a rebuild names one in the pointer, the live generation is the
	// one the store's first migration made, and only a rebuild (which
	// names its generation in the pointer) switches it: ask once, not
	// once a batch.
	if g := p.searchLive.Load(); g != 0 {
		return g, nil
	}
	g, err := p.search.Live(ctx)
	if err != nil {
		return 0, fmt.Errorf("search generation: %w", err)
	}
	p.searchLive.Store(g.ID)
	return g.ID, nil
}

// SearchCollections are the collections the search store has rows of.
var SearchCollections = []string{readstore.Listings, readstore.Orders, readstore.Reviews}

// writeSearch applies a page of one collection to the run's search
// generation: the rebuilt documents, and deletions at the batch's end.
// Each row is fenced by its own position; the generation's applied
// position is raised once the whole batch is written (finishSearch).
func (r *run) writeSearch(collection string, docs []any, gone []string) error {
	if r.searchGen == 0 || len(docs)+len(gone) == 0 {
		return nil
	}
	var b search.Batch
	for _, d := range docs {
		switch d := d.(type) {
		case readstore.Listing:
			b.Listings = append(b.Listings, search.FromDocument(d))
		case readstore.Order:
			b.Orders = append(b.Orders, d)
		case readstore.Review:
			b.Reviews = append(b.Reviews, d)
		}
	}
	end := int64(r.t.end())
	deleted := &b.Deleted
	switch collection {
	case readstore.Orders:
		deleted = &b.DeletedOrders
	case readstore.Reviews:
		deleted = &b.DeletedReviews
	case readstore.Listings:
	default:
		return nil
	}
	for _, id := range gone {
		*deleted = append(*deleted, search.Deletion{ID: id, LSN: end})
	}
	if err := r.p.search.Apply(r.ctx, r.searchGen, b); err != nil {
		return err
	}
	r.searched.Store(true)
	return nil
}

// finishSearch writes the batch's history (hist; nil: none) and raises
// the search generation's applied position to the batch's end once every
// page of it is written there, in one round trip.
func (r *run) finishSearch(ctx context.Context, hist *historyLog) error {
	var entries []search.HistoryEntry
	if hist != nil {
		if hist.err != nil {
			return hist.err
		}
		entries = hist.entries
	}
	var g int64
	if r.searchGen != 0 && r.searched.Load() {
		g = r.searchGen
	}
	if g == 0 && len(entries) == 0 {
		return nil
	}
	if err := r.p.search.Finish(ctx, g, int64(r.t.end()), entries); err != nil {
		return err
	}
	if hist != nil {
		hist.entries = nil
	}
	return nil
}
