package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/media"
	"github.com/swapmeet/swapmeet/internal/password"
	"github.com/swapmeet/swapmeet/internal/ratelimit"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/search"
	"github.com/swapmeet/swapmeet/internal/wait"
)

// Deps are what the use cases run on.
type Deps struct {
	Store   *db.Store
	Reads   *readstore.Model
	Search  *search.Store // listing search, the category counts, and the owner lists
	Cache   *cache.Cache  // the read path, with its near cache
	Watcher *cache.Watcher
	Media   *media.Bucket
	Log     *slog.Logger

	// ConsistencyWait bounds how long a query waits for its token.
	ConsistencyWait time.Duration
	// SessionTTL is how long a session token stays valid.
	SessionTTL time.Duration
	// SessionCacheTTL is how long this process trusts a session it looked
	// up: a token revoked through another process may work that long.
	// 0 disables the cache.
	SessionCacheTTL time.Duration
	// Password sets the argon2id cost.
	Password password.Params
	// Limits bound what one client or user can make the service do.
	Limits Limits
	// Limiter keeps the per-client and per-email counts; nil counts in
	// this process only.
	Limiter *ratelimit.Limiter
}

// Commands change the write model. Each runs one Postgres transaction and
// returns the consistency token of its commit; nothing else is written.
type Commands struct {
	deps     Deps
	limiter  *ratelimit.Limiter
	hashes   *password.Gate
	sessions *sessionCache
	dummy    string // a hash to verify against when an email is unknown
}

// Queries read the projections, through the read path (cache.ReadThrough).
type Queries struct {
	deps Deps
}

// App groups the use cases.
type App struct {
	Commands *Commands
	Queries  *Queries
}

// New wires the use cases. A zero ConsistencyWait, SessionTTL or Password
// takes its default (none of them can be off); a zero limit is off.
func New(d Deps) (*App, error) {
	if d.ConsistencyWait == 0 {
		d.ConsistencyWait = 2 * time.Second
	}
	if d.SessionTTL == 0 {
		d.SessionTTL = 30 * 24 * time.Hour
	}
	if d.Password == (password.Params{}) {
		d.Password = password.Default
	}
	if d.Limits.HashConcurrency <= 0 {
		d.Limits.HashConcurrency = password.Size(d.Password, password.DefaultMemoryBudget)
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	dummy, err := password.Hash("not a real password", d.Password)
	if err != nil {
		return nil, err
	}
	return &App{
		Commands: &Commands{
			deps: d, limiter: newLimiter(d), hashes: password.NewGate(d.Limits.HashConcurrency, d.Limits.HashWait),
			sessions: newSessionCache(d.SessionCacheTTL), dummy: dummy,
		},
		Queries: &Queries{deps: d},
	}, nil
}

// ConsistencyWait is how long a query waits for its token.
func (q *Queries) ConsistencyWait() time.Duration { return q.deps.ConsistencyWait }

// currentToken is a token for a write that has already committed: any
// position after it will do.
func (c *Commands) currentToken(ctx context.Context) (string, error) {
	p, err := c.deps.Store.CurrentPosition(ctx)
	if err != nil {
		return "", err
	}
	return db.PositionToken(p), nil
}

// awaitToken waits until the projections reflect token, if one was given,
// and returns ctx marked with the position waited for: a load the read
// path shares must have started after it (cache.WithFloor).
func (q *Queries) awaitToken(ctx context.Context, token string) (context.Context, error) {
	pos, err := consistency.ParseWriteToken(token)
	if err != nil {
		var v violations
		v.add("consistency_token", "is not a token this service issued")
		return ctx, v.err()
	}
	if pos.LSN == 0 {
		return ctx, nil
	}
	wctx, cancel := context.WithTimeout(ctx, q.deps.ConsistencyWait)
	defer cancel()
	lsn, err := q.ReadSidePosition(wctx, pos)
	if err != nil || lsn == 0 {
		return ctx, err
	}
	if err := q.deps.Watcher.Wait(wctx, lsn); err != nil {
		return ctx, &Error{Code: CodeUnavailable, Reason: ReasonConsistencyTimeout, Message: "the read side has not caught up with this write yet; retry shortly", Err: err}
	}
	return cache.WithFloor(ctx, lsn), nil
}

// ReadSidePosition maps a token's position to the read side's through the
// history the projections pointer records (consistency.Followed.Resolve):
// the position to wait for, 0 for none. A write in a history the read side
// does not follow yet is waited for until ctx ends (Unavailable): the
// pointer names the new history once a rebuild has moved onto it. A write
// of a history the read side left behind is FailedPrecondition.
func (q *Queries) ReadSidePosition(ctx context.Context, pos consistency.Position) (uint64, error) {
	lsn, err := q.resolve(ctx, pos)
	switch {
	case errors.Is(err, consistency.ErrOtherHistory):
		return 0, &Error{Code: CodeFailedPrecondition, Reason: ReasonTokenHistoryLost, Message: err.Error(), Err: err}
	case err != nil:
		return 0, &Error{Code: CodeUnavailable, Reason: ReasonTokenHistoryPending, Message: "the read side does not follow this write's database history yet; retry shortly", Err: err}
	}
	return lsn, nil
}

func (q *Queries) resolve(ctx context.Context, pos consistency.Position) (uint64, error) {
	for {
		var f consistency.Followed
		if p, ok := q.deps.Reads.Current(); ok {
			f = p.Followed
		}
		lsn, err := f.Resolve(pos)
		if !errors.Is(err, consistency.ErrNewHistory) {
			return lsn, err
		}
		if !wait.Sleep(ctx, historyPoll) {
			return 0, err
		}
	}
}

// historyPoll is how often a read with a token of a history the read side
// does not follow yet looks again (the pointer is followed every 500 ms).
const historyPoll = 100 * time.Millisecond

// getDoc reads one document through the read path: the near cache, Redis,
// then the read store.
func getDoc[T any](ctx context.Context, q *Queries, collection, id, what string) (T, error) {
	key := q.deps.Cache.DocumentKey(collection, id)
	doc, err := cache.ReadThrough(ctx, q.deps.Cache, cache.Documents, key, readstore.Load[T](q.deps.Reads, collection, id), readstore.Decode[T])
	if err != nil {
		return doc, readErr(what, err)
	}
	return doc, nil
}

// readErr turns read-store failures into caller-facing errors.
func readErr(what string, err error) error {
	if errors.Is(err, readstore.ErrNotFound) {
		return errorf(CodeNotFound, "%s not found", what)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Code: CodeUnavailable, Message: "the read store did not answer in time", Err: err}
	}
	return fmt.Errorf("read %s: %w", what, err)
}
