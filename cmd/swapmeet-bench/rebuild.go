package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/swapmeet/swapmeet/cdc"
	"github.com/swapmeet/swapmeet/cdc/wal"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/system"
	"github.com/swapmeet/swapmeet/internal/wait"
)

// The rebuild suite: `projections rebuild` of -rebuild-listings listings
// (its load phase) against raw insertMany of the same documents, while two
// readers GetListing known ids with their cache evicted: any NotFound is a gap.

const rebuildMinRatio = 0.8

func runRebuild(ctx context.Context, o options) ([]row, error) {
	n := o.rebuildListings
	if n < 1000 {
		return nil, fmt.Errorf("need -rebuild-listings >= 1000, not %d", n)
	}
	return withEnv(ctx, func(e *env) (rows []row, err error) {
		defer recovered(&err)
		seeded := seedCatalogue(ctx, e, n, 500, "")
		ref := bulkLoadListings(ctx, e.Reads, e.PG, readstore.Listings, n)
		refRate := perSecond(ref.docs, ref.busy)
		progress("rebuild: reference: %d documents in %s inside insertMany: %.0f docs/s, %.0f bytes each", ref.docs, ref.busy.Round(time.Millisecond), refRate, ref.avgBytes)
		firstStart(ctx, e)
		e.startCDC(ctx)
		g := &gapCheck{e: e, client: swapmeetv1connect.NewListingServiceClient(h2c(), e.startAPI(nil).url), n: map[string]int{}, first: map[string]string{}}
		check(e.PG.QueryRow(ctx, `SELECT array_agg(id::text) FROM (SELECT id FROM listings ORDER BY random() LIMIT 100) x`).Scan(&g.known))
		rctx, stopReaders := context.WithCancel(ctx)
		var readers sync.WaitGroup
		defer readers.Wait()
		defer stopReaders()
		for i := range 2 {
			readers.Go(func() { g.read(rctx, i) })
		}
		check(poll(ctx, 30*time.Second, "the readers to get going", func() bool { return g.reads.Load() >= 10 }))
		before := g.reads.Load()
		run := rebuild(ctx, e, readstore.Listings)
		wait.Sleep(ctx, 2*time.Second) // past the API's next pointer refresh
		stopReaders()
		readers.Wait()
		rate := perSecond(run.loaded, run.loadTook)
		gaps, gapErr := g.summary(before)
		progress("rebuild: load %d rows: %.0f rows/s; indexes at %s, switched at %s, done at %s; readers: %s", run.loaded, rate,
			run.indexed.Round(time.Millisecond), run.switched.Round(time.Millisecond), run.total.Round(time.Millisecond), gaps)
		figure := fmt.Sprintf("Rebuild %s listings, load phase", sizeLabel(n))
		if n < 1_000_000 { // what the suite would take at the target size, at these rates
			figure += fmt.Sprintf(" (target: 1M, ~%.0f min here; -rebuild-listings)", (time.Duration(1e6 / float64(n) * float64(ref.busy+run.total+seeded))).Minutes())
		}
		rows = []row{atLeast(figure, fmt.Sprintf("%.0f rows/s (load %s; +indexes %s, +catch-up/switch/handover %s)", rate,
			run.loadTook.Round(100*time.Millisecond), (run.indexed-run.loadTook).Round(100*time.Millisecond),
			(run.total-run.indexed).Round(100*time.Millisecond)), fmt.Sprintf("raw insertMany %.0f docs/s", refRate), rate/refRate, rebuildMinRatio),
			{"Readers during the rebuild (GetListing, cache evicted)", gaps, fmt.Sprintf("%d known listings", len(g.known)), "", "0 NotFound", verdictOK}}
		if err := checkRebuilt(ctx, e, run, int64(n)); err != nil {
			rows[0].verdict = verdictFail
			return rows, err
		}
		if gapErr != nil {
			rows[1].verdict = verdictFail
			return rows, gapErr
		}
		return rows, nil
	})
}

// rebuildRun is what cdc.Rebuild's progress output told of its run.
type rebuildRun struct {
	loaded                   int64
	loadTook                 time.Duration // the load phase
	indexed, switched, total time.Duration // since the start
}

// rebuildProgress reads the progress output.
type rebuildProgress struct {
	mu    sync.Mutex
	start time.Time
	buf   []byte
	run   rebuildRun
}

// A final load line: "rebuild: listings  100.0% 1000/1000  812 rows/s  done in 1.231s".
var loadDoneRE = regexp.MustCompile(`^rebuild: \S+\s+[0-9.]+% ([0-9]+)/[0-9]+\s+[0-9]+ rows/s\s+done in (\S+)$`)

// Write forwards the progress output to stderr and notes the phases.
func (r *rebuildProgress) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = append(r.buf, b...)
	for {
		line, rest, ok := strings.Cut(string(r.buf), "\n")
		if !ok {
			return len(b), nil
		}
		r.buf = []byte(rest)
		line = strings.TrimRight(line, "\r")
		progress("  %s", line)
		switch since := time.Since(r.start); {
		case strings.HasPrefix(line, "rebuild: indexes built"):
			r.run.indexed = since
		case strings.HasPrefix(line, "rebuild: switched readers"):
			r.run.switched = since
		}
		if m := loadDoneRE.FindStringSubmatch(line); m != nil {
			if d, err := time.ParseDuration(m[2]); err == nil {
				r.run.loaded, _ = strconv.ParseInt(m[1], 10, 64)
				r.run.loadTook = d
			}
		}
	}
}

