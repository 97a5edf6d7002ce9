package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
)

// Fan-out: -watch-subscribers WatchListing streams on one listing, against
// the API as its own `swapmeet serve` process (its memory is then its
// own, read from /proc, apart from the bench's clients), with a `swapmeet
// cdc` process writing the change feed it follows. Once every stream has
// its first message, one UpdateListing at a time, through the serve
// process, is timed from its return until each stream has delivered the
// new version; fanOutChanges such changes give one latency per stream and
// change. The reference is the same change with a single stream open. The
// streams' receiving side runs in this process, on the same cores as the
// API: the figure includes it.

var watchSubscribers = flag.Int("watch-subscribers", 10_000, "concurrent WatchListing streams on one listing in the fan-out figure (cdc suite), against a swapmeet serve process; streams go 100 to a connection")

const (
	fanOutFigure = "WatchListing fan-out"
	// fanOutChanges: changes timed with every stream open; fanOutRefChanges
	// with one.
	fanOutChanges    = 5
	fanOutRefChanges = 5
	// fanOutWait bounds the wait for one change to reach every stream.
	fanOutWait = 30 * time.Second
	// fanOutSettle lets the API finish opening before its memory is read.
	fanOutSettle = 2 * time.Second
)

func measureFanOut(ctx context.Context, e *env, o options) ([]row, error) {
	n := *watchSubscribers
	if n < 1 {
		return nil, fmt.Errorf("need -watch-subscribers >= 1, not %d", n)
	}
	bin, err := buildSwapmeet(ctx, e)
	if err != nil {
		return nil, err
	}
	sellers, err := insertUsers(ctx, e.PG, "seller", 1)
	if err != nil {
		return nil, err
	}
	ids, err := insertListings(ctx, e.PG, sellers, 1)
	if err != nil {
		return nil, err
	}
	id := ids[0].String()
	cdc, err := startCDCProcess(e, bin)
	if err != nil {
		return nil, err
	}
	if err := e.WaitForSlot(ctx); err != nil {
		return nil, err
	}
	serve, url, err := startServe(ctx, e, bin, n)
	if err != nil {
		return nil, err
	}
	w := &listingWriter{
		client: swapmeetv1connect.NewListingServiceClient(&http.Client{Transport: h2cTransport()}, url),
		token:  sellers[0].token,
		id:     id,
	}

	progress("fan-out: reference: %d changes to 1 stream, after one untimed", fanOutRefChanges)
	var ref fanOutResult
	one, err := openStreams(ctx, url, []string{id}, "fan-out: reference", nil)
	if err != nil {
		return nil, err
	}
	w.version, _ = one.all[0].delivered()
	// A first change, untimed, opens the pools and connections on its way.
	_, err = timeChanges(ctx, one, w, 1)
	if err == nil {
		ref, err = timeChanges(ctx, one, w, fanOutRefChanges)
	}
	if err := errors.Join(err, one.close()); err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	progress("fan-out: reference: %s", ref)

	time.Sleep(fanOutSettle)
	before, _, err := serve.memory()
	if err != nil {
		return nil, fmt.Errorf("serve memory: %w", err)
	}
	progress("fan-out: %d streams on one listing (serve RSS %s)", n, mib(before))
	// The bench's own memory, for scale only: its clients are not the API.
	clientBefore, _, _ := memoryOf(os.Getpid())
	set, err := openStreams(ctx, url, slices.Repeat([]string{id}, n), "fan-out", nil)
	if err != nil {
		return nil, err
	}
	defer set.close()
	time.Sleep(fanOutSettle)
	after, _, err := serve.memory()
	if err != nil {
		return nil, fmt.Errorf("serve memory: %w", err)
	}
	perStream := float64(after-before) / float64(n)
	clientAfter, _, _ := memoryOf(os.Getpid())
	progress("fan-out: serve RSS %s with %d streams open: %.1f KiB a stream (the bench's client side: %.1f KiB a stream)",
		mib(after), n, perStream/1024, float64(clientAfter-clientBefore)/float64(n)/1024)
	res, err := timeChanges(ctx, set, w, fanOutChanges)
	if err != nil {
		return nil, err
	}
	progress("fan-out: %s", res)
	if err := set.close(); err != nil {
		return nil, err
	}
	for _, p := range []*process{cdc, serve} {
		if ok, err := p.running(); !ok {
			return nil, err
		}
	}

	delivery := row{
		figure:    fmt.Sprintf("%s: 1 change to %d streams on one listing (swapmeet serve)", fanOutFigure, n),
		measured:  res.String(),
		reference: "1 stream: " + ref.String(),
		ratio:     times(float64(res.lat.p99) / float64(max(ref.lat.p99, time.Microsecond))),
		target:    "- (report p99)",
		verdict:   verdictNone,
	}
	if res.missed > 0 {
		delivery.verdict = verdictMiss
	}
	memory := row{
		figure:    fmt.Sprintf("%s: API RSS per stream (%d streams, %d connections)", fanOutFigure, n, len(set.conns)),
		measured:  fmt.Sprintf("%.1f KiB (RSS %s -> %s)", perStream/1024, mib(before), mib(after)),
		reference: "serve RSS before the streams",
		target:    "- (report it)",
		verdict:   verdictNone,
	}
	return []row{delivery, memory}, nil
}

