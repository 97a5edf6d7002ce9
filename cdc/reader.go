// Package cdc keeps the read side in step with Postgres. A Reader tails the
// WAL through a logical replication slot (pgoutput), hands each committed
// transaction to a Sink, and acknowledges the transaction's end LSN only
// after the sink has finished with it. A crash therefore loses nothing:
// Postgres re-sends every transaction after the last acknowledged position,
// and sinks are idempotent.
package cdc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Sink applies committed transactions to the read side.
type Sink interface {
	// Apply makes the read side reflect txs, a run of consecutive
	// transactions in commit order. It must be idempotent: after a crash
	// the same transactions are applied again.
	Apply(ctx context.Context, txs []*Txn) error
	// Reached says that nothing the sink cares about lies at or before lsn,
	// so readers waiting for an earlier position may go on.
	Reached(ctx context.Context, lsn pglogrepl.LSN) error
}

// Config says where to stream from.
type Config struct {
	// ConnString is an ordinary Postgres URL; replication mode is added.
	ConnString  string
	Slot        string
	Publication string
	// StatusInterval is how often the position is reported when nothing
	// else prompts it. It must stay well under wal_sender_timeout.
	StatusInterval time.Duration
	// MaxBackoff caps the wait between retries of a failing sink or a
	// lost connection.
	MaxBackoff time.Duration
	// Linger is how long a committed transaction waits for the next one
	// to arrive, so that a burst is applied as one batch.
	Linger time.Duration
	// MaxBatch bounds the transactions applied together.
	MaxBatch int
	// MaxBatchChanges bounds the row changes held in memory for one batch.
	MaxBatchChanges int
	// MaxBatchAge bounds how long the first transaction of a batch waits.
	MaxBatchAge time.Duration
	// CreateSlot lets the reader create a missing slot. Only a first start
	// may: anywhere else, a missing slot means changes were lost.
	CreateSlot bool
	Log        *slog.Logger
	Metrics    *Metrics
}

// ErrSlotLost means the slot vanished or was invalidated. Streaming from a
// new slot would silently skip changes, so the reader stops instead.
var ErrSlotLost = errors.New("replication slot is missing or invalidated")

// Reader streams one slot into one sink.
type Reader struct {
	cfg  Config
	sink Sink
	log  *slog.Logger
	m    *Metrics

	applied    pglogrepl.LSN // everything up to here is in the sink
	published  atomic.Uint64 // applied, for other goroutines
	serverEnd  pglogrepl.LSN // the server's WAL end, as last reported
	lastStatus time.Time
	owed       bool // applied moved since the last status update

	pending        []*Txn // committed, received, not yet applied
	pendingChanges int
	pendingSince   time.Time
}

// minStatusGap keeps prompt acknowledgements (owed after every applied
// batch or idle advance) from becoming chatter.
const minStatusGap = 100 * time.Millisecond

