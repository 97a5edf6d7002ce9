package cdc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/swapmeet/swapmeet/cdc/projection"
	"github.com/swapmeet/swapmeet/cdc/wal"
	"github.com/swapmeet/swapmeet/db/sqlc"
	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/search"
	"github.com/swapmeet/swapmeet/internal/wait"
)

// Rebuild builds new generations of the chosen collections from Postgres
// while everything keeps serving, then switches readers to them:
//
//  1. create a new slot that exports a snapshot;
//  2. bulk-load the collections into shadow collections from that snapshot;
//  3. build their indexes;
//  4. stream the new slot into the shadows until they have caught up;
//  5. switch the projections pointer: readers and the CDC follow it;
//  6. once the CDC has moved to the new slot, drop the old slot and the
//     old generations.
//
// When the listings, orders or reviews are rebuilt and a search store is
// given, all three are (a search generation holds rows of each), and a
// new search generation is built beside them from the same snapshot and
// the same catch-up: created and loaded with the listings (step 2), sealed with the
// indexes (step 3), fed by the catch-up (step 4), named by the pointer and
// made the readers' generation right after it (step 5): the CDC writes the
// search generation the pointer names, so the two move together; the old
// one is dropped with the old collections (step 6).
//
// Until step 5 nothing live is touched: an interrupted rebuild leaves the
// live generation and the running CDC as they were, and the next rebuild
// removes its leftovers first.
//
// The handover is at the new slot's confirmed position, not at its start.
// The catch-up (step 4) confirms the new slot past its start, but it feeds
// only the rebuilt collections, and only their shadows; the new slot will
// never send what it confirmed again. So the pointer names that confirmed
// position (Pointer.Handover), and the live CDC leaves the old slot only
// once it has applied the old slot that far, into every collection (see
// Process). Nothing before the handover is then missing from any
// collection: the other collections got it from the old slot, the rebuilt
// ones from the load and the catch-up (and from the old slot again, which
// is harmless: a projector re-reads the current rows). Everything after it
// comes from the new slot. The alternative, a catch-up that feeds every
// collection, would make two writers of the live collections, cache and
// applied position; this way the catch-up stays private to the shadows,
// and the only cost is that the live CDC may have to finish the old slot
// up to the handover before it moves, which it had to apply anyway.
type Rebuild struct {
	Reader      wal.Config // connection, publication, logging for the catch-up
	BaseSlot    string     // slot names derive from it: base_r<generation>
	PG          *pgxpool.Pool
	Reads       *readstore.Model
	Sink        *projection.Projector
	Search      *search.Store // nil: no search projection to rebuild
	Collections []string
	Progress    io.Writer // progress output; nil for none
	Terminal    bool      // Progress is a terminal: draw a bar
	Log         *slog.Logger
	// HandoverTimeout bounds the wait for the CDC to leave the old slot.
	HandoverTimeout time.Duration
	// Grace is how long old generations outlive the switch, so that
	// readers still using the old names finish first.
	Grace time.Duration
}

// rebuildLockID keeps two rebuilds from running at once.
const rebuildLockID = 0x5377_6170_7262 // "Swaprb"

