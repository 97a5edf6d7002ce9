package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
)

const decodeFigure = "CDC decode, null sink"

// The decode backlog: bulk transactions (a batch import, a mass repricing)
// and many one-row transactions (what the API writes).
const (
	decodeUsers      = 1_000
	decodeBulkInsert = 2       // transactions that insert decodeBulkRows listings each
	decodeBulkRows   = 100_000 // rows per bulk transaction
	decodeBulkUpdate = 1       // transactions that update decodeBulkRows listings each
	decodeSmallTxns  = 5_000   // one-row updates, each its own transaction
)

// backlog is WAL written while no reader was draining the slot.
type backlog struct {
	changes    int64 // row changes in the publication
	txns       int64
	start, end pglogrepl.LSN
	txnsEnd    pglogrepl.LSN // the last commit's end
	took       time.Duration
}

func (b backlog) walMB() float64 { return float64(b.end-b.start) / (1 << 20) }

// measureDecode drains a backlog of about 300k row changes through a
// wal.Reader whose sink only counts. The reader does everything it does in
// production up to the sink: the replication protocol, parsing every
// pgoutput message, assembling transactions and acknowledging them.
func measureDecode(ctx context.Context, e *env, o options) (row, error) {
	// A second slot at the same position lets pg_recvlogical stream the
	// same backlog: what Postgres's own client gets from this server.
	refSlot := e.Slot + "_ref"
	for _, s := range []string{e.Slot, refSlot} {
		if err := createSlot(ctx, e, s); err != nil {
			return row{}, err
		}
	}
	bl, err := makeDecodeBacklog(ctx, e)
	if err != nil {
		return row{}, err
	}
	progress("cdc decode: backlog of %d row changes in %d transactions, %.0f MB of WAL, written in %s",
		bl.changes, bl.txns, bl.walMB(), bl.took.Round(time.Millisecond))

	sink := newDrainSink(nil, bl.changes)
	took, err := drain(ctx, e, sink, "cdc decode", 2*time.Minute)
	if err != nil {
		return row{}, err
	}
	if got, changes := sink.txns.Load(), sink.changes.Load(); got != bl.txns || changes != bl.changes {
		return row{}, fmt.Errorf("the reader delivered %d row changes in %d transactions; the backlog has %d in %d",
			changes, got, bl.changes, bl.txns)
	}
	bl.txnsEnd = pglogrepl.LSN(sink.lastEnd.Load())
	rate := perSecond(sink.changes.Load(), took)
	progress("cdc decode: %d row changes in %s: %.0f changes/s (%.0f MB/s of WAL), %d batches",
		sink.changes.Load(), took.Round(time.Millisecond), rate, bl.walMB()/took.Seconds(), sink.batches.Load())

	refRate, err := recvlogicalRate(ctx, e, refSlot, bl)
	if err != nil {
		return row{}, err
	}
	return atLeast(fmt.Sprintf("%s (%dk-change backlog)", decodeFigure, bl.changes/1000),
		fmt.Sprintf("%s changes/s (%.2fx pg_recvlogical)", human(rate), rate/refRate),
		fmt.Sprintf("absolute 100k/s; pg_recvlogical %s/s", human(refRate)), rate/decodeTarget, 1), nil
}

