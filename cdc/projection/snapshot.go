package projection

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/swapmeet/swapmeet/db/sqlc"
	"github.com/swapmeet/swapmeet/internal/roundtrip"
	"github.com/swapmeet/swapmeet/internal/wait"
)

// A transaction's commit reaches the WAL, and so the walsender, a moment
// before it becomes visible to other sessions' snapshots. A projector that
// re-read Postgres in that moment would see the rows as they were before,
// and the acknowledgement would make the loss permanent. readVisible
// therefore takes a snapshot, checks that every transaction being applied
// is visible in it, and only then runs the reads inside it. Opening the
// transaction and reading its snapshot cost one round trip together, so a
// page that checks its own snapshot pays nothing for the check.
func readVisible(ctx context.Context, pool *pgxpool.Pool, xids []uint32, fn func(q *sqlc.Queries) error) error {
	deadline := time.Now().Add(10 * time.Second)
	backoff := wait.NewBackoff(100*time.Microsecond, 10*time.Millisecond)
	for {
		ok, err := tryReadVisible(ctx, pool, xids, fn)
		if ok || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("transactions %v did not become visible within 10s", xids)
		}
		if !backoff.Wait(ctx) {
			return ctx.Err()
		}
	}
}

// beginVisible opens the transaction and reads its snapshot in one round
// trip: both statements go in one simple-protocol message.
const beginVisible = `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT pg_current_snapshot()::text`

func tryReadVisible(ctx context.Context, pool *pgxpool.Pool, xids []uint32, fn func(q *sqlc.Queries) error) (ok bool, err error) {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return false, err
	}
	// A connection left inside the transaction (an error before the
	// rollback) is closed by the pool on release, never reused.
	defer c.Release()
	roundtrip.Add(ctx, roundtrip.Postgres, 1) // beneath the pool's tracer
	results, err := c.Conn().PgConn().Exec(ctx, beginVisible).ReadAll()
	if err != nil {
		return false, err
	}
	if len(results) != 2 || len(results[1].Rows) != 1 || len(results[1].Rows[0]) != 1 {
		return false, fmt.Errorf("begin a snapshot: %d results, want the snapshot's", len(results))
	}
	defer func() {
		if _, rerr := c.Exec(context.WithoutCancel(ctx), "ROLLBACK"); err == nil && rerr != nil {
			err = rerr
		}
	}()
	snap, err := parseSnapshot(string(results[1].Rows[0][0]))
	if err != nil {
		return false, err
	}
	for _, x := range xids {
		if !snap.visible(x) {
			return false, nil
		}
	}
	return true, fn(sqlc.New(c))
}

// snapshot is a pg_snapshot: xmin, xmax and the transactions in progress.
type snapshot struct {
	xmin, xmax uint64
	xip        map[uint64]bool
}

func parseSnapshot(s string) (snapshot, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return snapshot{}, fmt.Errorf("malformed snapshot %q", s)
	}
	var snap snapshot
	var err error
	if snap.xmin, err = strconv.ParseUint(parts[0], 10, 64); err != nil {
		return snapshot{}, fmt.Errorf("malformed snapshot %q", s)
	}
	if snap.xmax, err = strconv.ParseUint(parts[1], 10, 64); err != nil {
		return snapshot{}, fmt.Errorf("malformed snapshot %q", s)
	}
	snap.xip = map[uint64]bool{}
	if parts[2] != "" {
		for _, x := range strings.Split(parts[2], ",") {
			v, err := strconv.ParseUint(x, 10, 64)
			if err != nil {
				return snapshot{}, fmt.Errorf("malformed snapshot %q", s)
			}
			snap.xip[v] = true
		}
	}
	return snap, nil
}

// visible reports whether the committed transaction xid is visible. The
// WAL carries 32-bit xids; the snapshot's are 64-bit. A transaction we
// just received is recent, so its epoch is the one that puts it nearest
// to xmax.
func (s snapshot) visible(xid uint32) bool {
	full := s.xmax&^0xFFFFFFFF | uint64(xid)
	if full > s.xmax+1<<31 && full >= 1<<32 {
		full -= 1 << 32
	}
	switch {
	case full < s.xmin:
		return true
	case full >= s.xmax:
		return false
	default:
		return !s.xip[full]
	}
}
