package rpc_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/db/sqlc"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
)

func (m *market) history() swapmeetv1connect.HistoryServiceClient {
	return swapmeetv1connect.NewHistoryServiceClient(m.srv.Client(), m.srv.URL)
}

// listHistory reads an object's whole history as who, with a token.
func (m *market) listHistory(who user, typ swapmeetv1.ObjectType, id, token string) ([]*swapmeetv1.HistoryEntry, error) {
	m.t.Helper()
	res, err := m.history().ListHistory(ctx, authed(&swapmeetv1.ListHistoryRequest{ObjectType: typ, ObjectId: id, ConsistencyToken: token}, who.token))
	if err != nil {
		return nil, err
	}
	return res.Msg.Entries, nil
}

func changeOf(e *swapmeetv1.HistoryEntry, field string) *swapmeetv1.FieldChange {
	for _, c := range e.Changes {
		if c.Field == field {
			return c
		}
	}
	return nil
}

func wantEntry(t *testing.T, e *swapmeetv1.HistoryEntry, actor, rpc, requestID, field, before, after string) {
	t.Helper()
	c := changeOf(e, field)
	if e.ActorId != actor || e.Rpc != rpc || (requestID != "" && e.RequestId != requestID) || e.RequestId == "" ||
		c == nil || c.Before != before || c.After != after {
		t.Fatalf("entry %+v: want actor %s, rpc %s, request %q, %s %q → %q", e, actor, rpc, requestID, field, before, after)
	}
}

// TestHistoryRecordsWhoChangedWhat: a price edit, an order placed, paid
// and shipped each show in the right object's history with its actor,
// procedure, request id and values, at once with the write's token.
func TestHistoryRecordsWhoChangedWhat(t *testing.T) {
	m := newLiveMarket(t)
	seller, buyer := m.signUp("seller"), m.signUp("buyer")
	lid := m.listing(seller, "Brass lamp")

	req := authed(&swapmeetv1.UpdateListingRequest{ListingId: lid, ExpectedVersion: 1, Price: eur(1900), UpdateMask: mask("price")}, seller.token)
	req.Header().Set("X-Request-Id", "price-cut-1")
	up, err := m.listings.UpdateListing(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if got := up.Header().Get("X-Request-Id"); got != "price-cut-1" {
		t.Fatalf("X-Request-Id answered %q, want the client's", got)
	}
	h, err := m.listHistory(user{}, swapmeetv1.ObjectType_OBJECT_TYPE_LISTING, lid, up.Msg.ConsistencyToken)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[1].Operation != "CREATED" {
		t.Fatalf("listing history %v: want the price edit over the creation", h)
	}
	wantEntry(t, h[0], seller.id, swapmeetv1connect.ListingServiceUpdateListingProcedure[1:], "price-cut-1", "price.amount_minor", "2500", "1900")

	placed, err := m.orders.PlaceOrder(ctx, authed(&swapmeetv1.PlaceOrderRequest{ListingIds: []string{lid}, IdempotencyKey: "history-1"}, buyer.token))
	if err != nil {
		t.Fatal(err)
	}
	oid := placed.Msg.OrderId
	h, err = m.listHistory(buyer, swapmeetv1.ObjectType_OBJECT_TYPE_ORDER, oid, placed.Msg.ConsistencyToken)
	if err != nil {
		t.Fatal(err)
	}
	// The order's row and its line, in one transaction.
	if len(h) != 2 {
		t.Fatalf("order history %v: want its creation and its line", h)
	}
	created := h[0]
	if created.Operation != "CREATED" {
		created = h[1]
	}
	wantEntry(t, created, buyer.id, swapmeetv1connect.OrderServicePlaceOrderProcedure[1:], "", "status", "", "PENDING")
	// The purchase marks the listing SOLD, in the listing's history; the
	// buyer's id shows to the buyer but not to the public.
	h, err = m.listHistory(buyer, swapmeetv1.ObjectType_OBJECT_TYPE_LISTING, lid, placed.Msg.ConsistencyToken)
	if err != nil {
		t.Fatal(err)
	}
	wantEntry(t, h[0], buyer.id, swapmeetv1connect.OrderServicePlaceOrderProcedure[1:], "", "status", "AVAILABLE", "SOLD")
	h, err = m.listHistory(user{}, swapmeetv1.ObjectType_OBJECT_TYPE_LISTING, lid, "")
	if err != nil {
		t.Fatal(err)
	}
	if h[0].ActorId != "" || h[0].Rpc == "" {
		t.Fatalf("the public sees %+v: want the purchase without the buyer's id", h[0])
	}

	paid, err := m.orders.MarkOrderPaid(ctx, authed(&swapmeetv1.MarkOrderPaidRequest{OrderId: oid}, buyer.token))
	if err != nil {
		t.Fatal(err)
	}
	h, err = m.listHistory(seller, swapmeetv1.ObjectType_OBJECT_TYPE_ORDER, oid, paid.Msg.ConsistencyToken)
	if err != nil {
		t.Fatal(err)
	}
	wantEntry(t, h[0], buyer.id, swapmeetv1connect.OrderServiceMarkOrderPaidProcedure[1:], "", "status", "PENDING", "PAID")

	shipped, err := m.orders.MarkOrderShipped(ctx, authed(&swapmeetv1.MarkOrderShippedRequest{OrderId: oid}, seller.token))
	if err != nil {
		t.Fatal(err)
	}
	h, err = m.listHistory(buyer, swapmeetv1.ObjectType_OBJECT_TYPE_ORDER, oid, shipped.Msg.ConsistencyToken)
	if err != nil {
		t.Fatal(err)
	}
	wantEntry(t, h[0], seller.id, swapmeetv1connect.OrderServiceMarkOrderShippedProcedure[1:], "", "status", "PAID", "SHIPPED")
	wantEntry(t, h[1], buyer.id, swapmeetv1connect.OrderServiceMarkOrderPaidProcedure[1:], "", "status", "PENDING", "PAID")

	// Who may read what.
	stranger := m.signUp("stranger")
	if _, err := m.listHistory(stranger, swapmeetv1.ObjectType_OBJECT_TYPE_ORDER, oid, ""); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("a stranger reading the order's history: %v, want NotFound", err)
	}
	if _, err := m.listHistory(user{}, swapmeetv1.ObjectType_OBJECT_TYPE_ORDER, oid, ""); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("an anonymous read of the order's history: %v, want Unauthenticated", err)
	}
	if _, err := m.listHistory(stranger, swapmeetv1.ObjectType_OBJECT_TYPE_USER, seller.id, ""); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("a stranger reading the seller's profile history: %v, want PermissionDenied", err)
	}
	if h, err := m.listHistory(seller, swapmeetv1.ObjectType_OBJECT_TYPE_USER, seller.id, ""); err != nil || len(h) != 1 || changeOf(h[0], "display_name") == nil {
		t.Fatalf("the seller's own profile history: %v, %v", h, err)
	}
	if _, err := m.listHistory(stranger, swapmeetv1.ObjectType_OBJECT_TYPE_UNSPECIFIED, oid, ""); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("no object type: %v, want InvalidArgument", err)
	}
}

