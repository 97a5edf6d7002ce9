package media

import (
	"fmt"
	"testing"
	"time"
)

func TestPresignCacheReuseWindow(t *testing.T) {
	const reuse = time.Minute
	c := newPresignCache(reuse, 100)
	t0 := time.Now()
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

func TestPresignCacheBounded(t *testing.T) {
	const max = 10
	c := newPresignCache(time.Minute, max)
	t0 := time.Now()
	for i := range 10 * max {
		k := fmt.Sprint(i)
		c.put(k, presigned{url: k, signed: t0})
		if n := c.len(); n > max {
			t.Fatalf("%d URLs held, want at most %d", n, max)
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
