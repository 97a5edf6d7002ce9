package db_test

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/db/sqlc"
	"github.com/swapmeet/swapmeet/internal/audit"
	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/itest"
)

// TestTokenNotBeforeCommitWithAsyncCommit writes through a pool whose
// sessions set synchronous_commit = off, and reads every commit back from
// a slot: each write's token must be at or after the end of its commit
// record, the position the CDC announces once it has applied it. (The WAL
// write position, pg_current_wal_lsn(), lags the commit until the WAL
// writer gets to it.)
func TestTokenNotBeforeCommitWithAsyncCommit(t *testing.T) {
	e := itest.New(t)
	ctx := context.Background()
	// test_decoding reports each COMMIT at the end of its record.
	slot := e.Slot + "_commits"
	if _, err := e.PG.Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, slot); err != nil {
		t.Fatal(err)
	}

	cfg, err := pgxpool.ParseConfig(e.PGURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var setting string
	if err := pool.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&setting); err != nil || setting != "off" {
		t.Fatalf("synchronous_commit = %q, %v", setting, err)
	}

	store := db.NewStore(pool)
	const writes = 200
	tokens := map[uuid.UUID]uint64{}
	for i := range writes {
		id := uuid.New()
		c, err := store.ExecTx(ctx, db.TxOptions{Actor: audit.System}, func(q *sqlc.Queries) error {
			_, err := q.CreateUser(ctx, sqlc.CreateUserParams{ID: id, DisplayName: fmt.Sprint("async ", i)})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		tokens[id] = c.LSN
	}

	// The slot sees a commit once it is flushed, which the WAL writer
	// does shortly.
	idOf := regexp.MustCompile(`^table public\.users: INSERT: id\[uuid\]:'([0-9a-f-]+)'`)
	commit := regexp.MustCompile(`^COMMIT\b`)
	users := map[uint32]uuid.UUID{} // xid → the user it inserted
	ends := map[uuid.UUID]uint64{}  // user → end of its commit record
	itest.Eventually(t, 30*time.Second, "every commit to reach the slot", func() (bool, error) {
		rows, err := e.PG.Query(ctx, `SELECT (lsn - '0/0')::int8, xid::text::int8, data FROM pg_logical_slot_get_changes($1, NULL, NULL)`, slot)
		if err != nil {
			return false, err
		}
		defer rows.Close()
		for rows.Next() {
			var lsn, xid int64
			var data string
			if err := rows.Scan(&lsn, &xid, &data); err != nil {
				return false, err
			}
			if m := idOf.FindStringSubmatch(data); m != nil {
				users[uint32(xid)] = uuid.MustParse(m[1])
			} else if id, ok := users[uint32(xid)]; ok && commit.MatchString(data) {
				ends[id] = uint64(lsn)
			}
		}
		return len(ends) == writes, rows.Err()
	})

	behind := 0
	for id, token := range tokens {
		end, ok := ends[id]
		if !ok {
			t.Fatalf("the slot has no commit for user %s", id)
		}
		if token < end {
			if behind < 5 {
				t.Errorf("user %s: token %s is before the end of its commit, %s",
					id, consistency.FormatLSN(token), consistency.FormatLSN(end))
			}
			behind++
		}
	}
	if behind > 0 {
		t.Errorf("%d of %d tokens were before their commit", behind, writes)
	}
}
