package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/swapmeet/swapmeet/internal/app"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
)

// The targets.
const (
	ordersMinRatio = 0.5
	ordersMaxP99   = 25 * time.Millisecond
)

const (
	// fixtureSellers spreads the listings so that no seller row is hot.
	fixtureSellers = 100
	// assumedMaxOrderRate sizes the listing pool: every order consumes a
	// listing, and running dry would end the measurement early.
	assumedMaxOrderRate = 3000
	minListings         = 30000
	// raceTimeout bounds a race that should settle in milliseconds; a call
	// still hanging after it comes back as DeadlineExceeded, a failure.
	raceTimeout = 30 * time.Second
)

// runOrders measures the order targets: PlaceOrder throughput against
// pgbench's simple-update at the same client count, PlaceOrder latency, and
// a race of many buyers for one listing. pgbench and PlaceOrder run one
// after the other, never together.
func runOrders(ctx context.Context, o options) ([]row, error) {
	return withEnv(ctx, func(e *env) ([]row, error) { return measureOrderFigures(ctx, e, o) })
}

func measureOrderFigures(ctx context.Context, e *env, o options) ([]row, error) {
	progress("orders: loading the pgbench reference data (scale %d)", pgbenchScale)
	refURL, err := createScratchDB(ctx, e)
	if err != nil {
		return nil, err
	}
	if err := pgbenchInit(ctx, refURL); err != nil {
		return nil, err
	}

	fx, err := setUpOrders(ctx, e, o)
	if err != nil {
		return nil, err
	}

	progress("orders: reference: pgbench simple-update, %d clients, %s", o.clients, o.duration)
	ref, err := pgbenchSimpleUpdate(ctx, refURL, o.clients, o.duration)
	if err != nil {
		return nil, err
	}
	progress("orders: reference: %.0f tps, average latency %s", ref.tps, ms(ref.avgLatency))

	// Started only now, the CDC's new slot begins past the fixtures and
	// pgbench's writes: it projects the orders being measured, and its
	// decoding does not tax the reference.
	if o.withCDC {
		if err := e.startCDC(ctx); err != nil {
			return nil, err
		}
		progress("orders: the CDC projector runs alongside PlaceOrder")
	}

	rpc, placed, err := measureOrders(ctx, fx, o, "over RPC", placeOverRPC(fx), 0)
	if err != nil {
		return []row{broken(throughputFigure(o))}, err
	}
	rows := orderRows(o, ref, rpc)

	inProc, _, err := measureOrders(ctx, fx, o, "in process (no RPC)", placeInProcess(fx), placed)
	if err != nil {
		return append(rows, broken(inProcessFigure(o))), err
	}
	rows = append(rows, row{
		figure:    inProcessFigure(o),
		measured:  fmt.Sprintf("%.0f orders/s, p50 %s, p99 %s (over RPC: %.0f%% of it)", inProc.rate(), ms(inProc.lat.p50), ms(inProc.lat.p99), 100*rpc.rate()/inProc.rate()),
		reference: ref.String(),
		ratio:     times(inProc.rate() / ref.tps),
		target:    "what the database work allows",
		verdict:   verdictNone,
	})

	race, err := raceForOneListing(ctx, fx, o.raceBuyers)
	rows = append(rows, race)
	return rows, err
}

// orderFixtures is what the order figures run against.
type orderFixtures struct {
	env      *env
	app      *app.App // the API's, for the in-process figure
	client   swapmeetv1connect.OrderServiceClient
	buyers   []benchUser // one per client
	racers   []benchUser // the racing buyers
	listings *pool[uuid.UUID]
	prize    uuid.UUID // the listing the racers fight for
}

// setUpOrders starts the API on a fresh database and fills it with sellers,
// buyers and listings.
func setUpOrders(ctx context.Context, e *env, o options) (*orderFixtures, error) {
	api, err := e.startAPI()
	if err != nil {
		return nil, err
	}
	fx := &orderFixtures{
		env:    e,
		app:    api.App,
		client: swapmeetv1connect.NewOrderServiceClient(api.Server.Client(), api.Server.URL),
	}

	start := time.Now()
	warmup := warmupFor(o.duration)
	// Two runs: over RPC, then in process.
	nListings := max(minListings, int(2*assumedMaxOrderRate*(warmup+o.duration).Seconds()))
	sellers, err := insertUsers(ctx, e.PG, "seller", fixtureSellers)
	if err != nil {
		return nil, err
	}
	if fx.buyers, err = insertUsers(ctx, e.PG, "buyer", o.clients); err != nil {
		return nil, err
	}
	if fx.racers, err = insertUsers(ctx, e.PG, "racer", o.raceBuyers); err != nil {
		return nil, err
	}
	ids, err := insertListings(ctx, e.PG, sellers, nListings+1)
	if err != nil {
		return nil, err
	}
	fx.prize, fx.listings = ids[0], newListingPool(ids[1:])
	if err := analyze(ctx, e.PG); err != nil {
		return nil, fmt.Errorf("analyze: %w", err)
	}
	progress("orders: fixtures: %d sellers, %d buyers, %d racers, %d listings in %s",
		fixtureSellers, o.clients, o.raceBuyers, nListings+1, time.Since(start).Round(time.Millisecond))
	return fx, nil
}

