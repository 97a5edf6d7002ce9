package cache

// What the external tests reach inside: the near cache's tickets and
// drops, which only ReadThrough and the Watcher use otherwise, and the
// drops the watcher makes.

type Ticket = ticket

func (n *Near) Get(key string) (any, bool, Ticket) { return n.get(key) }
func (n *Near) Put(t Ticket, key string, value any, size int64) bool {
	return n.put(t, key, value, size)
}
func (n *Near) Forget(keys []string) { n.forget(keys) }
func (n *Near) Reset(reason string)  { n.reset(reason) }
func (n *Near) Suspend()             { n.suspend() }

// OnDrop has the watcher call f after each drop it makes: keys for a
// forget, a reason for a reset, "suspended" for a suspension. Set it
// before Run.
func (w *Watcher) OnDrop(f func(reason string, keys []string)) { w.dropped = f }

const (
	ResetSubscribed = resetSubscribed
	ResetGap        = resetGap
	ResetLagging    = resetLagging
	ResetBulk       = resetBulk
)

// FlightWaiters is how many readers have joined key's flight.
func (c *Cache) FlightWaiters(key string) int {
	c.flights.mu.Lock()
	defer c.flights.mu.Unlock()
	if f, ok := c.flights.m[key]; ok {
		return f.waiters
	}
	return 0
}
