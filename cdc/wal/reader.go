// Package wal is the CDC's transport: it streams the Postgres WAL. A
// Reader tails the WAL through a logical replication slot (pgoutput),
// feeds each committed transaction into a Batch as it arrives, hands the
// batch to a Sink, and acknowledges the batch's end LSN only after the
// sink has finished with it. A crash therefore loses nothing: Postgres
// re-sends every transaction after the last acknowledged position, and
// sinks are idempotent.
package wal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/wait"
)

// Sink applies committed transactions to the read side.
type Sink interface {
	// NewBatch returns an empty batch for the reader to fill.
	NewBatch() Batch
	// Apply makes the read side reflect b, a run of consecutive committed
	// transactions. It must be idempotent: after a crash the same
	// transactions are applied again.
	Apply(ctx context.Context, b Batch) error
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
	// else prompts it. The reader also keeps it under a third of the
	// server's wal_sender_timeout, which it reads on connecting.
	StatusInterval time.Duration
	// MaxBackoff caps the wait between retries of a failing sink or a
	// lost connection.
	MaxBackoff time.Duration
	// Linger is how long a committed transaction waits for the next one
	// to arrive, so that a burst is applied as one batch, on a connection
	// whose socket the reader cannot inspect (TLS). Elsewhere a batch
	// closes as soon as nothing more is buffered: no timer adds latency.
	Linger time.Duration
	// MaxBatch bounds the transactions applied together.
	MaxBatch int
	// MaxBatchDocs closes a batch, at the next transaction boundary, once
	// it touches this many documents. One transaction is never split: the
	// sink bounds what a bigger one costs (see projection.Projector.SpillDocs).
	MaxBatchDocs int
	// MaxBatchAge bounds how long the first transaction of a batch waits
	// for more, with Linger.
	MaxBatchAge time.Duration
	// CreateSlot lets the reader create a missing slot. Only a first start
	// may: anywhere else, a missing slot means changes were lost.
	CreateSlot bool
	// Name identifies this process to Postgres (the replication
	// connection's application_name), so that `slot status` shows which
	// process leads. It defaults to "swapmeet-cdc <host> pid <pid>".
	Name string
	// StandbyPoll is how often a standby asks for the slot while another
	// process streams it: the bound on a takeover after the leader dies,
	// on top of the time Postgres takes to release the slot. 1 s by default.
	StandbyPoll time.Duration
	// CheckHistory, if set, is told the history the server streams
	// (IDENTIFY_SYSTEM: its system identifier and timeline) and the end of
	// its WAL, on every connection before anything streams. An error
	// stops the reader; one that wraps ErrHistory says the read side
	// follows another history.
	CheckHistory func(ctx context.Context, h consistency.History, walEnd pglogrepl.LSN) error
	Log          *slog.Logger
	Metrics      *Metrics
}

// ErrSlotLost means the slot vanished or was invalidated. Streaming from a
// new slot would silently skip changes, so the reader stops instead.
var ErrSlotLost = errors.New("replication slot is missing or invalidated")

// errSlotBusy means another process streams the slot: this one is a
// standby until the slot is released.
var errSlotBusy = errors.New("the replication slot is streamed by another process")

// ErrSetup means the server refuses to stream for a reason that retrying
// will not cure: the publication is missing, the role lacks a privilege,
// wal_level is not logical. The slot and its changes are intact; fix the
// setup and start again.
var ErrSetup = errors.New("replication is not set up correctly")

// ErrHistory means the write Postgres is not on the history the read side
// follows: a failover, a restore or a move started a new one, and its WAL
// positions do not continue the read side's. Streaming would apply
// positions that mean something else; only a rebuild onto the new history
// can repair that.
var ErrHistory = errors.New("the write Postgres follows another history than the read side")

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
	owed       bool          // applied moved since the last status update
	heartbeat  time.Duration // the longest silence allowed towards the server

	pending      Batch // committed, received, not yet applied; nil when empty
	pendingTxns  int
	pendingEnd   pglogrepl.LSN
	pendingLast  time.Time // commit time of the newest pending transaction
	pendingRows  int
	pendingSince time.Time
	// When the newest pending transaction's COMMIT was received and
	// decoded: the batch's first two stages (Stage).
	pendingReceived, pendingDecoded time.Time

	heard   time.Time      // when the last message arrived (or the last flush was asked for)
	flusher *pgconn.PgConn // an ordinary connection that asks for WAL flushes; nil until needed
	// tailChecked is set once the current silence has had its first
	// check of the WAL's end (see firstTailCheckAfter).
	tailChecked bool
}

