package cdc_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/swapmeet/swapmeet/cdc/wal"
	"github.com/swapmeet/swapmeet/internal/app"
	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/system"
)

// TestEveryStageLagIsObserved: a batch applied by the CDC process is
// observed in swapmeet_cdc_stage_lag_seconds at each stage, from the
// reader's (received, decoded) to the projector's (written, evicted, fed,
// announced), with a lag that is a real, bounded number of seconds.
func TestEveryStageLagIsObserved(t *testing.T) {
	e := itest.New(t)
	reg := prometheus.NewRegistry()
	m := wal.NewMetrics(reg)
	e.RunCDC(t, system.NewCDC(e.Config(), e.Clients(), e.Log, m))
	stages := []string{"received", "decoded", "written", "evicted", "fed", "announced"}
	lags := gather(t, reg)["swapmeet_cdc_stage_lag_seconds"]
	for _, s := range stages {
		if l, ok := lags[s]; !ok || l[1] != 0 {
			t.Fatalf("stage %q: %g observations (present: %v) before any batch, want a series with none", s, l[1], ok)
		}
	}

	_, a := e.StartAPI(t)
	ctx := context.Background()
	seller, err := a.Commands.SignUp(ctx, "stages@example.com", "correct horse", "Seller")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Commands.CreateListing(ctx, seller.UserID, app.ListingInput{
		Title: "Lamp", Description: "Bright.", Category: "lamps", Condition: "GOOD", Price: &app.Money{Currency: "EUR", Minor: 1000},
	}, ""); err != nil {
		t.Fatal(err)
	}
	itest.Eventually(t, 10*time.Second, "every stage observed", func() (bool, error) {
		lags := gather(t, reg)["swapmeet_cdc_stage_lag_seconds"]
		for _, s := range stages {
			if lags[s][1] == 0 {
				return false, nil
			}
			if avg := lags[s][0] / lags[s][1]; math.IsNaN(avg) || avg < 0 || avg > 30 {
				return false, fmt.Errorf("stage %q: a mean lag of %gs", s, avg)
			}
		}
		return true, nil
	})
}

// gathered reads reg's series: for each family, each labelled series'
// value (a counter's or gauge's) or sum and count (a histogram's), keyed
// by the family's name and the label's value ("" when unlabelled).
type gathered map[string]map[string][2]float64

func gather(t *testing.T, reg *prometheus.Registry) gathered {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	g := gathered{}
	for _, f := range families {
		series := map[string][2]float64{}
		for _, m := range f.GetMetric() {
			label := ""
			if ls := m.GetLabel(); len(ls) > 0 {
				label = ls[0].GetValue()
			}
			switch {
			case m.GetHistogram() != nil:
				series[label] = [2]float64{m.GetHistogram().GetSampleSum(), float64(m.GetHistogram().GetSampleCount())}
			case m.GetCounter() != nil:
				series[label] = [2]float64{m.GetCounter().GetValue()}
			case m.GetGauge() != nil:
				series[label] = [2]float64{m.GetGauge().GetValue()}
			}
		}
		g[f.GetName()] = series
	}
	return g
}

// measuredMarket runs a CDC whose metrics are on reg, and an API with a
// seller signed up.
func measuredMarket(t *testing.T) (*itest.Env, *prometheus.Registry, *app.App, uuid.UUID) {
	e := itest.New(t)
	reg := prometheus.NewRegistry()
	e.RunCDC(t, system.NewCDC(e.Config(), e.Clients(), e.Log, wal.NewMetrics(reg)))
	_, a := e.StartAPI(t)
	seller, err := a.Commands.SignUp(context.Background(), "seller@example.com", "correct horse", "Seller")
	if err != nil {
		t.Fatal(err)
	}
	return e, reg, a, seller.UserID
}

