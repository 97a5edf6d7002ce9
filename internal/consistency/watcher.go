package consistency

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Keys names the Redis key and channel through which the CDC announces the
// WAL position it has applied.
type Keys struct {
	Applied string // holds the position as 16 hex digits
	Channel string // receives the same on every advance
}

// KeysFor derives the keys from the deployment's Redis prefix. Both share
// the hash tag {cdc}, so on a Redis Cluster they map to one slot.
func KeysFor(prefix string) Keys {
	return Keys{Applied: prefix + "{cdc}:applied_lsn", Channel: prefix + "{cdc}:applied"}
}

// publishScript raises the applied position KEYS[1] to ARGV[1], never
// lowers it, and announces it on channel ARGV[2]. The channel is not a key:
// the script touches one key, so a Redis Cluster runs it on the node that
// holds it, and a cluster delivers a PUBLISH to subscribers on every node.
var publishScript = redis.NewScript(LuaCompareLSN + `
local cur = redis.call('GET', KEYS[1])
if cur and cmplsn(cur, ARGV[1]) >= 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[1])
return 1`)

// HexLSN renders a position as the 16 hex digits that Redis scripts compare.
func HexLSN(lsn uint64) string { return fmt.Sprintf("%016x", lsn) }

// LuaCompareLSN defines cmplsn(a, b) for Redis scripts: the sign of a-b for
// two strings that start with HexLSN positions. It compares 32-bit halves as
// numbers, since Lua's string order follows the server's locale and its
// numbers are doubles.
const LuaCompareLSN = `
local function cmplsn(a, b)
  local ah, bh = tonumber(string.sub(a, 1, 8), 16), tonumber(string.sub(b, 1, 8), 16)
  if ah ~= bh then return ah < bh and -1 or 1 end
  local al, bl = tonumber(string.sub(a, 9, 16), 16), tonumber(string.sub(b, 9, 16), 16)
  if al ~= bl then return al < bl and -1 or 1 end
  return 0
end
`

// Publish records that the projections have applied everything up to lsn.
func Publish(ctx context.Context, rdb redis.UniversalClient, k Keys, lsn uint64) error {
	return publishScript.Run(ctx, rdb, []string{k.Applied}, HexLSN(lsn), k.Channel).Err()
}

// ErrTimeout means the projections did not reach a token's position in time.
var ErrTimeout = errors.New("projections did not catch up with the consistency token in time")

// Watcher tracks the applied position for a whole process: one Redis
// subscription serves every waiting request.
type Watcher struct {
	rdb     redis.UniversalClient
	keys    Keys
	log     *slog.Logger
	applied atomic.Uint64
	waiters atomic.Int64

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every advance
}

// NewWatcher returns a Watcher; call Run to feed it.
func NewWatcher(rdb redis.UniversalClient, keys Keys, log *slog.Logger) *Watcher {
	return &Watcher{rdb: rdb, keys: keys, log: log, changed: make(chan struct{})}
}

// Applied is the highest position known to be applied.
func (w *Watcher) Applied() uint64 { return w.applied.Load() }

func (w *Watcher) advance(lsn uint64) {
	for {
		cur := w.applied.Load()
		if lsn <= cur {
			return
		}
		if w.applied.CompareAndSwap(cur, lsn) {
			break
		}
	}
	w.mu.Lock()
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

// Wait blocks until the applied position reaches lsn or ctx ends, in which
// case it returns ErrTimeout.
func (w *Watcher) Wait(ctx context.Context, lsn uint64) error {
	if lsn == 0 || w.applied.Load() >= lsn {
		return nil
	}
	w.waiters.Add(1)
	defer w.waiters.Add(-1)
	for {
		w.mu.Lock()
		ch := w.changed
		w.mu.Unlock()
		if w.applied.Load() >= lsn {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w (waiting for %s, applied %s)", ErrTimeout, FormatLSN(lsn), FormatLSN(w.applied.Load()))
		}
	}
}

// Run follows the CDC's announcements until ctx ends. Pub/sub delivers
// advances at once; a slow poll of the key, only while requests are
// waiting, covers messages lost across a reconnect.
func (w *Watcher) Run(ctx context.Context) {
	sub := w.rdb.Subscribe(ctx, w.keys.Channel)
	defer sub.Close()
	msgs := sub.Channel()
	w.poll(ctx)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			if lsn, err := strconv.ParseUint(m.Payload, 16, 64); err == nil {
				w.advance(lsn)
			}
		case <-tick.C:
			if w.waiters.Load() > 0 {
				w.poll(ctx)
			}
		}
	}
}

func (w *Watcher) poll(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
	defer cancel()
	s, err := w.rdb.Get(ctx, w.keys.Applied).Result()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
			w.log.Debug("read applied position", "err", err)
		}
		return
	}
	if lsn, err := strconv.ParseUint(s, 16, 64); err == nil {
		w.advance(lsn)
	}
}
