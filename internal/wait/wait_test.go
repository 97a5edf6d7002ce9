package wait

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestBackoffGrowsWithinBoundsAndResets(t *testing.T) {
	b := NewBackoff(10*time.Millisecond, 80*time.Millisecond)
	steps := []time.Duration{10, 20, 40, 80, 80, 80}
	for i, step := range steps {
		step *= time.Millisecond
		for range 50 { // jitter: every draw lies in [step/2, step]
			c := *b
			if d := c.Next(); d < step/2 || d > step {
				t.Fatalf("wait %d: %v outside [%v, %v]", i, d, step/2, step)
			}
		}
		b.Next()
	}
	b.Reset()
	if d := b.Next(); d > 10*time.Millisecond {
		t.Fatalf("after Reset: %v, want at most Min", d)
	}
}

func TestBackoffZeroMinAndMaxBelowMin(t *testing.T) {
	b := &Backoff{Max: time.Second}
	if d := b.Next(); d < 50*time.Millisecond || d > 100*time.Millisecond {
		t.Fatalf("zero Min: first wait %v, want 50–100 ms", d)
	}
	b = NewBackoff(time.Second, time.Millisecond) // Max below Min: Min wins
	if d := b.Next(); d < 500*time.Millisecond || d > time.Second {
		t.Fatalf("Max below Min: %v", d)
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if Sleep(ctx, time.Hour) {
		t.Fatal("Sleep reported a full sleep on an ended context")
	}
	if time.Since(start) > time.Second {
		t.Fatal("Sleep did not return when its context ended")
	}
	if !Sleep(context.Background(), time.Millisecond) {
		t.Fatal("Sleep reported an interruption without one")
	}
}

func TestEveryRunsUntilContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var runs atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		Every(ctx, time.Millisecond, func(context.Context) {
			if runs.Add(1) == 3 {
				cancel()
			}
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Every did not return after its context ended")
	}
	if n := runs.Load(); n < 3 {
		t.Fatalf("ran %d times, want at least 3", n)
	}
}