// TestStageSharesSumToTheLag: the seconds each stage added
// (swapmeet_cdc_stage_seconds_total) sum to the batches' lag from commit
// to announced, and the stages that do work took some of it.
func TestStageSharesSumToTheLag(t *testing.T) {
	e, reg, a, seller := measuredMarket(t)
	ctx := context.Background()
	for i := range 5 {
		w, err := a.Commands.CreateListing(ctx, seller, app.ListingInput{
			Title: fmt.Sprintf("Lamp %d", i), Description: "Bright.", Category: "lamps", Condition: "GOOD", Price: &app.Money{Currency: "EUR", Minor: 1000},
		}, "")
		if err != nil {
			t.Fatal(err)
		}
		waitForVersion(t, e, w)
	}
	g := gather(t, reg)
	announced := g["swapmeet_cdc_stage_lag_seconds"]["announced"][0]
	var sum float64
	for stage, v := range g["swapmeet_cdc_stage_seconds_total"] {
		sum += v[0]
		if v[0] <= 0 && stage != "decoded" && stage != "fed" && stage != "evicted" {
			t.Errorf("stage %q added %gs to 6 batches, want some time", stage, v[0])
		}
	}
	t.Logf("seconds each stage added over 6 batches: %v", g["swapmeet_cdc_stage_seconds_total"])
	if announced <= 0 || math.Abs(sum-announced) > 1e-6 {
		t.Fatalf("the stages add up to %gs, the batches' lag to announced is %gs: want them equal", sum, announced)
	}
}

// waitForVersion waits until the read side holds the listing w wrote.
func waitForVersion(t *testing.T, e *itest.Env, w app.Written) {
	t.Helper()
	itest.Eventually(t, 10*time.Second, "the write applied", func() (bool, error) {
		l, err := readstore.Find[readstore.Listing](context.Background(), e.Reads, readstore.Listings, w.ID.String())
		if errors.Is(err, readstore.ErrNotFound) {
			return false, nil
		}
		return err == nil && l.Version >= w.Version, err
	})
}

// oneRowBatchRoundTrips is what a batch of one listing update costs each
// store when nothing retries: docs/cdc.md, "Round trips of a batch".
var oneRowBatchRoundTrips = map[string]float64{
	"postgres":  3, // BEGIN with the snapshot, the listing with its images, ROLLBACK
	"search":    2, // the search row; the history with the applied position
	"readstore": 1, // the upsert
	"redis":     2, // tombstone, page epoch and change feed in one pipeline; the announcement
}

// TestAOneRowBatchMakesTheFewestRoundTrips updates one listing at a time
// and reads, from swapmeet_cdc_batch_round_trips, what the batch that
// applied it cost each store. A pooled connection idle for a second is
// pinged, and a commit read before it is visible is read again, so the
// count is the least over several batches of one update each.
func TestAOneRowBatchMakesTheFewestRoundTrips(t *testing.T) {
	e, reg, a, seller := measuredMarket(t)
	ctx := context.Background()
	in := app.ListingInput{Title: "Lamp", Description: "Bright.", Category: "lamps", Condition: "GOOD", Price: &app.Money{Currency: "EUR", Minor: 1000}}
	w, err := a.Commands.CreateListing(ctx, seller, in, "")
	if err != nil {
		t.Fatal(err)
	}
	waitForVersion(t, e, w)
	least := map[string]float64{}
	samples := 0
	for i := range 8 {
		before := gather(t, reg)
		in.Price.Minor = int64(1001 + i)
		w, err = a.Commands.UpdateListing(ctx, seller, w.ID.String(), w.Version, in, []string{"price"})
		if err != nil {
			t.Fatal(err)
		}
		waitForVersion(t, e, w)
		var after gathered
		itest.Eventually(t, 10*time.Second, "the batch counted", func() (bool, error) {
			after = gather(t, reg)
			return after["swapmeet_cdc_batches_applied_total"][""][0] > before["swapmeet_cdc_batches_applied_total"][""][0], nil
		})
		if after["swapmeet_cdc_batches_applied_total"][""][0] != before["swapmeet_cdc_batches_applied_total"][""][0]+1 {
			continue // another batch (a tail flush) came in between
		}
		samples++
		for store := range oneRowBatchRoundTrips {
			n := after["swapmeet_cdc_batch_round_trips"][store][0] - before["swapmeet_cdc_batch_round_trips"][store][0]
			if v, ok := least[store]; !ok || n < v {
				least[store] = n
			}
		}
	}
	if samples < 4 {
		t.Fatalf("only %d of 8 updates were applied in a batch of their own", samples)
	}
	t.Logf("round trips of a one-row batch: %v", least)
	for store, want := range oneRowBatchRoundTrips {
		if least[store] != want {
			t.Errorf("%s: a one-row batch makes %g round trips, want %g", store, least[store], want)
		}
	}
}
