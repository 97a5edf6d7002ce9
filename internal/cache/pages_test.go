package cache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/itest"
)

// The page budget at its edges: PageKeys pages fit, one more drops the
// oldest; a page of PageMaxBytes is cached, one byte more is not.
func TestPageBudgetAtTheEdge(t *testing.T) {
	e := itest.New(t)
	ctx := context.Background()
	c := cache.New(e.Redis, e.RedisPrefix)
	c.PageKeys, c.PageMaxBytes = 3, 1024

	var keys []string
	for i := range 4 {
		k := c.PageKey("listings", 1, fmt.Sprint("q", i))
		if err := c.PutPage(ctx, k, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	for i, k := range keys {
		_, hit, err := c.GetPage(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if want := i > 0; hit != want {
			t.Errorf("page %d cached = %v, want %v (budget 3, oldest dropped)", i, hit, want)
		}
	}

	at := c.PageKey("listings", 1, "at-limit")
	if err := c.PutPage(ctx, at, bytes.Repeat([]byte{1}, 1024)); err != nil {
		t.Fatalf("a page of exactly PageMaxBytes: %v", err)
	}
	if _, hit, _ := c.GetPage(ctx, at); !hit {
		t.Error("a page of exactly PageMaxBytes was not cached")
	}
	over := c.PageKey("listings", 1, "over-limit")
	if err := c.PutPage(ctx, over, bytes.Repeat([]byte{1}, 1025)); !errors.Is(err, cache.ErrPageTooLarge) {
		t.Fatalf("a page one byte over: %v, want ErrPageTooLarge", err)
	}
	if _, hit, _ := c.GetPage(ctx, over); hit {
		t.Error("a page over PageMaxBytes was cached")
	}
}
