package consistency

import (
	"errors"
	"testing"
)

func TestResolve(t *testing.T) {
	h1 := History{System: 7, Timeline: 1}
	h2 := History{System: 7, Timeline: 2} // promoted at 0x5000
	h3 := History{System: 9, Timeline: 1} // a new cluster
	first := Followed{History: h1}
	// Rebuilt onto h2 from position 0x5100, having applied 0x6000 of h1
	// (0x5000..0x6000 of h1 were lost in the failover).
	second := first.Follow(h2, 0x5100, 0x6000, 0x5000)
	third := second.Follow(h3, 0x100, second.Base+0x9000, 0)

	if second.Base+0x5100 <= 0x6000+historyMargin-1 || third.Base+0x100 <= second.Base+0x9000 {
		t.Fatalf("positions do not rise across histories: %+v, %+v", second, third)
	}
	for _, tc := range []struct {
		name string
		f    Followed
		p    Position
		want uint64
		err  error
	}{
		{"no token", second, Position{}, 0, nil},
		{"the current history", first, Position{h1, 0x10}, 0x10, nil},
		{"the current history, moved", second, Position{h2, 0x5200}, second.Base + 0x5200, nil},
		{"a write the new history shares", second, Position{h1, 0x4000}, 0, nil},
		{"a write the failover lost", second, Position{h1, 0x5800}, 0, ErrOtherHistory},
		{"a write on a cluster left behind", third, Position{h2, 0x5200}, 0, ErrOtherHistory},
		{"a write of the first history, two moves on", third, Position{h1, 0x10}, 0, nil},
		{"a history not followed yet", second, Position{h3, 0x10}, 0, ErrNewHistory},
		{"a read-side position (a resume token)", first, Position{LSN: 0x10}, 0x10, nil},
		{"a read-side position after a move", second, Position{LSN: second.Base + 0x5200}, second.Base + 0x5200, nil},
		{"a read side from before histories", Followed{}, Position{h3, 0x10}, 0x10, nil},
	} {
		got, err := tc.f.Resolve(tc.p)
		if got != tc.want || !errors.Is(err, tc.err) && (err != nil || tc.err != nil) {
			t.Errorf("%s: Resolve(%+v) = %#x, %v; want %#x, %v", tc.name, tc.p, got, err, tc.want, tc.err)
		}
	}
	if again := second.Follow(h2, 0x9999, 0x9999, 0); again.Base != second.Base || len(again.Ancestors) != 1 {
		t.Errorf("following the same history changed the record: %+v", again)
	}
}
