package cache_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/itest"
)

// TestPublishReachesWatcher: Publish raises the applied position, never
// lowers it, and announces it; a Watcher hears the announcement through its
// subscription alone. On a Redis Cluster the position is on one node and
// the subscription may be on another.
func TestPublishReachesWatcher(t *testing.T) {
	e := itest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	keys := cache.AppliedKeysFor(e.RedisPrefix)

	sub := e.Redis.Subscribe(ctx, keys.Channel)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // the subscription is confirmed
		t.Fatal(err)
	}
	w := cache.NewWatcher(e.Redis, keys, e.Log)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go w.Run(runCtx)

	if err := cache.Publish(ctx, e.Redis, keys, 100, cache.Evicted{Keys: []string{"a", "b"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-sub.Channel():
		if want := consistency.HexLSN(100) + "\n1\na\nb"; m.Payload != want {
			t.Fatalf("announced %q, want %q", m.Payload, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no announcement within 5s")
	}
	waitCtx, cancelWait := context.WithTimeout(ctx, 5*time.Second)
	defer cancelWait()
	if err := w.Wait(waitCtx, 100); err != nil {
		t.Fatal(err)
	}

	// Never lowered.
	if err := cache.Publish(ctx, e.Redis, keys, 50, cache.Evicted{}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.Redis.Get(ctx, keys.Applied).Result(); err != nil || got != consistency.HexLSN(100) {
		t.Fatalf("applied = %q, %v after publishing an older position; want %q", got, err, consistency.HexLSN(100))
	}

	// After the nodes forgot the script, and with nobody waiting (so the
	// watcher does not poll), the announcement alone advances the watcher.
	if err := e.Redis.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := cache.Publish(ctx, e.Redis, keys, 200, cache.Evicted{}); err != nil {
		t.Fatal(err)
	}
	itest.Eventually(t, 5*time.Second, "the watcher to hear position 200", func() (bool, error) {
		return w.Applied() >= 200, nil
	})
	if _, ok := e.Redis.(*redis.ClusterClient); ok {
		t.Log("Redis Cluster: published and watched across nodes")
	}
}