// makeDecodeBacklog writes the backlog in a fresh database whose slot
// already exists, and counts exactly the row changes it made.
func makeDecodeBacklog(ctx context.Context, e *env) (backlog, error) {
	conn, err := backlogConn(ctx, e)
	if err != nil {
		return backlog{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var bl backlog
	if bl.start, err = currentLSN(ctx, conn); err != nil {
		return backlog{}, err
	}
	began := time.Now()
	exec := func(what, sql string, args ...any) error {
		tag, err := conn.Exec(ctx, sql, args...)
		if err != nil {
			return fmt.Errorf("backlog: %s: %w", what, err)
		}
		bl.changes += tag.RowsAffected()
		bl.txns++
		return nil
	}
	if err := exec("users", `
		INSERT INTO users (id, display_name)
		SELECT gen_random_uuid(), 'decode user ' || g FROM generate_series(1, $1::int) g`, decodeUsers); err != nil {
		return backlog{}, err
	}
	for range decodeBulkInsert {
		if err := exec("bulk insert", `
			INSERT INTO listings (id, seller_id, title, description, category, condition,
			                      price_currency, price_minor, attributes)
			SELECT gen_random_uuid(), s.ids[1 + g % cardinality(s.ids)],
			       'Decode item ' || g, 'A listing that swapmeet-bench writes to fill the WAL.',
			       'bench', 'GOOD', 'EUR', 1000 + g % 9000,
			       jsonb_build_object('color', (ARRAY['red', 'blue', 'green'])[1 + g % 3], 'size', 'M')
			FROM generate_series(1, $1::int) g, (SELECT array_agg(id) AS ids FROM users) s`, decodeBulkRows); err != nil {
			return backlog{}, err
		}
	}
	for range decodeBulkUpdate {
		if err := exec("bulk update", `
			UPDATE listings SET price_minor = price_minor + 1, version = version + 1, updated_at = now()
			WHERE id IN (SELECT id FROM listings LIMIT $1::int)`, decodeBulkRows); err != nil {
			return backlog{}, err
		}
	}
	if err := updateListingsOneByOne(ctx, conn, decodeSmallTxns); err != nil {
		return backlog{}, err
	}
	bl.changes += decodeSmallTxns
	bl.txns += decodeSmallTxns
	if bl.end, err = currentLSN(ctx, conn); err != nil {
		return backlog{}, err
	}
	bl.took = time.Since(began)
	return bl, nil
}

// updateListingsOneByOne commits n one-row listing updates, each in its
// own transaction, as the API writes them (a price change that bumps the
// version), over n distinct listings in a scattered order. The loop runs
// in the server, so writing the backlog costs no round trips.
func updateListingsOneByOne(ctx context.Context, conn *pgx.Conn, n int) error {
	_, err := conn.Exec(ctx, fmt.Sprintf(`
		DO $$
		DECLARE r record;
		BEGIN
			FOR r IN SELECT id FROM listings ORDER BY md5(id::text) LIMIT %d LOOP
				UPDATE listings SET price_minor = price_minor + 1, version = version + 1, updated_at = now()
				WHERE id = r.id;
				COMMIT;
			END LOOP;
		END $$`, n))
	if err != nil {
		return fmt.Errorf("backlog: %d one-row updates: %w", n, err)
	}
	return nil
}

// recvlogicalRate streams the same backlog from a second slot with
// pg_recvlogical, Postgres's own client for logical replication, into
// /dev/null: the same walsender and pgoutput, with a client that does
// nothing but write each message out. It shows how much of the rate the
// server itself sets: the walsender sends each row change as its own
// message.
func recvlogicalRate(ctx context.Context, e *env, slot string, bl backlog) (float64, error) {
	progress("cdc decode: reference: pg_recvlogical streams the same backlog into /dev/null")
	start := time.Now()
	if _, err := runTool(ctx, "pg_recvlogical", "postgresql-client", "--dbname", e.PGURL, "--slot", slot, "--start",
		"--endpos", bl.end.String(), "--no-loop", "--file", "/dev/null",
		"--option", "proto_version=1", "--option", "publication_names="+e.Publication); err != nil {
		return 0, err
	}
	took := time.Since(start)
	// It must have consumed the backlog: its slot's confirmed position has
	// passed nearly all of the backlog's WAL. (It confirms the start of
	// what it last wrote, so it ends a transaction or so short of the end.)
	var confirmed string
	if err := e.PG.QueryRow(ctx, `SELECT coalesce(confirmed_flush_lsn::text, '') FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&confirmed); err != nil {
		return 0, fmt.Errorf("pg_recvlogical's slot: %w", err)
	}
	lsn, err := pglogrepl.ParseLSN(confirmed)
	if err != nil || float64(lsn-bl.start) < 0.99*float64(bl.txnsEnd-bl.start) {
		return 0, fmt.Errorf("pg_recvlogical stopped at %s, well before the backlog's last commit at %s", confirmed, bl.txnsEnd)
	}
	rate := perSecond(bl.changes, took)
	progress("cdc decode: reference: pg_recvlogical streamed %d row changes in %s: %.0f changes/s",
		bl.changes, took.Round(time.Millisecond), rate)
	return rate, nil
}
