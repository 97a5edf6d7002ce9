package sandbox

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/swapmeet/swapmeet/cdc"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/system"
)

// Drift returns a description of how the read side (the documents and the
// search store) differs from Postgres, or "" when it matches.
func (s *Sandbox) Drift(ctx context.Context) (string, error) {
	drifts, err := cdc.Verify(ctx, s.PG, s.Reads, readstore.Collections)
	if err != nil {
		return "", err
	}
	d, err := cdc.VerifySearch(ctx, s.PG, s.Search)
	if err != nil {
		return "", err
	}
	drifts = append(drifts, d)
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

// ScanKeys returns every key that matches pattern, on every master of a
// Redis Cluster.
func ScanKeys(ctx context.Context, rdb redis.UniversalClient, pattern string) ([]string, error) {
	return system.ScanKeys(ctx, rdb, pattern)
}
