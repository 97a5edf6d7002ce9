package cache

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/swapmeet/swapmeet/internal/consistency"
)

// AppliedKeys names the Redis keys and channel through which the CDC
// announces the WAL position it has applied.
type AppliedKeys struct {
	Applied  string // holds the position as 16 hex digits
	Sequence string // counts the announcements
	Channel  string // receives every announcement
}

// AppliedKeysFor derives the keys from the deployment's Redis prefix. They
// share the hash tag {cdc}, so on a Redis Cluster they map to one slot.
func AppliedKeysFor(prefix string) AppliedKeys {
	return AppliedKeys{Applied: prefix + "{cdc}:applied_lsn", Sequence: prefix + "{cdc}:applied_seq", Channel: prefix + "{cdc}:applied"}
}

// Evicted is what a batch of the CDC made stale in the document cache: the
// keys it tombstoned, or All when they were too many to list (or unknown,
// as after a full pass). Processes that keep documents in memory drop these
// before they take the announced position as applied.
type Evicted struct {
	Keys []string
	All  bool
}

// MaxAnnouncedKeys bounds the keys one announcement lists; a batch that
// tombstoned more announces All. An announcement then stays under about
// 64 KB however large the batch.
const MaxAnnouncedKeys = 1000

// Add records tombstoned keys, turning into All past MaxAnnouncedKeys.
func (e *Evicted) Add(keys ...string) {
	if e.All {
		return
	}
	if len(e.Keys)+len(keys) > MaxAnnouncedKeys {
		e.All, e.Keys = true, nil
		return
	}
	e.Keys = append(e.Keys, keys...)
}

// publishScript raises the applied position KEYS[1] to ARGV[1], never
// lowers it, and announces on channel ARGV[2] the position, the next
// number of the sequence KEYS[2], and the evicted keys ARGV[3]. A batch
// that changes nothing and does not advance the position (a replay after a
// restart) announces nothing. The channel is not a key: the script touches
// one slot, so a Redis Cluster runs it on the node that holds it, and a
// cluster delivers a PUBLISH to subscribers on every node. One script call
// makes the numbering and the order of the messages the same.
var publishScript = redis.NewScript(consistency.LuaCompareLSN + `
local cur = redis.call('GET', KEYS[1])
local pos = ARGV[1]
if cur and cmplsn(cur, pos) >= 0 then
  if ARGV[3] == '' then return 0 end
  pos = cur
else
  redis.call('SET', KEYS[1], pos)
end
local seq = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[2], pos .. '\n' .. seq .. '\n' .. ARGV[3])
return 1`)

// allKeys stands for Evicted.All in an announcement.
const allKeys = "*"

// Publish records that the projections have applied everything up to lsn,
// and announces it with what the batch evicted.
func Publish(ctx context.Context, rdb redis.UniversalClient, k AppliedKeys, lsn uint64, ev Evicted) error {
	keys := strings.Join(ev.Keys, "\n")
	if ev.All {
		keys = allKeys
	}
	return publishScript.Run(ctx, rdb, []string{k.Applied, k.Sequence}, consistency.HexLSN(lsn), k.Channel, keys).Err()
}

// announcement is one message of the channel.
type announcement struct {
	lsn, seq uint64
	evicted  Evicted
}

// parseAnnouncement reads "<position>\n<sequence>\n<keys, one a line, or *>".
func parseAnnouncement(s string) (announcement, error) {
	pos, rest, ok1 := strings.Cut(s, "\n")
	seq, keys, ok2 := strings.Cut(rest, "\n")
	if !ok1 || !ok2 {
		return announcement{}, fmt.Errorf("announcement %.40q: not position, sequence and keys", s)
	}
	var a announcement
	var err error
	if a.lsn, err = strconv.ParseUint(pos, 16, 64); err != nil {
		return announcement{}, fmt.Errorf("announcement position %q: %w", pos, err)
	}
	if a.seq, err = strconv.ParseUint(seq, 10, 64); err != nil {
		return announcement{}, fmt.Errorf("announcement sequence %q: %w", seq, err)
	}
	switch keys {
	case "":
	case allKeys:
		a.evicted.All = true
	default:
		a.evicted.Keys = strings.Split(keys, "\n")
	}
	return a, nil
}

// ReadApplied reads the applied position and the announcements' sequence
// number in one call (one slot on a cluster). Absent keys read as zero.
func ReadApplied(ctx context.Context, rdb redis.UniversalClient, k AppliedKeys) (lsn, seq uint64, err error) {
	vals, err := rdb.MGet(ctx, k.Applied, k.Sequence).Result()
	if err != nil {
		return 0, 0, err
	}
	if s, ok := vals[0].(string); ok {
		if lsn, err = strconv.ParseUint(s, 16, 64); err != nil {
			return 0, 0, fmt.Errorf("applied position %q: %w", s, err)
		}
	}
	if s, ok := vals[1].(string); ok {
		if seq, err = strconv.ParseUint(s, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("announcement sequence %q: %w", s, err)
		}
	}
	return lsn, seq, nil
}
