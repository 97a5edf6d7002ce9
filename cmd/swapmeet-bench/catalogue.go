package main

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/swapmeet/swapmeet/cdc"
	"github.com/swapmeet/swapmeet/cdc/wal"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/system"
)

// A generated catalogue for the read and rebuild figures: listings written
// straight into Postgres with one INSERT … SELECT generate_series, so that a
// hundred thousand or a million of them take seconds, not an afternoon of
// CreateListing calls.
//
// Titles combine one of catalogueAdjectives with one of catalogueNouns and
// a lot number, so a two-word query such as "vintage camera" matches about
// 1 listing in 221. Categories, conditions, prices and attributes cycle
// with moduli that share no factor with the words', so filters cut across
// them. created_at steps back one second per listing: NEWEST has no ties.
var (
	catalogueAdjectives = []string{"vintage", "modern", "rare", "classic", "compact", "sturdy", "elegant",
		"retro", "handmade", "portable", "antique", "mint", "wooden"} // 13
	catalogueNouns = []string{"camera", "lamp", "bicycle", "guitar", "chair", "table", "watch", "jacket",
		"radio", "turntable", "keyboard", "lens", "backpack", "teapot", "novel", "puzzle", "kettle"} // 17
	catalogueCategories = []string{"cameras", "audio", "bikes", "furniture", "clothing", "books", "toys",
		"kitchen", "garden", "tools", "music", "sports", "art", "jewelry", "games", "computers", "phones",
		"lighting", "watches", "outdoor"} // 20
)

// catalogueSellers own the generated listings.
const catalogueSellers = 500

func sqlArray(words []string) string {
	return "ARRAY['" + strings.Join(words, "','") + "']"
}

// seedCatalogue inserts sellers and n listings into the env's database, and
// refreshes the planner's statistics. It returns how long that took.
// descTail, if not "", is a SQL text expression over the row number g,
// appended to each description.
func seedCatalogue(ctx context.Context, e *env, n int, descTail string) (time.Duration, error) {
	start := time.Now()
	if _, err := insertUsers(ctx, e.PG, "seller", catalogueSellers); err != nil {
		return 0, err
	}
	conn, err := backlogConn(ctx, e)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// Sizeable inserts: one big transaction would hold the whole load in
	// one snapshot and one WAL burst; a few hundred thousand rows each
	// keep the checkpointer's work spread.
	const step = 250_000
	for from := 1; from <= n; from += step {
		to := min(n, from+step-1)
		_, err := conn.Exec(ctx, fmt.Sprintf(`
			INSERT INTO listings (id, seller_id, title, description, category, condition,
			                      price_currency, price_minor, attributes, created_at, updated_at)
			SELECT gen_random_uuid(), s.ids[1 + g %% cardinality(s.ids)],
			       initcap(a.w[1 + g %% 13]) || ' ' || a.n[1 + (g / 13) %% 17] || ', lot ' || g,
			       'A ' || a.w[1 + (g / 7) %% 13] || ' ' || a.n[1 + g %% 17] || ' in ' || lower(c.c[1 + g %% 5]) ||
			       ' condition. Collected in the ' || (1950 + 10 * (g %% 7)) || 's; ships within three days.'%s,
			       a.cat[1 + (g / 3) %% 20], c.c[1 + g %% 5], 'EUR', 100 + (g::bigint * 7919) %% 99900,
			       jsonb_build_object('color', (ARRAY['red','blue','green','black','white','brown'])[1 + g %% 6],
			                          'size', (ARRAY['S','M','L','XL'])[1 + g %% 4],
			                          'brand', 'brand' || g %% 50),
			       now() - make_interval(secs => g), now() - make_interval(secs => g)
			FROM generate_series($1::int, $2::int) g,
			     (SELECT array_agg(id ORDER BY id) AS ids FROM users) s,
			     (SELECT %s AS w, %s AS n, %s AS cat) a,
			     (SELECT ARRAY['NEW','LIKE_NEW','GOOD','FAIR','POOR'] AS c) c`,
			descTail, sqlArray(catalogueAdjectives), sqlArray(catalogueNouns), sqlArray(catalogueCategories)), from, to)
		if err != nil {
			return 0, fmt.Errorf("seed listings %d..%d: %w", from, to, err)
		}
		if n > step {
			progress("catalogue: %d of %d listings inserted", to, n)
		}
	}
	if _, err := conn.Exec(ctx, "ANALYZE"); err != nil {
		return 0, fmt.Errorf("analyze: %w", err)
	}
	return time.Since(start), nil
}

