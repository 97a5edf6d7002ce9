package cdc

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/swapmeet/swapmeet/cdc/projection"
	"github.com/swapmeet/swapmeet/internal/search"
)

// HistoryCollection names the history in a Drift.
const HistoryCollection = "history"

// VerifyHistory checks that each object's history ends where its row is:
// for every field the history shows, the value after the latest entry
// that changed it (entries of an abandoned database history aside) is the
// row's current value; and that it chains (search.Store.HistoryBreaks). Objects with no entry (older than the history, or
// past its retention) are not checked; Checked counts those that are.
// Differ lists "type/id: field, field". Run it when the CDC has caught up.
func VerifyHistory(ctx context.Context, pg *pgxpool.Pool, s *search.Store) (Drift, error) {
	d := Drift{Collection: HistoryCollection}
	err := historyDiffs(ctx, pg, s, func(object string, id uuid.UUID, diffs []search.FieldChange) {
		d.Checked++
		if len(diffs) == 0 {
			return
		}
		fields := make([]string, len(diffs))
		for i, c := range diffs {
			fields[i] = c.Field
		}
		d.Differ = append(d.Differ, object+"/"+id.String()+": "+strings.Join(fields, ", "))
	})
	if err != nil {
		return d, err
	}
	breaks, err := s.HistoryBreaks(ctx, 1000)
	for _, b := range breaks {
		d.Differ = append(d.Differ, b+" (does not chain: a change recorded twice or left out)")
	}
	return d, err
}

// ReconcileHistory appends, for each object whose history does not end
// where its row is, one unannotated entry at position from the history's
// last values to the row's: the changes made while the read side followed
// no WAL (a lost slot's outage, writes on a new database history before
// the rebuild). pg reads the rows: the rebuild's snapshot, so that every
// later write has an entry of its own after position. It returns how
// many objects it reconciled. Run it only while no CDC writes the history.
func ReconcileHistory(ctx context.Context, pg querier, s *search.Store, position int64) (int, error) {
	now := time.Now().UTC()
	var entries []search.HistoryEntry
	n := 0
	flush := func() error {
		err := s.WriteHistory(ctx, entries)
		entries = entries[:0]
		return err
	}
	var werr error
	err := historyDiffs(ctx, pg, s, func(object string, id uuid.UUID, diffs []search.FieldChange) {
		if len(diffs) == 0 || werr != nil {
			return
		}
		n++
		entries = append(entries, search.HistoryEntry{Position: position, Seq: int32(n), CommitTime: now,
			ObjectType: object, ObjectID: id, Operation: search.OpUpdated, Changes: diffs})
		if len(entries) >= verifyPage {
			werr = flush()
		}
	})
	if err == nil {
		err = werr
	}
	if err == nil {
		err = flush()
	}
	return n, err
}

// querier reads the rows: a pool, or a transaction in a snapshot.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// historyDiffs calls fn for every object that has history entries, with
// the fields whose last recorded value differs from the row's (before:
// the history's, after: the row's).
func historyDiffs(ctx context.Context, pg querier, s *search.Store, fn func(object string, id uuid.UUID, diffs []search.FieldChange)) error {
	tables := make([]string, 0, len(projection.HistoryTables))
	for name, t := range projection.HistoryTables {
		if t.Element == nil {
			tables = append(tables, name)
		}
	}
	sort.Strings(tables)
	for _, name := range tables {
		if err := historyTableDiffs(ctx, pg, s, name, projection.HistoryTables[name], fn); err != nil {
			return err
		}
	}
	return nil
}

func historyTableDiffs(ctx context.Context, pg querier, s *search.Store, table string, t projection.HistoryTable, fn func(string, uuid.UUID, []search.FieldChange)) error {
	cols := make([]string, len(t.Fields))
	for i, f := range t.Fields {
		cols[i] = pgx.Identifier{f.Column}.Sanitize() + "::text"
	}
	id := pgx.Identifier{t.IDColumn}.Sanitize()
	sql := fmt.Sprintf("SELECT %s, %s FROM %s WHERE %s > $1 ORDER BY %s LIMIT %d",
		id, strings.Join(cols, ", "), pgx.Identifier{table}.Sanitize(), id, id, verifyPage)
	after := uuid.Nil
	for {
		rows, err := pg.Query(ctx, sql, after)
		if err != nil {
			return fmt.Errorf("verify history of %s: %w", table, err)
		}
		current := map[uuid.UUID][]*string{}
		var ids []uuid.UUID
		for rows.Next() {
			var id uuid.UUID
			vals := make([]*string, len(t.Fields))
			dest := []any{&id}
			for i := range vals {
				dest = append(dest, &vals[i])
			}
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
			current[id] = vals
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		after = ids[len(ids)-1]
		latest, err := s.LatestValues(ctx, t.Object, ids)
		if err != nil {
			return err
		}
		for _, id := range ids {
			fields, ok := latest[id]
			if !ok {
				continue
			}
			var diffs []search.FieldChange
			for i, f := range t.Fields {
				got, ok := fields[f.Path]
				if !ok {
					continue
				}
				want := ""
				if v := current[id][i]; v != nil {
					want = *v
				}
				want = f.Show(want)
				if got != want {
					diffs = append(diffs, search.FieldChange{Field: f.Path, Before: got, After: want})
				}
			}
			fn(t.Object, id, diffs)
		}
	}
}
