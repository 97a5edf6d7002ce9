package rpc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"connectrpc.com/connect"

	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
)

// recv is one message or error of a stream, read on its own goroutine so a
// test can wait for it with a deadline.
type recv[T any] struct {
	msg *T
	err error
}

// receive reads a server stream into a channel until it ends.
func receive[T any](s *connect.ServerStreamForClient[T]) <-chan recv[T] {
	out := make(chan recv[T], 1024)
	go func() {
		defer close(out)
		for s.Receive() {
			out <- recv[T]{msg: s.Msg()}
		}
		out <- recv[T]{err: s.Err()}
	}()
	return out
}

// next waits for the next message that is not a heartbeat.
func nextListing(t *testing.T, ch <-chan recv[swapmeetv1.WatchListingResponse], within time.Duration) (*swapmeetv1.WatchListingResponse, error) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case r, ok := <-ch:
			if !ok {
				return nil, errors.New("stream closed")
			}
			if r.err != nil {
				return nil, r.err
			}
			if r.msg.ResumeToken == "" {
				t.Fatalf("a message without a resume token: %v", r.msg)
			}
			if r.msg.Listing != nil {
				return r.msg, nil
			}
		case <-deadline:
			t.Fatalf("no listing message within %s", within)
		}
	}
}

func TestWatchListingSendsTheCurrentStateThenEachChange(t *testing.T) {
	m := newMarket(t)
	m.e.StartCDC(t)
	seller := m.signUp("seller")
	created, err := m.listings.CreateListing(ctx, authed(validListing("Lamp"), seller.token))
	if err != nil {
		t.Fatal(err)
	}
	id := created.Msg.ListingId

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The write's token as the resume token: the listing is there, and
	// unchanged since, so the first message is a heartbeat.
	s, err := m.listings.WatchListing(ctx, connect.NewRequest(&swapmeetv1.WatchListingRequest{ListingId: id, ResumeToken: created.Msg.ConsistencyToken}))
	if err != nil {
		t.Fatal(err)
	}
	ch := receive(s)
	if r := <-ch; r.err != nil || r.msg.Listing != nil || r.msg.ResumeToken == "" {
		t.Fatalf("first message %v, %v: want a heartbeat with a token", r.msg, r.err)
	}
	// Without a token, the first message is the current state.
	s2, err := m.listings.WatchListing(ctx, connect.NewRequest(&swapmeetv1.WatchListingRequest{ListingId: id}))
	if err != nil {
		t.Fatal(err)
	}
	first, err := nextListing(t, receive(s2), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if first.Listing.Version != 1 {
		t.Fatalf("first state at version %d, want 1", first.Listing.Version)
	}
	for v := int64(1); v < 4; v++ {
		if _, err := m.listings.UpdateListing(ctx, authed(&swapmeetv1.UpdateListingRequest{
			ListingId: id, ExpectedVersion: v, Price: eur(1000 + v), UpdateMask: mask("price"),
		}, seller.token)); err != nil {
			t.Fatal(err)
		}
		got, err := nextListing(t, ch, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got.Listing.Version != v+1 || got.Listing.Price.AmountMinor != 1000+v {
			t.Fatalf("after update %d: version %d price %d", v, got.Listing.Version, got.Listing.Price.AmountMinor)
		}
	}
}
