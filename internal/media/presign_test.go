package media

import (
	"fmt"
	"testing"
	"time"
)

func TestPresignCacheReuseWindow(t *testing.T) {
	const reuse = time.Minute
	c := newPresignCache(reuse, 100)
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	want := presigned{url: "u1", expires: t0.Add(10 * reuse), signed: t0}
	c.put("k", want)

	for _, at := range []time.Duration{0, time.Second, reuse - time.Nanosecond} {
		if got, ok := c.get("k", t0.Add(at)); !ok || got != want {
			t.Errorf("at +%s: got %+v, %v; want the URL reused", at, got, ok)
		}
	}
	for _, at := range []time.Duration{reuse, 2 * reuse, -time.Second} {
		if got, ok := c.get("k", t0.Add(at)); ok {
			t.Errorf("at %+v: reused %+v, want a new signature", at, got)
		}
	}
	if _, ok := c.get("other", t0); ok {
		t.Error("a key never signed was found")
	}
}

func TestPresignCacheGenerations(t *testing.T) {
	const reuse = time.Minute
	c := newPresignCache(reuse, 100)
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	c.put("a", presigned{url: "a", signed: t0})
	// A put in the next window starts a generation; "a" is still found
	// in the previous one while it is young enough.
	c.put("b", presigned{url: "b", signed: t0.Add(reuse - time.Second)})
	c.put("c", presigned{url: "c", signed: t0.Add(reuse + time.Second)})
	if _, ok := c.get("b", t0.Add(reuse+2*time.Second)); !ok {
		t.Error("b, signed 3 s ago, was dropped with the previous generation")
	}
	// Two windows on, both generations go.
	c.put("d", presigned{url: "d", signed: t0.Add(4 * reuse)})
	if n := c.len(); n != 1 {
		t.Errorf("%d URLs held after two idle windows, want 1", n)
	}
}

func TestPresignCacheBounded(t *testing.T) {
	const max = 10
	c := newPresignCache(time.Minute, max)
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for i := range 10 * max {
		k := fmt.Sprint(i)
		c.put(k, presigned{url: k, signed: t0})
		if n := c.len(); n > 2*max {
			t.Fatalf("%d URLs held, want at most %d", n, 2*max)
		}
		if _, ok := c.get(k, t0); !ok {
			t.Fatalf("%s not found right after it was put", k)
		}
	}
}

func TestPresignCacheDisabled(t *testing.T) {
	c := newPresignCache(0, 10)
	t0 := time.Now()
	c.put("k", presigned{url: "u", signed: t0})
	if _, ok := c.get("k", t0); ok {
		t.Error("reused with a zero window")
	}
}
