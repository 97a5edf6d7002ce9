package main

import (
	"cmp"
	"context"
	"crypto/md5"
	_ "embed"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/swapmeet/swapmeet/internal/audit"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
	"github.com/swapmeet/swapmeet/internal/system"
)

// What the audit annotation costs PlaceOrder, measured as the references
// are: pgbench runs PlaceOrder's transaction (placeorder.pgbench) with the
// annotation first and without it, alternately, at the same client count
// and duration; each run's WAL is the insert position's advance over its
// transactions. Then the WAL of one MarkOrderPaid UPDATE on two scratch
// copies of orders, REPLICA IDENTITY FULL and DEFAULT.

//go:embed placeorder.pgbench
var placeOrderScript string

const (
	annotationMinRatio = 0.9 // of the same transaction's tps without the annotation
	annotationRounds   = 3   // each a run with and a run without, back to back
	emitLinePrefix     = "SELECT pg_logical_emit_message("
	markPaidSamples    = 300 // single-row UPDATEs on each copy
)

// placeOrderScripts returns the script with the annotation and without it (the emit line removed, nothing else).
func placeOrderScripts() (with, without string, err error) {
	var kept []string
	emits := 0
	for line := range strings.Lines(placeOrderScript) {
		if strings.HasPrefix(line, emitLinePrefix) {
			emits++
			if !strings.Contains(line, "'"+audit.Prefix+"'") {
				return "", "", fmt.Errorf("placeorder.pgbench: the annotation line does not use the prefix %q: %s", audit.Prefix, line)
			}
			continue
		}
		kept = append(kept, line)
	}
	if emits != 1 {
		return "", "", fmt.Errorf("placeorder.pgbench: %d lines start with %q, want 1", emits, emitLinePrefix)
	}
	return placeOrderScript, strings.Join(kept, ""), nil
}

// benchAnnotation is what audit.For writes for a PlaceOrder served over RPC:
// every field set, at the sizes the API gives them.
func benchAnnotation() string {
	rid := make([]byte, 12)
	for i := range rid {
		rid[i] = byte(rand.N(256))
	}
	a := audit.Annotation{
		Actor:          uuid.Must(uuid.NewV7()).String(),
		RPC:            strings.TrimPrefix(swapmeetv1connect.OrderServicePlaceOrderProcedure, "/"),
		RequestID:      base64.RawURLEncoding.EncodeToString(rid), // as internal/rpc makes one
		IdempotencyKey: uuid.NewString(),                          // as the bench's clients send
		TraceParent:    fmt.Sprintf("00-%016x%016x-%016x-01", rand.Uint64(), rand.Uint64(), rand.Uint64()),
	}
	return string(a.Encode())
}

// pgbenchRun is one pgbench run of the PlaceOrder script and the WAL it wrote.
type pgbenchRun struct {
	pgbenchResult
	txs      int64
	walBytes int64 // the insert position's advance, whole cluster
	fpis     int64 // full-page images, pg_stat_wal (whole cluster)
}

// annotationVariant is one variant's runs, a round each.
type annotationVariant struct {
	name string
	runs []pgbenchRun
}

// tps is the median of the runs' rates.
func (v *annotationVariant) tps() float64 {
	return median(v.runs, func(r pgbenchRun) float64 { return r.tps })
}

// leanest is the run with the least WAL a transaction: the WAL position
// is the cluster's, and a checkpoint's full-page images or other
// databases' writes only ever add to a run's.
func (v *annotationVariant) leanest() pgbenchRun {
	return slices.MinFunc(v.runs, func(a, b pgbenchRun) int { return cmp.Compare(a.walPerTx(), b.walPerTx()) })
}

func (r pgbenchRun) walPerTx() float64 { return float64(r.walBytes) / float64(max(r.txs, 1)) }
func (r pgbenchRun) fpiPerTx() float64 { return float64(r.fpis) / float64(max(r.txs, 1)) }

func (v *annotationVariant) walList() string {
	var s []string
	for _, r := range v.runs {
		s = append(s, fmt.Sprintf("%.0f", r.walPerTx()))
	}
	return strings.Join(s, ", ")
}

func (v *annotationVariant) tpsList() string {
	var s []string
	for _, r := range v.runs {
		s = append(s, fmt.Sprintf("%.0f", r.tps))
	}
	return strings.Join(s, ", ")
}

