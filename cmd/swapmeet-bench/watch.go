package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
)

// WatchListing subscribers, as a browser tab holds them: one server stream
// per listing, many streams over one HTTP/2 connection (h2c here). They
// serve the commit-to-delivery figure next to freshness (cdc_vs_sink.go)
// and the fan-out figure (watch_fanout.go).

const (
	// streamsPerConn is how many streams share a connection: under the
	// 250 concurrent streams a Go server allows one connection by default
	// (http2 MAX_CONCURRENT_STREAMS), so no stream waits for a slot.
	streamsPerConn = 100
	// openingAtOnce bounds the streams opened and not yet answered with
	// their first message: each first message is a read of the listing.
	openingAtOnce = 200
	// watchOpenWait bounds the wait for every stream's first message.
	watchOpenWait = 2 * time.Minute
)

// h2cTransport speaks cleartext HTTP/2 with prior knowledge, as the
// API's own clients in the sandbox do; each has its own connection.
func h2cTransport() *http.Transport {
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	return &http.Transport{Protocols: protocols}
}

// subscriber is one WatchListing stream. It notes the newest version it
// was delivered and when.
type subscriber struct {
	listing string
	version atomic.Int64 // 0 until the first message
	at      atomic.Int64 // when that version arrived, unix nanoseconds
}

// delivered returns the newest version delivered and when it arrived.
func (s *subscriber) delivered() (int64, time.Time) {
	return s.version.Load(), time.Unix(0, s.at.Load())
}

// subscribers is a set of WatchListing streams against one API, spread
// over connections of streamsPerConn streams each.
type subscribers struct {
	all     []*subscriber
	clients []swapmeetv1connect.ListingServiceClient
	conns   []*http.Transport
	cancel  context.CancelFunc
	streams sync.WaitGroup

	mu  sync.Mutex
	err error // the first stream that ended while the set was open
}

// openStreams opens one stream per listing id (ids may repeat) against
// the API at url, and returns once each stream has delivered its first
// message. onState, if set, sees every listing state as it arrives.
// close ends the streams.
func openStreams(ctx context.Context, url string, ids []string, label string, onState func(id string, version int64, at time.Time)) (*subscribers, error) {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	set := &subscribers{cancel: cancel}
	for range (len(ids) + streamsPerConn - 1) / streamsPerConn {
		tr := h2cTransport()
		set.conns = append(set.conns, tr)
		set.clients = append(set.clients, swapmeetv1connect.NewListingServiceClient(&http.Client{Transport: tr}, url))
	}
	opening := make(chan struct{}, openingAtOnce)
	var ready atomic.Int64
	allReady := make(chan struct{})
	start := time.Now()
	for i, id := range ids {
		s := &subscriber{listing: id}
		set.all = append(set.all, s)
		set.streams.Go(func() {
			select {
			case opening <- struct{}{}:
			case <-sctx.Done():
				return
			}
			first := true
			answered := func() {
				if first {
					first = false
					<-opening
					if ready.Add(1) == int64(len(ids)) {
						close(allReady)
					}
				}
			}
			err := s.follow(sctx, set.clients[i/streamsPerConn], func(version int64, at time.Time) {
				if onState != nil {
					onState(id, version, at)
				}
				answered()
			})
			if first {
				<-opening
			}
			if sctx.Err() == nil {
				set.fail(fmt.Errorf("WatchListing(%s): %w", id, err))
			}
		})
	}
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	deadline := time.After(watchOpenWait)
	for {
		select {
		case <-allReady:
			progress("%s: %d streams open over %d connections in %s", label, len(ids), len(set.conns), time.Since(start).Round(time.Millisecond))
			return set, nil
		case <-tick.C:
			progress("%s: %d of %d streams delivered their first message", label, ready.Load(), len(ids))
		case <-deadline:
			return nil, errors.Join(fmt.Errorf("%s: only %d of %d streams delivered their first message within %s",
				label, ready.Load(), len(ids), watchOpenWait), set.close())
		case <-ctx.Done():
			return nil, errors.Join(context.Cause(ctx), set.close())
		}
		if err := set.failed(); err != nil {
			return nil, errors.Join(err, set.close())
		}
	}
}