// Run performs the rebuild.
func (b *Rebuild) Run(ctx context.Context) error {
	if b.HandoverTimeout == 0 {
		b.HandoverTimeout = 2 * time.Minute
	}
	if b.Grace == 0 {
		b.Grace = 3 * time.Second
	}
	lock, err := b.PG.Acquire(ctx)
	if err != nil {
		return err
	}
	defer lock.Release()
	var locked bool
	if err := lock.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, rebuildLockID).Scan(&locked); err != nil {
		return err
	}
	if !locked {
		return errors.New("another rebuild is running")
	}
	defer lock.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, rebuildLockID) //nolint:errcheck

	old, err := b.Reads.LoadPointer(ctx)
	if errors.Is(err, readstore.ErrNoPointer) {
		old = readstore.InitialPointer(b.BaseSlot)
	} else if err != nil {
		return err
	}
	if err := b.cleanLeftovers(ctx, old); err != nil {
		return err
	}
	current, err := serverHistory(ctx, b.PG)
	if err != nil {
		return err
	}
	collections := b.collections()
	moving := !old.Followed.History.IsZero() && old.Followed.History != current
	var slotLost bool
	if err := b.PG.QueryRow(ctx, `SELECT NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1)`, old.Slot).Scan(&slotLost); err != nil {
		return err
	}
	if moving && len(collections) < len(readstore.Collections) {
		return fmt.Errorf("the write Postgres follows history %s, the read side %s: only a rebuild of every collection can move the read side onto it (leave out --collection)",
			current, old.Followed.History)
	}
	if moving {
		b.say("the write Postgres follows a new history (%s; the read side follows %s): rebuilding everything onto it", current, old.Followed.History)
	} else if err := b.refuseBackwards(ctx, old.Followed); err != nil {
		return err
	}
	gen := old.Generation + 1
	slot := b.BaseSlot + "_r" + strconv.FormatInt(gen, 10)
	shadows := map[string]string{}
	for _, c := range collections {
		shadows[c] = readstore.ShadowName(c, gen)
	}
	b.say("rebuilding %v as generation %d, fed by slot %s", collections, gen, slot)
	var searchGen int64 // the new search generation, if the listings are rebuilt
	if _, ok := shadows[readstore.Listings]; ok && b.Search != nil {
		g, err := b.Search.CreateGeneration(ctx)
		if err != nil {
			return err
		}
		searchGen = g.ID
		b.say("building search generation %d", searchGen)
	}

	// 1-2. A new slot and its snapshot; the load reads exactly that
	// snapshot. The history the read side follows from now on, and the
	// base of its positions, are known once the slot is.
	followed := old.Followed
	started := func(ctx context.Context, start pglogrepl.LSN) error {
		next, err := b.follow(ctx, old.Followed, current, start)
		if err != nil {
			return err
		}
		followed = next
		b.Sink.SetBase(followed.Base)
		// Entries of the abandoned history are marked before the gap is
		// reconciled against the entries that remain.
		return b.markLost(ctx, old.Followed, followed, start)
	}
	// The history has a gap when no WAL between the read side's last
	// applied write and the new slot will ever be decoded: a new database
	// history, or a slot that was lost. No CDC writes the history then (it
	// stopped on the lost slot, or halted on the new history) until the
	// pointer moves.
	reconcile := b.Search != nil && len(collections) == len(readstore.Collections) && (moving || slotLost)
	if _, err := b.createSlotAndLoad(ctx, slot, collections, shadows, searchGen, reconcile, started); err != nil {
		return err
	}
	// 3. The search generation's indexes and counts (the documents are
	// read by id only, which needs no index of ours).
	if searchGen != 0 {
		if err := b.Search.Seal(ctx, searchGen); err != nil {
			return err
		}
	}
	b.say("indexes built")

	// 4. Catch up from the new slot.
	handover, err := b.catchUp(ctx, slot, shadows, searchGen)
	if err != nil {
		return err
	}

	// 5. Switch.
	next := old
	next.Generation = gen
	next.Slot = slot
	next.Handover = int64(handover)
	next.Followed = followed
	next.Previous = ""
	if len(shadows) < len(readstore.Collections) {
		next.Previous = old.Slot // the others still need it up to the handover
	}
	next.Collections = map[string]string{}
	for c, physical := range old.Collections {
		next.Collections[c] = physical
	}
	for c, physical := range shadows {
		next.Collections[c] = physical
	}
	var oldSearch int64 // the search generation readers read until now
	if searchGen != 0 {
		live, err := b.Search.Live(ctx)
		if err != nil {
			return err
		}
		oldSearch = live.ID
		next.Search = searchGen
	}
	if err := b.Reads.SavePointer(ctx, next); err != nil {
		return err
	}
	if searchGen != 0 {
		// The CDC writes the generation the pointer names (from its next
		// batch on); readers now read it too.
		if err := b.Search.Switch(ctx, searchGen); err != nil {
			return fmt.Errorf("the pointer names search generation %d, but readers were not switched to it: %w; rerun the rebuild", searchGen, err)
		}
	}
	b.say("switched readers to generation %d", gen)
	// Announce it: the caches and the streams may hold states that no
	// batch announced (after a lost slot, every write of the outage).
	if err := b.Sink.Rebuilt(ctx, handover, shadows, next.Previous == ""); err != nil {
		return fmt.Errorf("readers were switched to generation %d, but the caches were not told: %w; rerun the rebuild", gen, err)
	}
	b.say("caches and streams told: documents tombstoned, near caches reset, streams resynced")

	// 6. Hand over and clean up.
	if err := b.dropSlotWhenFree(ctx, old.Slot, handover, next.Previous != ""); err != nil {
		b.Log.Warn("old slot not dropped; drop it with 'swapmeet slot drop' once the CDC has moved", "slot", old.Slot, "err", err)
	}
	if !wait.Sleep(ctx, b.Grace) {
		return ctx.Err()
	}
	for _, c := range collections {
		if physical := old.Collections[c]; physical != "" && physical != shadows[c] {
			if err := b.Reads.DropCollection(ctx, physical); err != nil {
				b.Log.Warn("drop old generation", "collection", physical, "err", err)
			}
		}
	}
	if oldSearch != 0 && oldSearch != searchGen {
		if err := b.Search.Drop(ctx, oldSearch); err != nil {
			b.Log.Warn("drop old search generation", "generation", oldSearch, "err", err)
		}
	}
	b.say("done: generation %d is live", gen)
	return nil
}

