package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/swapmeet/swapmeet/db/sqlc"
	"github.com/swapmeet/swapmeet/internal/audit"
	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/fault"
	"github.com/swapmeet/swapmeet/internal/wait"
)

// Store runs sqlc queries, alone or inside transactions.
type Store struct {
	Pool *pgxpool.Pool
	*sqlc.Queries

	// MaxAttempts bounds how often a transaction is retried after a
	// serialization failure or deadlock.
	MaxAttempts int
	// OnRetry, if set, is told about every retry (for metrics).
	OnRetry func(sqlstate string)
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) *Store {
	return &Store{Pool: pool, Queries: sqlc.New(classifying{pool}), MaxAttempts: 8}
}

// ErrRetriesExhausted wraps the last serialization failure once every
// attempt was used. It is a fault.ErrContention.
var ErrRetriesExhausted = fault.Contention(errors.New("transaction retries exhausted"))

// Commit is what a committed transaction reports back.
type Commit struct {
	// LSN is a WAL position at or after the transaction's commit record.
	// Once the projections have applied this position, they reflect the
	// transaction: with History, it is the consistency token handed to
	// clients.
	LSN uint64
	// History is the Postgres history the position lies in.
	History consistency.History
}

// Position is the commit's position in its history.
func (c Commit) Position() consistency.Position {
	return consistency.Position{History: c.History, LSN: c.LSN}
}

// TxOptions are a transaction's options.
type TxOptions struct {
	// Isolation is the isolation level; "" is the server's default
	// (read committed).
	Isolation Isolation
	// ReadOnly refuses writes.
	ReadOnly bool
	// Actor is who makes the change: a user id, or audit.System for the
	// service's jobs. Every transaction that may change a published table
	// names one: ExecTx refuses a writing transaction without it, and
	// writes the annotation (audit.For) ahead of its first statement.
	Actor string
	// IdempotencyKey is the client's key, for the writes that take one.
	IdempotencyKey string
}

// ErrNoActor is ExecTx's answer to a writing transaction that names no
// actor: its changes would enter the history unattributed.
var ErrNoActor = errors.New("a writing transaction must name its actor (TxOptions.Actor)")

// Isolation is a transaction isolation level, spelled as in SQL.
type Isolation string

// The isolation levels.
const (
	ReadCommitted  Isolation = "READ COMMITTED"
	RepeatableRead Isolation = "REPEATABLE READ"
	Serializable   Isolation = "SERIALIZABLE"
)

// ExecTx runs fn in a transaction with the given options and commits it.
// Serialization failures (40001) and deadlocks (40P01) are retried with
// jittered backoff, up to MaxAttempts; fn must therefore be safe to re-run.
// Failures, fn's statements' included, are classified (see classify).
func (s *Store) ExecTx(ctx context.Context, opts TxOptions, fn func(q *sqlc.Queries) error) (Commit, error) {
	c, err := s.execTx(ctx, opts, fn)
	return c, classify(err)
}

func (s *Store) execTx(ctx context.Context, opts TxOptions, fn func(q *sqlc.Queries) error) (Commit, error) {
	backoff := wait.NewBackoff(2*time.Millisecond, 200*time.Millisecond)
	for attempt := 1; ; attempt++ {
		c, err := s.execOnce(ctx, opts, fn)
		if err == nil {
			return c, nil
		}
		code := sqlState(err)
		if code != "40001" && code != "40P01" {
			return Commit{}, err
		}
		if attempt >= s.MaxAttempts {
			return Commit{}, fmt.Errorf("%w after %d attempts: %w", ErrRetriesExhausted, attempt, err)
		}
		if s.OnRetry != nil {
			s.OnRetry(code)
		}
		if !backoff.Wait(ctx) {
			return Commit{}, ctx.Err()
		}
	}
}

func (s *Store) execOnce(ctx context.Context, opts TxOptions, fn func(q *sqlc.Queries) error) (Commit, error) {
	var note []byte
	if !opts.ReadOnly {
		if opts.Actor == "" {
			return Commit{}, ErrNoActor
		}
		note = audit.For(ctx, opts.Actor, opts.IdempotencyKey).Encode()
	}
	conn, err := s.Pool.Acquire(ctx)
	if err != nil {
		return Commit{}, err
	}
	defer conn.Release()
	tx := &pipelinedTx{conn: conn.Conn(), begin: beginSQL(opts), note: note}
	if err := fn(sqlc.New(classifying{tx})); err != nil {
		tx.rollback(context.WithoutCancel(ctx))
		return Commit{}, err
	}
	return tx.commit(ctx)
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// IsUniqueViolation reports whether err is a unique_violation on the named constraint.
func IsUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && (constraint == "" || pgErr.ConstraintName == constraint)
}