// annotationPool is the listings the script buys, numbered from 1.
type annotationPool struct {
	e       *env
	buyers  []uuid.UUID
	have    int64 // listings 1..have exist
	bought  int64 // listings 1..bought may be sold: the next run starts past it
	ordered int64 // orders the script placed
}

// annotationCost measures PlaceOrder's transaction in pgbench with and
// without the annotation, and MarkOrderPaid's WAL with the old row and without.
func (fx *orderFixtures) annotationCost(ctx context.Context, o options, ref pgbenchResult) []row {
	e := fx.e
	with, without := must3(placeOrderScripts())
	dir := must(os.MkdirTemp("", "swapmeet-bench-annotation-"))
	e.OnClose(func() error { return os.RemoveAll(dir) })
	withFile, withoutFile := filepath.Join(dir, "with.pgbench"), filepath.Join(dir, "without.pgbench")
	check(os.WriteFile(withFile, []byte(with), 0o644))
	check(os.WriteFile(withoutFile, []byte(without), 0o644))
	note := benchAnnotation()

	secs := max(1, int((o.duration+time.Second-1)/time.Second))
	warm := max(1, int((warmupFor(o.duration)+time.Second-1)/time.Second))
	// A bound on the rate: the script ran at 0.6-0.9x pgbench's
	// simple-update here. Should a run need more, they are added before it.
	guess := max(ref.tps, 1000)
	pool := &annotationPool{e: e}
	start := time.Now()
	pool.setUp(ctx, o.clients, int64(guess*float64(warm+2*annotationRounds*secs))+int64(o.clients))
	progress("orders: annotation: %d listings for the script in %s; annotation %d bytes: %s", pool.have, time.Since(start).Round(time.Millisecond), len(note), note)

	withV, withoutV := &annotationVariant{name: "with the annotation"}, &annotationVariant{name: "without"}
	files := map[*annotationVariant]string{withV: withFile, withoutV: withoutFile}
	run := func(v *annotationVariant, secs int, what string) pgbenchRun {
		rate := guess
		for _, r := range slices.Concat(withV.runs, withoutV.runs) {
			rate = max(rate, 1.5*r.tps)
		}
		if need := pool.bought + int64(rate*float64(secs)) + int64(o.clients); need > pool.have {
			progress("orders: annotation: %d more listings for the next run", need-pool.have)
			pool.ensure(ctx, need)
		}
		r := pool.run(ctx, files[v], note, o.clients, secs)
		progress("orders: annotation: PlaceOrder's transaction in pgbench, %s: %.0f tps, latency avg %s, %d transactions, WAL %.0f B/tx, %.3f full-page images/tx",
			what, r.tps, ms(r.avgLatency), r.txs, r.walPerTx(), r.fpiPerTx())
		return r
	}
	progress("orders: annotation: pgbench, PlaceOrder's transaction with and without the annotation, %d clients, %ds a run, %d rounds of both back to back (the first alternates) after a %ds warm-up",
		o.clients, secs, annotationRounds, warm)
	run(withV, warm, "warm-up")
	var ratios []float64 // the rounds'
	for round := range annotationRounds {
		pair := []*annotationVariant{withoutV, withV}
		if round%2 == 1 {
			pair = []*annotationVariant{withV, withoutV}
		}
		for _, v := range pair {
			v.runs = append(v.runs, run(v, secs, fmt.Sprintf("round %d, %s", round+1, v.name)))
		}
		ratios = append(ratios, withV.runs[round].tps/withoutV.runs[round].tps)
		progress("orders: annotation: round %d: with / without = %.3f", round+1, ratios[round])
	}
	pool.verify(ctx)

	clients := plural(o.clients, "client", "clients")
	ratio := median(ratios, func(r float64) float64 { return r })
	lw, lo := withV.leanest(), withoutV.leanest()
	rows := []row{
		atLeast(fmt.Sprintf("PlaceOrder's transaction in pgbench, with the audit annotation vs without (%s, %d rounds of %ds runs)", clients, annotationRounds, secs),
			fmt.Sprintf("%.0f tps (runs: %s)", withV.tps(), withV.tpsList()),
			fmt.Sprintf("without it: %.0f tps (runs: %s)", withoutV.tps(), withoutV.tpsList()), ratio, annotationMinRatio),
		info("WAL per PlaceOrder transaction, with the annotation vs without (the runs above, the leanest of each)",
			fmt.Sprintf("with the annotation: %.0f B/tx (%+.0f B; %.3f full-page images/tx; runs: %s)", lw.walPerTx(), lw.walPerTx()-lo.walPerTx(), lw.fpiPerTx(), withV.walList()),
			fmt.Sprintf("without: %.0f B/tx (%.3f full-page images/tx; runs: %s)", lo.walPerTx(), lo.fpiPerTx(), withoutV.walList()),
			times(lw.walPerTx()/lo.walPerTx()), "- (the annotation's record is in every write's WAL)"),
	}
	return append(rows, markPaidWAL(ctx, e, pool))
}