// startServe runs `swapmeet serve` on a free port with stream limits for
// n anonymous streams from one address, and returns it and its base URL.
func startServe(ctx context.Context, e *env, bin string, n int) (*process, string, error) {
	limit := fmt.Sprint(max(20_000, n+16))
	return startServeProcess(ctx, e, bin,
		"SWAPMEET_WATCH_MAX_STREAMS="+limit,
		"SWAPMEET_WATCH_MAX_STREAMS_PER_USER="+limit, // anonymous: per client address
		// Idle streams stay quiet while the figure is measured.
		"SWAPMEET_WATCH_HEARTBEAT=5m")
}

// listingWriter changes one listing's title through the API, as its
// seller.
type listingWriter struct {
	client  swapmeetv1connect.ListingServiceClient
	token   string
	id      string
	version int64
	n       int
}

// update commits the next change and returns its version and the moment
// UpdateListing returned.
func (w *listingWriter) update(ctx context.Context) (int64, time.Time, error) {
	w.n++
	req := connect.NewRequest(&swapmeetv1.UpdateListingRequest{
		ListingId:       w.id,
		ExpectedVersion: w.version,
		Title:           fmt.Sprintf("Bench item, change %d", w.n),
		UpdateMask:      &fieldmaskpb.FieldMask{Paths: []string{"title"}},
	})
	req.Header().Set("Authorization", "Bearer "+w.token)
	resp, err := w.client.UpdateListing(ctx, req)
	committed := time.Now()
	if err != nil {
		return 0, committed, fmt.Errorf("UpdateListing(%s): %w", w.id, err)
	}
	w.version = resp.Msg.GetVersion()
	return w.version, committed, nil
}

// fanOutResult is what the streams saw of a few changes.
type fanOutResult struct {
	changes, streams int
	lat              latencies // one per stream and change delivered
	missed           int       // stream and change pairs not delivered in fanOutWait
}

func (r fanOutResult) String() string {
	s := fmt.Sprintf("p50 %s, p99 %s, max %s", ms(r.lat.p50), ms(r.lat.p99), ms(r.lat.max))
	if r.missed == 0 {
		return s + fmt.Sprintf("; each of %d changes reached all %d", r.changes, r.streams)
	}
	return s + fmt.Sprintf("; %d of %d deliveries missing after %s", r.missed, r.changes*r.streams, fanOutWait)
}

// timeChanges makes changes one at a time, each once the previous one
// has reached every stream (or fanOutWait has passed).
func timeChanges(ctx context.Context, set *subscribers, w *listingWriter, changes int) (fanOutResult, error) {
	res := fanOutResult{changes: changes, streams: len(set.all)}
	var all []time.Duration
	for c := range changes {
		version, committed, err := w.update(ctx)
		if err != nil {
			return res, err
		}
		deadline := committed.Add(fanOutWait)
		for set.reached(version) < len(set.all) && time.Now().Before(deadline) {
			if err := set.failed(); err != nil {
				return res, err
			}
			if ctx.Err() != nil {
				return res, context.Cause(ctx)
			}
			time.Sleep(5 * time.Millisecond)
		}
		got := 0
		for _, s := range set.all {
			if v, at := s.delivered(); v >= version {
				all = append(all, at.Sub(committed))
				got++
			}
		}
		res.missed += len(set.all) - got
		if len(set.all) > 1 {
			progress("fan-out: change %d of %d reached %d of %d streams", c+1, changes, got, len(set.all))
		}
		time.Sleep(100 * time.Millisecond) // apart, so that none coalesces with the next
	}
	res.lat = summarize(all)
	return res, nil
}