// firstTailCheckAfter is how long a caught-up reader waits in silence
// before it checks that the server's WAL does not end past what it
// reported (see flushTail), and idleFlushAfter how long between the
// checks of one silence. The first comes soon: a write whose token lies
// past WAL that another session inserted (a page a read pruned) then waits
// milliseconds, not for the next commit on the server. It costs one small
// query per silence.
const (
	firstTailCheckAfter = 5 * time.Millisecond
	idleFlushAfter      = 100 * time.Millisecond
)

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
	if cfg.MaxBatchDocs == 0 {
		cfg.MaxBatchDocs = 20000
	}
	if cfg.MaxBatchAge == 0 {
		cfg.MaxBatchAge = 20 * time.Millisecond
	}
	if cfg.StandbyPoll == 0 {
		cfg.StandbyPoll = time.Second
	}
	if cfg.Name == "" {
		cfg.Name = ProcessName()
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Reader{cfg: cfg, sink: sink, log: cfg.Log, m: cfg.Metrics}
}

// Applied is the position applied so far; safe from any goroutine.
func (r *Reader) Applied() pglogrepl.LSN { return pglogrepl.LSN(r.published.Load()) }

// Run streams until ctx ends, reconnecting with backoff after errors. It
// returns nil on a clean shutdown, and ErrSlotLost or ErrSetup when it
// must not go on.
//
// Postgres lets one connection stream a slot at a time, and that is the
// leadership lease: while another process streams it, this one is a
// standby that asks again every StandbyPoll. A leader that dies releases
// the slot at once; one that stops (paused, partitioned) stops answering
// the walsender's keepalives and is dropped after wal_sender_timeout.
func (r *Reader) Run(ctx context.Context) error {
	backoff := wait.NewBackoff(0, r.cfg.MaxBackoff)
	standby := false
	for {
		streamed, err := r.stream(ctx)
		r.m.leading(false)
		if ctx.Err() != nil {
			r.log.Info("replication stopped", "applied", r.applied.String())
			return nil
		}
		if errors.Is(err, ErrSlotLost) || errors.Is(err, ErrSetup) || errors.Is(err, ErrHistory) {
			return err
		}
		if errors.Is(err, errSlotBusy) {
			r.m.standingBy()
			if !standby {
				r.log.Info("standby: another process streams the slot; taking over when it lets go",
					"slot", r.cfg.Slot, "err", err, "poll", r.cfg.StandbyPoll)
				standby = true
			}
			backoff.Reset()
			if !wait.Sleep(ctx, wait.Jittered(r.cfg.StandbyPoll)) {
				return nil
			}
			continue
		}
		standby = false
		if streamed {
			backoff.Reset()
		}
		in := backoff.Next()
		r.m.reconnect()
		r.log.Warn("replication stream ended; reconnecting", "err", err, "in", in)
		if !wait.Sleep(ctx, in) {
			return nil
		}
	}
}

