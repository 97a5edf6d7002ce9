// Package fault names the kinds of failure a backing service can have
// that callers act on, whatever the service. Each adapter (db, readstore,
// cache, media) recognises its own driver's errors and marks them with a
// kind, so the layers above never look at a driver error. The kinds are
// not a taxonomy of their own: each stands for one app.Code (see
// app.ErrorCode), which the edge translates.
package fault

import "errors"

// The kinds. errors.Is finds them in a marked error and in anything that
// wraps one.
var (
	// ErrUnavailable: the service is down, unreachable or restarting;
	// retrying later may succeed.
	ErrUnavailable = errors.New("a backing service is unavailable")
	// ErrTimeout: the service gave up on the work after its own time
	// limit (a statement timeout).
	ErrTimeout = errors.New("a backing service timed out")
	// ErrContention: the work kept colliding with concurrent work and
	// every retry was used.
	ErrContention = errors.New("too much contention")
)

// Unavailable marks err as ErrUnavailable; nil stays nil.
func Unavailable(err error) error { return mark(ErrUnavailable, err) }

// Timeout marks err as ErrTimeout; nil stays nil.
func Timeout(err error) error { return mark(ErrTimeout, err) }

// Contention marks err as ErrContention; nil stays nil.
func Contention(err error) error { return mark(ErrContention, err) }

// marked is an error with a kind. Its message is the error's own, so that
// logs read as before.
type marked struct {
	kind error
	err  error
}

func mark(kind, err error) error {
	if err == nil || errors.Is(err, kind) {
		return err
	}
	return &marked{kind: kind, err: err}
}

func (m *marked) Error() string   { return m.err.Error() }
func (m *marked) Unwrap() []error { return []error{m.err, m.kind} }
