package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/db/sqlc"
	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/search"
)

// maxOrderItems bounds one order, and with it the rows one transaction locks.
const maxOrderItems = 50

// PlacedOrder is what PlaceOrder returns.
type PlacedOrder struct {
	ID               uuid.UUID
	Total            Money
	ConsistencyToken string
}

// PlaceOrder buys listings from one seller. It runs at READ COMMITTED and
// takes row locks on the listings in id order: the first buyer to lock a
// listing sells it; everyone queued behind the lock then finds it SOLD.
//
// Idempotency costs nothing on the happy path: a replay (even a racing
// one) fails, either on the listings it already bought or on the unique
// (buyer_id, idempotency_key), and only then is the key looked up, so the
// replay gets the original order instead of the failure.
func (c *Commands) PlaceOrder(ctx context.Context, buyer uuid.UUID, listingIDs []string, key string) (PlacedOrder, error) {
	ids, key, err := validatePlaceOrder(listingIDs, key)
	if err != nil {
		return PlacedOrder{}, err
	}
	orderID, err := uuid.NewV7()
	if err != nil {
		return PlacedOrder{}, err
	}
	var placed PlacedOrder
	commit, err := c.deps.Store.ExecTx(ctx, db.TxOptions{Actor: buyer.String(), IdempotencyKey: key}, func(q *sqlc.Queries) error {
		rows, err := q.LockListingsForOrder(ctx, ids)
		if err != nil {
			return err
		}
		items, total, seller, err := checkOrderable(buyer, ids, rows)
		if err != nil {
			return err
		}
		sold, err := q.CreateOrder(ctx, sqlc.CreateOrderParams{
			ID: orderID, BuyerID: buyer, SellerID: seller, IdempotencyKey: key,
			TotalCurrency: total.Currency, TotalMinor: total.Minor,
			ListingIds: items.ListingIds, Titles: items.Titles, Currencies: items.Currencies, Prices: items.Prices,
		})
		if db.IsUniqueViolation(err, "orders_buyer_id_idempotency_key_key") {
			return errKeyUsed
		}
		if err != nil {
			return err
		}
		if sold != int64(len(ids)) {
			return fmt.Errorf("sold %d of %d locked listings", sold, len(ids))
		}
		placed = PlacedOrder{ID: orderID, Total: total}
		return nil
	})
	if err != nil {
		if errors.Is(err, errKeyUsed) || ErrorCode(err) == CodeFailedPrecondition || ErrorCode(err) == CodeNotFound {
			if prev, ok, perr := c.replay(ctx, buyer, key, ids); perr != nil || ok {
				return prev, perr
			}
		}
		if errors.Is(err, errKeyUsed) { // the order it names was deleted meanwhile
			return PlacedOrder{}, errKeyBusy
		}
		return PlacedOrder{}, fmt.Errorf("place order: %w", err)
	}
	placed.ConsistencyToken = consistency.WriteToken(commit.Position())
	return placed, nil
}

var errKeyUsed = errors.New("idempotency key already used")

// replay returns the order an idempotency key already made, if any.
func (c *Commands) replay(ctx context.Context, buyer uuid.UUID, key string, ids []uuid.UUID) (PlacedOrder, bool, error) {
	prev, err := c.deps.Store.FindOrderByIdempotencyKey(ctx, sqlc.FindOrderByIdempotencyKeyParams{BuyerID: buyer, IdempotencyKey: key})
	if errors.Is(err, db.ErrNotFound) {
		return PlacedOrder{}, false, nil
	}
	if err != nil {
		return PlacedOrder{}, false, fmt.Errorf("place order: look up idempotency key: %w", err)
	}
	if !slices.Equal(prev.ListingIds, ids) {
		return PlacedOrder{}, false, refusef(CodeFailedPrecondition, ReasonIdempotencyKeyReused, "this idempotency_key was already used for an order of other listings")
	}
	token, err := c.currentToken(ctx)
	if err != nil {
		return PlacedOrder{}, false, fmt.Errorf("place order: %w", err)
	}
	return PlacedOrder{
		ID:               prev.ID,
		Total:            Money{Currency: prev.TotalCurrency, Minor: prev.TotalMinor},
		ConsistencyToken: token,
	}, true, nil
}

