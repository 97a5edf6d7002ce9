package db

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/swapmeet/swapmeet/db/sqlc"
	"github.com/swapmeet/swapmeet/internal/audit"
	"github.com/swapmeet/swapmeet/internal/consistency"
)

// pipelinedTx is a transaction that saves two network round trips out of
// every command's few: BEGIN travels in one pipeline with the first
// statement, and COMMIT with the read of the commit position. It satisfies
// sqlc's DBTX, so the generated queries run on it unchanged.
type pipelinedTx struct {
	conn  *pgx.Conn
	begin string
	// note, if set, is the annotation written ahead of the first
	// statement, in the same pipeline (see audit).
	note  []byte
	begun bool
	done  bool
}

// emitSQL writes a transactional logical decoding message: decoded inside
// its transaction, in order, only if the transaction commits.
const emitSQL = `SELECT pg_logical_emit_message(true, '` + audit.Prefix + `', $1::text)`

func beginSQL(opts TxOptions) string {
	var b strings.Builder
	b.WriteString("BEGIN")
	if opts.Isolation != "" {
		b.WriteString(" ISOLATION LEVEL " + string(opts.Isolation))
	}
	if opts.ReadOnly {
		b.WriteString(" READ ONLY")
	}
	return b.String()
}

// first sends BEGIN, the annotation and sql together. The caller reads
// sql's result from the returned batch and must close it.
func (t *pipelinedTx) first(ctx context.Context, sql string, args []any) (pgx.BatchResults, error) {
	t.begun = true
	b := &pgx.Batch{}
	b.Queue(t.begin)
	if t.note != nil {
		b.Queue(emitSQL, string(t.note))
	}
	b.Queue(sql, args...)
	br := t.conn.SendBatch(ctx, b)
	for range b.Len() - 1 {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return nil, err
		}
	}
	return br, nil
}

func (t *pipelinedTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if t.begun {
		return t.conn.Exec(ctx, sql, args...)
	}
	br, err := t.first(ctx, sql, args)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	return tag, errors.Join(err, br.Close())
}

func (t *pipelinedTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if t.begun {
		return t.conn.Query(ctx, sql, args...)
	}
	br, err := t.first(ctx, sql, args)
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

func (t *pipelinedTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := t.Query(ctx, sql, args...)
	return &firstRow{rows: rows, err: err}
}

// currentPositionSQL is sqlc's CurrentPosition (db/queries/projections.sql):
// the end of the WAL inserted so far, and its history. Read after COMMIT
// returned, the position lies at or past the end of the commit record even
// with synchronous_commit = off, where the WAL write position
// (pg_current_wal_lsn) can still be before it.
const currentPositionSQL = `SELECT (CASE
          WHEN p % seg = 40 THEN p - 40
          WHEN p % blk = 24 THEN p - 24
          ELSE p
        END)::int8 AS lsn,
       (SELECT system_identifier FROM pg_control_system())::int8 AS system,
       ('x' || left(pg_walfile_name(i), 8))::bit(32)::int8 AS timeline
FROM (SELECT i, i - '0/0' AS p,
             current_setting('wal_block_size')::numeric AS blk,
             pg_size_bytes(current_setting('wal_segment_size'))::numeric AS seg
      FROM pg_current_wal_insert_lsn() AS i) AS wal`

// commit sends COMMIT and reads the WAL position in one pipeline. The
// position is read after the commit returned, so it lies at or past the
// commit record.
func (t *pipelinedTx) commit(ctx context.Context) (Commit, error) {
	if !t.begun { // fn ran no statement: nothing to commit
		p, err := sqlc.New(t.conn).CurrentPosition(ctx)
		return commitAt(p), err
	}
	t.done = true
	b := &pgx.Batch{}
	b.Queue("COMMIT")
	b.Queue(currentPositionSQL)
	br := t.conn.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return Commit{}, err
	}
	var p sqlc.CurrentPositionRow
	if err := br.QueryRow().Scan(&p.Lsn, &p.System, &p.Timeline); err != nil {
		return Commit{}, fmt.Errorf("read commit position: %w", err)
	}
	return commitAt(p), br.Close()
}

// PositionOf is the position, in its history, that CurrentPosition read.
func PositionOf(p sqlc.CurrentPositionRow) consistency.Position {
	return consistency.Position{History: consistency.History{System: uint64(p.System), Timeline: uint32(p.Timeline)}, LSN: uint64(p.Lsn)}
}

// PositionToken is the consistency token of a position read by
// CurrentPosition: a token that any write committed before it satisfies.
func PositionToken(p sqlc.CurrentPositionRow) string {
	return consistency.WriteToken(PositionOf(p))
}

// commitAt is the Commit of a position read by CurrentPosition.
func commitAt(p sqlc.CurrentPositionRow) Commit {
	pos := PositionOf(p)
	return Commit{LSN: pos.LSN, History: pos.History}
}

func (t *pipelinedTx) rollback(ctx context.Context) {
	if t.begun && !t.done {
		t.done = true
		_, _ = t.conn.Exec(ctx, "ROLLBACK")
	}
}

// batchRows closes the batch that carried the rows when they are closed.
type batchRows struct {
	pgx.Rows
	br pgx.BatchResults
}

func (r *batchRows) Close() {
	r.Rows.Close()
	_ = r.br.Close()
}

// firstRow is pgx.Row over the first row of a result.
type firstRow struct {
	rows pgx.Rows
	err  error
}

func (r *firstRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}
