package consistency

import "errors"

// Followed is the Postgres history the read side follows, with the ones it
// followed before. It is part of the projections pointer: the CDC records
// it when it first builds the read side, and only a rebuild onto a new
// history (after a failover, a restore or a move) changes it.
//
// The read side's positions (document stamps, the applied position, the
// change feed, Watch resume tokens) only rise, across histories too: a
// position of the read side is Base plus a WAL position of History. A new
// history gets a Base that puts its first position above every position
// the read side held before, so the fences and caches keyed by position
// keep working unchanged when WAL positions start again lower.
type Followed struct {
	History History `bson:"history"`
	Base    uint64  `bson:"base"`
	// Ancestors are the histories followed before, oldest first.
	Ancestors []Ancestor `bson:"ancestors,omitempty"`
}

// Ancestor is a history the read side followed before.
type Ancestor struct {
	History History `bson:"history"`
	// End is the last WAL position of it that the next history shares
	// (the fork point of a promotion or a point-in-time restore); 0 when
	// none can be told (a new cluster).
	End uint64 `bson:"end"`
}

// Errors of Resolve.
var (
	// ErrOtherHistory: the token's write lies in a history the read side
	// no longer follows, past the point the current one shares with it (a
	// write lost in a failover or a restore, or made on a database the
	// read side moved away from). No read can honour it; a read without
	// the token shows the current state.
	ErrOtherHistory = errors.New("the consistency token's write is not in the database history the read side follows (a failover, restore or move lost it); read without the token")
	// ErrNewHistory: the token's write lies in a history the read side
	// does not follow yet (the write Postgres changed and the read side
	// has not been rebuilt onto it). Waiting may help.
	ErrNewHistory = errors.New("the consistency token's write is in a database history the read side does not follow yet")
)

// Resolve returns the read-side position that reflects the write at p: a
// read may use the read side once it has applied that position (0: at
// once). It fails with ErrNewHistory or ErrOtherHistory when no position
// of the read side reflects p now.
func (f Followed) Resolve(p Position) (uint64, error) {
	switch {
	case p.LSN == 0:
		return 0, nil
	case f.History.IsZero():
		// A read side built before histories were recorded: positions
		// are WAL positions of the one history there was.
		return p.LSN, nil
	case p.History.IsZero():
		// A position of the read side itself (a Watch stream's resume
		// token, or a token from before histories, when the read side's
		// positions were its first history's).
		return p.LSN, nil
	case p.History == f.History:
		return f.Base + p.LSN, nil
	}
	for _, a := range f.Ancestors {
		if a.History == p.History {
			if p.LSN <= a.End {
				// Shared with the current history, which the read side
				// was rebuilt from at a later point.
				return 0, nil
			}
			return 0, ErrOtherHistory
		}
	}
	return 0, ErrNewHistory
}

// historyMargin lies between the highest read-side position known when a
// history is left and the first of the next: a CDC that stopped in the
// middle of a batch may have stamped documents (and so cache entries) a
// little past the applied position, never by 4 GiB of WAL.
const historyMargin = 1 << 32

// Follow returns the record after the read side moves to history h, from
// f, having applied up to the read-side position applied; first is the
// first WAL position of h the read side will hold (where its rebuild
// starts), end the last position of f's history that h shares (0: none,
// or not known). Following the same history changes nothing.
func (f Followed) Follow(h History, first, applied, end uint64) Followed {
	if f.History == h {
		return f
	}
	next := Followed{History: h, Ancestors: append([]Ancestor(nil), f.Ancestors...)}
	if !f.History.IsZero() {
		next.Ancestors = append(next.Ancestors, Ancestor{History: f.History, End: end})
	}
	// Every position of h from first on maps above everything held before.
	if floor := max(applied, f.Base) + historyMargin; floor > first {
		next.Base = floor - first
	}
	return next
}
