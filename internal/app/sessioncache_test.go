package app

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestSessionCacheExpiresAndDrops(t *testing.T) {
	c := newSessionCache(time.Minute)
	now := time.Now()
	u := uuid.New()
	c.put("a", u, now.Add(time.Hour), now)
	if got, ok := c.get("a", now.Add(59*time.Second)); !ok || got != u {
		t.Fatalf("a fresh entry: %v, %v", got, ok)
	}
	if _, ok := c.get("a", now.Add(61*time.Second)); ok {
		t.Fatal("trusted past the cache's TTL")
	}
	c.put("b", u, now.Add(time.Second), now) // the session itself ends first
	if _, ok := c.get("b", now.Add(2*time.Second)); ok {
		t.Fatal("trusted past the session's own expiry")
	}
	c.drop("a")
	if _, ok := c.get("a", now); ok {
		t.Fatal("found after drop")
	}
	if off := newSessionCache(0); off.entries != nil {
		t.Fatal("a zero TTL must switch the cache off")
	}
	bounded := newSessionCache(time.Minute)
	for range sessionCacheSize + 10 {
		bounded.put(uuid.NewString(), u, now.Add(time.Hour), now)
	}
	if n := bounded.entries.Len(); n > sessionCacheSize {
		t.Fatalf("%d sessions held, want at most %d", n, sessionCacheSize)
	}
}