// rebuildRun is the outcome of one cdc.Rebuild, as its progress output
// tells it.
type rebuildRun struct {
	total    time.Duration // Run, start to end
	loaded   map[string]int64
	loadTook map[string]time.Duration // per collection: the load phase
	indexed  time.Duration            // when the indexes were built, since the start
	switched time.Duration            // when readers were switched, since the start
}

// rebuildProgress receives the rebuild's progress output: it forwards
// every line to stderr and notes the phases.
type rebuildProgress struct {
	mu    sync.Mutex
	start time.Time
	buf   []byte
	run   rebuildRun
}

// A final progress line: "rebuild: listings  100.0% 1000/1000  812 rows/s  done in 1.231s".
var loadDoneRE = regexp.MustCompile(`^rebuild: (\S+)\s+[0-9.]+% ([0-9]+)/[0-9]+\s+[0-9]+ rows/s\s+done in (\S+)$`)

func newRebuildProgress() *rebuildProgress {
	return &rebuildProgress{start: time.Now(), run: rebuildRun{loaded: map[string]int64{}, loadTook: map[string]time.Duration{}}}
}

func (p *rebuildProgress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := strings.IndexByte(string(p.buf), '\n')
		if i < 0 {
			return len(b), nil
		}
		line := strings.TrimRight(string(p.buf[:i]), "\r")
		p.buf = p.buf[i+1:]
		p.line(line)
	}
}

func (p *rebuildProgress) line(line string) {
	progress("  %s", line)
	since := time.Since(p.start)
	switch {
	case strings.HasPrefix(line, "rebuild: indexes built"):
		p.run.indexed = since
	case strings.HasPrefix(line, "rebuild: switched readers"):
		p.run.switched = since
	}
	if m := loadDoneRE.FindStringSubmatch(line); m != nil {
		n, _ := strconv.ParseInt(m[2], 10, 64)
		d, err := time.ParseDuration(m[3])
		if err == nil {
			p.run.loaded[m[1]] = n
			p.run.loadTook[m[1]] = d
		}
	}
}

func (p *rebuildProgress) result() rebuildRun {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.run
}

var _ io.Writer = (*rebuildProgress)(nil)

// rebuild runs the operator's rebuild of the given collections as
// `swapmeet projections rebuild` does: its own read store and projector
// (so the API learns of the switch by following the pointer, as another
// process would), the env's slot as the base name.
func rebuild(ctx context.Context, e *env, collections ...string) (rebuildRun, error) {
	reads := readstore.New(e.Mongo.Database(e.MongoDB))
	reads.WriteConcurrency = e.Reads.WriteConcurrency
	clients := e.Clients()
	clients.Reads = reads
	p := newRebuildProgress()
	rb := &cdc.Rebuild{
		Reader:          wal.Config{ConnString: e.PGURL, Publication: e.Publication, Log: e.Log},
		BaseSlot:        e.Slot,
		PG:              e.PG,
		Reads:           reads,
		Sink:            system.NewProjector(e.Config(), clients, e.Log),
		Collections:     collections,
		Progress:        p,
		Log:             e.Log,
		HandoverTimeout: 30 * time.Second,
		Grace:           time.Second,
	}
	err := rb.Run(ctx)
	res := p.result()
	res.total = time.Since(p.start)
	if err != nil {
		return res, fmt.Errorf("rebuild %v: %w", collections, err)
	}
	for _, c := range collections {
		if _, ok := res.loadTook[c]; !ok {
			return res, fmt.Errorf("rebuild %v: no final progress line for %s", collections, c)
		}
	}
	return res, nil
}