// TestHistoryOfChangesOutsideTheAPI: a transaction that rolls back leaves
// nothing; an UPDATE made in SQL is recorded, with no actor.
func TestHistoryOfChangesOutsideTheAPI(t *testing.T) {
	m := newLiveMarket(t)
	seller := m.signUp("seller")
	lid := m.listing(seller, "Oak desk")

	tx, err := m.e.PG.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE listings SET price_minor = 1 WHERE id = $1`, lid); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.e.PG.Exec(ctx, `UPDATE listings SET title = 'Oak desk (fixed by hand)' WHERE id = $1`, lid); err != nil {
		t.Fatal(err)
	}
	p, err := sqlc.New(m.e.PG).CurrentPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h, err := m.listHistory(user{}, swapmeetv1.ObjectType_OBJECT_TYPE_LISTING, lid, db.PositionToken(p))
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 {
		t.Fatalf("history %v: want the SQL update over the creation, and nothing of the rollback", h)
	}
	if e := h[0]; e.ActorId != "" || e.Rpc != "" || e.RequestId != "" || changeOf(e, "title") == nil || changeOf(e, "title").After != "Oak desk (fixed by hand)" || changeOf(e, "price.amount_minor") != nil {
		t.Fatalf("the SQL update's entry %+v: want the title change, no actor", e)
	}
}

// TestOnlyTheApplicationMayAnnotate: a role other than the application's
// cannot write an annotation into the WAL, so it cannot pass its changes
// off as someone's request.
func TestOnlyTheApplicationMayAnnotate(t *testing.T) {
	m := newMarket(t)
	su := m.e.Superuser(t)
	role := fmt.Sprintf("intruder_%d_%d", os.Getpid(), keySeq.Add(1))
	if _, err := su.Exec(ctx, "CREATE ROLE "+role+" NOLOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = su.Exec(ctx, "DROP ROLE "+role) })
	tx, err := su.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+role); err != nil {
		t.Fatal(err)
	}
	_, err = tx.Exec(ctx, `SELECT pg_logical_emit_message(true, 'swapmeet.audit.v1', '{"actor":"someone"}')`)
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("another role emitted an annotation: %v", err)
	}
	// The application's role may.
	if _, err := m.e.PG.Exec(ctx, `SELECT pg_logical_emit_message(true, 'swapmeet.test', 'x')`); err != nil {
		t.Fatalf("the application's role cannot annotate: %v", err)
	}
}
