// Package roundtrip counts the round trips an operation makes to each
// backing store. An operation opts in by carrying a *Counts in its
// context (With); the clients count through the hooks installed where they
// are opened (Postgres pools: Pool; the read store: Monitor; Redis: Hook).
// Operations without a Counts cost one context lookup per call.
//
// A round trip is a request that waits for its answer: a statement, a
// prepare, a pipelined batch, a ping of an idle pooled connection, a
// MongoDB command, a Redis command or pipeline. Requests sent in parallel
// count one each, though they cost a caller one latency together.
package roundtrip

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/event"
)

// Store is a backing store whose round trips are counted.
type Store int

const (
	Postgres  Store = iota // the write Postgres (the source of truth)
	Search                 // the search and history store (the read side's Postgres)
	ReadStore              // the document store (MongoDB or FerretDB)
	Redis                  // the cache, the change feed and the announcements
	NStores
)

var names = [NStores]string{"postgres", "search", "readstore", "redis"}

func (s Store) String() string {
	if s < 0 || s >= NStores {
		return "unknown"
	}
	return names[s]
}

// Counts are the round trips of one operation, by store. It is safe for
// concurrent use.
type Counts struct{ n [NStores]atomic.Int64 }

// Get returns the round trips made to s so far.
func (c *Counts) Get(s Store) int64 { return c.n[s].Load() }

type key struct{}

// With returns a context whose round trips are counted in a new Counts.
func With(ctx context.Context) (context.Context, *Counts) {
	c := new(Counts)
	return context.WithValue(ctx, key{}, c), c
}

// Add counts n round trips to s if ctx carries a Counts.
func Add(ctx context.Context, s Store, n int) {
	if c, ok := ctx.Value(key{}).(*Counts); ok {
		c.n[s].Add(int64(n))
	}
}

// Pool makes a pool's connections count their round trips as s's: every
// statement, prepare, batch and copy, and the liveness ping of a
// connection idle for a second or more (pgxpool's default rule, kept).
func Pool(cfg *pgxpool.Config, s Store) {
	cfg.ConnConfig.Tracer = pgTracer{s}
	ping := cfg.ShouldPing
	cfg.ShouldPing = func(ctx context.Context, p pgxpool.ShouldPingParams) bool {
		var yes bool
		if ping != nil {
			yes = ping(ctx, p)
		} else {
			yes = p.IdleDuration >= time.Second
		}
		if yes {
			Add(ctx, s, 1)
		}
		return yes
	}
}

type pgTracer struct{ s Store }

func (t pgTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	Add(ctx, t.s, 1)
	return ctx
}
func (pgTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (t pgTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	Add(ctx, t.s, 1)
	return ctx
}
func (pgTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (pgTracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

func (t pgTracer) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	Add(ctx, t.s, 1)
	return ctx
}
func (pgTracer) TraceCopyFromEnd(context.Context, *pgx.Conn, pgx.TraceCopyFromEndData) {}

func (pgTracer) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	return ctx
}

// TracePrepareEnd counts a prepare that went to the server: a statement
// the connection had not prepared before.
func (t pgTracer) TracePrepareEnd(ctx context.Context, _ *pgx.Conn, d pgx.TracePrepareEndData) {
	if !d.AlreadyPrepared {
		Add(ctx, t.s, 1)
	}
}

// Monitor counts every command a MongoDB client sends as a round trip to
// the read store.
func Monitor() *event.CommandMonitor {
	return &event.CommandMonitor{Started: func(ctx context.Context, _ *event.CommandStartedEvent) { Add(ctx, ReadStore, 1) }}
}

// Hook counts every Redis command and every pipeline (one round trip per
// call; a Redis Cluster pipeline reaches its nodes in parallel) as a round
// trip to Redis. Install it with AddHook.
type Hook struct{}

// DialHook passes dials through.
func (Hook) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook counts a command.
func (Hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		Add(ctx, Redis, 1)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook counts a pipeline or a transaction.
func (Hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		Add(ctx, Redis, 1)
		return next(ctx, cmds)
	}
}