func must3[A, B any](a A, b B, err error) (A, B) {
	check(err)
	return a, b
}

// setUp makes the sellers, one buyer a client, and listings 1..n.
func (p *annotationPool) setUp(ctx context.Context, clients int, n int64) {
	must(p.e.PG.Exec(ctx, `INSERT INTO users (id, display_name)
		SELECT md5('seller' || s)::uuid, 'bench annotation seller ' || s FROM generate_series(0, 99) s
		UNION ALL
		SELECT md5('buyer' || c)::uuid, 'bench annotation buyer ' || c FROM generate_series(0, $1::int - 1) c`, clients))
	for c := range clients {
		p.buyers = append(p.buyers, uuid.UUID(md5.Sum(fmt.Appendf(nil, "buyer%d", c))))
	}
	p.ensure(ctx, n)
	p.e.asOwner(ctx, "ANALYZE users, listings, orders, order_items")
}

// ensure makes listings up to n exist, in md5 order: heap and index
// positions have nothing to do with the order the script buys them in.
func (p *annotationPool) ensure(ctx context.Context, n int64) {
	if n <= p.have {
		return
	}
	conn := backlogConn(ctx, p.e)
	defer conn.Close(context.WithoutCancel(ctx))
	for from := p.have + 1; from <= n; from += 250_000 {
		must(conn.Exec(ctx, `INSERT INTO listings (id, seller_id, title, description, category, condition, price_currency, price_minor)
			SELECT md5(g::text)::uuid, md5('seller' || g % 100)::uuid, 'Bench item ' || g,
			       'A listing made by swapmeet-bench.', 'bench', 'GOOD', 'EUR', 1000 + g % 9000
			FROM generate_series($1::int8, $2::int8) g ORDER BY 1`, from, min(n, from+250_000-1)))
	}
	p.have = n
}

var pgbenchProcessed = regexp.MustCompile(`number of transactions actually processed: (\d+)`)

// run runs script for secs with clients clients, past the listings bought so far.
func (p *annotationPool) run(ctx context.Context, script, note string, clients, secs int) pgbenchRun {
	lsn0, fpi0 := walPosition(ctx, p.e)
	out := must(runTool(ctx, "pgbench", "postgresql-client", "-n", "-M", "prepared", "-f", script,
		"-D", "k=0", "-D", "base="+strconv.FormatInt(p.bought, 10), "-D", "clients="+strconv.Itoa(clients), "-D", "note="+note,
		"-c", strconv.Itoa(clients), "-j", strconv.Itoa(min(2, clients)), "-T", strconv.Itoa(secs), p.e.Config.PostgresURL))
	lsn1, fpi1 := walPosition(ctx, p.e)
	res := pgbenchRun{pgbenchResult: must(parsePgbench(out)), walBytes: int64(lsn1 - lsn0), fpis: fpi1 - fpi0}
	res.txs = int64(must(float(pgbenchProcessed, out, "transactions processed")))
	if res.txs == 0 {
		check(fmt.Errorf("pgbench ran no PlaceOrder transaction:\n%s", out))
	}
	// The last listing bought: order ids are the listing numbers.
	var last uuid.UUID
	check(p.e.PG.QueryRow(ctx, `SELECT id FROM orders WHERE buyer_id = ANY ($1) ORDER BY id DESC LIMIT 1`, p.buyers).Scan(&last))
	p.bought = int64(binary.BigEndian.Uint64(last[8:]))
	p.ordered += res.txs
	if p.bought > p.have {
		check(fmt.Errorf("the script bought listing %d of %d", p.bought, p.have))
	}
	return res
}