// stream runs one replication connection. streamed reports whether it got
// as far as receiving data, which resets the reconnect backoff.
func (r *Reader) stream(ctx context.Context) (streamed bool, err error) {
	cfg, err := pgconn.ParseConfig(r.cfg.ConnString)
	if err != nil {
		return false, fmt.Errorf("%w: parse connection string: %v", ErrSetup, err)
	}
	cfg.RuntimeParams["replication"] = "database"
	cfg.RuntimeParams["application_name"] = r.cfg.Name
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, classify("connect", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	if r.cfg.CheckHistory != nil {
		id, err := pglogrepl.IdentifySystem(ctx, conn)
		if err != nil {
			return false, classify("identify system", err)
		}
		system, err := strconv.ParseUint(id.SystemID, 10, 64)
		if err != nil {
			return false, fmt.Errorf("identify system: system identifier %q: %w", id.SystemID, err)
		}
		if err := r.cfg.CheckHistory(ctx, consistency.History{System: system, Timeline: uint32(id.Timeline)}, id.XLogPos); err != nil {
			return false, err
		}
	}

	confirmed, err := r.ensureSlot(ctx, conn)
	if err != nil {
		return false, err
	}
	if err := r.readHeartbeat(ctx, conn); err != nil {
		return false, err
	}
	// Whatever was received but not applied on the last connection will be
	// sent again: streaming resumes where this process has applied, which
	// may be past the slot's confirmed position when the last status
	// update was lost with the connection. Postgres skips every
	// transaction that committed before the start, so nothing already in
	// the read store is sent twice.
	r.dropPending()
	r.applied = max(r.applied, confirmed)
	r.published.Store(uint64(r.applied))

	err = pglogrepl.StartReplication(ctx, conn, r.cfg.Slot, r.applied, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", fmt.Sprintf("publication_names '%s'", r.cfg.Publication), "messages 'true'"},
	})
	if err != nil {
		return false, classify("start replication", err)
	}
	r.m.leading(true)
	r.log.Info("leading: streaming the slot", "slot", r.cfg.Slot, "from", r.applied.String(), "heartbeat", r.heartbeat, "name", r.cfg.Name)

	dec := newDecoder()
	defer r.closeFlusher()
	r.heard = time.Now()
	nextStatus := time.Now().Add(r.heartbeat)
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
			nextStatus = now.Add(r.heartbeat)
			due = nextStatus
		}
		deadline := due
		caughtUp := r.pendingTxns == 0 && !dec.inTxn()
		if r.pendingTxns > 0 && !dec.inTxn() {
			// Between transactions with a batch gathered: what the stream
			// has already buffered joins it, and nothing waits for more.
			// Under load the batch is what arrived while the last one was
			// applied; at rest it is the one commit, applied at once.
			switch buffered(conn) {
			case bufferEmpty:
				if err := r.flush(ctx, conn); err != nil {
					return streamed, err
				}
				continue
			case bufferUnknown:
				deadline = minTime(deadline, now.Add(r.cfg.Linger), r.pendingSince.Add(r.cfg.MaxBatchAge))
			}
		}
		tailCheck := idleFlushAfter
		if !r.tailChecked {
			tailCheck = firstTailCheckAfter
		}
		if caughtUp {
			deadline = minTime(deadline, r.heard.Add(tailCheck))
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
			if !dec.inTxn() {
				if err := r.flush(ctx, conn); err != nil {
					return streamed, err
				}
			}
			if caughtUp && time.Since(r.heard) >= tailCheck {
				r.heard, r.tailChecked = time.Now(), true
				if err := r.flushTail(ctx); err != nil {
					r.log.Warn("ask for the WAL tail to be flushed", "err", err)
				}
			}
			continue
		}
		r.heard, r.tailChecked = time.Now(), false
		switch m := raw.(type) {
		case *pgproto3.ErrorResponse:
			return streamed, classify("stream", pgconn.ErrorResponseToPgError(m))
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

// readHeartbeat sets how long the reader may stay silent towards the
// server: a third of wal_sender_timeout, so that a status update always
// reaches the walsender before it gives up on us, whatever the sink is
// doing. A timeout of 0 disables the server's check.
func (r *Reader) readHeartbeat(ctx context.Context, conn *pgconn.PgConn) error {
	r.heartbeat = r.cfg.StatusInterval
	res, err := conn.Exec(ctx, `SHOW wal_sender_timeout`).ReadAll()
	if err != nil {
		return classify("read wal_sender_timeout", err)
	}
	if len(res) != 1 || len(res[0].Rows) != 1 {
		return nil
	}
	timeout, err := parsePGDuration(string(res[0].Rows[0][0]))
	if err != nil {
		r.log.Warn("unreadable wal_sender_timeout; using the status interval", "value", string(res[0].Rows[0][0]), "err", err)
		return nil
	}
	if timeout > 0 {
		r.heartbeat = max(min(r.heartbeat, timeout/3), 50*time.Millisecond)
	}
	return nil
}

// parsePGDuration reads a time setting as SHOW prints it: "60s", "500ms",
// "1min", "0".
func parsePGDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"ms", time.Millisecond}, {"s", time.Second}, {"min", time.Minute}, {"h", time.Hour}, {"d", 24 * time.Hour}, {"", time.Millisecond}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok && num != "" {
			var n int64
			if _, err := fmt.Sscanf(num, "%d", &n); err == nil && fmt.Sprint(n) == num {
				return time.Duration(n) * u.unit, nil
			}
		}
	}
	return 0, fmt.Errorf("not a duration: %q", s)
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
		if r.pendingTxns == 0 && !dec.inTxn() && ka.ServerWALEnd > r.applied {
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
		if r.pending == nil {
			r.pending = r.sink.NewBatch()
		}
		c, err := dec.decode(xld.WALData, r.pending)
		if err != nil {
			return false, err
		}
		if c == nil {
			return false, nil
		}
		// r.heard is when this message arrived.
		r.pendingReceived, r.pendingDecoded = r.heard, time.Now()
		if r.pendingTxns == 0 {
			r.pendingSince = time.Now()
		}
		r.pendingTxns++
		r.pendingEnd = c.EndLSN
		r.pendingLast = c.CommitTime
		r.pendingRows += c.Changes
		if r.pendingTxns >= r.cfg.MaxBatch || r.pending.Size() >= r.cfg.MaxBatchDocs {
			return false, r.flush(ctx, conn)
		}
		return false, nil
	}
	return false, nil
}

