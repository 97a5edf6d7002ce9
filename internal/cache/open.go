package cache

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/redis/go-redis/v9"

	"github.com/swapmeet/swapmeet/internal/roundtrip"
)

// Open connects to the Redis that url names. One address is a single
// server (redis.ParseURL form, e.g. redis://host:6379/0). Further addresses
// in addr parameters are the seed nodes of a Redis Cluster (redis.ParseClusterURL
// form, e.g. redis://host1:6379?addr=host2:6379&addr=host3:6379), which
// the client discovers the rest of the cluster from. The client connects
// lazily: an unreachable server is an error on first use, not here.
func Open(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // without the URL, which may hold a password
		}
		return nil, fmt.Errorf("redis url: cannot parse it: %w", err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("redis url %s: scheme %q, want redis:// or rediss://", u.Redacted(), u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("redis url %s: no host", u.Redacted())
	}
	if !u.Query().Has("addr") {
		opts, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redis url %s: %w", u.Redacted(), err)
		}
		c := redis.NewClient(opts)
		c.AddHook(roundtrip.Hook{})
		return c, nil
	}
	// A cluster has one database; a path naming another is a mistake.
	if p := u.Path; p != "" && p != "/" && p != "/0" {
		return nil, fmt.Errorf("redis url %s: a cluster has only database 0, not %q", u.Redacted(), p[1:])
	}
	opts, err := redis.ParseClusterURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis cluster url %s: %w", u.Redacted(), err)
	}
	c := redis.NewClusterClient(opts)
	c.AddHook(roundtrip.Hook{})
	return c, nil
}

// IsCluster reports whether rdb is a Redis Cluster client.
func IsCluster(rdb redis.UniversalClient) bool {
	_, ok := rdb.(*redis.ClusterClient)
	return ok
}
