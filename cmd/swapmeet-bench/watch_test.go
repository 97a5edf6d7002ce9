package main

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestDeliveryClock(t *testing.T) {
	c := newDeliveryClock([]string{"a", "b"})
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

	c.committed("a", 2, at(0)) // before start: not timed
	c.start()
	c.delivered("a", 2, at(5))
	c.committed("a", 3, at(10))
	c.committed("a", 4, at(20))
	c.committed("c", 9, at(20)) // nobody watches c
	c.delivered("a", 4, at(50)) // 3 and 4 coalesced
	c.delivered("a", 3, at(60)) // older, from another stream: ignored
	c.delivered("b", 7, at(70))
	c.committed("b", 7, at(80)) // delivered before the writer saw its commit return
	c.committed("b", 8, at(90)) // never delivered
	c.visible("a", 7*time.Millisecond)
	c.visible("c", time.Second) // nobody watches c

	lat, fresh, undelivered := c.stop(context.Background(), 0)
	slices.Sort(lat)
	want := []time.Duration{0, 30 * time.Millisecond, 40 * time.Millisecond}
	if !slices.Equal(lat, want) || undelivered != 1 {
		t.Errorf("got %v, %d undelivered; want %v, 1", lat, undelivered, want)
	}
	if !slices.Equal(fresh, []time.Duration{7 * time.Millisecond}) {
		t.Errorf("freshness of the watched writes: %v", fresh)
	}
	c.committed("a", 5, at(100)) // after stop: not timed
	c.start()
	if lat, _, undelivered := c.stop(context.Background(), 0); len(lat) != 0 || undelivered != 0 {
		t.Errorf("after a restart: %v, %d undelivered", lat, undelivered)
	}
}