// NewReader returns a Reader; Run starts it.
func NewReader(cfg Config, sink Sink) *Reader {
	if cfg.StatusInterval == 0 {
		cfg.StatusInterval = 10 * time.Second
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.Linger == 0 {
		cfg.Linger = time.Millisecond
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = 500
	}
	if cfg.MaxBatchChanges == 0 {
		cfg.MaxBatchChanges = 20000
	}
	if cfg.MaxBatchAge == 0 {
		cfg.MaxBatchAge = 20 * time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Reader{cfg: cfg, sink: sink, log: cfg.Log, m: cfg.Metrics}
}

// Applied is the position applied so far; safe from any goroutine.
func (r *Reader) Applied() pglogrepl.LSN { return pglogrepl.LSN(r.published.Load()) }

// Run streams until ctx ends, reconnecting with backoff after errors. It
// returns nil on a clean shutdown and ErrSlotLost when it must not go on.
func (r *Reader) Run(ctx context.Context) error {
	backoff := newBackoff(r.cfg.MaxBackoff)
	for {
		streamed, err := r.stream(ctx)
		if ctx.Err() != nil {
			r.log.Info("replication stopped", "applied", r.applied.String())
			return nil
		}
		if errors.Is(err, ErrSlotLost) {
			return err
		}
		if streamed {
			backoff.reset()
		}
		wait := backoff.next()
		r.m.reconnect()
		r.log.Warn("replication stream ended; reconnecting", "err", err, "in", wait)
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// stream runs one replication connection. streamed reports whether it got
// as far as receiving data, which resets the reconnect backoff.
func (r *Reader) stream(ctx context.Context) (streamed bool, err error) {
	cfg, err := pgconn.ParseConfig(r.cfg.ConnString)
	if err != nil {
		return false, fmt.Errorf("parse connection string: %w", err)
	}
	cfg.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	confirmed, err := r.ensureSlot(ctx, conn)
	if err != nil {
		return false, err
	}
	// Whatever was received but not applied on the last connection will be
	// sent again from the slot's confirmed position.
	r.pending, r.pendingChanges = nil, 0
	r.applied = max(r.applied, confirmed)
	r.published.Store(uint64(r.applied))

	err = pglogrepl.StartReplication(ctx, conn, r.cfg.Slot, 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", fmt.Sprintf("publication_names '%s'", r.cfg.Publication)},
	})
	if err != nil {
		if isSlotGone(err) {
			return false, fmt.Errorf("%w: %s: %v", ErrSlotLost, r.cfg.Slot, err)
		}
		return false, fmt.Errorf("start replication: %w", err)
	}
	r.log.Info("streaming", "slot", r.cfg.Slot, "from", r.applied.String())

	dec := newDecoder()
	nextStatus := time.Now().Add(r.cfg.StatusInterval)
	for {
		now := time.Now()
		due := nextStatus
		if r.owed {
			due = minTime(due, r.lastStatus.Add(minStatusGap))
		}
		if !now.Before(due) {
			if err := r.sendStatus(ctx, conn); err != nil {
				return streamed, err
			}
			nextStatus = now.Add(r.cfg.StatusInterval)
			due = nextStatus
		}
		deadline := due
		if len(r.pending) > 0 {
			deadline = minTime(deadline, now.Add(r.cfg.Linger), r.pendingSince.Add(r.cfg.MaxBatchAge))
		}
		rctx, cancel := context.WithDeadline(ctx, deadline)
		raw, err := conn.ReceiveMessage(rctx)
		cancel()
		if ctx.Err() != nil {
			// Shutting down: what is pending is abandoned (unacknowledged, it
			// will be sent again); what was applied is reported once more.
			_ = r.sendStatus(context.WithoutCancel(ctx), conn)
			return streamed, nil
		}
		if err != nil {
			if !pgconn.Timeout(err) {
				return streamed, fmt.Errorf("receive: %w", err)
			}
			// Nothing more arrived in time: apply what has gathered.
			if err := r.flush(ctx, conn); err != nil {
				return streamed, err
			}
			continue
		}
		switch m := raw.(type) {
		case *pgproto3.ErrorResponse:
			pgErr := pgconn.ErrorResponseToPgError(m)
			if isSlotGone(pgErr) {
				return streamed, fmt.Errorf("%w: %s: %v", ErrSlotLost, r.cfg.Slot, pgErr)
			}
			return streamed, fmt.Errorf("server error: %w", pgErr)
		case *pgproto3.CopyData:
			streamed = true
			replyNow, err := r.handle(ctx, conn, dec, m.Data)
			if err != nil {
				return streamed, err
			}
			if replyNow {
				nextStatus = time.Time{}
			}
		default:
			r.log.Debug("unexpected replication message", "type", fmt.Sprintf("%T", raw))
		}
	}
}

// handle processes one CopyData message and reports whether the server
// wants a status update at once.
func (r *Reader) handle(ctx context.Context, conn *pgconn.PgConn, dec *decoder, data []byte) (replyNow bool, err error) {
	if len(data) == 0 {
		return false, nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return false, err
		}
		r.serverEnd = max(r.serverEnd, ka.ServerWALEnd)
		// A keepalive does not close the batch: the server sends one each
		// time it catches up with the WAL, which under load is after every
		// transaction, so flushing here would apply batches of one and cap
		// throughput at one projection round trip per commit.
		//
		// When nothing is pending, everything the server sent is applied,
		// so its WAL end is ours too. Advancing on keepalives is what stops
		// an idle slot from pinning WAL that other databases write.
		if len(r.pending) == 0 && !dec.inTxn() && ka.ServerWALEnd > r.applied {
			if err := r.sink.Reached(ctx, ka.ServerWALEnd); err != nil {
				r.log.Warn("publish idle position", "err", err)
			} else {
				r.applied = ka.ServerWALEnd
				r.published.Store(uint64(r.applied))
				r.owed = true
				r.m.position(uint64(r.applied), uint64(r.serverEnd))
			}
		}
		return ka.ReplyRequested, nil
	case pglogrepl.XLogDataByteID:
		xld, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return false, err
		}
		r.serverEnd = max(r.serverEnd, xld.ServerWALEnd)
		// The receive buffer is reused by the next read; a transaction's
		// changes must outlive it.
		tx, err := dec.decode(append([]byte(nil), xld.WALData...))
		if err != nil {
			return false, err
		}
		if tx == nil {
			return false, nil
		}
		if len(r.pending) == 0 {
			r.pendingSince = time.Now()
		}
		r.pending = append(r.pending, tx)
		r.pendingChanges += len(tx.Changes)
		if len(r.pending) >= r.cfg.MaxBatch || r.pendingChanges >= r.cfg.MaxBatchChanges {
			return false, r.flush(ctx, conn)
		}
		return false, nil
	}
	return false, nil
}

// flush applies the pending transactions as one batch until the sink
// succeeds, then acknowledges them. Meanwhile it keeps the connection alive
// with status updates that repeat the old position, so a dead read store
// costs a wait, never a skipped transaction. A shutdown lets the current
// attempt finish and abandons the rest: unacknowledged, it is sent again.
func (r *Reader) flush(ctx context.Context, conn *pgconn.PgConn) error {
	if len(r.pending) == 0 {
		return nil
	}
	txs := r.pending
	backoff := newBackoff(r.cfg.MaxBackoff)
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := r.sink.Apply(context.WithoutCancel(ctx), txs)
		if err == nil {
			r.m.applied(txs, time.Since(start))
			break
		}
		r.m.retry()
		wait := backoff.next()
		last := txs[len(txs)-1]
		r.log.Warn("apply failed; retrying", "transactions", len(txs), "end_lsn", last.EndLSN.String(), "attempt", attempt, "err", err, "in", wait)
		if time.Since(r.lastStatus) > r.cfg.StatusInterval/2 {
			if err := r.sendStatus(ctx, conn); err != nil {
				return err
			}
		}
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
	}
	r.applied = max(r.applied, txs[len(txs)-1].EndLSN)
	r.published.Store(uint64(r.applied))
	r.pending, r.pendingChanges = nil, 0
	r.owed = true
	r.m.position(uint64(r.applied), uint64(r.serverEnd))
	return nil
}