// collections are the collections to rebuild: those asked for, and with a
// search store, every collection it has rows of if it has rows of any
// asked for: a search generation is built whole.
func (b *Rebuild) collections() []string {
	out := slices.Clone(b.Collections)
	if b.Search == nil || !slices.ContainsFunc(out, func(c string) bool { return slices.Contains(projection.SearchCollections, c) }) {
		return out
	}
	for _, c := range projection.SearchCollections {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

var rebuildSlotRE = regexp.MustCompile(`_r[0-9]+$`)

// cleanLeftovers removes what an interrupted rebuild left: shadow
// collections the pointer does not name, and idle slots of ours that it
// does not name either.
func (b *Rebuild) cleanLeftovers(ctx context.Context, live readstore.Pointer) error {
	names, err := b.Reads.CollectionNames(ctx)
	if err != nil {
		return err
	}
	inUse := map[string]bool{}
	for _, physical := range live.Collections {
		inUse[physical] = true
	}
	for _, n := range names {
		if readstore.IsGenerationName(n) && !inUse[n] {
			b.say("removing leftover collection %s", n)
			if err := b.Reads.DropCollection(ctx, n); err != nil {
				return err
			}
		}
	}
	if b.Search != nil {
		gens, err := b.Search.Generations(ctx)
		if err != nil {
			return err
		}
		for _, g := range gens {
			if g.State != search.StateLive && g.ID != live.Search {
				b.say("removing leftover search generation %d (%s)", g.ID, g.State)
				if err := b.Search.Drop(ctx, g.ID); err != nil {
					return err
				}
			}
		}
	}
	rows, err := b.PG.Query(ctx, `SELECT slot_name FROM pg_replication_slots
		WHERE database = current_database() AND NOT active AND slot_name LIKE $1 || '%'`, b.BaseSlot)
	if err != nil {
		return err
	}
	slots, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, s := range slots {
		if s != live.Slot && s != b.BaseSlot && rebuildSlotRE.MatchString(s) {
			b.say("removing leftover slot %s", s)
			if _, err := b.PG.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, s); err != nil {
				return err
			}
		}
	}
	return nil
}

// createSlotAndLoad creates the slot with an exported snapshot and loads
// the shadows from it. It returns the slot's consistent point: the load
// holds everything committed before it, the slot everything after.
//
// With reconcile, the history is brought to the snapshot's rows
// (ReconcileHistory) at the position just before the slot's first.
func (b *Rebuild) createSlotAndLoad(ctx context.Context, slot string, collections []string, shadows map[string]string, searchGen int64,
	reconcile bool, started func(context.Context, pglogrepl.LSN) error) (pglogrepl.LSN, error) {
	repl, err := b.replicationConn(ctx)
	if err != nil {
		return 0, err
	}
	// The exported snapshot lives as long as this connection stays idle.
	defer repl.Close(context.WithoutCancel(ctx))
	created, err := pglogrepl.CreateReplicationSlot(ctx, repl, slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: "EXPORT_SNAPSHOT"})
	if err != nil {
		return 0, fmt.Errorf("create slot %s: %w", slot, err)
	}
	start, err := pglogrepl.ParseLSN(created.ConsistentPoint)
	if err != nil {
		return 0, err
	}
	b.say("created slot %s at %s", slot, start)
	if err := started(ctx, start); err != nil {
		return 0, err
	}

	tx, err := b.PG.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET TRANSACTION SNAPSHOT '%s'", created.SnapshotName)); err != nil {
		return 0, fmt.Errorf("use snapshot: %w", err)
	}
	q := sqlc.New(tx)
	for _, c := range collections {
		if err := b.Reads.DropCollection(ctx, shadows[c]); err != nil {
			return 0, err
		}
		if err := b.Reads.CreateCollections(ctx, shadows[c]); err != nil {
			return 0, err
		}
		sg := int64(0)
		if slices.Contains(projection.SearchCollections, c) {
			sg = searchGen
		}
		if err := b.load(ctx, q, projection.For(c), shadows[c], int64(b.Sink.Position(start)), sg); err != nil {
			return 0, err
		}
	}
	if reconcile {
		// Just before the first position the new slot decodes: after
		// every entry of the old slot, before every entry of the new.
		n, err := ReconcileHistory(ctx, tx, b.Search, int64(b.Sink.Position(start))-1)
		if err != nil {
			return 0, fmt.Errorf("reconcile the history: %w", err)
		}
		b.say("history: %d objects changed where no WAL was decoded; one unannotated entry each brings their history to the snapshot's rows", n)
	}
	return start, nil
}

