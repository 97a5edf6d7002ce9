package projection

import (
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pglogrepl"

	"github.com/swapmeet/swapmeet/cdc/wal"
	"github.com/swapmeet/swapmeet/internal/audit"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

// The collections a projector maintains, as indexes into touched's arrays.
const (
	cUsers = iota
	cListings
	cOrders
	cReviews
	nCollections
)

var collectionIndex = map[string]int{
	readstore.Users: cUsers, readstore.Listings: cListings, readstore.Orders: cOrders, readstore.Reviews: cReviews,
}

// idSet maps a document id to the index of the last transaction of the
// batch that touched it. Indexes rise with commit order, so the last
// write is also the highest.
type idSet map[uuid.UUID]int32

// touched is the projector's wal.Batch: for each collection, the documents
// the batch's changes touch directly, plus the users whose summary (name,
// rating) and the listings whose first image other documents embed. It
// keeps 20 bytes and a map slot per distinct document and nothing of the
// rows, so a transaction changing the same listing twice, or a million
// listings with 5 kB descriptions, costs what its distinct documents cost.
//
// A set that outgrows spill is dropped and its collection marked for a
// full pass: every document rebuilt from Postgres in keyset pages. That
// bounds the memory of a transaction of any size, at the price of
// rewriting documents the transaction did not change.
type touched struct {
	spill int
	base  uint64 // added to every end: the read side's positions (Projector.SetBase)

	ends []pglogrepl.LSN // per committed transaction, in commit order
	xids []uint32

	docs          [nCollections]idSet
	full          [nCollections]bool
	summaries     idSet // users whose name or rating other documents embed
	mediaListings idSet // listings whose images changed: orders show a thumbnail
	size          int

	hist *historyLog // nil: no history recorded (a rebuild's catch-up)
	// traces are the distinct traceparents of the batch's annotated
	// transactions, at most maxTraces: the spans its apply joins or links.
	traces []string
	// lastCommit is when the batch's last transaction committed: the
	// stages' lag is measured from it.
	lastCommit time.Time
}

// maxTraces bounds the trace links of one batch.
const maxTraces = 128

func newTouched(spill int) *touched {
	t := &touched{spill: spill, summaries: idSet{}, mediaListings: idSet{}}
	for i := range t.docs {
		t.docs[i] = idSet{}
	}
	return t
}

// open is the index the open transaction's changes are recorded under.
func (t *touched) open() int32 { return int32(len(t.ends)) }

// Commit implements wal.Batch.
func (t *touched) Commit(c wal.Commit) {
	t.ends = append(t.ends, c.EndLSN+pglogrepl.LSN(t.base))
	t.xids = append(t.xids, c.Xid)
	t.lastCommit = c.CommitTime
	if t.hist != nil {
		t.hist.commit()
	}
}

// TraceParents are the W3C traceparents the batch's transactions were
// annotated with (distinct, at most maxTraces), in commit order.
func (t *touched) TraceParents() []string { return t.traces }

// Annotate implements wal.Annotated: the open transaction's annotation
// (see audit). One that cannot be decoded leaves the transaction
// unannotated rather than stopping the read side: only the application
// can write one (docs/history.md).
func (t *touched) Annotate(prefix string, content []byte) {
	if prefix != audit.Prefix {
		return
	}
	a, err := audit.Decode(content)
	if err != nil {
		return
	}
	if a.TraceParent != "" && len(t.traces) < maxTraces && !slices.Contains(t.traces, a.TraceParent) {
		t.traces = append(t.traces, a.TraceParent)
	}
	if t.hist != nil {
		t.hist.note, t.hist.noted = a, true
	}
}

// Size implements wal.Batch: distinct documents held, with a spilled set
// counting as the bound it outgrew.
func (t *touched) Size() int { return t.size }

// end is the end LSN of the batch's last transaction.
func (t *touched) end() pglogrepl.LSN {
	if len(t.ends) == 0 {
		return 0
	}
	return t.ends[len(t.ends)-1]
}

// Add implements wal.Batch: it records which documents a row change touches.
func (t *touched) Add(c *wal.Change) {
	if t.hist != nil {
		t.hist.add(c)
	}
	if c.Op == wal.OpTruncate {
		// Which rows went is not in the WAL: only a full pass is safe.
		for i := range t.full {
			t.spillDocs(i)
		}
		t.spillSummaries()
		return
	}
	switch c.Table {
	case "users":
		t.touch(cUsers, c, "id")
		// Only the name is copied into other documents; the rating
		// follows reviews. A bio edit touches the profile alone.
		if c.Op == wal.OpUpdate && !c.Same("display_name") {
			t.touchSummary(c, "id")
		}
	case "listings":
		t.touch(cListings, c, "id")
		// Listing counts are part of the seller's profile, but an edit
		// that keeps status and seller leaves them alone.
		if c.Op == wal.OpUpdate && c.Same("status") && c.Same("seller_id") {
			return
		}
		t.touch(cUsers, c, "seller_id")
		if v, ok := c.OldValue("seller_id"); ok {
			t.add(cUsers, v)
		}
	case "listing_media":
		t.touch(cListings, c, "listing_id")
		if v, ok := c.Value("listing_id"); ok && t.mediaListings != nil {
			t.put(&t.mediaListings, v, t.spillMedia)
		}
	case "orders":
		t.touch(cOrders, c, "id")
	case "order_items":
		t.touch(cOrders, c, "order_id")
	case "reviews":
		t.touch(cReviews, c, "id")
		// The seller's rating is in their profile and in every document
		// that embeds their summary.
		t.touch(cUsers, c, "seller_id")
		t.touchSummary(c, "seller_id")
	}
}

func (t *touched) touch(coll int, c *wal.Change, column string) {
	if v, ok := c.Value(column); ok {
		t.add(coll, v)
	}
}

func (t *touched) add(coll int, v []byte) {
	if t.full[coll] {
		return
	}
	t.put(&t.docs[coll], v, func() { t.spillDocs(coll) })
}

func (t *touched) touchSummary(c *wal.Change, column string) {
	if t.summaries == nil {
		return
	}
	if v, ok := c.Value(column); ok {
		t.put(&t.summaries, v, t.spillSummaries)
	}
}

// put records the id in v under the open transaction, spilling the set
// once it outgrows the bound.
func (t *touched) put(s *idSet, v []byte, spill func()) {
	id, err := uuid.ParseBytes(v)
	if err != nil {
		return // not a document key
	}
	if _, seen := (*s)[id]; !seen {
		if len(*s) >= t.spill {
			spill()
			return
		}
		t.size++
	}
	(*s)[id] = t.open()
}

func (t *touched) spillDocs(coll int) {
	if t.full[coll] {
		return
	}
	t.size += t.spill - len(t.docs[coll])
	t.full[coll] = true
	t.docs[coll] = nil
}

// spillSummaries gives up tracking renamed users: every document that
// embeds a summary is rebuilt.
func (t *touched) spillSummaries() {
	if t.summaries == nil {
		return
	}
	t.size -= len(t.summaries)
	t.summaries = nil
	t.spillDocs(cListings)
	t.spillDocs(cOrders)
	t.spillDocs(cReviews)
}

func (t *touched) spillMedia() {
	if t.mediaListings == nil {
		return
	}
	t.size -= len(t.mediaListings)
	t.mediaListings = nil
	t.spillDocs(cOrders)
}

// stamper gives each rebuilt document the LSN it is stamped with: the end
// of the last transaction that changed it or anything it embeds. Stamps
// therefore do not depend on how transactions were batched, and every
// write of a document within a batch carries the same stamp.
type stamper interface {
	doc(coll int, id uuid.UUID) int64
	summary(user uuid.UUID) int64
	media(listing uuid.UUID) int64
}

func (t *touched) lsn(s idSet, full bool, id uuid.UUID) int64 {
	if full {
		return int64(t.end())
	}
	if i, ok := s[id]; ok {
		return int64(t.ends[i])
	}
	return 0
}

func (t *touched) doc(coll int, id uuid.UUID) int64 { return t.lsn(t.docs[coll], t.full[coll], id) }
func (t *touched) summary(user uuid.UUID) int64     { return t.lsn(t.summaries, false, user) }
func (t *touched) media(listing uuid.UUID) int64    { return t.lsn(t.mediaListings, false, listing) }

// constStamp stamps every document alike: a bulk load at its snapshot's
// position, or 0 where stamps do not matter.
type constStamp int64

func (s constStamp) doc(int, uuid.UUID) int64 { return int64(s) }
func (s constStamp) summary(uuid.UUID) int64  { return int64(s) }
func (s constStamp) media(uuid.UUID) int64    { return int64(s) }
