package search

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// History is kept in the read side's Postgres beside the search rows: an
// object's entries are read newest first through one index, and retention
// drops month partitions. See docs/history.md.

// The object types with a history, as stored.
const (
	ObjectListing = "listing"
	ObjectOrder   = "order"
	ObjectUser    = "user"
	ObjectReview  = "review"
)

// The operations of an entry.
const (
	OpCreated = "CREATED"
	OpUpdated = "UPDATED"
	OpDeleted = "DELETED"
)

// HistoryEntry is one committed row change of one object.
type HistoryEntry struct {
	Position   int64 // the read side's position of the transaction's commit
	Seq        int32 // the change's ordinal in its transaction
	CommitTime time.Time
	ObjectType string
	ObjectID   uuid.UUID
	Operation  string
	Changes    []FieldChange
	// Annotated is false for a transaction that carried no annotation:
	// the fields below are then empty.
	Annotated      bool
	Actor          string
	RPC            string
	RequestID      string
	IdempotencyKey string
	TraceParent    string
	// LostTo is set when the database history the entry was recorded in
	// was abandoned past it: the history the read side moved onto.
	LostTo string
}

// FieldChange is one field's value before and after, as text.
type FieldChange struct {
	Field  string `json:"field"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// WriteHistory appends entries. An entry already written (same position
// and ordinal: a replay) is left as it is. The month partitions of the
// entries' commit times are created first if they do not exist.
func (s *Store) WriteHistory(ctx context.Context, entries []HistoryEntry) error {
	if len(entries) == 0 {
		return nil
	}
	sql, args, err := s.historyInsert(ctx, entries)
	if err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("search: write history: %w", err)
	}
	return nil
}

// Finish ends a CDC batch in one round trip and one commit: it appends
// the batch's history entries (as WriteHistory) and raises generation g's
// applied position to pos (g 0: none; the position is raised only with
// entries to write: the commit they need is durable anyway, which a
// position alone does not need, see raisePosition).
func (s *Store) Finish(ctx context.Context, g, pos int64, entries []HistoryEntry) error {
	switch {
	case len(entries) == 0 && g == 0:
		return nil
	case len(entries) == 0:
		return s.raisePosition(ctx, g, pos)
	case g == 0:
		return s.WriteHistory(ctx, entries)
	}
	sql, args, err := s.historyInsert(ctx, entries)
	if err != nil {
		return err
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(sql, args...)
	if err := s.sendRaising(ctx, b, g, pos); err != nil {
		return fmt.Errorf("search: write %d history entries and raise generation %d to %d: %w", len(entries), g, pos, err)
	}
	return nil
}

// historyInsert is the statement that appends entries, once their month
// partitions exist.
func (s *Store) historyInsert(ctx context.Context, entries []HistoryEntry) (string, []any, error) {
	months := map[time.Time]bool{}
	n := len(entries)
	pos, seq := make([]int64, n), make([]int32, n)
	at := make([]time.Time, n)
	typ, op, changes := make([]string, n), make([]string, n), make([]string, n)
	ids := make([]uuid.UUID, n)
	annotated := make([]bool, n)
	actor, rpc, rid, key, tp := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, e := range entries {
		months[monthOf(e.CommitTime)] = true
		pos[i], seq[i], at[i], typ[i], ids[i], op[i] = e.Position, e.Seq, e.CommitTime, e.ObjectType, e.ObjectID, e.Operation
		c := e.Changes
		if c == nil {
			c = []FieldChange{}
		}
		b, err := json.Marshal(c)
		if err != nil {
			return "", nil, err
		}
		changes[i] = string(b)
		annotated[i], actor[i], rpc[i], rid[i], key[i], tp[i] = e.Annotated, e.Actor, e.RPC, e.RequestID, e.IdempotencyKey, e.TraceParent
	}
	for m := range months {
		if err := s.ensurePartition(ctx, m); err != nil {
			return "", nil, err
		}
	}
	return `
INSERT INTO history (position, seq, commit_time, object_type, object_id, operation, changes,
                     annotated, actor, rpc, request_id, idempotency_key, trace_parent)
SELECT p, q, t, ty, id, op, ch::jsonb, an, ac, r, ri, k, tp
FROM unnest($1::int8[], $2::int4[], $3::timestamptz[], $4::text[], $5::uuid[], $6::text[], $7::text[],
            $8::bool[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])
     AS e(p, q, t, ty, id, op, ch, an, ac, r, ri, k, tp)
ON CONFLICT DO NOTHING`, []any{pos, seq, at, typ, ids, op, changes, annotated, actor, rpc, rid, key, tp}, nil
}

func monthOf(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

func partitionName(month time.Time) string { return "history_" + month.Format("2006_01") }

// ensurePartition creates month's partition unless this store has seen
// it exist. Writers of the same month serialize on an advisory lock.
func (s *Store) ensurePartition(ctx context.Context, month time.Time) error {
	if _, ok := s.partitions.Load(month); ok {
		return nil
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('swapmeet history partitions'))"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF history FOR VALUES FROM ('%s') TO ('%s')`,
			partitionName(month), month.Format(time.RFC3339), month.AddDate(0, 1, 0).Format(time.RFC3339)))
		return err
	})
	if err != nil {
		return fmt.Errorf("search: history partition %s: %w", partitionName(month), err)
	}
	s.partitions.Store(month, true)
	return nil
}