// loadPage is how many documents one insert carries.
const loadPage = 500

// load copies one collection into its shadow, reading Postgres while the
// previous page is being written to Mongo; the listings, orders and
// reviews go to search generation searchGen too, unless it is 0.
func (b *Rebuild) load(ctx context.Context, q *sqlc.Queries, proj projection.Collection, shadow string, lsn, searchGen int64) error {
	total, err := countRows(ctx, q, proj.Name())
	if err != nil {
		return err
	}
	bar := newProgress(b.Progress, b.Terminal, proj.Name(), total)
	type page struct {
		ids  []string
		docs []any
	}
	pages := make(chan page, 2)
	errc := make(chan error, 1)
	strays := false
	go func() {
		var err error
		for p := range pages {
			if err != nil {
				continue
			}
			err = b.Reads.InsertMany(ctx, shadow, p.docs)
			if mongo.IsDuplicateKeyError(err) {
				// A killed rebuild's last insert can still land after its
				// leftovers were dropped: this snapshot's documents win.
				strays = true
				err = b.Reads.Put(ctx, shadow, p.ids, p.docs)
			}
			if err == nil && searchGen != 0 {
				err = b.loadSearch(ctx, searchGen, p.docs)
			}
			bar.add(len(p.docs))
		}
		errc <- err
	}()
	err = func() error {
		defer close(pages)
		after := uuid.Nil
		for {
			ids, err := proj.IDs(ctx, q, after, loadPage)
			if err != nil {
				return err
			}
			if len(ids) == 0 {
				return nil
			}
			after = ids[len(ids)-1]
			docs, err := proj.Build(ctx, q, ids, lsn)
			if err != nil {
				return err
			}
			var pg page
			for _, id := range ids {
				if d, ok := docs[id]; ok {
					pg.ids = append(pg.ids, id.String())
					pg.docs = append(pg.docs, d)
				}
			}
			select {
			case pages <- pg:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}()
	if werr := <-errc; err == nil {
		err = werr
	}
	bar.done()
	if err == nil && strays {
		err = b.removeStrays(ctx, q, proj, shadow)
	}
	return err
}

// loadSearch copies a page of documents of one collection into search
// generation g.
func (b *Rebuild) loadSearch(ctx context.Context, g int64, docs []any) error {
	var (
		listings []search.Listing
		orders   []readstore.Order
		reviews  []readstore.Review
	)
	for _, d := range docs {
		switch d := d.(type) {
		case readstore.Listing:
			listings = append(listings, search.FromDocument(d))
		case readstore.Order:
			orders = append(orders, d)
		case readstore.Review:
			reviews = append(reviews, d)
		}
	}
	var err error
	switch {
	case len(listings) > 0:
		_, err = b.Search.Load(ctx, g, listings)
	case len(orders) > 0:
		_, err = b.Search.LoadOrders(ctx, g, orders)
	case len(reviews) > 0:
		_, err = b.Search.LoadReviews(ctx, g, reviews)
	}
	return err
}

// removeStrays deletes shadow documents whose rows are not in the
// snapshot: what a killed rebuild wrote late for rows since deleted.
func (b *Rebuild) removeStrays(ctx context.Context, q *sqlc.Queries, proj projection.Collection, shadow string) error {
	ids, err := b.Reads.IDs(ctx, shadow)
	if err != nil {
		return err
	}
	for len(ids) > 0 {
		n := min(len(ids), loadPage)
		batch := make([]uuid.UUID, 0, n)
		for _, s := range ids[:n] {
			if id, err := uuid.Parse(s); err == nil {
				batch = append(batch, id)
			}
		}
		ids = ids[n:]
		docs, err := proj.Build(ctx, q, batch, 0)
		if err != nil {
			return err
		}
		var gone []string
		for _, id := range batch {
			if _, ok := docs[id]; !ok {
				gone = append(gone, id.String())
			}
		}
		if err := b.Reads.Delete(ctx, shadow, gone); err != nil {
			return err
		}
	}
	return nil
}

func countRows(ctx context.Context, q *sqlc.Queries, collection string) (int64, error) {
	switch collection {
	case readstore.Users:
		return q.CountUsers(ctx)
	case readstore.Listings:
		return q.CountListings(ctx)
	case readstore.Orders:
		return q.CountOrders(ctx)
	case readstore.Reviews:
		return q.CountReviews(ctx)
	}
	return 0, fmt.Errorf("unknown collection %s", collection)
}

// catchUp streams the new slot into the shadows until they reflect every
// commit up to the moment it started. It returns the handover position:
// the slot's confirmed position once the catch-up has let go of it.
func (b *Rebuild) catchUp(ctx context.Context, slot string, shadows map[string]string, searchGen int64) (pglogrepl.LSN, error) {
	pos, err := sqlc.New(b.PG).CurrentPosition(ctx)
	if err != nil {
		return 0, err
	}
	target := pos.Lsn
	cfg := b.Reader
	cfg.Slot = slot
	cfg.CreateSlot = false
	r := wal.NewReader(cfg, b.Sink.Into(shadows, searchGen))
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	b.say("catching up to %s", pglogrepl.LSN(target))
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for int64(r.Applied()) < target {
		select {
		case err := <-done:
			cancel()
			if err == nil {
				err = ctx.Err()
			}
			return 0, fmt.Errorf("catch up: %w", err)
		case <-tick.C:
		}
	}
	cancel() // the reader reports its position as it stops
	if err := <-done; err != nil {
		return 0, err
	}
	confirmed, err := b.confirmedWhenFree(ctx, slot)
	if err != nil {
		return 0, err
	}
	b.say("caught up at %s; the slot is confirmed up to %s", r.Applied(), confirmed)
	return confirmed, nil
}

// confirmedWhenFree waits until no reader holds the slot, then returns its
// confirmed position. The walsender processes the last status update
// before it lets go of the slot, so from then on the position is final:
// it is where streaming the slot will start.
func (b *Rebuild) confirmedWhenFree(ctx context.Context, slot string) (pglogrepl.LSN, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var active bool
		var confirmed int64
		err := b.PG.QueryRow(ctx, `SELECT active, (confirmed_flush_lsn - '0/0')::int8
			FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&active, &confirmed)
		if err != nil {
			return 0, fmt.Errorf("read the confirmed position of slot %s: %w", slot, err)
		}
		if !active {
			return pglogrepl.LSN(confirmed), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("slot %s still in use after the catch-up stopped", slot)
		}
		if !wait.Sleep(ctx, 20*time.Millisecond) {
			return 0, ctx.Err()
		}
	}
}

// dropSlotWhenFree waits until no reader holds the slot (the CDC moves to
// the new slot within a second of the switch) and drops it. If needed,
// collections that kept their generation still need the slot up to
// handover: it is dropped only once it is confirmed that far, so a CDC
// that was not running at the switch can still apply it when it starts.
func (b *Rebuild) dropSlotWhenFree(ctx context.Context, slot string, handover pglogrepl.LSN, needed bool) error {
	deadline := time.Now().Add(b.HandoverTimeout)
	for {
		var exists, active bool
		var confirmed int64
		err := b.PG.QueryRow(ctx, `SELECT count(*) > 0, coalesce(bool_or(active), false),
			coalesce(max((confirmed_flush_lsn - '0/0')::int8), 0)
			FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&exists, &active, &confirmed)
		if err != nil {
			return err
		}
		if !exists {
			return nil
		}
		if !active && (!needed || pglogrepl.LSN(confirmed) >= handover) {
			if _, err := b.PG.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, slot); err != nil {
				return err
			}
			b.say("dropped the old slot %s", slot)
			return nil
		}
		if time.Now().After(deadline) {
			if !active {
				return fmt.Errorf("slot %s is confirmed up to %s, short of the handover at %s: a CDC that starts applies it that far first",
					slot, pglogrepl.LSN(confirmed), handover)
			}
			return fmt.Errorf("slot %s still in use after %s", slot, b.HandoverTimeout)
		}
		if !wait.Sleep(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
}

func (b *Rebuild) say(format string, args ...any) {
	if b.Progress != nil {
		fmt.Fprintf(b.Progress, "rebuild: "+format+"\n", args...)
	}
	b.Log.Debug(fmt.Sprintf(format, args...))
}

// follow is the history record of the rebuilt read side: the one it
// followed (from), or, when the write Postgres now follows another
// (current), that one, with a base that puts every position from start on
// above every position the read side held (consistency.Followed.Follow),
// and the point the two histories share when Postgres can tell it.
func (b *Rebuild) follow(ctx context.Context, from consistency.Followed, current consistency.History, start pglogrepl.LSN) (consistency.Followed, error) {
	if from.History.IsZero() || from.History == current {
		from.History = current
		return from, nil
	}
	applied, err := b.Sink.AppliedPosition(ctx)
	if err != nil {
		return from, fmt.Errorf("read the applied position: %w", err)
	}
	var end uint64
	if from.History.System == current.System && from.History.Timeline < current.Timeline {
		if end, err = b.forkPoint(ctx, from.History.Timeline, current.Timeline); err != nil {
			return from, err
		}
	}
	next := from.Follow(current, uint64(start), applied, end)
	b.say("following history %s from %s: read-side positions are WAL positions plus %d; writes of %s up to %s are kept",
		current, start, next.Base, from.History, pglogrepl.LSN(end))
	return next, nil
}

// markLost marks the history's entries that the read side recorded from
// the abandoned history past the point the new one shares with it (a
// failover past the standby's last received WAL, a restore to before
// them): those changes happened, but are not in the data any more. With
// no shared point known (another database system), nothing is marked:
// whether the two share anything cannot be told.
func (b *Rebuild) markLost(ctx context.Context, old, next consistency.Followed, first pglogrepl.LSN) error {
	if b.Search == nil || old.History.IsZero() || old.History == next.History || len(next.Ancestors) == 0 {
		return nil
	}
	end := next.Ancestors[len(next.Ancestors)-1].End
	if end == 0 {
		b.say("history entries of %s are kept unmarked: the point it shares with %s is not known", old.History, next.History)
		return nil
	}
	n, err := b.Search.MarkHistoryLost(ctx, int64(old.Base+end), int64(next.Base+uint64(first)), next.History.String())
	if err != nil {
		return fmt.Errorf("mark the history entries past %s of %s lost: %w", pglogrepl.LSN(end), old.History, err)
	}
	b.say("history: %d entries recorded past %s on %s marked lost to %s", n, pglogrepl.LSN(end), old.History, next.History)
	return nil
}

// forkPoint is where timeline from ended in the history of timeline to (the
// server's timeline history file): the last position of from that to
// shares. 0 when from is not in it. It asks on a replication connection of
// its own: the one whose exported snapshot the load reads must stay idle.
func (b *Rebuild) forkPoint(ctx context.Context, from, to uint32) (uint64, error) {
	repl, err := b.replicationConn(ctx)
	if err != nil {
		return 0, err
	}
	defer repl.Close(context.WithoutCancel(ctx))
	h, err := pglogrepl.TimelineHistory(ctx, repl, int32(to))
	if err != nil {
		return 0, fmt.Errorf("timeline history of %d: %w", to, err)
	}
	// Each line: parent timeline, tab, the position it ended at, tab, why.
	for line := range strings.Lines(string(h.Content)) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		if tli, err := strconv.ParseUint(f[0], 10, 32); err != nil || uint32(tli) != from {
			continue
		}
		end, err := pglogrepl.ParseLSN(f[1])
		if err != nil {
			return 0, fmt.Errorf("timeline history of %d: %q: %w", to, line, err)
		}
		return uint64(end), nil
	}
	return 0, nil
}

// refuseBackwards refuses a rebuild on the history the read side follows
// when the server's WAL ends before what the read side applied: a copy of
// the data directory started without recovery keeps its timeline, so its
// positions cannot be told from the ones it lost. Recovering it onto a new
// timeline makes it a new history, which a rebuild can move onto.
func (b *Rebuild) refuseBackwards(ctx context.Context, f consistency.Followed) error {
	end, applied, behind, err := walBehind(ctx, b.PG, b.Sink, f, 0)
	if err != nil || !behind {
		return err
	}
	return fmt.Errorf("the write Postgres's WAL ends at %s, before %s, which the read side applied, on the same history %s: it was started from a copy without recovery, and its positions cannot be told from the ones it lost. Recover it onto a new timeline (recovery.signal with recovery_target_action = 'promote'), then rebuild",
		end, applied, f.History)
}

// replicationConn opens a logical replication connection to the write
// Postgres.
func (b *Rebuild) replicationConn(ctx context.Context) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig(b.Reader.ConnString)
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["replication"] = "database"
	repl, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("replication connection: %w", err)
	}
	return repl, nil
}
