package db

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/swapmeet/swapmeet/db/sqlc"
	"github.com/swapmeet/swapmeet/internal/fault"
)

// ErrNotFound: a statement that returns one row found none. Callers test
// for it with errors.Is, never for the driver's own error.
var ErrNotFound = errors.New("no such row")

// classify marks the Postgres failures callers act on with their kind:
// a statement cancelled by statement_timeout is a timeout; a server that
// cannot be reached, is shutting down or starting, or a connection lost
// before the statement was sent, is unavailable; no row is ErrNotFound.
// Everything else (constraint violations, bugs) is returned as it is.
func classify(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		if errors.Is(err, ErrNotFound) {
			return err
		}
		return notFound{err}
	}
	var pgErr *pgconn.PgError
	var connErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "57014": // query_canceled
		return fault.Timeout(err)
	case errors.As(err, &connErr), errors.As(err, &netErr),
		// A connection the server or the network closed mid-statement.
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fault.Unavailable(err)
	case errors.As(err, &pgErr):
		// Class 08: connection exceptions; 57P0x: the server is shutting down or starting.
		if pgErr.Code[:2] == "08" || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03" {
			return fault.Unavailable(err)
		}
		return err
	case pgconn.SafeToRetry(err):
		return fault.Unavailable(err)
	}
	return err
}

// notFound is a driver's no-rows error, marked as ErrNotFound; its
// message is the driver's.
type notFound struct{ err error }

func (e notFound) Error() string   { return e.err.Error() }
func (e notFound) Unwrap() []error { return []error{e.err, ErrNotFound} }

// classifying runs sqlc's statements on a pool or in a transaction and
// classifies their errors.
type classifying struct{ db sqlc.DBTX }

func (c classifying) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := c.db.Exec(ctx, sql, args...)
	return tag, classify(err)
}

func (c classifying) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := c.db.Query(ctx, sql, args...)
	if err != nil {
		return rows, classify(err)
	}
	return classifiedRows{rows}, nil
}

func (c classifying) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return classifiedRow{c.db.QueryRow(ctx, sql, args...)}
}

type classifiedRows struct{ pgx.Rows }

func (r classifiedRows) Err() error             { return classify(r.Rows.Err()) }
func (r classifiedRows) Scan(dest ...any) error { return classify(r.Rows.Scan(dest...)) }

type classifiedRow struct{ row pgx.Row }

func (r classifiedRow) Scan(dest ...any) error { return classify(r.row.Scan(dest...)) }