// validatePlaceOrder returns the listing ids sorted (the lock order) and the key.
func validatePlaceOrder(listingIDs []string, key string) ([]uuid.UUID, string, error) {
	var v violations
	switch {
	case len(listingIDs) == 0:
		v.add("listing_ids", "is required: the listings to buy")
	case len(listingIDs) > maxOrderItems:
		v.add("listing_ids", "must list at most %d listings", maxOrderItems)
	}
	ids := make([]uuid.UUID, 0, len(listingIDs))
	seen := map[uuid.UUID]bool{}
	for i, s := range listingIDs {
		if i >= maxOrderItems {
			break
		}
		field := fmt.Sprintf("listing_ids[%d]", i)
		id := v.id(field, s)
		if id == uuid.Nil {
			continue
		}
		if seen[id] {
			v.add(field, "repeats listing %s", id)
			continue
		}
		seen[id] = true
		ids = append(ids, id)
	}
	v.text("idempotency_key", key, idempotencyKeyRule)
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	return ids, key, v.err()
}

// orderItems are the order's lines, as the CreateOrder query takes them.
type orderItems struct {
	ListingIds []uuid.UUID
	Titles     []string
	Currencies []string
	Prices     []int64
}

// checkOrderable applies the business rules to the locked listings and
// returns the order's items, total and seller.
func checkOrderable(buyer uuid.UUID, ids []uuid.UUID, rows []sqlc.LockListingsForOrderRow) (orderItems, Money, uuid.UUID, error) {
	var items orderItems
	found := map[uuid.UUID]bool{}
	for _, r := range rows {
		found[r.ID] = true
	}
	for _, id := range ids {
		if !found[id] {
			return items, Money{}, uuid.Nil, errorf(CodeNotFound, "listing %s not found", id)
		}
	}
	seller := rows[0].SellerID
	total := Money{Currency: rows[0].PriceCurrency}
	for _, r := range rows {
		switch {
		case r.SellerID != seller:
			return items, Money{}, uuid.Nil, refusef(CodeFailedPrecondition, ReasonMixedSellers, "all listings of an order must come from one seller")
		case r.SellerID == buyer:
			return items, Money{}, uuid.Nil, refusef(CodeFailedPrecondition, ReasonOwnListing, "you cannot buy your own listing %s", r.ID)
		case r.Status != StatusAvailable:
			return items, Money{}, uuid.Nil, refusef(CodeFailedPrecondition, unavailableReason(r.Status), "listing %s is %s, not AVAILABLE", r.ID, r.Status)
		case r.PriceCurrency != total.Currency:
			return items, Money{}, uuid.Nil, refusef(CodeFailedPrecondition, ReasonCurrencyMismatch, "all listings of an order must be priced in one currency")
		}
		total.Minor += r.PriceMinor
		items.ListingIds = append(items.ListingIds, r.ID)
		items.Titles = append(items.Titles, r.Title)
		items.Currencies = append(items.Currencies, r.PriceCurrency)
		items.Prices = append(items.Prices, r.PriceMinor)
	}
	return items, total, seller, nil
}

// Order statuses.
const (
	OrderPending   = "PENDING"
	OrderPaid      = "PAID"
	OrderShipped   = "SHIPPED"
	OrderDelivered = "DELIVERED"
	OrderCancelled = "CANCELLED"
)

type party int

const (
	buyerOnly party = iota
	sellerOnly
	eitherParty
)

// transition is one edge of the order state machine.
type transition struct {
	verb   string   // for messages: "mark paid"
	who    party    // who may take it
	from   []string // the states it leaves
	to     string   // the state it reaches: taking it again there is a no-op
	update func(ctx context.Context, q *sqlc.Queries, order, caller uuid.UUID) (int64, error)
	after  func(ctx context.Context, q *sqlc.Queries, order uuid.UUID) error
}

