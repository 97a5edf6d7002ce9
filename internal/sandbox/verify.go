package sandbox

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/swapmeet/swapmeet/cdc"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

// Drift returns a description of how the read side differs from Postgres,
// or "" when it matches.
func (s *Sandbox) Drift(ctx context.Context) (string, error) {
	drifts, err := cdc.Verify(ctx, s.PG, s.Reads, readstore.Collections)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if !cdc.PrintDrift(&b, drifts) {
		return b.String(), nil
	}
	return "", nil
}

// WaitConverged waits until the read side matches Postgres exactly.
func (s *Sandbox) WaitConverged(ctx context.Context, within time.Duration) error {
	return Poll(ctx, within, "the read side to match postgres", func() (bool, error) {
		d, err := s.Drift(ctx)
		if err != nil {
			return false, err
		}
		if d != "" {
			return false, fmt.Errorf("drift:\n%s", d)
		}
		return true, nil
	})
}

// ScanKeys returns every key that matches pattern. On a Redis Cluster a
// SCAN sees one node only, so it scans every master.
func ScanKeys(ctx context.Context, rdb redis.UniversalClient, pattern string) ([]string, error) {
	scan := func(ctx context.Context, c redis.Cmdable) ([]string, error) {
		var keys []string
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		return keys, iter.Err()
	}
	cluster, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return scan(ctx, rdb)
	}
	var (
		mu   sync.Mutex
		keys []string
	)
	err := cluster.ForEachMaster(ctx, func(ctx context.Context, master *redis.Client) error {
		k, err := scan(ctx, master)
		mu.Lock()
		keys = append(keys, k...)
		mu.Unlock()
		return err
	})
	return keys, err
}
