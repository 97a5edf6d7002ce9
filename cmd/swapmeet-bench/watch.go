package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
	"github.com/swapmeet/swapmeet/internal/wait"
)

// WatchListing streams, streamsPerConn to a connection: commit to delivery, and fan-out.

const (
	streamsPerConn       = 100
	openingAtOnce        = 200 // streams opened and not yet answered: each first message reads the listing
	watchOpenWait        = 2 * time.Minute
	deliveryMaxOverFresh = 50 * time.Millisecond // commit-to-delivery p99 over freshness p99
	fanOutChanges        = 5                     // timed with every stream open, and with one
	fanOutWait           = 30 * time.Second      // for one change to reach every stream
)

// subscriber is one stream; it notes the newest version delivered and when.
type subscriber struct {
	listing string
	version atomic.Int64 // 0 until the first message
	at      atomic.Int64 // unix nanoseconds
}

func (s *subscriber) delivered() (int64, time.Time) {
	return s.version.Load(), time.Unix(0, s.at.Load())
}

// subscribers is a set of streams against one API.
type subscribers struct {
	all     []*subscriber
	conns   []*http.Client
	cancel  context.CancelFunc
	streams sync.WaitGroup
	mu      sync.Mutex
	err     error // the first stream that ended while the set was open
}

// openStreams opens a stream per id and returns once each has delivered.
func openStreams(ctx context.Context, url string, ids []string, label string) (*subscribers, error) {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	set := &subscribers{cancel: cancel}
	var clients []swapmeetv1connect.ListingServiceClient
	for range (len(ids) + streamsPerConn - 1) / streamsPerConn {
		set.conns = append(set.conns, h2c())
		clients = append(clients, swapmeetv1connect.NewListingServiceClient(set.conns[len(set.conns)-1], url))
	}
	opening := make(chan struct{}, openingAtOnce)
	var ready atomic.Int64
	start := time.Now()
	for i, id := range ids {
		s := &subscriber{listing: id}
		set.all = append(set.all, s)
		set.streams.Go(func() {
			opening <- struct{}{}
			first := true
			err := s.follow(sctx, clients[i/streamsPerConn], func() {
				if first {
					first = false
					ready.Add(1)
					<-opening
				}
			})
			if first {
				<-opening
			}
			if sctx.Err() == nil {
				set.mu.Lock()
				set.err = cmp.Or(set.err, fmt.Errorf("WatchListing(%s): %w", id, err))
				set.mu.Unlock()
			}
		})
	}
	err := poll(ctx, watchOpenWait, label+": every stream's first message", func() bool {
		return ready.Load() == int64(len(ids)) || set.failed() != nil
	})
	if err = cmp.Or(err, set.failed()); err != nil {
		return nil, errors.Join(err, set.close())
	}
	progress("%s: %d streams open over %d connections in %s", label, len(ids), len(set.conns), time.Since(start).Round(time.Millisecond))
	return set, nil
}

// follow receives until the stream ends, and returns why it ended.
func (s *subscriber) follow(ctx context.Context, client swapmeetv1connect.ListingServiceClient, seen func()) error {
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
		if l.GetVersion() > s.version.Load() {
			s.at.Store(time.Now().UnixNano())
			s.version.Store(l.GetVersion())
		}
		seen()
	}
	return cmp.Or(stream.Err(), errors.New("the server ended the stream"))
}

func (set *subscribers) failed() error {
	set.mu.Lock()
	defer set.mu.Unlock()
	return set.err
}

// reached counts the subscribers delivered version or a newer one.
func (set *subscribers) reached(version int64) int {
	n := 0
	for _, s := range set.all {
		if s.version.Load() >= version {
			n++
		}
	}
	return n
}

// close ends the streams and returns the first that had ended before.
func (set *subscribers) close() error {
	set.cancel()
	set.streams.Wait()
	for _, c := range set.conns {
		c.CloseIdleConnections()
	}
	return set.failed()
}

// deliveryClock times each write of a watched listing from its commit
// until its stream has that version or a newer one. Writes of one listing
// are far apart (the driver goes round thousands of targets), so the
// newest state's arrival is the write's own.
type deliveryClock struct {
	set         *subscribers
	of          int            // listings written
	watched     []*freshTarget // those with a stream
	streams     map[string]*subscriber
	mu          sync.Mutex
	lat, fresh  []time.Duration // fresh: the same writes' freshness
	waits       sync.WaitGroup
	undelivered atomic.Int64
}

