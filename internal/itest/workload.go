package itest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/swapmeet/swapmeet/internal/app"
)

// Workload drives a mixed marketplace write load through the app's
// commands: sign-ups, listings and edits, orders through their states,
// reviews and renames. Refusals that races make legitimate (a listing
// sold meanwhile) are part of the load; any other error stops it.
type Workload struct {
	app  *app.App
	rng  *rand.Rand
	tag  string
	Ops  atomic.Int64 // commands that changed something
	deny atomic.Int64 // commands refused by a business rule

	mu       sync.Mutex // guards users against readers in other goroutines
	users    []uuid.UUID
	listings []wlListing
	orders   []wlOrder
}

type wlListing struct {
	id, seller uuid.UUID
	version    int64
}

type wlOrder struct {
	id, buyer, seller uuid.UUID
	state             string
}

// NewWorkload returns a load generator; seed makes it repeatable.
func NewWorkload(a *app.App, seed uint64) *Workload {
	return &Workload{app: a, rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), tag: fmt.Sprint(seed)}
}

// Run issues commands until ctx ends or n commands have run (n <= 0: no limit).
func (w *Workload) Run(ctx context.Context, n int) error {
	for i := 0; n <= 0 || i < n; i++ {
		if ctx.Err() != nil {
			return nil
		}
		if err := w.Step(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	return nil
}

// Step issues one command.
func (w *Workload) Step(ctx context.Context) error {
	var err error
	switch r := w.rng.IntN(100); {
	case len(w.users) < 4 || r < 10:
		err = w.signUp(ctx)
	case len(w.listings) < 4 || r < 35:
		err = w.createListing(ctx)
	case r < 45:
		err = w.updateListing(ctx)
	case r < 60:
		err = w.placeOrder(ctx)
	case r < 85:
		err = w.advanceOrder(ctx)
	case r < 92:
		err = w.review(ctx)
	default:
		err = w.rename(ctx)
	}
	switch app.ErrorCode(err) {
	case 0:
		if err == nil {
			w.Ops.Add(1)
		}
		return err
	case app.CodeFailedPrecondition, app.CodeConflict, app.CodeAlreadyExists:
		w.deny.Add(1)
		return nil
	}
	return err
}

func (w *Workload) pickUser() uuid.UUID { return w.users[w.rng.IntN(len(w.users))] }

func (w *Workload) signUp(ctx context.Context) error {
	n := len(w.users)
	res, err := w.app.Commands.SignUp(ctx, fmt.Sprintf("w%s-%d@example.com", w.tag, n), "correct horse", fmt.Sprintf("User %d", n))
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.users = append(w.users, res.UserID)
	w.mu.Unlock()
	return nil
}

var words = []string{"vintage", "bike", "lamp", "camera", "guitar", "café", "chair", "record", "jacket", "console"}

func (w *Workload) createListing(ctx context.Context) error {
	seller := w.pickUser()
	title := words[w.rng.IntN(len(words))] + " " + words[w.rng.IntN(len(words))]
	res, err := w.app.Commands.CreateListing(ctx, seller, app.ListingInput{
		Title: title, Description: "Used, " + words[w.rng.IntN(len(words))], Category: "misc",
		Condition:  app.Conditions[w.rng.IntN(len(app.Conditions))],
		Price:      &app.Money{Currency: "EUR", Minor: int64(100 + w.rng.IntN(10000))},
		Attributes: map[string]string{"color": []string{"red", "blue", "green"}[w.rng.IntN(3)]},
	}, "")
	if err != nil {
		return err
	}
	w.listings = append(w.listings, wlListing{id: res.ID, seller: seller, version: res.Version})
	return nil
}

func (w *Workload) updateListing(ctx context.Context) error {
	i := w.rng.IntN(len(w.listings))
	l := w.listings[i]
	res, err := w.app.Commands.UpdateListing(ctx, l.seller, l.id.String(), l.version,
		app.ListingInput{Price: &app.Money{Currency: "EUR", Minor: int64(100 + w.rng.IntN(10000))}}, []string{"price"})
	if err != nil {
		return err
	}
	w.listings[i].version = res.Version
	return nil
}

func (w *Workload) placeOrder(ctx context.Context) error {
	l := w.listings[w.rng.IntN(len(w.listings))]
	buyer := w.pickUser()
	if buyer == l.seller {
		return nil
	}
	res, err := w.app.Commands.PlaceOrder(ctx, buyer, []string{l.id.String()}, uuid.NewString())
	if err != nil {
		return err
	}
	w.orders = append(w.orders, wlOrder{id: res.ID, buyer: buyer, seller: l.seller, state: app.OrderPending})
	return nil
}

func (w *Workload) advanceOrder(ctx context.Context) error {
	if len(w.orders) == 0 {
		return w.placeOrder(ctx)
	}
	i := w.rng.IntN(len(w.orders))
	o := &w.orders[i]
	var err error
	next := o.state
	switch {
	case (o.state == app.OrderPending || o.state == app.OrderPaid) && w.rng.IntN(5) == 0:
		_, err = w.app.Commands.CancelOrder(ctx, o.seller, o.id.String())
		next = app.OrderCancelled
	case o.state == app.OrderPending:
		_, err = w.app.Commands.MarkOrderPaid(ctx, o.buyer, o.id.String())
		next = app.OrderPaid
	case o.state == app.OrderPaid:
		_, err = w.app.Commands.MarkOrderShipped(ctx, o.seller, o.id.String())
		next = app.OrderShipped
	case o.state == app.OrderShipped:
		_, err = w.app.Commands.ConfirmDelivery(ctx, o.buyer, o.id.String())
		next = app.OrderDelivered
	default:
		return nil
	}
	if err == nil {
		o.state = next
	}
	return err
}

func (w *Workload) review(ctx context.Context) error {
	for _, o := range w.orders {
		if o.state == app.OrderDelivered {
			_, err := w.app.Commands.CreateReview(ctx, o.buyer, o.id.String(), int32(1+w.rng.IntN(5)), "ok")
			return err // AlreadyExists after the first time: a denial
		}
	}
	return nil
}

func (w *Workload) rename(ctx context.Context) error {
	name := fmt.Sprintf("Renamed %d", w.rng.IntN(1_000_000))
	_, err := w.app.Commands.UpdateProfile(ctx, w.pickUser(), &name, nil)
	return err
}

// UserIDs returns the users created so far (for readers).
func (w *Workload) UserIDs() []uuid.UUID {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]uuid.UUID(nil), w.users...)
}