func (r *Reader) dropPending() {
	r.pending, r.pendingTxns, r.pendingEnd, r.pendingRows = nil, 0, 0, 0
}

// flush applies the pending transactions as one batch until the sink
// succeeds, then acknowledges them. However long that takes, the
// connection stays alive: status updates that repeat the last acknowledged
// position go out every heartbeat, so neither a slow sink nor a dead read
// store makes the walsender drop us, and neither ever costs a skipped
// transaction. A shutdown lets the current attempt finish and abandons
// the rest: unacknowledged, it is sent again.
func (r *Reader) flush(ctx context.Context, conn *pgconn.PgConn) error {
	if r.pendingTxns == 0 {
		return nil // nothing, or only relation messages so far
	}
	b, end := r.pending, r.pendingEnd
	r.m.stageAt(StageReceived, r.pendingLast, r.pendingReceived)
	r.m.stageAt(StageDecoded, r.pendingLast, r.pendingDecoded)
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- r.applyUntilDone(ctx, b, end) }()
	tick := time.NewTicker(r.heartbeat)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				return err
			}
			r.m.applied(r.pendingTxns, r.pendingRows, time.Since(start), r.pendingLast)
			r.applied = max(r.applied, end)
			r.published.Store(uint64(r.applied))
			r.dropPending()
			r.owed = true
			r.m.position(uint64(r.applied), uint64(r.serverEnd))
			return nil
		case <-tick.C:
			// Not cancelled by a shutdown: the batch is finishing, and its
			// position is reported once it has.
			if err := r.sendStatus(context.WithoutCancel(ctx), conn); err != nil {
				// The link is gone; the batch is still applied to the end,
				// so that the reconnect can start after it.
				if aerr := <-done; aerr == nil {
					r.applied = max(r.applied, end)
					r.published.Store(uint64(r.applied))
					r.dropPending()
				}
				return err
			}
		}
	}
}

// ErrReceiveAgain is a sink's answer to a batch it cannot apply as
// received (a write made while decoding failed, and what it held is
// gone): the reader drops the batch and reconnects, and the server sends
// its transactions again.
var ErrReceiveAgain = errors.New("the batch must be received again")

// applyUntilDone applies b, retrying with backoff until it succeeds or ctx
// ends between attempts.
func (r *Reader) applyUntilDone(ctx context.Context, b Batch, end pglogrepl.LSN) error {
	backoff := wait.NewBackoff(0, r.cfg.MaxBackoff)
	for attempt := 1; ; attempt++ {
		err := r.sink.Apply(context.WithoutCancel(ctx), b)
		if err == nil || errors.Is(err, ErrReceiveAgain) {
			return err
		}
		r.m.retry()
		in := backoff.Next()
		r.log.Warn("apply failed; retrying", "end_lsn", end.String(), "attempt", attempt, "err", err, "in", in)
		if !wait.Sleep(ctx, in) {
			return ctx.Err()
		}
	}
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
		return 0, classify("look up slot "+r.cfg.Slot, err)
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
		return 0, classify("create slot "+r.cfg.Slot, err)
	}
	r.log.Info("created replication slot", "slot", r.cfg.Slot, "consistent_point", created.ConsistentPoint)
	return pglogrepl.ParseLSN(created.ConsistentPoint)
}