// rebuild runs `swapmeet projections rebuild`'s rebuild, with its own store and projector.
func rebuild(ctx context.Context, e *env, collection string) rebuildRun {
	reads := readstore.New(e.Mongo.Database(e.Config.MongoDB))
	reads.WriteConcurrency = e.Reads.WriteConcurrency
	clients := e.Clients()
	clients.Reads = reads
	p := &rebuildProgress{start: time.Now()}
	err := (&cdc.Rebuild{
		Reader:   wal.Config{ConnString: e.Config.PostgresURL, Publication: e.Config.Publication, Log: e.log},
		BaseSlot: e.Config.Slot, PG: e.PG, Reads: reads, Sink: system.NewProjector(e.Config, clients, e.log),
		Search: clients.Search, Collections: []string{collection}, Progress: p, Log: e.log, HandoverTimeout: 30 * time.Second, Grace: time.Second,
	}).Run(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	res := p.run
	res.total = time.Since(p.start)
	if err == nil && res.loadTook == 0 {
		err = errors.New("no final progress line")
	}
	if err != nil {
		check(fmt.Errorf("rebuild %s: %w", collection, err))
	}
	return res
}

// gapCheck is the readers' tally: reads, and per outcome a count and the first.
type gapCheck struct {
	e      *env
	client swapmeetv1connect.ListingServiceClient
	known  []string
	reads  atomic.Int64
	mu     sync.Mutex
	n      map[string]int
	first  map[string]string
}

// read loops: evict, then GetListing, which must find the listing in the live generation.
func (g *gapCheck) read(ctx context.Context, offset int) {
	for i := offset * 37; wait.Sleep(ctx, 50*time.Millisecond); i++ {
		id := g.known[i%len(g.known)]
		err := g.e.Redis.Del(ctx, g.e.cache().ListingKey(id)).Err()
		live := g.e.Reads.Physical(readstore.Listings) // what the API resolves to now
		if err == nil {
			_, err = g.client.GetListing(ctx, connect.NewRequest(&swapmeetv1.GetListingRequest{ListingId: id}))
		}
		if ctx.Err() != nil {
			return
		}
		g.reads.Add(1)
		outcome := map[connect.Code]string{connect.CodeNotFound: "NotFound", connect.CodeUnavailable: "Unavailable"}[connect.CodeOf(err)]
		switch {
		case err == nil && live == readstore.Listings:
			continue
		case err == nil:
			outcome = "new generation"
		case outcome == "":
			outcome = "other"
		}
		g.mu.Lock()
		g.n[outcome]++
		g.first[outcome] = cmp.Or(g.first[outcome], fmt.Sprintf("GetListing(%s) on %s: %v", id, live, err))
		g.mu.Unlock()
	}
}

// summary says what the readers saw since read before, and whether there was a gap.
func (g *gapCheck) summary(before int64) (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var errs []error
	if g.n["NotFound"] > 0 {
		errs = append(errs, fmt.Errorf("readers saw a gap: %d NotFound for listings that exist; first: %s", g.n["NotFound"], g.first["NotFound"]))
	}
	if g.n["other"] > 0 {
		errs = append(errs, fmt.Errorf("readers got %d errors; first: %s", g.n["other"], g.first["other"]))
	}
	if g.n["new generation"] == 0 {
		errs = append(errs, errors.New("no read was served by the new generation: the API did not follow the switch"))
	}
	return fmt.Sprintf("%d reads (%d once the rebuild began, %d on the new generation): %d NotFound, %d Unavailable, %d other errors",
		g.reads.Load(), g.reads.Load()-before, g.n["new generation"], g.n["NotFound"], g.n["Unavailable"], g.n["other"]), errors.Join(errs...)
}

// checkRebuilt: all loaded, the pointer switched, the new collection full, the old slot gone.
func checkRebuilt(ctx context.Context, e *env, run rebuildRun, want int64) error {
	p, err := e.Reads.LoadPointer(ctx)
	live := p.Collections[readstore.Listings]
	var stats struct {
		Count int64 `bson:"count"`
	}
	var old int
	switch {
	case run.loaded != want:
		return fmt.Errorf("the rebuild loaded %d listings; postgres has %d", run.loaded, want)
	case err != nil:
		return err
	case p.Generation != 1 || live != readstore.ShadowName(readstore.Listings, 1):
		return fmt.Errorf("pointer after the rebuild: %+v", p)
	}
	if err := e.Reads.DB().RunCommand(ctx, bson.D{{Key: "collStats", Value: live}}).Decode(&stats); err != nil || math.Abs(float64(stats.Count-want)) > 0.01*float64(want) {
		return fmt.Errorf("%s holds about %d documents; postgres has %d listings (%v)", live, stats.Count, want, err)
	}
	if err := e.PG.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, e.Config.Slot).Scan(&old); err != nil || old != 0 {
		progress("rebuild: WARNING: the old slot %s is still there after the rebuild (the CDC did not hand over in time; %v)", e.Config.Slot, err)
	}
	return nil
}
