package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/swapmeet/swapmeet/db/sqlc"
	"github.com/swapmeet/swapmeet/internal/password"
	"github.com/swapmeet/swapmeet/internal/ratelimit"
)

// Limits bound what one client or one user can make the service do. A
// count of 0 switches that limit off; start from DefaultLimits.
type Limits struct {
	Window          time.Duration `env:"SWAPMEET_LIMIT_WINDOW"`                // the window every per-client count runs over
	SignInPerEmail  int           `env:"SWAPMEET_LIMIT_SIGNIN_PER_EMAIL,off"`  // failed sign-ins per email per window before the clients that failed are refused
	SignInPerClient int           `env:"SWAPMEET_LIMIT_SIGNIN_PER_CLIENT,off"` // sign-in attempts per client address per window
	SignUpPerClient int           `env:"SWAPMEET_LIMIT_SIGNUP_PER_CLIENT,off"` // sign-ups per client address per window
	WritesPerClient int           `env:"SWAPMEET_LIMIT_WRITES_PER_CLIENT,off"` // other writes per client address per window
	// Queries and Watch stream opens per client address per window: far
	// above what a person browsing (infinite scroll, live pages, several
	// tabs) or an office behind one address makes, far below a flood.
	QueriesPerClient     int `env:"SWAPMEET_LIMIT_QUERIES_PER_CLIENT,off"`
	StreamOpensPerClient int `env:"SWAPMEET_LIMIT_STREAM_OPENS_PER_CLIENT,off"`
	// RenamesPerUser bounds the display-name changes of one account per
	// RenameWindow: a rename rewrites every listing, order and review that
	// shows the name, so it is the costliest write one account can make
	// the read side do, however few requests it takes.
	RenamesPerUser int `env:"SWAPMEET_LIMIT_RENAMES_PER_USER,off"`

	// HashConcurrency is how many password hashes run at once in this
	// process; 0 (the default) sizes it from the cores and the hash's memory.
	HashConcurrency int `env:"SWAPMEET_HASH_CONCURRENCY"`
	// HashWait is how long a caller waits for a hashing slot.
	HashWait time.Duration `env:"SWAPMEET_HASH_WAIT"`

	ListingsPerDay int `env:"SWAPMEET_QUOTA_LISTINGS_PER_DAY,off"` // listings one seller may create in 24 hours
	ActiveListings int `env:"SWAPMEET_QUOTA_ACTIVE_LISTINGS,off"`  // AVAILABLE listings one seller may have
	PendingUploads int `env:"SWAPMEET_QUOTA_PENDING_UPLOADS,off"`  // unconfirmed uploads one seller may have open
}

// DefaultLimits are what an unconfigured process enforces.
var DefaultLimits = Limits{
	Window:          time.Minute,
	SignInPerEmail:  10,
	SignInPerClient: 30,
	SignUpPerClient: 10,
	WritesPerClient: 600,
	// A page of an infinite scroll, a listing and its seller is a few
	// queries a second at most for one person; 6,000 a minute is 100 a
	// second from one address.
	QueriesPerClient:     6000,
	StreamOpensPerClient: 300,
	RenamesPerUser:       5,
	HashWait:             500 * time.Millisecond,
	ListingsPerDay:       100,
	ActiveListings:       1000,
	PendingUploads:       50,
}

type clientKey struct{}

// WithClient records the caller's network address (as the edge trusts it)
// for the per-client limits.
func WithClient(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, clientKey{}, addr)
}

// ClientOf is the caller's network address, as WithClient recorded it.
func ClientOf(ctx context.Context) string {
	addr, _ := ctx.Value(clientKey{}).(string)
	return addr
}

// allow counts one attempt of kind by id against limit per window.
func (c *Commands) allow(ctx context.Context, kind, id string, limit int, what string) error {
	if id == "" {
		return nil
	}
	d := c.limiter.Allow(ctx, kind, id, limit, c.deps.Limits.Window)
	if d.Allowed {
		return nil
	}
	return &Error{Code: CodeRateLimited, Reason: ReasonRateLimited, RetryAfter: d.RetryAfter,
		Message: fmt.Sprintf("too many %s; try again in %s", what, d.RetryAfter)}
}