// classify turns a server error into ErrSlotLost when, and only when, the
// slot is missing or invalidated; into ErrSetup when the server refuses
// for a reason that retrying cannot cure; and leaves anything else (a
// dropped connection) to retry. A slot streamed by another process is
// errSlotBusy: this process is a standby.
func classify(op string, err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return fmt.Errorf("%s: %w", op, err)
	}
	msg := pgErr.Message
	switch {
	case pgErr.Code == "55006" && strings.HasPrefix(msg, "replication slot"):
		// replication slot "x" is active for PID n
		return fmt.Errorf("%w: %s: %v", errSlotBusy, op, pgErr)
	case pgErr.Code == "42704" && strings.HasPrefix(msg, "replication slot"):
		// replication slot "x" does not exist
		return fmt.Errorf("%w: %s: %v", ErrSlotLost, op, pgErr)
	case pgErr.Code == "55000" && (strings.Contains(msg, "can no longer get changes") || strings.Contains(msg, "invalidated")):
		// can no longer get changes from replication slot "x"
		return fmt.Errorf("%w: %s: %v", ErrSlotLost, op, pgErr)
	case pgErr.Code == "42704", // publication "x" does not exist
		pgErr.Code == "42501",                        // insufficient privilege
		pgErr.Code == "28000", pgErr.Code == "28P01", // authentication
		pgErr.Code == "3D000", // no such database
		pgErr.Code == "55000" && strings.Contains(msg, "wal_level"), // logical decoding requires wal_level >= logical
		pgErr.Code == "53400": // all replication slots are in use
		return fmt.Errorf("%w: %s: %v", ErrSetup, op, pgErr)
	}
	return fmt.Errorf("%s: %w", op, pgErr)
}

// ProcessName is how a CDC process names itself to Postgres by default.
func ProcessName() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	return fmt.Sprintf("swapmeet-cdc %s pid %d", host, os.Getpid())
}

// flushTail makes sure the position a writer read after its commit can be
// reached. A write's consistency token is the WAL insert position read
// after COMMIT, which may lie past WAL that other sessions inserted
// without committing (a transaction still open, a page pruned by a
// read). Postgres flushes such WAL only at the next commit, and the
// walsender streams only flushed WAL, so on a quiet server the token
// would be reached only when some unrelated transaction commits. When the
// reader has heard nothing for idleFlushAfter and the insert position is
// past what it applied, it commits an empty transaction (an xid and
// nothing else, which the publication does not stream): its commit
// flushes the tail, and the walsender's next keepalive reports past it.
func (r *Reader) flushTail(ctx context.Context) error {
	if r.flusher == nil {
		cfg, err := pgconn.ParseConfig(r.cfg.ConnString)
		if err != nil {
			return err
		}
		cfg.RuntimeParams["application_name"] = r.cfg.Name + " (flushes)"
		cfg.RuntimeParams["synchronous_commit"] = "local"
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if r.flusher, err = pgconn.ConnectConfig(cctx, cfg); err != nil {
			return err
		}
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// One statement, its own transaction: the xid is taken (and its
	// commit flushed) only when the insert position is past what the
	// reader applied.
	res := r.flusher.ExecParams(qctx, `SELECT CASE WHEN pg_current_wal_insert_lsn() > $1::text::pg_lsn THEN pg_current_xact_id() IS NOT NULL ELSE false END`,
		[][]byte{[]byte(r.applied.String())}, nil, nil, nil).Read()
	if res.Err != nil {
		r.closeFlusher()
		return res.Err
	}
	if len(res.Rows) == 1 && string(res.Rows[0][0]) == "t" {
		r.m.tailFlush()
		r.log.Debug("asked for the WAL tail to be flushed", "applied", r.applied.String())
	}
	return nil
}

func (r *Reader) closeFlusher() {
	if r.flusher != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = r.flusher.Close(ctx)
		r.flusher = nil
	}
}