// follow receives until the stream ends, and returns why it ended.
func (s *subscriber) follow(ctx context.Context, client swapmeetv1connect.ListingServiceClient, seen func(version int64, at time.Time)) error {
	stream, err := client.WatchListing(ctx, connect.NewRequest(&swapmeetv1.WatchListingRequest{ListingId: s.listing}))
	if err != nil {
		return err
	}
	defer stream.Close()
	for stream.Receive() {
		l := stream.Msg().GetListing()
		if l == nil {
			continue // a heartbeat
		}
		now := time.Now()
		if l.GetVersion() > s.version.Load() {
			s.at.Store(now.UnixNano())
			s.version.Store(l.GetVersion())
		}
		seen(l.GetVersion(), now)
	}
	if err := stream.Err(); err != nil {
		return err
	}
	return errors.New("the server ended the stream")
}

func (set *subscribers) fail(err error) {
	set.mu.Lock()
	defer set.mu.Unlock()
	if set.err == nil {
		set.err = err
	}
}

// failed returns the first stream that ended while the set was open.
func (set *subscribers) failed() error {
	set.mu.Lock()
	defer set.mu.Unlock()
	return set.err
}

// reached counts the subscribers that have been delivered version or a
// newer one.
func (set *subscribers) reached(version int64) int {
	n := 0
	for _, s := range set.all {
		if s.version.Load() >= version {
			n++
		}
	}
	return n
}

// close ends the streams and their connections, and returns the first
// stream that had ended before.
func (set *subscribers) close() error {
	set.cancel()
	set.streams.Wait()
	for _, tr := range set.conns {
		tr.CloseIdleConnections()
	}
	return set.failed()
}

// deliveryClock times each write of a watched listing from its commit
// until a stream delivers that version or a newer one: fast changes may
// be coalesced into the newest state, which then delivers them all.
type deliveryClock struct {
	mu      sync.Mutex
	on      bool
	watched map[string]*watchedListing
	lat     []time.Duration
	fresh   []time.Duration // the same writes' freshness
}

type watchedListing struct {
	version int64     // the newest delivered
	at      time.Time // when it arrived
	pending []pendingWrite
}

type pendingWrite struct {
	version   int64
	committed time.Time
}

func newDeliveryClock(ids []string) *deliveryClock {
	c := &deliveryClock{watched: make(map[string]*watchedListing, len(ids))}
	for _, id := range ids {
		c.watched[id] = &watchedListing{}
	}
	return c
}

// start times the writes committed from now on.
func (c *deliveryClock) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.on, c.lat, c.fresh = true, nil, nil
}

// committed notes a write; writes of listings nobody watches are not timed.
func (c *deliveryClock) committed(id string, version int64, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.watched[id]
	if !c.on || w == nil {
		return
	}
	if w.version >= version {
		// Delivered before the writer saw its commit return: no wait.
		c.lat = append(c.lat, max(0, w.at.Sub(at)))
		return
	}
	w.pending = append(w.pending, pendingWrite{version, at})
}

// visible notes how long a write took to become visible to reads.
func (c *deliveryClock) visible(id string, took time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.on && c.watched[id] != nil {
		c.fresh = append(c.fresh, took)
	}
}

// delivered notes a state a stream delivered.
func (c *deliveryClock) delivered(id string, version int64, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.watched[id]
	if w == nil || version <= w.version {
		return // an older state from another stream on the same listing
	}
	w.version, w.at = version, at
	kept := w.pending[:0]
	for _, p := range w.pending {
		if p.version <= version {
			c.lat = append(c.lat, at.Sub(p.committed))
		} else {
			kept = append(kept, p)
		}
	}
	w.pending = kept
}

// stop waits up to within for the writes timed since start to be
// delivered, stops timing, and returns their latencies, their freshness,
// and how many were still not delivered.
func (c *deliveryClock) stop(ctx context.Context, within time.Duration) (lat, fresh []time.Duration, undelivered int) {
	deadline := time.Now().Add(within)
	for {
		c.mu.Lock()
		undelivered = 0
		for _, w := range c.watched {
			undelivered += len(w.pending)
		}
		if undelivered == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			lat, fresh, c.lat, c.fresh, c.on = c.lat, c.fresh, nil, nil, false
			for _, w := range c.watched {
				w.pending = nil
			}
			c.mu.Unlock()
			return lat, fresh, undelivered
		}
		c.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
}