// EnsureHistoryPartitions creates the partitions of this month and the
// next, so that the first write of a month does not wait for DDL.
func (s *Store) EnsureHistoryPartitions(ctx context.Context, now time.Time) error {
	m := monthOf(now)
	if err := s.ensurePartition(ctx, m); err != nil {
		return err
	}
	return s.ensurePartition(ctx, m.AddDate(0, 1, 0))
}

var partitionRE = regexp.MustCompile(`^history_([0-9]{4})_([0-9]{2})$`)

// PruneHistory drops the month partitions that end at or before cutoff:
// whole months, never rows. It returns the partitions dropped, oldest
// first.
func (s *Store) PruneHistory(ctx context.Context, cutoff time.Time) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.relname FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
		WHERE p.relname = 'history'`)
	if err != nil {
		return nil, fmt.Errorf("search: history partitions: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("search: history partitions: %w", err)
	}
	sort.Strings(names)
	var dropped []string
	for _, name := range names {
		m := partitionRE.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		month, err := time.Parse("2006_01", m[1]+"_"+m[2])
		if err != nil || month.AddDate(0, 1, 0).After(cutoff) {
			continue
		}
		if _, err := s.pool.Exec(ctx, "DROP TABLE IF EXISTS "+name); err != nil {
			return dropped, fmt.Errorf("search: drop %s: %w", name, err)
		}
		s.partitions.Delete(month)
		dropped = append(dropped, name)
	}
	return dropped, nil
}

// MarkHistoryLost marks the entries recorded at positions in (from, to)
// as lost to history: the database history they were recorded in was
// abandoned after from, and the read side moved onto history, whose
// positions start at to. It returns how many entries it marked.
func (s *Store) MarkHistoryLost(ctx context.Context, from, to int64, history string) (int64, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE history SET lost_to = $3 WHERE position > $1 AND position < $2 AND lost_to IS NULL`, from, to, history)
	if err != nil {
		return 0, fmt.Errorf("search: mark history lost: %w", err)
	}
	return tag.RowsAffected(), nil
}

// ErrBadHistoryToken is History's answer to a page token it did not issue
// for the object.
var ErrBadHistoryToken = errors.New("page token was not issued for this object's history")

type historyCursor struct {
	Object string `json:"o"`
	Pos    int64  `json:"p"`
	Seq    int32  `json:"s"`
}

