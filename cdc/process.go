// Package cdc keeps the read side in step with Postgres. It composes the
// transport (package wal: a reader that streams the WAL through a logical
// replication slot) and the projection (package projection: the sink that
// rebuilds the documents the changes touch) into the `swapmeet cdc`
// process, which leads or stands by for the slot and hands over to a new
// slot after a rebuild, and into the operator tools: Rebuild, Verify.
package cdc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/swapmeet/swapmeet/cdc/projection"
	"github.com/swapmeet/swapmeet/cdc/wal"
	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/db/sqlc"
	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/wait"
)

// Process is the `swapmeet cdc` process: it initialises the read side on
// first start, streams the slot the projections pointer names, and hands
// over to a new slot when a rebuild switches the pointer.
type Process struct {
	Reader   wal.Config // the slot comes from the pointer, not from here
	Slot     string     // the slot of a first start
	PG       *pgxpool.Pool
	Reads    *readstore.Model
	Sink     *projection.Projector
	Log      *slog.Logger
	Interval time.Duration // how often the pointer is re-read; 500 ms by default

	// Stream, if set, receives the stream instead of Sink; Sink still
	// projects everything on a first start.
	Stream wal.Sink
}

// Run streams until ctx ends. It returns wal.ErrSlotLost when the slot the
// pointer names is gone: only a rebuild can repair that.
func (p *Process) Run(ctx context.Context) error {
	if p.Interval == 0 {
		p.Interval = 500 * time.Millisecond
	}
	ptr, err := p.pointer(ctx)
	if err != nil {
		return err
	}
	go p.Reads.Follow(ctx, p.Interval)
	slot, err := p.slotFor(ctx, ptr)
	if err != nil {
		return err
	}
	for {
		next, err := p.stream(ctx, slot)
		if errors.Is(err, wal.ErrHistory) {
			// Nothing can be applied until a rebuild moves the read side
			// onto the new history: wait for the pointer to say so.
			cur, herr := p.awaitHistory(ctx, err)
			if herr != nil {
				return herr
			}
			if slot, err = p.slotFor(ctx, cur); err != nil {
				return err
			}
			continue
		}
		if errors.Is(err, wal.ErrSlotLost) {
			// A standby's slot vanishes when the leader leaves it at a
			// handover and drops it: follow the pointer.
			if cur, rerr := p.Reads.Refresh(ctx); rerr == nil && cur.Slot != slot {
				p.Log.Info("the slot was left at a handover by another process; following the pointer", "from", slot, "to", cur.Slot)
				if slot, err = p.slotFor(ctx, cur); err != nil {
					return err
				}
				continue
			}
		}
		if err != nil || next == "" {
			return err
		}
		p.Log.Info("handing over to the rebuilt projections' slot", "from", slot, "to", next)
		go p.dropLeft(ctx, slot)
		slot = next
	}
}

// slotFor picks the slot to stream under ptr: its own, unless a rebuild
// switched while no CDC streamed and the previous slot is still short of
// the handover; then that one first (stream leaves it there).
func (p *Process) slotFor(ctx context.Context, ptr readstore.Pointer) (string, error) {
	if ptr.Previous == "" {
		return ptr.Slot, nil
	}
	behind, err := p.behind(ctx, ptr.Previous, ptr.Handover)
	if err != nil {
		return "", err
	}
	if behind {
		p.Log.Info("the previous slot is short of the handover; applying it first", "slot", ptr.Previous, "handover", pglogrepl.LSN(ptr.Handover).String())
		return ptr.Previous, nil
	}
	return ptr.Slot, nil
}

// pointer loads the projections pointer, initialising the read side on a
// first start: it creates the slot, then projects everything Postgres
// holds (a full pass from a snapshot taken after the slot exists, so
// nothing falls between the two), then saves the pointer.
func (p *Process) pointer(ctx context.Context) (readstore.Pointer, error) {
	backoff := wait.NewBackoff(0, cmp.Or(p.Reader.MaxBackoff, 30*time.Second))
	for {
		ptr, err := p.Reads.Refresh(ctx)
		if err == nil {
			return ptr, nil
		}
		if errors.Is(err, readstore.ErrNoPointer) {
			return p.initialise(ctx)
		}
		in := backoff.Next()
		p.Log.Warn("read store not ready; retrying", "err", err, "in", in)
		if !wait.Sleep(ctx, in) {
			return readstore.Pointer{}, ctx.Err()
		}
	}
}

