package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
)

// The orders suite: PlaceOrder over RPC and in process against pgbench's
// simple-update at the same client count; then -race-buyers buyers at
// once on one listing. Postgres is asked whether what they were told holds.
// Last, what the audit annotation costs PlaceOrder's transaction (annotation.go).

const (
	ordersMinRatio = 0.5 // of pgbench's tps
	ordersMaxP99   = 25 * time.Millisecond
)

func runOrders(ctx context.Context, o options) ([]row, error) {
	return withEnv(ctx, func(e *env) (rows []row, err error) {
		defer recovered(&err)
		refURL := pgbenchInit(ctx, e)
		fx := setUpOrders(ctx, e, o)
		ref := pgbenchSimpleUpdate(ctx, refURL, o.clients, o.duration)
		progress("orders: reference: %.0f tps, average latency %s", ref.tps, ms(ref.avgLatency))
		if o.withCDC { // started now, its slot begins past the fixtures and pgbench
			e.startCDC(ctx)
		}
		clients := plural(o.clients, "client", "clients")
		rpc := fx.measure(ctx, o, "over RPC", func(ctx context.Context, b benchUser, id uuid.UUID) error {
			_, err := fx.client.PlaceOrder(ctx, placeOrderRequest(b.token, id))
			return err
		})
		rows = []row{
			atLeast(fmt.Sprintf("PlaceOrder throughput (%s)", clients), fmt.Sprintf("%.0f orders/s", rpc.rate()), ref.String(), rpc.rate()/ref.tps, ordersMinRatio),
			{"PlaceOrder latency", fmt.Sprintf("p50 %s, p99 %s", ms(rpc.lat.p50), ms(rpc.lat.p99)), "pgbench avg " + ms(ref.avgLatency), "",
				fmt.Sprintf("p99 < %d ms", ordersMaxP99.Milliseconds()), verdict(rpc.lat.p99 < ordersMaxP99)},
		}
		// app.Commands straight: the gap to the RPC figure is what the RPC layer costs.
		inProc := fx.measure(ctx, o, "in process (no RPC)", func(ctx context.Context, b benchUser, id uuid.UUID) error {
			_, err := fx.api.app.Commands.PlaceOrder(ctx, b.id, []string{id.String()}, uuid.NewString())
			return err
		})
		rows = append(rows, info(fmt.Sprintf("PlaceOrder in process, no RPC (%s)", clients),
			fmt.Sprintf("%.0f orders/s, p50 %s, p99 %s (over RPC: %.0f%% of it)", inProc.rate(), ms(inProc.lat.p50), ms(inProc.lat.p99), 100*rpc.rate()/inProc.rate()),
			ref.String(), times(inProc.rate()/ref.tps), "what the database work allows"))
		rows = append(rows, row{figure: fmt.Sprintf("%d buyers race for 1 listing", o.raceBuyers), target: "exactly 1", verdict: verdictFail})
		rows[len(rows)-1].measured = fx.race(ctx, o.raceBuyers)
		rows[len(rows)-1].verdict = verdictOK
		// Last: its listings and orders would change what the figures above measure.
		rows = append(rows, fx.annotationCost(ctx, o, ref)...)
		return rows, nil
	})
}

// orderFixtures is what the order figures run against.
type orderFixtures struct {
	e        *env
	api      *api
	client   swapmeetv1connect.OrderServiceClient
	buyers   []benchUser // one per client
	racers   []benchUser
	listings *pool[uuid.UUID] // shuffled: buyers spread over the catalogue, not one heap page
	prize    uuid.UUID        // the listing the racers fight for
	placed   int              // orders acknowledged so far
}

func setUpOrders(ctx context.Context, e *env, o options) *orderFixtures {
	a := e.startAPI(nil)
	fx := &orderFixtures{e: e, api: a, client: swapmeetv1connect.NewOrderServiceClient(h2c(), a.url)}
	n := max(30_000, int(2*3000*(warmupFor(o.duration)+o.duration).Seconds())) // an order a listing: 3000/s, two runs
	sellers := insertUsers(ctx, e.PG, "seller", 100)
	fx.buyers, fx.racers = insertUsers(ctx, e.PG, "buyer", o.clients), insertUsers(ctx, e.PG, "racer", o.raceBuyers)
	ids := insertListings(ctx, e, sellers, n+1)
	rand.Shuffle(n, func(i, j int) { ids[1+i], ids[1+j] = ids[1+j], ids[1+i] })
	fx.prize, fx.listings = ids[0], &pool[uuid.UUID]{items: ids[1:]}
	return fx
}

