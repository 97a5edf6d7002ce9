package itest

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/swapmeet/swapmeet/internal/sandbox"
)

// ScanKeys returns every key that matches pattern, on every master of a
// Redis Cluster.
func ScanKeys(ctx context.Context, rdb redis.UniversalClient, pattern string) ([]string, error) {
	return sandbox.ScanKeys(ctx, rdb, pattern)
}