// verify asks Postgres whether every transaction sold its listing, once.
func (p *annotationPool) verify(ctx context.Context) {
	var orders, items, sold int64
	check(p.e.PG.QueryRow(ctx, `SELECT (SELECT count(*) FROM orders WHERE buyer_id = ANY ($1)),
		(SELECT count(*) FROM order_items i JOIN orders o ON o.id = i.order_id WHERE o.buyer_id = ANY ($1)),
		(SELECT count(*) FROM listings WHERE category = 'bench' AND seller_id IN (SELECT md5('seller' || s)::uuid FROM generate_series(0, 99) s) AND status = 'SOLD')`,
		p.buyers).Scan(&orders, &items, &sold))
	if orders != p.ordered || items != orders || sold != orders {
		check(fmt.Errorf("pgbench reported %d PlaceOrder transactions; postgres holds %d orders, %d items and %d SOLD listings of the script's", p.ordered, orders, items, sold))
	}
	progress("orders: annotation: postgres holds %d orders of the script, each with its own listing, SOLD", orders)
}

// walPosition reads the WAL insert position and the full-page images written so far.
func walPosition(ctx context.Context, e *env) (pglogrepl.LSN, int64) {
	var s string
	var fpi int64
	check(e.PG.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text, (SELECT wal_fpi FROM pg_stat_wal)`).Scan(&s, &fpi))
	return must(pglogrepl.ParseLSN(s)), fpi
}

// markPaidWAL measures the WAL of MarkOrderPaid's UPDATE (and its commit)
// on two copies of orders that differ in their replica identity only.
func markPaidWAL(ctx context.Context, e *env, p *annotationPool) row {
	tables := []string{"bench_orders_ri_full", "bench_orders_ri_default"}
	for i, t := range tables {
		e.asOwner(ctx, "CREATE TABLE "+t+" (LIKE orders INCLUDING ALL)")
		e.asOwner(ctx, "ALTER TABLE "+t+" REPLICA IDENTITY "+[]string{"FULL", "DEFAULT"}[i])
		must(e.PG.Exec(ctx, "INSERT INTO "+t+" SELECT * FROM orders WHERE buyer_id = ANY ($1) ORDER BY id LIMIT $2", p.buyers, markPaidSamples))
	}
	defer func() {
		for _, t := range tables {
			_ = system.AdminExec(context.WithoutCancel(ctx), e.Config.MigrationURL(), "DROP TABLE IF EXISTS "+t)
		}
	}()
	var oldRow float64
	check(e.PG.QueryRow(ctx, "SELECT avg(pg_column_size(t.*)) FROM "+tables[0]+" t").Scan(&oldRow))
	type key struct{ id, buyer uuid.UUID }
	rows, _ := e.PG.Query(ctx, "SELECT id, buyer_id FROM "+tables[0]+" ORDER BY id")
	keys := must(pgx.CollectRows(rows, func(r pgx.CollectableRow) (k key, err error) { return k, r.Scan(&k.id, &k.buyer) }))
	conn := must(e.PG.Acquire(ctx))
	defer conn.Release()
	samples := make([][]int64, len(tables))
	for i, k := range keys {
		for j := range tables {
			t := (i + j) % 2 // alternate which copy goes first
			lsn0, _ := walPosition(ctx, e)
			tag := must(conn.Exec(ctx, "UPDATE "+tables[t]+" SET status = 'PAID', paid_at = now(), updated_at = now() WHERE id = $1 AND buyer_id = $2 AND status = 'PENDING'", k.id, k.buyer))
			lsn1, _ := walPosition(ctx, e)
			if tag.RowsAffected() != 1 {
				check(fmt.Errorf("MarkOrderPaid on %s changed %d rows of order %s", tables[t], tag.RowsAffected(), k.id))
			}
			samples[t] = append(samples[t], int64(lsn1-lsn0))
		}
	}
	full, def := median(samples[0], func(v int64) int64 { return v }), median(samples[1], func(v int64) int64 { return v })
	progress("orders: annotation: MarkOrderPaid UPDATE + commit, %d orders each (old row %.0f B): median WAL %d B with REPLICA IDENTITY FULL, %d B with DEFAULT",
		len(keys), oldRow, full, def)
	return info(fmt.Sprintf("WAL of a MarkOrderPaid UPDATE + commit, orders REPLICA IDENTITY FULL vs DEFAULT (median of %d)", len(keys)),
		fmt.Sprintf("FULL: %d B (%+d B; the old row is %.0f B)", full, full-def, oldRow), fmt.Sprintf("DEFAULT: %d B", def),
		times(float64(full)/float64(def)), "- (the history needs the old rows)")
}