// newListingPool shuffles the listings: taken in insertion order, clients
// would update neighbouring rows of one heap page at the same time, a
// contention that real buyers, spread over the catalogue, do not cause.
func newListingPool(ids []uuid.UUID) *pool[uuid.UUID] {
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	return &pool[uuid.UUID]{items: ids}
}

// placeFunc places one order for buyer b on listing.
type placeFunc func(ctx context.Context, b benchUser, listing uuid.UUID) error

// measureOrders warms up, then measures: one client per buyer, each
// placing orders back to back through place on listings nobody else takes.
// Then it checks in Postgres that every acknowledged order exists once and
// no listing was sold twice. placed is how many orders exist before; the
// count after is returned.
func measureOrders(ctx context.Context, fx *orderFixtures, o options, how string, place placeFunc, placed int) (rateResult, int, error) {
	call := eachOnce(fx.listings, func(ctx context.Context, worker int, id uuid.UUID) error {
		if err := place(ctx, fx.buyers[worker], id); err != nil {
			return fmt.Errorf("PlaceOrder(%s): %w", id, err)
		}
		return nil
	})
	w, l, err := load(ctx, "orders: PlaceOrder "+how, len(fx.buyers), o.duration, call)
	if err != nil {
		return rateResult{}, placed, err
	}
	if l.exhausted {
		progress("orders: WARNING: the %d listings ran out after %s; the figure covers that time only",
			len(fx.listings.items), l.elapsed.Round(time.Millisecond))
	}

	placed += w.calls + l.calls
	if err := checkOrdersPersisted(ctx, fx.env.PG, placed); err != nil {
		return rateResult{}, placed, err
	}
	return l, placed, nil
}

func inProcessFigure(o options) string {
	return fmt.Sprintf("PlaceOrder in process, no RPC (%s)", plural(o.clients, "client", "clients"))
}

// placeOverRPC places an order through the API.
func placeOverRPC(fx *orderFixtures) placeFunc {
	return func(ctx context.Context, b benchUser, listing uuid.UUID) error {
		_, err := fx.client.PlaceOrder(ctx, placeOrderRequest(b.token, listing))
		return err
	}
}

// placeInProcess calls app.Commands.PlaceOrder straight, without Connect,
// HTTP/2 or the session lookup: the same transactions on the same
// database, so the gap to the RPC figure is what the RPC layer costs on
// the machine that runs the bench.
func placeInProcess(fx *orderFixtures) placeFunc {
	return func(ctx context.Context, b benchUser, listing uuid.UUID) error {
		_, err := fx.app.Commands.PlaceOrder(ctx, b.id, []string{listing.String()}, uuid.NewString())
		return err
	}
}

// placeOrderRequest buys one listing with a fresh idempotency key, so that
// no call is answered from a previous one.
func placeOrderRequest(token string, listing uuid.UUID) *connect.Request[swapmeetv1.PlaceOrderRequest] {
	req := connect.NewRequest(&swapmeetv1.PlaceOrderRequest{
		ListingIds:     []string{listing.String()},
		IdempotencyKey: uuid.NewString(),
	})
	req.Header().Set("Authorization", "Bearer "+token)
	return req
}