// AllowWrite counts a write RPC against the caller's per-client limit.
// Sign-up and sign-in have limits of their own and do not call it.
func (c *Commands) AllowWrite(ctx context.Context) error {
	return c.allow(ctx, "write", ClientOf(ctx), c.deps.Limits.WritesPerClient, "requests from this address")
}

// RenameWindow is the window RenamesPerUser counts over.
const RenameWindow = time.Hour

// AllowQuery counts a query RPC against the caller's per-client limit.
func (c *Commands) AllowQuery(ctx context.Context) error {
	return c.allow(ctx, "query", ClientOf(ctx), c.deps.Limits.QueriesPerClient, "queries from this address")
}

// AllowStreamOpen counts the opening of a Watch stream against the
// caller's per-client limit (how many may be open at once is bounded
// apart).
func (c *Commands) AllowStreamOpen(ctx context.Context) error {
	return c.allow(ctx, "stream-open", ClientOf(ctx), c.deps.Limits.StreamOpensPerClient, "streams opened from this address")
}

var errHashBusy = &Error{Code: CodeRateLimited, Reason: ReasonServerBusy, RetryAfter: time.Second,
	Message: "the server is busy checking passwords; try again in a second"}

// hash runs one password hash or verification in a hashing slot.
func (c *Commands) hash(ctx context.Context, fn func()) error {
	err := c.hashes.Do(ctx, fn)
	if errors.Is(err, password.ErrBusy) {
		return errHashBusy
	}
	return err
}

// HashConcurrency is how many password hashes this process runs at once.
func (c *Commands) HashConcurrency() int { return c.hashes.Capacity() }

func newLimiter(d Deps) *ratelimit.Limiter {
	if d.Limiter != nil {
		return d.Limiter
	}
	return ratelimit.New(nil, "")
}

// checkListingQuotas refuses a new listing past the seller's quotas. It
// runs in the creating transaction, under a per-seller lock, so that
// concurrent creations cannot all pass one count.
func (c *Commands) checkListingQuotas(ctx context.Context, q *sqlc.Queries, seller uuid.UUID) error {
	l := c.deps.Limits
	if l.ListingsPerDay < 1 && l.ActiveListings < 1 {
		return nil
	}
	if err := q.LockSellerQuota(ctx, seller.String()); err != nil {
		return err
	}
	n, err := q.CountSellerListings(ctx, seller)
	if err != nil {
		return err
	}
	switch {
	case l.ListingsPerDay > 0 && n.CreatedLastDay >= int64(l.ListingsPerDay):
		return refusef(CodeQuotaExceeded, ReasonQuotaExceeded, "you have created %d listings in the last 24 hours, the most allowed; try again later", n.CreatedLastDay)
	case l.ActiveListings > 0 && n.Active >= int64(l.ActiveListings):
		return refusef(CodeQuotaExceeded, ReasonQuotaExceeded, "you have %d active listings, the most allowed; withdraw one first", n.Active)
	}
	return nil
}

// checkUploadQuota refuses a new upload while the seller has too many
// whose policy may still be used.
func (c *Commands) checkUploadQuota(ctx context.Context, q *sqlc.Queries, seller uuid.UUID, policyLife time.Duration) error {
	limit := c.deps.Limits.PendingUploads
	if limit < 1 {
		return nil
	}
	if err := q.LockSellerQuota(ctx, seller.String()); err != nil {
		return err
	}
	n, err := q.CountSellerPendingUploads(ctx, sqlc.CountSellerPendingUploadsParams{SellerID: seller, PendingSecs: policyLife.Seconds()})
	if err != nil {
		return err
	}
	if n >= int64(limit) {
		return refusef(CodeQuotaExceeded, ReasonQuotaExceeded, "you have %d uploads waiting for confirmation, the most allowed; confirm them or wait for them to expire", n)
	}
	return nil
}
