// Package feed is the change feed behind the Watch streams: which listings
// and which orders each applied batch changed, at which commit position.
//
// The CDC appends to it after applying a batch and before acknowledging
// it; every API process reads it once and fans changes out to its own
// subscribers. It lives in two Redis streams, one per kind, each under its
// own hash tag, so a Redis Cluster puts them on different nodes. Entry IDs
// are derived from the batch's end position (<lsn>-<chunk>), so the stream
// is ordered by WAL position and a batch applied again after a crash is
// refused as a duplicate instead of being appended twice.
//
// Unlike pub/sub, a stream keeps its history: a client that reconnects
// with a position replays what it missed. The history is trimmed to a
// retention, and a floor key says how far back it is complete.
package feed

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/swapmeet/swapmeet/internal/consistency"
)

// Kind is one of the feed's streams.
type Kind int

// The kinds of change the feed carries.
const (
	Listings Kind = iota
	Orders
)

func (k Kind) String() string {
	if k == Orders {
		return "orders"
	}
	return "listings"
}

// Keys names one kind's stream and its floor.
type Keys struct {
	Log   string // the stream
	Floor string // 16 hex digits: every change after it is in Log
}

// KeysFor derives a kind's keys from the deployment's Redis prefix. Both
// share one hash tag, so a script may touch both on a cluster.
func KeysFor(prefix string, k Kind) Keys {
	tag := prefix + "{" + k.String() + "-feed}"
	return Keys{Log: tag + ":log", Floor: tag + ":floor"}
}

// Change is one document's change: the listing or order, and for an order
// its parties. Position is the commit position of the document's state.
type Change struct {
	ID       uuid.UUID
	Buyer    uuid.UUID // orders only
	Seller   uuid.UUID // orders only
	Position uint64
}

// Entry is one stream entry: a batch's changes of one kind (or a chunk of
// them), or, when All is set, the news that the batch changed too many to
// list, so every watcher must look again.
type Entry struct {
	Position uint64 // the batch's end: every change in it is at or before
	Chunk    uint64
	All      bool
	Changes  []Change
	// TraceParent is the W3C traceparent of the span that applied the
	// batch, "" for none: the Watch streams deliver its changes in that
	// trace. It is the entry's optional field "tp": an entry without one
	// (written before the field existed, or outside any trace) has none,
	// and a reader that does not know the field ignores it.
	TraceParent string
}

// ID is the entry's stream ID.
func (e Entry) ID() string {
	return strconv.FormatUint(e.Position, 10) + "-" + strconv.FormatUint(e.Chunk, 10)
}

// MaxChunk is how many changes one entry holds; a batch with more is
// written as several entries with rising chunk numbers.
const MaxChunk = 512

// Entries splits a batch's changes of one kind into entries. A batch that
// changed more than maxChanges documents is one entry with All set.
func Entries(end uint64, changes []Change, all bool) []Entry {
	if all {
		return []Entry{{Position: end, All: true}}
	}
	var out []Entry
	for i := 0; i < len(changes); i += MaxChunk {
		out = append(out, Entry{Position: end, Chunk: uint64(len(out)), Changes: changes[i:min(i+MaxChunk, len(changes))]})
	}
	return out
}

// Field names of an entry.
const (
	fieldChanges = "c"
	fieldAll     = "all"
	fieldTrace   = "tp" // optional: Entry.TraceParent
)

// maxTraceParent bounds the traceparent an entry is read with (55
// characters in version 00); a longer value is dropped, not the entry.
const maxTraceParent = 128

func encode(k Kind, changes []Change) string {
	size := 24
	if k == Orders {
		size = 56
	}
	b := make([]byte, 0, size*len(changes))
	for _, c := range changes {
		b = append(b, c.ID[:]...)
		if k == Orders {
			b = append(b, c.Buyer[:]...)
			b = append(b, c.Seller[:]...)
		}
		b = binary.BigEndian.AppendUint64(b, c.Position)
	}
	return string(b)
}

func decode(k Kind, s string) ([]Change, error) {
	size := 24
	if k == Orders {
		size = 56
	}
	if len(s)%size != 0 {
		return nil, fmt.Errorf("feed: %s entry of %d bytes is not a whole number of changes", k, len(s))
	}
	out := make([]Change, 0, len(s)/size)
	for i := 0; i < len(s); i += size {
		var c Change
		r := s[i : i+size]
		copy(c.ID[:], r[:16])
		r = r[16:]
		if k == Orders {
			copy(c.Buyer[:], r[:16])
			copy(c.Seller[:], r[16:32])
			r = r[32:]
		}
		c.Position = binary.BigEndian.Uint64([]byte(r))
		out = append(out, c)
	}
	return out, nil
}

// ParseID reads a stream ID written by Entry.ID: the position and chunk.
func ParseID(id string) (pos, chunk uint64, err error) {
	ms, seq, ok := strings.Cut(id, "-")
	if !ok {
		return 0, 0, fmt.Errorf("feed: stream id %q", id)
	}
	if pos, err = strconv.ParseUint(ms, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("feed: stream id %q: %w", id, err)
	}
	if chunk, err = strconv.ParseUint(seq, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("feed: stream id %q: %w", id, err)
	}
	return pos, chunk, nil
}