// dropLeft drops a slot this process has left at the handover, once its
// walsender has let go of it: nothing in it is needed any more. The
// rebuild drops it too when it is still running; whoever comes second
// finds nothing to drop.
func (p *Process) dropLeft(ctx context.Context, slot string) {
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := p.PG.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
			WHERE slot_name = $1 AND NOT active`, slot)
		var gone bool
		if err == nil {
			err = p.PG.QueryRow(ctx, `SELECT count(*) = 0 FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&gone)
		}
		if gone {
			p.Log.Info("dropped the slot left at the handover", "slot", slot)
			return
		}
		if time.Now().After(deadline) {
			p.Log.Warn("the slot left at the handover was not dropped; drop it by hand", "slot", slot, "err", err)
			return
		}
		if !wait.Sleep(ctx, 200*time.Millisecond) {
			return
		}
	}
}

// behind reports whether slot exists, can still be streamed, and is
// confirmed short of lsn. It retries until Postgres answers.
func (p *Process) behind(ctx context.Context, slot string, lsn int64) (bool, error) {
	backoff := wait.NewBackoff(0, cmp.Or(p.Reader.MaxBackoff, 30*time.Second))
	for {
		var behind bool
		err := p.PG.QueryRow(ctx, `SELECT count(*) > 0 FROM pg_replication_slots
			WHERE slot_name = $1 AND coalesce(wal_status, '') <> 'lost' AND (confirmed_flush_lsn - '0/0')::int8 < $2`, slot, lsn).Scan(&behind)
		if err == nil {
			return behind, nil
		}
		in := backoff.Next()
		p.Log.Warn("look up the previous slot; retrying", "slot", slot, "err", err, "in", in)
		if !wait.Sleep(ctx, in) {
			return false, ctx.Err()
		}
	}
}

func (p *Process) initialise(ctx context.Context) (readstore.Pointer, error) {
	// Several processes may start together on an empty read side: one
	// initialises, the others wait for it and then find the pointer.
	conn, err := p.PG.Acquire(ctx)
	if err != nil {
		return readstore.Pointer{}, fmt.Errorf("first start: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtext('swapmeet cdc first start'))`); err != nil {
		return readstore.Pointer{}, fmt.Errorf("first start: wait for another process's: %w", err)
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext('swapmeet cdc first start'))`)
	}()
	if ptr, err := p.Reads.Refresh(ctx); err == nil {
		p.Log.Info("another process initialised the read side", "slot", ptr.Slot)
		return ptr, nil
	} else if !errors.Is(err, readstore.ErrNoPointer) {
		return readstore.Pointer{}, err
	}
	p.Log.Info("first start: creating the slot and projecting what Postgres holds", "slot", p.Slot)
	_, err = p.PG.Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')
		WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`, p.Slot)
	if err != nil {
		return readstore.Pointer{}, fmt.Errorf("create slot %s: %w", p.Slot, err)
	}
	ptr := readstore.InitialPointer(p.Slot)
	if err := p.Reads.CreateCollections(ctx, slices.Collect(maps.Values(ptr.Collections))...); err != nil {
		return readstore.Pointer{}, err
	}
	if err := p.Sink.Resync(ctx); err != nil {
		return readstore.Pointer{}, err
	}
	if ptr.Followed.History, err = serverHistory(ctx, p.PG); err != nil {
		return readstore.Pointer{}, err
	}
	if err := p.Reads.SavePointer(ctx, ptr); err != nil {
		return readstore.Pointer{}, err
	}
	return ptr, nil
}

// stream reads one slot until ctx ends (""), the slot is lost (error), or
// the pointer names another slot and this one has been applied up to the
// pointer's handover position (the new slot's name).
//
// The handover position is the new slot's confirmed position: the new
// slot sends only what comes after it, so everything up to it must come
// from this slot, for every collection. Until the switch, this process
// writes the live generations; after it, logical names resolve to the new
// generations too, which is harmless for those the rebuild already holds
// the changes of: a projector re-reads the current rows. See Rebuild.
func (p *Process) stream(ctx context.Context, slot string) (next string, err error) {
	cfg := p.Reader
	cfg.Slot = slot
	cfg.CreateSlot = false
	cfg.CheckHistory = p.checkHistory
	var sink wal.Sink = p.Sink
	if p.Stream != nil {
		sink = p.Stream
	}
	r := wal.NewReader(cfg, sink)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	tick := time.NewTicker(p.Interval)
	defer tick.Stop()
	waiting := false
	for {
		select {
		case err := <-done:
			return "", err
		case <-tick.C:
			// Follow keeps the pointer fresh; no read of our own.
			ptr, ok := p.Reads.Current()
			if !ok || ptr.Slot == slot {
				continue
			}
			if applied := r.Applied(); uint64(applied) < uint64(ptr.Handover) {
				// This slot still has changes that the new one will not send.
				if !waiting {
					p.Log.Info("the projections moved to a new slot; applying this one up to the handover first",
						"slot", slot, "next", ptr.Slot, "applied", applied.String(), "handover", pglogrepl.LSN(ptr.Handover).String())
					waiting = true
				}
				continue
			}
			p.Log.Info("leaving the slot at the handover", "slot", slot, "next", ptr.Slot, "handover", pglogrepl.LSN(ptr.Handover).String())
			cancel()
			if err := <-done; err != nil {
				return "", err
			}
			return ptr.Slot, nil
		}
	}
}

