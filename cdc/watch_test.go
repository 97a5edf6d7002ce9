package cdc_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/swapmeet/swapmeet/internal/app"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/live"
)

// TestWatchStreamsSurviveCDCKill: a listing's and a buyer's order streams
// stay open while the cdc process is SIGKILLed in the middle of a run of
// changes and restarted. Every later change reaches them, and no message
// shows an older state after a newer one, although the restarted process
// applies part of the run again.
func TestWatchStreamsSurviveCDCKill(t *testing.T) {
	e := itest.New(t)
	srv, a := e.StartAPIWith(t, itest.APIOptions{Watch: func(o *live.Options) { o.Heartbeat = 200 * time.Millisecond }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := startCDCProcess(t, e)
	e.WaitForSlot(t)

	seller, err := a.Commands.SignUp(ctx, "seller@example.com", "correct horse", "Seller")
	if err != nil {
		t.Fatal(err)
	}
	buyer, err := a.Commands.SignUp(ctx, "buyer@example.com", "correct horse", "Buyer")
	if err != nil {
		t.Fatal(err)
	}
	watched, err := a.Commands.CreateListing(ctx, seller.UserID, app.ListingInput{
		Title: "Lamp", Description: "Bright.", Category: "lamps", Condition: "GOOD", Price: &app.Money{Currency: "EUR", Minor: 1000},
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	sold, err := a.Commands.CreateListing(ctx, seller.UserID, app.ListingInput{
		Title: "Bike", Description: "Fast.", Category: "bikes", Condition: "GOOD", Price: &app.Money{Currency: "EUR", Minor: 9000},
	}, "")
	if err != nil {
		t.Fatal(err)
	}

	listings := swapmeetv1connect.NewListingServiceClient(srv.Client(), srv.URL)
	orders := swapmeetv1connect.NewOrderServiceClient(srv.Client(), srv.URL)
	ls, err := listings.WatchListing(ctx, connect.NewRequest(&swapmeetv1.WatchListingRequest{ListingId: watched.ID.String(), ResumeToken: watched.ConsistencyToken}))
	if err != nil {
		t.Fatal(err)
	}
	oreq := connect.NewRequest(&swapmeetv1.WatchOrdersRequest{ResumeToken: sold.ConsistencyToken})
	oreq.Header().Set("Authorization", "Bearer "+buyer.Token)
	os, err := orders.WatchOrders(ctx, oreq)
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		version int64
		status  swapmeetv1.OrderStatus
		err     error
	}
	lch, och := make(chan got, 1024), make(chan got, 1024)
	go func() {
		for ls.Receive() {
			if l := ls.Msg().Listing; l != nil {
				lch <- got{version: l.Version}
			}
		}
		lch <- got{err: fmt.Errorf("listing stream ended: %v", ls.Err())}
	}()
	go func() {
		for os.Receive() {
			if o := os.Msg().Order; o != nil {
				och <- got{status: o.Status}
			}
			if os.Msg().Resync {
				och <- got{err: fmt.Errorf("resync within the feed's history")}
			}
		}
		och <- got{err: fmt.Errorf("order stream ended: %v", os.Err())}
	}()

	const updates = 45
	var orderID string
	for v := int64(1); v <= updates; v++ {
		if _, err := a.Commands.UpdateListing(ctx, seller.UserID, watched.ID.String(), v, app.ListingInput{Price: &app.Money{Currency: "EUR", Minor: 1000 + v}}, []string{"price"}); err != nil {
			t.Fatal(err)
		}
		switch v {
		case 5:
			o, err := a.Commands.PlaceOrder(ctx, buyer.UserID, []string{sold.ID.String()}, "k")
			if err != nil {
				t.Fatal(err)
			}
			orderID = o.ID.String()
		case 15: // the cdc dies with changes in flight
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
		case 20: // while it is down
			if _, err := a.Commands.MarkOrderPaid(ctx, buyer.UserID, orderID); err != nil {
				t.Fatal(err)
			}
		case 30:
			cmd = startCDCProcess(t, e)
		case 35:
			if _, err := a.Commands.MarkOrderShipped(ctx, seller.UserID, orderID); err != nil {
				t.Fatal(err)
			}
		}
	}

	deadline := time.After(90 * time.Second)
	last := int64(0)
	for last < updates+1 {
		select {
		case g := <-lch:
			if g.err != nil {
				t.Fatal(g.err)
			}
			if g.version <= last {
				t.Fatalf("listing version %d after %d", g.version, last)
			}
			last = g.version
		case <-deadline:
			t.Fatalf("the listing stream reached version %d of %d", last, updates+1)
		}
	}
	rank := map[swapmeetv1.OrderStatus]int{1: 1, 2: 2, 3: 3, 4: 4}
	lastRank := 0
	for lastRank < rank[swapmeetv1.OrderStatus_ORDER_STATUS_SHIPPED] {
		select {
		case g := <-och:
			if g.err != nil {
				t.Fatal(g.err)
			}
			if rank[g.status] < lastRank {
				t.Fatalf("order went back to %s", g.status)
			}
			lastRank = rank[g.status]
		case <-deadline:
			t.Fatalf("the order stream reached rank %d, not SHIPPED", lastRank)
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
}
