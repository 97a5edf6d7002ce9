package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/ratelimit"
)

// Two limiters on one Redis are two API replicas: they share the count.
func TestLimitHoldsAcrossReplicas(t *testing.T) {
	e := itest.New(t)
	ctx := context.Background()
	a := ratelimit.New(e.Redis, e.RedisPrefix)
	b := ratelimit.New(e.Redis, e.RedisPrefix)
	for i, l := range []*ratelimit.Limiter{a, b, a} {
		if d := l.Allow(ctx, "signin", "10.0.0.1", 3, time.Minute); !d.Allowed {
			t.Fatalf("attempt %d of 3 was refused", i+1)
		}
	}
	d := b.Allow(ctx, "signin", "10.0.0.1", 3, time.Minute)
	if d.Allowed {
		t.Fatal("the 4th attempt across two replicas was allowed")
	}
	if d.RetryAfter < time.Second || d.RetryAfter > time.Minute {
		t.Fatalf("retry after %s, want within the window", d.RetryAfter)
	}
	if d := a.Allow(ctx, "signin", "10.0.0.2", 3, time.Minute); !d.Allowed {
		t.Fatal("another client shares the first one's count")
	}
	if d := a.Allow(ctx, "signup", "10.0.0.1", 3, time.Minute); !d.Allowed {
		t.Fatal("another kind of attempt shares the sign-in count")
	}
}

// With Redis gone, each process still counts on its own.
func TestLimitFallsBackToTheProcess(t *testing.T) {
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer dead.Close()
	l := ratelimit.New(dead, "x:")
	ctx := context.Background()
	for i := range 2 {
		if !l.Allow(ctx, "k", "id", 2, time.Minute).Allowed {
			t.Fatalf("attempt %d of 2 was refused", i+1)
		}
	}
	if l.Allow(ctx, "k", "id", 2, time.Minute).Allowed {
		t.Fatal("the 3rd attempt was allowed while Redis was down")
	}
	if !l.Allow(ctx, "k", "other", 2, time.Minute).Allowed {
		t.Fatal("keys are limited independently")
	}
}

// Over reads the shared count without adding to it, on any replica, and
// with Redis gone reads this process's own.
func TestOverReadsWithoutCounting(t *testing.T) {
	e := itest.New(t)
	ctx := context.Background()
	a := ratelimit.New(e.Redis, e.RedisPrefix)
	b := ratelimit.New(e.Redis, e.RedisPrefix)
	for range 5 {
		if !b.Over(ctx, "fail", "ada", 2, time.Minute).Allowed {
			t.Fatal("over before anything was counted")
		}
	}
	a.Allow(ctx, "fail", "ada", 2, time.Minute)
	if !b.Over(ctx, "fail", "ada", 2, time.Minute).Allowed {
		t.Fatal("over after 1 of 2")
	}
	a.Allow(ctx, "fail", "ada", 2, time.Minute)
	d := b.Over(ctx, "fail", "ada", 2, time.Minute)
	if d.Allowed || d.RetryAfter < time.Second || d.RetryAfter > time.Minute {
		t.Fatalf("after 2 of 2 on another replica: %+v, want over until the window ends", d)
	}

	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer dead.Close()
	l := ratelimit.New(dead, "x:")
	l.Allow(ctx, "fail", "ada", 1, time.Minute)
	if l.Over(ctx, "fail", "ada", 1, time.Minute).Allowed {
		t.Fatal("not over with Redis down after this process counted to the limit")
	}
}