// checkHistory is the reader's wal.Config.CheckHistory: streaming may go on
// only on the history the projections pointer records, and only from a
// server whose WAL reaches the position the read side applied. A read side
// built before histories were recorded adopts the server's. It also sets
// the sink's base, which the pointer's history gives.
func (p *Process) checkHistory(ctx context.Context, h consistency.History, walEnd pglogrepl.LSN) error {
	// The pointer as followed: a read store that is down must not keep
	// the reader from connecting (its batches wait for the store).
	ptr, ok := p.Reads.Current()
	if !ok {
		var err error
		if ptr, err = p.Reads.Refresh(ctx); err != nil {
			return err
		}
	}
	f := ptr.Followed
	if f.History.IsZero() {
		// RecordHistory loads the pointer again, whoever recorded it.
		if _, err := p.Reads.RecordHistory(ctx, ptr.Generation, consistency.Followed{History: h}); err != nil {
			return err
		}
		ptr, _ = p.Reads.Current()
		f = ptr.Followed
		p.Log.Info("recorded the history of the write Postgres on the projections pointer", "history", f.History.String())
	}
	if f.History != h {
		return fmt.Errorf("%w: the write Postgres follows history %s, the read side %s (a failover, a restore or a move): rebuild the read side onto it with `swapmeet projections rebuild`",
			wal.ErrHistory, h, f.History)
	}
	if end, applied, behind, err := walBehind(ctx, p.PG, p.Sink, f, walEnd); err != nil {
		return err
	} else if behind {
		return fmt.Errorf("%w: the write Postgres's WAL ends at %s, before %s, which the read side applied (a data directory restored without starting a new timeline): rebuild the read side onto it with `swapmeet projections rebuild`",
			wal.ErrHistory, end, applied)
	}
	p.Sink.SetBase(f.Base)
	return nil
}

// walBehind reports whether the write Postgres's WAL ends before the WAL
// position the read side applied in history f. known is an end already
// known (IDENTIFY_SYSTEM's, which is the flushed end); the inserted end is
// asked for only when it is not enough, since the read side may have
// applied up to it (a first start's full pass, a rebuild's handover). Best
// effort: with Redis down the applied position cannot be read, and nothing
// is reported behind.
func walBehind(ctx context.Context, pg *pgxpool.Pool, sink *projection.Projector, f consistency.Followed, known pglogrepl.LSN) (end, applied pglogrepl.LSN, behind bool, err error) {
	pos, err := sink.AppliedPosition(ctx)
	if err != nil || pos <= f.Base || pos-f.Base <= uint64(known) {
		return known, 0, false, nil
	}
	applied = pglogrepl.LSN(pos - f.Base)
	cur, err := sqlc.New(pg).CurrentPosition(ctx)
	if err != nil {
		return known, applied, false, err
	}
	end = max(known, pglogrepl.LSN(cur.Lsn))
	return end, applied, applied > end, nil
}

// historyPoll is how often a CDC stopped by a new history looks for the
// rebuild that moves the read side onto it.
const historyPoll = 2 * time.Second

// awaitHistory reports why the CDC stopped (the log, the metrics and so
// readiness) and waits until the pointer records another history or
// generation than when it stopped: a rebuild has moved the read side.
func (p *Process) awaitHistory(ctx context.Context, why error) (readstore.Pointer, error) {
	p.Log.Error("stopped: nothing is applied until the read side is rebuilt onto the write Postgres's history", "err", why)
	p.Reader.Metrics.Halted(why.Error())
	defer p.Reader.Metrics.Halted("")
	was, _ := p.Reads.Current()
	for {
		if !wait.Sleep(ctx, historyPoll) {
			return readstore.Pointer{}, ctx.Err()
		}
		cur, err := p.Reads.Refresh(ctx)
		if err != nil {
			continue
		}
		if cur.Generation != was.Generation || cur.Followed.History != was.Followed.History {
			p.Log.Info("the read side was rebuilt; streaming again", "history", cur.Followed.History.String(), "slot", cur.Slot)
			return cur, nil
		}
	}
}

// serverHistory is the history of the write Postgres that pg reaches.
func serverHistory(ctx context.Context, pg *pgxpool.Pool) (consistency.History, error) {
	p, err := sqlc.New(pg).CurrentPosition(ctx)
	if err != nil {
		return consistency.History{}, fmt.Errorf("read the write Postgres's history: %w", err)
	}
	return db.PositionOf(p).History, nil
}