// watchFreshTargets opens a stream on n of the targets, spread evenly
// over them, so that the driver, going round the targets, writes a
// watched listing every len(targets)/n writes, never a run of them; nil
// if n is 0.
func watchFreshTargets(ctx context.Context, url string, targets []*freshTarget, n int) (*deliveryClock, error) {
	if n = min(n, len(targets)); n <= 0 {
		return nil, nil
	}
	ids, watched := make([]string, n), make([]*freshTarget, n)
	for i := range n {
		watched[i] = targets[i*len(targets)/n]
		ids[i] = watched[i].id
	}
	set, err := openStreams(ctx, url, ids, "cdc vs sink: commit to delivery")
	if err != nil {
		return nil, err
	}
	c := &deliveryClock{set: set, of: len(targets), watched: watched, streams: map[string]*subscriber{}}
	for _, s := range set.all {
		c.streams[s.listing] = s
	}
	return c, nil
}

// committed times a write, if its listing is watched.
func (c *deliveryClock) committed(id string, version int64, at time.Time) {
	if s := c.streams[id]; s != nil {
		c.waits.Go(func() {
			for deadline := at.Add(freshWait); s.version.Load() < version && time.Now().Before(deadline); {
				wait.Sleep(context.Background(), 20*time.Millisecond) // the time is the arrival's, not this one's
			}
			v, arrived := s.delivered()
			if v < version {
				c.undelivered.Add(1)
				return
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			c.lat = append(c.lat, max(0, arrived.Sub(at)))
		})
	}
}

// visible notes how long a write took to become visible to reads.
func (c *deliveryClock) visible(id string, took time.Duration) {
	if c.streams[id] != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.fresh = append(c.fresh, took)
	}
}

// during times run's writes (only these: what earlier runs timed is
// dropped) and returns their row, next to the run's freshness.
func (c *deliveryClock) during(ctx context.Context, d *freshDriver, run func() freshStep) (freshStep, *row, error) {
	if c == nil {
		return run(), nil, nil
	}
	s, lat, fresh, undelivered := c.time(d, run)
	over := lat.p99 - s.fresh.p99
	measured := deliveryMeasured(lat, undelivered)
	progress("cdc vs sink: commit to delivery: %s", measured)
	return s, &row{fmt.Sprintf("WatchListing commit to delivery, same run (%d of %d listings watched)", len(c.streams), c.of), measured,
		fmt.Sprintf("freshness p50 %s, p99 %s (of these writes: p50 %s, p99 %s)", ms(s.fresh.p50), ms(s.fresh.p99), ms(fresh.p50), ms(fresh.p99)),
		fmt.Sprintf("p99 %+.1f ms", float64(over)/float64(time.Millisecond)),
		fmt.Sprintf("p99 <= freshness p99 + %d ms", deliveryMaxOverFresh.Milliseconds()),
		verdict(lat.n > 0 && undelivered == 0 && over <= deliveryMaxOverFresh)}, c.set.failed()
}

// time runs run with every write of a watched listing timed, and returns
// the run, the delivery latencies, the same writes' freshness, and how
// many were never delivered.
func (c *deliveryClock) time(d *freshDriver, run func() freshStep) (freshStep, latencies, latencies, int64) {
	c.mu.Lock()
	c.lat, c.fresh = nil, nil
	c.mu.Unlock()
	c.undelivered.Store(0)
	d.onCommit, d.onVisible = c.committed, c.visible
	s := run()
	d.onCommit, d.onVisible = nil, nil
	c.waits.Wait()
	return s, summarize(c.lat), summarize(c.fresh), c.undelivered.Load()
}

func deliveryMeasured(lat latencies, undelivered int64) string {
	measured := fmt.Sprintf("p50 %s, p99 %s over %d writes", ms(lat.p50), ms(lat.p99), lat.n)
	if undelivered > 0 {
		measured += fmt.Sprintf(", %d not delivered in %s", undelivered, freshWait)
	}
	return measured
}