// measure places orders from one client per buyer, then checks them against Postgres.
func (fx *orderFixtures) measure(ctx context.Context, o options, how string, place func(context.Context, benchUser, uuid.UUID) error) rateResult {
	call := func(ctx context.Context, worker int, id uuid.UUID) error {
		if err := place(ctx, fx.buyers[worker], id); err != nil {
			return fmt.Errorf("PlaceOrder(%s): %w", id, err)
		}
		return nil
	}
	progress("orders: PlaceOrder %s, %d clients, %s after a %s warm-up", how, len(fx.buyers), o.duration, warmupFor(o.duration))
	w := hammer(ctx, len(fx.buyers), warmupFor(o.duration), fx.listings, call)
	l := hammer(ctx, len(fx.buyers), o.duration, fx.listings, call)
	progress("orders: PlaceOrder %s: %d calls: %s, max %s", how, l.calls, l, ms(l.lat.max))
	if l.exhausted {
		progress("orders: WARNING: the listings ran out after %s; the figure covers that time only", l.elapsed.Round(time.Millisecond))
	}
	fx.placed += w.calls + l.calls
	var orders, doubleSold int
	check(fx.e.PG.QueryRow(ctx, `SELECT (SELECT count(*) FROM orders),
		(SELECT count(*) FROM (SELECT listing_id FROM order_items GROUP BY listing_id HAVING count(*) > 1) d)`).Scan(&orders, &doubleSold))
	if orders != fx.placed || doubleSold != 0 {
		check(fmt.Errorf("postgres holds %d orders for %d acknowledged PlaceOrder calls, and %d listings in more than one order", orders, fx.placed, doubleSold))
	}
	return l
}

// placeOrderRequest buys one listing with a fresh idempotency key.
func placeOrderRequest(token string, listing uuid.UUID) *connect.Request[swapmeetv1.PlaceOrderRequest] {
	req := connect.NewRequest(&swapmeetv1.PlaceOrderRequest{ListingIds: []string{listing.String()}, IdempotencyKey: uuid.NewString()})
	req.Header().Set("Authorization", "Bearer "+token)
	return req
}

// raceOutcome is what the racers were told.
type raceOutcome struct {
	winners []string // order ids
	codes   map[connect.Code]int
	other   []error // errors without a Connect code
	settled time.Duration
}

// race releases n racers on one listing: one wins, the rest get FailedPrecondition.
func (fx *orderFixtures) race(ctx context.Context, n int) string {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out := raceOutcome{codes: map[connect.Code]int{}}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		barrier = make(chan struct{})
	)
	for _, b := range fx.racers {
		req := placeOrderRequest(b.token, fx.prize)
		wg.Go(func() {
			<-barrier
			resp, err := fx.client.PlaceOrder(ctx, req)
			mu.Lock()
			defer mu.Unlock()
			var ce *connect.Error
			switch {
			case err == nil:
				out.winners = append(out.winners, resp.Msg.GetOrderId())
			case errors.As(err, &ce):
				out.codes[ce.Code()]++
			default:
				out.other = append(out.other, err)
			}
		})
	}
	released := time.Now()
	close(barrier)
	wg.Wait()
	out.settled = time.Since(released)
	check(out.check(n))
	var orders []string
	var status string
	check(fx.e.PG.QueryRow(ctx, `SELECT coalesce((SELECT array_agg(order_id::text) FROM order_items WHERE listing_id = $1), '{}'),
		(SELECT status FROM listings WHERE id = $1)`, fx.prize).Scan(&orders, &status))
	if len(orders) != 1 || orders[0] != out.winners[0] || status != "SOLD" {
		check(fmt.Errorf("race: postgres: the listing is %s and in orders %v; want SOLD and only in the winner's %s", status, orders, out.winners[0]))
	}
	progress("orders: race: %s; postgres agrees", out)
	return out.String()
}

// String reads like "1 winner, 63 FailedPrecondition, settled in 48.0 ms".
func (o raceOutcome) String() string {
	parts := []string{plural(len(o.winners), "winner", "winners")}
	for _, c := range slices.Sorted(maps.Keys(o.codes)) {
		name := ""
		for part := range strings.SplitSeq(c.String(), "_") { // FailedPrecondition, not failed_precondition
			name += strings.ToUpper(part[:1]) + part[1:]
		}
		parts = append(parts, fmt.Sprintf("%d %s", o.codes[c], name))
	}
	if len(o.other) > 0 {
		parts = append(parts, fmt.Sprintf("%d transport errors", len(o.other)))
	}
	return strings.Join(parts, ", ") + ", settled in " + ms(o.settled)
}

func (o raceOutcome) check(n int) error {
	if len(o.other) > 0 {
		return fmt.Errorf("%d calls failed without a Connect code, first: %w", len(o.other), o.other[0])
	}
	if len(o.winners) != 1 || o.codes[connect.CodeFailedPrecondition] != n-1 {
		return fmt.Errorf("race: want 1 winner and %d FailedPrecondition, got %s", n-1, o)
	}
	return nil
}
