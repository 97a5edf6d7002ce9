package cache

import (
	"errors"
	"testing"
	"time"
)

func TestBreaker(t *testing.T) {
	b := newBreaker(3, time.Second)
	now := time.Unix(0, 0)
	fail := errors.New("down")
	for i := 0; i < 3; i++ {
		if !b.allow(now) {
			t.Fatalf("call %d refused before the threshold", i)
		}
		b.done(fail, now)
	}
	if b.allow(now.Add(500 * time.Millisecond)) {
		t.Fatal("open breaker let a call through during the cool-down")
	}
	probe := now.Add(1500 * time.Millisecond)
	if !b.allow(probe) {
		t.Fatal("no probe after the cool-down")
	}
	if b.allow(probe) {
		t.Fatal("a second call went through while the probe was out")
	}
	b.done(fail, probe)
	if b.allow(probe.Add(100 * time.Millisecond)) {
		t.Fatal("a failed probe must reopen the breaker")
	}
	later := probe.Add(2 * time.Second)
	if !b.allow(later) {
		t.Fatal("no probe after the second cool-down")
	}
	b.done(nil, later)
	if !b.allow(later) || b.open() {
		t.Fatal("a successful probe must close the breaker")
	}
}