var (
	markPaid = transition{verb: "mark paid", who: buyerOnly, from: []string{OrderPending}, to: OrderPaid,
		update: func(ctx context.Context, q *sqlc.Queries, o, u uuid.UUID) (int64, error) {
			return q.MarkOrderPaid(ctx, sqlc.MarkOrderPaidParams{ID: o, BuyerID: u})
		}}
	markShipped = transition{verb: "mark shipped", who: sellerOnly, from: []string{OrderPaid}, to: OrderShipped,
		update: func(ctx context.Context, q *sqlc.Queries, o, u uuid.UUID) (int64, error) {
			return q.MarkOrderShipped(ctx, sqlc.MarkOrderShippedParams{ID: o, SellerID: u})
		}}
	confirmDelivery = transition{verb: "confirm delivery of", who: buyerOnly, from: []string{OrderShipped}, to: OrderDelivered,
		update: func(ctx context.Context, q *sqlc.Queries, o, u uuid.UUID) (int64, error) {
			return q.ConfirmDelivery(ctx, sqlc.ConfirmDeliveryParams{ID: o, BuyerID: u})
		}}
	cancelOrder = transition{verb: "cancel", who: eitherParty, from: []string{OrderPending, OrderPaid}, to: OrderCancelled,
		update: func(ctx context.Context, q *sqlc.Queries, o, u uuid.UUID) (int64, error) {
			return q.CancelOrder(ctx, sqlc.CancelOrderParams{ID: o, UserID: u})
		},
		// The items go back on sale.
		after: func(ctx context.Context, q *sqlc.Queries, o uuid.UUID) error {
			_, err := q.ReleaseOrderListings(ctx, o)
			return err
		}}
)

// MarkOrderPaid moves a PENDING order to PAID (the buyer).
func (c *Commands) MarkOrderPaid(ctx context.Context, caller uuid.UUID, orderID string) (string, error) {
	return c.transition(ctx, caller, orderID, markPaid)
}

// MarkOrderShipped moves a PAID order to SHIPPED (the seller).
func (c *Commands) MarkOrderShipped(ctx context.Context, caller uuid.UUID, orderID string) (string, error) {
	return c.transition(ctx, caller, orderID, markShipped)
}

// ConfirmDelivery moves a SHIPPED order to DELIVERED (the buyer).
func (c *Commands) ConfirmDelivery(ctx context.Context, caller uuid.UUID, orderID string) (string, error) {
	return c.transition(ctx, caller, orderID, confirmDelivery)
}

// CancelOrder cancels an order before it ships (either party) and puts its
// listings back on sale.
func (c *Commands) CancelOrder(ctx context.Context, caller uuid.UUID, orderID string) (string, error) {
	return c.transition(ctx, caller, orderID, cancelOrder)
}

// errAlreadyDone ends a transaction that finds its change already made
// (an order already in the transition's target state, images already in
// the asked order): a retry whose first attempt's answer was lost, which
// succeeds again, without a write, with the current position's token.
var errAlreadyDone = errors.New("the change is already made")

// transition runs t's guarded UPDATE. Only when it changes nothing does it
// look at the order, to tell the caller why. Taking a transition again
// once the order is in its target state succeeds without a write, with a
// token at or after the first's; a transition the state does not allow
// is refused (ORDER_NOT_IN_STATE).
func (c *Commands) transition(ctx context.Context, caller uuid.UUID, orderID string, t transition) (string, error) {
	var v violations
	id := v.id("order_id", orderID)
	if err := v.err(); err != nil {
		return "", err
	}
	commit, err := c.deps.Store.ExecTx(ctx, db.TxOptions{Actor: caller.String()}, func(q *sqlc.Queries) error {
		n, err := t.update(ctx, q, id, caller)
		if err != nil {
			return err
		}
		if n == 0 {
			return explainRefusal(ctx, q, id, caller, t)
		}
		if t.after != nil {
			return t.after(ctx, q, id)
		}
		return nil
	})
	if errors.Is(err, errAlreadyDone) {
		return c.currentToken(ctx)
	}
	if err != nil {
		return "", fmt.Errorf("%s order %s: %w", t.verb, id, err)
	}
	return consistency.WriteToken(commit.Position()), nil
}