func (r *Reader) sendStatus(ctx context.Context, conn *pgconn.PgConn) error {
	err := pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: r.applied})
	if err != nil {
		return fmt.Errorf("send standby status: %w", err)
	}
	r.lastStatus = time.Now()
	r.owed = false
	return nil
}

func minTime(t time.Time, ts ...time.Time) time.Time {
	for _, u := range ts {
		if u.Before(t) {
			t = u
		}
	}
	return t
}

// ensureSlot creates the slot on first start and returns its confirmed position.
func (r *Reader) ensureSlot(ctx context.Context, conn *pgconn.PgConn) (pglogrepl.LSN, error) {
	res, err := conn.Exec(ctx, fmt.Sprintf(
		`SELECT confirmed_flush_lsn, coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = '%s'`, r.cfg.Slot)).ReadAll()
	if err != nil {
		return 0, fmt.Errorf("look up slot %s: %w", r.cfg.Slot, err)
	}
	if len(res) == 1 && len(res[0].Rows) == 1 {
		row := res[0].Rows[0]
		if string(row[1]) == "lost" {
			return 0, fmt.Errorf("%w: %s has wal_status lost", ErrSlotLost, r.cfg.Slot)
		}
		return pglogrepl.ParseLSN(string(row[0]))
	}
	if !r.cfg.CreateSlot {
		return 0, fmt.Errorf("%w: %s does not exist", ErrSlotLost, r.cfg.Slot)
	}
	created, err := pglogrepl.CreateReplicationSlot(ctx, conn, r.cfg.Slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: "NOEXPORT_SNAPSHOT"})
	if err != nil {
		return 0, fmt.Errorf("create slot %s: %w", r.cfg.Slot, err)
	}
	r.log.Info("created replication slot", "slot", r.cfg.Slot, "consistent_point", created.ConsistentPoint)
	return pglogrepl.ParseLSN(created.ConsistentPoint)
}

// isSlotGone recognises "replication slot does not exist" (42704) and an
// invalidated slot (55000 with a "can no longer" message).
func isSlotGone(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return pgErr.Code == "42704" || pgErr.Code == "55000"
}

type backoff struct {
	cur, max time.Duration
}

func newBackoff(max time.Duration) *backoff { return &backoff{max: max} }

func (b *backoff) reset() { b.cur = 0 }

func (b *backoff) next() time.Duration {
	b.cur = min(max(2*b.cur, 100*time.Millisecond), b.max)
	return b.cur/2 + rand.N(b.cur/2+1)
}

// sleep waits d or until ctx ends, reporting whether it slept fully.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