// checkOrdersPersisted compares what the clients were told with what
// Postgres holds.
func checkOrdersPersisted(ctx context.Context, pg *pgxpool.Pool, acknowledged int) error {
	var orders, doubleSold int
	err := pg.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM orders),
		       (SELECT count(*) FROM (SELECT listing_id FROM order_items GROUP BY listing_id HAVING count(*) > 1) d)`).
		Scan(&orders, &doubleSold)
	if err != nil {
		return fmt.Errorf("check orders in postgres: %w", err)
	}
	if orders != acknowledged || doubleSold != 0 {
		return fmt.Errorf("postgres holds %d orders for %d acknowledged PlaceOrder calls, and %d listings in more than one order",
			orders, acknowledged, doubleSold)
	}
	progress("orders: checked: postgres holds exactly the %d acknowledged orders, no listing sold twice", orders)
	return nil
}

func throughputFigure(o options) string {
	return fmt.Sprintf("PlaceOrder throughput (%s)", plural(o.clients, "client", "clients"))
}

func orderRows(o options, ref pgbenchResult, l rateResult) []row {
	return []row{
		atLeast(throughputFigure(o), fmt.Sprintf("%.0f orders/s", l.rate()), ref.String(), l.rate()/ref.tps, ordersMinRatio),
		{
			figure:    "PlaceOrder latency",
			measured:  fmt.Sprintf("p50 %s, p99 %s", ms(l.lat.p50), ms(l.lat.p99)),
			reference: fmt.Sprintf("pgbench avg %s", ms(ref.avgLatency)),
			target:    fmt.Sprintf("p99 < %d ms", ordersMaxP99.Milliseconds()),
			verdict:   verdict(l.lat.p99 < ordersMaxP99),
		},
	}
}

// raceOutcome is what the racers were told.
type raceOutcome struct {
	winners []string // order ids
	codes   map[connect.Code]int
	other   []error // errors that carry no Connect code
	settled time.Duration
}

// raceForOneListing releases every racer at once on the same listing.
// Exactly one may win; every other must be refused with FailedPrecondition.
// Anything else is a correctness failure, and so is Postgres disagreeing.
func raceForOneListing(ctx context.Context, fx *orderFixtures, n int) (row, error) {
	progress("orders: race: %d buyers for listing %s", n, fx.prize)
	ctx, cancel := context.WithTimeout(ctx, raceTimeout)
	defer cancel()
	out := race(ctx, fx.client, fx.racers, fx.prize)
	res := row{figure: fmt.Sprintf("%d buyers race for 1 listing", n), measured: out.String(), target: "exactly 1", verdict: verdictOK}

	err := out.check(n)
	if err == nil {
		err = checkSoldOnce(ctx, fx.env.PG, fx.prize, out.winners[0])
	}
	if err != nil {
		res.verdict = verdictFail
		return res, fmt.Errorf("race: %w", err)
	}
	progress("orders: race: %s; postgres agrees", res.measured)
	return res, nil
}

// race runs one goroutine per racer, each with its request built, blocked
// on a barrier; closing the barrier releases them together.
func race(ctx context.Context, c swapmeetv1connect.OrderServiceClient, racers []benchUser, listing uuid.UUID) raceOutcome {
	out := raceOutcome{codes: map[connect.Code]int{}}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		barrier = make(chan struct{})
	)
	for _, b := range racers {
		req := placeOrderRequest(b.token, listing)
		wg.Go(func() {
			<-barrier
			resp, err := c.PlaceOrder(ctx, req)
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
	return out
}

// String reads like "1 winner, 63 FailedPrecondition, settled in 48 ms".
func (o raceOutcome) String() string {
	parts := []string{plural(len(o.winners), "winner", "winners")}
	codes := make([]connect.Code, 0, len(o.codes))
	for c := range o.codes {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d %s", o.codes[c], codeName(c)))
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
		return fmt.Errorf("want 1 winner and %d FailedPrecondition, got %s", n-1, o)
	}
	return nil
}

// checkSoldOnce asks Postgres which orders hold the listing: exactly the
// winner's, and the listing must be SOLD.
func checkSoldOnce(ctx context.Context, pg *pgxpool.Pool, listing uuid.UUID, winner string) error {
	var orders []string
	var status string
	err := pg.QueryRow(ctx, `
		SELECT coalesce((SELECT array_agg(order_id::text) FROM order_items WHERE listing_id = $1), '{}'),
		       (SELECT status FROM listings WHERE id = $1)`, listing).Scan(&orders, &status)
	if err != nil {
		return fmt.Errorf("check the listing in postgres: %w", err)
	}
	if len(orders) != 1 || orders[0] != winner || status != "SOLD" {
		return fmt.Errorf("postgres: listing %s is %s and in orders %v; want SOLD and only in the winner's order %s",
			listing, status, orders, winner)
	}
	return nil
}

// codeName spells codes as the docs do (FailedPrecondition, not
// failed_precondition).
func codeName(c connect.Code) string {
	var b strings.Builder
	for part := range strings.SplitSeq(c.String(), "_") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