func explainRefusal(ctx context.Context, q *sqlc.Queries, id, caller uuid.UUID, t transition) error {
	o, err := q.FindOrderParties(ctx, id)
	isBuyer, isSeller := o.BuyerID == caller, o.SellerID == caller
	switch {
	case errors.Is(err, db.ErrNotFound), err == nil && !isBuyer && !isSeller:
		// Other people's orders do not exist, as far as the caller knows.
		return errorf(CodeNotFound, "order not found")
	case err != nil:
		return err
	case t.who == buyerOnly && !isBuyer:
		return errorf(CodePermissionDenied, "only the buyer can %s an order", t.verb)
	case t.who == sellerOnly && !isSeller:
		return errorf(CodePermissionDenied, "only the seller can %s an order", t.verb)
	case o.Status == t.to:
		return errAlreadyDone
	}
	return refusef(CodeFailedPrecondition, ReasonOrderNotInState, "the order is %s; you can %s it only when it is %s", o.Status, t.verb, joinOr(t.from))
}

func joinOr(s []string) string {
	if len(s) == 1 {
		return s[0]
	}
	out := s[0]
	for _, x := range s[1 : len(s)-1] {
		out += ", " + x
	}
	return out + " or " + s[len(s)-1]
}

// GetOrder returns an order to its buyer or seller. To anyone else it does
// not exist.
func (q *Queries) GetOrder(ctx context.Context, caller uuid.UUID, id, token string) (OrderView, error) {
	var v violations
	oid := v.id("order_id", id)
	if err := v.err(); err != nil {
		return OrderView{}, err
	}
	ctx, err := q.awaitToken(ctx, token)
	if err != nil {
		return OrderView{}, err
	}
	o, err := getDoc[readstore.Order](ctx, q, readstore.Orders, oid.String(), "order")
	if err != nil {
		return OrderView{}, err
	}
	if o.Buyer.ID != caller.String() && o.Seller.ID != caller.String() {
		return OrderView{}, errorf(CodeNotFound, "order not found")
	}
	return q.orderView(ctx, o)
}

// Order roles for ListOrders.
const (
	RoleBuyer  = search.RoleBuyer
	RoleSeller = search.RoleSeller
)

// ListOrders returns the caller's orders as buyer or seller, newest first.
func (q *Queries) ListOrders(ctx context.Context, caller uuid.UUID, role, status string, pageSize int32, pageToken, token string) ([]OrderView, string, error) {
	var v violations
	if role != RoleBuyer && role != RoleSeller {
		v.add("role", "is required: BUYER or SELLER")
	}
	switch status {
	case "", OrderPending, OrderPaid, OrderShipped, OrderDelivered, OrderCancelled:
	default:
		v.add("status", "is not an order status")
	}
	limit := v.pageSize(pageSize)
	query := digest([]string{"orders", caller.String(), role, status})
	cur := v.cursor(pageToken, query)
	if err := v.err(); err != nil {
		return nil, "", err
	}
	ctx, err := q.awaitToken(ctx, token)
	if err != nil {
		return nil, "", err
	}
	// From the search store's index: no page cache, as a page is a
	// millisecond range scan and one user's pages are rarely asked twice.
	docs, more, err := q.deps.Search.ListOrders(ctx, search.OrderFilter{UserID: caller.String(), Role: role, Status: status}, cur, limit)
	if err != nil {
		return nil, "", readErr("orders", err)
	}
	out := make([]OrderView, 0, len(docs))
	for _, o := range docs {
		ov, err := q.orderView(ctx, o)
		if err != nil {
			return nil, "", err
		}
		out = append(out, ov)
	}
	next := ""
	if more {
		last := docs[len(docs)-1]
		next = encodePageToken(query, readstore.Cursor{CreatedAt: last.CreatedAt, ID: last.ID})
	}
	return out, next, nil
}

// unavailableReason is why a listing that is not AVAILABLE cannot be
// bought.
func unavailableReason(status string) Reason {
	if status == StatusSold {
		return ReasonListingSold
	}
	return ReasonListingUnavailable
}