// History returns one page of an object's entries, newest first, and the
// token of the next page ("" after the last).
func (s *Store) History(ctx context.Context, objectType string, id uuid.UUID, pageSize int, pageToken string) ([]HistoryEntry, string, error) {
	object := objectType + "/" + id.String()
	after := historyCursor{Pos: 1<<63 - 1, Seq: 1<<31 - 1}
	if pageToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(pageToken)
		if err != nil || json.Unmarshal(b, &after) != nil || after.Object != object {
			return nil, "", ErrBadHistoryToken
		}
	}
	rows, err := s.pool.Query(ctx, `
SELECT position, seq, commit_time, operation, changes, annotated, actor, rpc, request_id,
       idempotency_key, trace_parent, coalesce(lost_to, '')
FROM history
WHERE object_type = $1 AND object_id = $2 AND (position, seq) < ($3, $4)
ORDER BY position DESC, seq DESC
LIMIT $5`, objectType, id, after.Pos, after.Seq, pageSize+1)
	if err != nil {
		return nil, "", fmt.Errorf("search: history: %w", err)
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (HistoryEntry, error) {
		e := HistoryEntry{ObjectType: objectType, ObjectID: id}
		err := r.Scan(&e.Position, &e.Seq, &e.CommitTime, &e.Operation, &e.Changes, &e.Annotated, &e.Actor, &e.RPC,
			&e.RequestID, &e.IdempotencyKey, &e.TraceParent, &e.LostTo)
		return e, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("search: history: %w", err)
	}
	next := ""
	if len(entries) > pageSize {
		entries = entries[:pageSize]
		last := entries[pageSize-1]
		b, _ := json.Marshal(historyCursor{Object: object, Pos: last.Position, Seq: last.Seq})
		next = base64.RawURLEncoding.EncodeToString(b)
	}
	return entries, next, nil
}

// LatestValues returns, for each of the objects of a type, the value of
// each field after the latest entry that changed it (entries not lost):
// what the object's row must show if the history is right. Objects with
// no entry are absent.
func (s *Store) LatestValues(ctx context.Context, objectType string, ids []uuid.UUID) (map[uuid.UUID]map[string]string, error) {
	rows, err := s.pool.Query(ctx, `
SELECT DISTINCT ON (h.object_id, c.field) h.object_id, c.field, c.after, h.operation
FROM history h, jsonb_to_recordset(h.changes) AS c(field text, after text)
WHERE h.object_type = $1 AND h.object_id = ANY($2) AND h.lost_to IS NULL
ORDER BY h.object_id, c.field, h.position DESC, h.seq DESC`, objectType, ids)
	if err != nil {
		return nil, fmt.Errorf("search: latest history: %w", err)
	}
	defer rows.Close()
	out := map[uuid.UUID]map[string]string{}
	for rows.Next() {
		var id uuid.UUID
		var field, after, op string
		if err := rows.Scan(&id, &field, &after, &op); err != nil {
			return nil, err
		}
		if out[id] == nil {
			out[id] = map[string]string{}
		}
		out[id][field] = after
	}
	return out, rows.Err()
}

// HistoryBreaks finds where an object's history does not chain: an entry
// whose before value of a field is not the after value of the entry
// before it that changed the field (entries not lost, in commit order).
// A change recorded twice, or one left out, breaks the chain; a
// history's first entry (the creation, or the oldest kept) does not. It
// returns "type/id: field" for at most limit of them. List fields (an
// object's images, an order's lines) are not chained.
func (s *Store) HistoryBreaks(ctx context.Context, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `
SELECT DISTINCT object_type || '/' || object_id || ': ' || field
FROM (SELECT h.object_type, h.object_id, c.field, c.before,
             lag(c.after) OVER (PARTITION BY h.object_type, h.object_id, c.field ORDER BY h.position, h.seq) AS prev
      FROM history h, jsonb_to_recordset(h.changes) AS c(field text, before text, after text)
      WHERE h.lost_to IS NULL AND c.field NOT IN ('media', 'items')) AS chained
WHERE prev IS NOT NULL AND before IS DISTINCT FROM prev
LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("search: history chain: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