// measureFanOut: changes to -watch-subscribers streams on one listing, against one stream.
func measureFanOut(ctx context.Context, e *env, o options) (_ []row, err error) {
	defer recovered(&err)
	n := o.watchSubscribers
	if n < 1 {
		return nil, fmt.Errorf("need -watch-subscribers >= 1, not %d", n)
	}
	bin := swapmeetBinary(ctx, e)
	sellers := insertUsers(ctx, e.PG, "seller", 1)
	id := insertListings(ctx, e, sellers, 1)[0].String()
	cdc := startCDCProcess(e, bin)
	e.waitForSlot(ctx)
	limit := fmt.Sprint(max(20_000, n+16)) // anonymous streams count per client address
	serve := startServeProcess(ctx, e, bin, "SWAPMEET_WATCH_MAX_STREAMS="+limit,
		"SWAPMEET_WATCH_MAX_STREAMS_PER_USER="+limit, "SWAPMEET_WATCH_HEARTBEAT=5m") // idle streams stay quiet
	client := swapmeetv1connect.NewListingServiceClient(h2c(), serve.url)
	one := must(openStreams(ctx, serve.url, []string{id}, "fan-out: reference"))
	version, _ := one.all[0].delivered()
	// timeChanges times each change from UpdateListing to every stream.
	timeChanges := func(set *subscribers, changes int) (lat latencies, summary string) {
		var all []time.Duration
		missed := 0
		for range changes {
			req := connect.NewRequest(&swapmeetv1.UpdateListingRequest{ListingId: id, ExpectedVersion: version,
				Title: fmt.Sprintf("Bench item, version %d", version+1), UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"title"}}})
			req.Header().Set("Authorization", "Bearer "+sellers[0].token)
			version = must(client.UpdateListing(ctx, req)).Msg.GetVersion()
			committed := time.Now()
			for deadline := committed.Add(fanOutWait); set.reached(version) < len(set.all) && time.Now().Before(deadline); {
				check(set.failed())
				if !wait.Sleep(ctx, 5*time.Millisecond) {
					check(context.Cause(ctx))
				}
			}
			for _, s := range set.all {
				if v, at := s.delivered(); v >= version {
					all = append(all, at.Sub(committed))
				} else {
					missed++
				}
			}
			wait.Sleep(ctx, 100*time.Millisecond) // apart, so that none coalesces with the next
		}
		lat = summarize(all)
		summary = fmt.Sprintf("p50 %s, p99 %s, max %s; each of %d changes reached all %d", ms(lat.p50), ms(lat.p99), ms(lat.max), changes, len(set.all))
		if missed > 0 {
			summary = fmt.Sprintf("p50 %s, p99 %s, max %s; %d of %d deliveries missing after %s", ms(lat.p50), ms(lat.p99), ms(lat.max), missed, changes*len(set.all), fanOutWait)
		}
		return lat, summary
	}
	timeChanges(one, 1) // untimed: opens pools and connections
	refLat, ref := timeChanges(one, fanOutChanges)
	check(one.close())

	wait.Sleep(ctx, 2*time.Second) // the API settles before its memory is read
	before, _ := must2(serve.proc.memory())
	clientBefore, _, _ := memoryOf(os.Getpid())
	set := must(openStreams(ctx, serve.url, slices.Repeat([]string{id}, n), "fan-out"))
	defer set.close()
	wait.Sleep(ctx, 2*time.Second)
	after, _ := must2(serve.proc.memory())
	clientAfter, _, _ := memoryOf(os.Getpid())
	perStream := float64(after-before) / float64(n)
	progress("fan-out: serve RSS %s with %d streams: %.1f KiB a stream (the bench's client side, for scale: %.1f KiB)",
		mib(after), n, perStream/1024, float64(clientAfter-clientBefore)/float64(n)/1024)
	lat, res := timeChanges(set, fanOutChanges)
	check(errors.Join(set.close(), cdc.running(), serve.proc.running()))
	progress("fan-out: %s; with one stream: %s", res, ref)
	delivery := info(fmt.Sprintf("%s: 1 change to %d streams on one listing (swapmeet serve)", fanOutFigure, n), res,
		"1 stream: "+ref, times(float64(lat.p99)/float64(max(refLat.p99, time.Microsecond))), "- (report p99)")
	if strings.Contains(res, "missing") {
		delivery.verdict = verdictMiss
	}
	return []row{delivery, info(fmt.Sprintf("%s: API RSS per stream (%d streams, %d connections)", fanOutFigure, n, len(set.conns)),
		fmt.Sprintf("%.1f KiB (RSS %s -> %s)", perStream/1024, mib(before), mib(after)), "serve RSS before the streams", "", "- (report it)")}, nil
}
