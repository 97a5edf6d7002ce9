package itest

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/swapmeet/swapmeet/internal/readstore"
)

// WaitConverged waits until the read side matches Postgres exactly.
func (e *Env) WaitConverged(t T, within time.Duration) {
	t.Helper()
	if err := e.Sandbox.WaitConverged(context.Background(), within); err != nil {
		t.Fatalf("%v", err)
	}
}

// StaleCacheEntries lists cached documents that differ from the read store.
func (e *Env) StaleCacheEntries(ctx context.Context) ([]string, error) {
	var stale []string
	keys, err := ScanKeys(ctx, e.Redis, e.RedisPrefix+"*")
	if err != nil {
		return nil, err
	}
	for _, key := range keys {
		rest := strings.TrimPrefix(key, e.RedisPrefix)
		kind, id, ok := strings.Cut(rest, ":")
		collection := map[string]string{"user": readstore.Users, "listing": readstore.Listings, "order": readstore.Orders}[kind]
		if !ok || collection == "" {
			continue
		}
		payload, hit, err := e.Cache().Get(ctx, key)
		if err != nil || !hit {
			continue
		}
		stored, err := e.Reads.FindRaw(ctx, collection, id)
		if err != nil {
			stale = append(stale, fmt.Sprintf("%s: cached, but the store says %v", key, err))
			continue
		}
		if !sameDocument(payload, stored) {
			stale = append(stale, key)
		}
	}
	return stale, nil
}

// sameDocument compares two BSON documents field by field, ignoring lsn
// and the order of fields at every level: a map-valued field (listing
// attributes) is written in no set order.
func sameDocument(a, b []byte) bool {
	var da, db bson.M
	if bson.Unmarshal(a, &da) != nil || bson.Unmarshal(b, &db) != nil {
		return false
	}
	delete(da, "lsn")
	delete(db, "lsn")
	return reflect.DeepEqual(unordered(da), unordered(db))
}

// unordered turns every embedded document into a map.
func unordered(v any) any {
	switch v := v.(type) {
	case bson.D:
		m := make(map[string]any, len(v))
		for _, e := range v {
			m[e.Key] = unordered(e.Value)
		}
		return m
	case bson.M:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = unordered(e)
		}
		return m
	case bson.A:
		a := make([]any, len(v))
		for i, e := range v {
			a[i] = unordered(e)
		}
		return a
	}
	return v
}