func entryOf(k Kind, m redis.XMessage) (Entry, error) {
	pos, chunk, err := ParseID(m.ID)
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Position: pos, Chunk: chunk}
	if tp, _ := m.Values[fieldTrace].(string); len(tp) <= maxTraceParent {
		e.TraceParent = tp
	}
	if _, ok := m.Values[fieldAll]; ok {
		e.All = true
		return e, nil
	}
	s, _ := m.Values[fieldChanges].(string)
	if e.Changes, err = decode(k, s); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// raiseFloor sets KEYS[1] to ARGV[1] if that is higher, or if it is
// unset. It never lowers the floor.
var raiseFloor = redis.NewScript(consistency.LuaCompareLSN + `
local cur = redis.call('GET', KEYS[1])
if cur and cmplsn(cur, ARGV[1]) >= 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1`)

// Append writes a batch's entries of one kind. from is the position just
// before the batch's first commit: if the stream has no floor yet (a new
// deployment, or a Redis that lost its data), the history starts there.
// Entries at or below the stream's last ID were written before, by an
// attempt that crashed before its acknowledgement, and are skipped.
func Append(ctx context.Context, rdb redis.UniversalClient, k Kind, keys Keys, from uint64, entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	pipe := rdb.Pipeline()
	check := AppendIn(ctx, pipe, k, keys, from, entries)
	_, _ = pipe.Exec(ctx)
	return check()
}

// AppendIn queues Append's commands in pipe, with others. The check it
// returns, called once pipe has run, reports what Append would.
func AppendIn(ctx context.Context, pipe redis.Pipeliner, k Kind, keys Keys, from uint64, entries []Entry) func() error {
	if len(entries) == 0 {
		return func() error { return nil }
	}
	floor := pipe.SetNX(ctx, keys.Floor, consistency.HexLSN(from), 0)
	cmds := make([]*redis.StringCmd, len(entries))
	for i, e := range entries {
		values := []any{fieldChanges, encode(k, e.Changes)}
		if e.All {
			values = []any{fieldAll, "1"}
		}
		if e.TraceParent != "" {
			values = append(values, fieldTrace, e.TraceParent)
		}
		cmds[i] = pipe.XAdd(ctx, &redis.XAddArgs{Stream: keys.Log, ID: e.ID(), Values: values})
	}
	return func() error {
		if err := floor.Err(); err != nil {
			return fmt.Errorf("feed: %s floor: %w", k, err)
		}
		for _, c := range cmds {
			if err := c.Err(); err != nil && !isDuplicate(err) {
				return fmt.Errorf("feed: append to %s: %w", k, err)
			}
		}
		return nil
	}
}

func isDuplicate(err error) bool {
	return strings.Contains(err.Error(), "equal or smaller than the target stream top item")
}

// Trim drops the entries at or before cut and raises the floor to it:
// the floor first, so a reader that replays and then checks the floor
// never misses a trimmed entry unawares.
func Trim(ctx context.Context, rdb redis.UniversalClient, keys Keys, cut uint64) error {
	if err := raiseFloor.Run(ctx, rdb, []string{keys.Floor}, consistency.HexLSN(cut)).Err(); err != nil {
		return fmt.Errorf("feed: raise floor: %w", err)
	}
	return rdb.XTrimMinID(ctx, keys.Log, strconv.FormatUint(cut+1, 10)+"-0").Err()
}

// Floor returns the position after which the stream is complete, and
// false if the stream has no history at all.
func Floor(ctx context.Context, rdb redis.UniversalClient, keys Keys) (uint64, bool, error) {
	s, err := rdb.Get(ctx, keys.Floor).Result()
	if errors.Is(err, redis.Nil) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, false, fmt.Errorf("feed: floor %q: %w", s, err)
	}
	return v, true, nil
}

// After is the stream range start of the entries after position pos.
func After(pos uint64) string { return strconv.FormatUint(pos+1, 10) + "-0" }

// Range returns up to count entries from the stream range start from
// (After(pos), or "(" and an entry's ID to page on), in order.
func Range(ctx context.Context, rdb redis.UniversalClient, k Kind, keys Keys, from string, count int64) ([]Entry, error) {
	msgs, err := rdb.XRangeN(ctx, keys.Log, from, "+", count).Result()
	if err != nil {
		return nil, err
	}
	return entriesOf(k, msgs)
}

// Read waits up to block for entries after the stream ID after, and
// returns up to count of them (none when the wait ran out).
func Read(ctx context.Context, rdb redis.UniversalClient, k Kind, keys Keys, after string, count int64, block time.Duration) ([]Entry, error) {
	res, err := rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{keys.Log, after}, Count: count, Block: block}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var msgs []redis.XMessage
	for _, s := range res {
		msgs = append(msgs, s.Messages...)
	}
	return entriesOf(k, msgs)
}

// LastID is the ID of the stream's newest entry, "0-0" when it is empty.
func LastID(ctx context.Context, rdb redis.UniversalClient, keys Keys) (string, error) {
	msgs, err := rdb.XRevRangeN(ctx, keys.Log, "+", "-", 1).Result()
	if err != nil {
		return "", err
	}
	if len(msgs) == 0 {
		return "0-0", nil
	}
	return msgs[0].ID, nil
}

func entriesOf(k Kind, msgs []redis.XMessage) ([]Entry, error) {
	out := make([]Entry, 0, len(msgs))
	for _, m := range msgs {
		e, err := entryOf(k, m)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}
