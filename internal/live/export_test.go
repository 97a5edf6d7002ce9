package live

import "github.com/swapmeet/swapmeet/internal/feed"

// SetAfterDispatch makes every hub run f between dispatching an entry
// and raising its position to it, until the returned restore is called.
func SetAfterDispatch(f func(feed.Kind)) (restore func()) {
	afterDispatch.Store(&f)
	return func() { afterDispatch.Store(nil) }
}
