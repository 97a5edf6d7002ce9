package cdc_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swapmeet/swapmeet/cdc/wal"
	"github.com/swapmeet/swapmeet/internal/app"
	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/system"
)

// stageLags reads swapmeet_cdc_stage_lag_seconds from reg: each stage's
// observations and their sum.
func stageLags(reg *prometheus.Registry) (count map[string]uint64, sum map[string]float64, err error) {
	families, err := reg.Gather()
	if err != nil {
		return nil, nil, err
	}
	count, sum = map[string]uint64{}, map[string]float64{}
	for _, f := range families {
		if f.GetName() != "swapmeet_cdc_stage_lag_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "stage" {
					count[l.GetValue()] = m.GetHistogram().GetSampleCount()
					sum[l.GetValue()] = m.GetHistogram().GetSampleSum()
				}
			}
		}
	}
	return count, sum, nil
}

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
	count, _, err := stageLags(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stages {
		if n, ok := count[s]; !ok || n != 0 {
			t.Fatalf("stage %q: %d observations (present: %v) before any batch, want a series with none", s, n, ok)
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
		count, sum, err := stageLags(reg)
		if err != nil {
			return false, err
		}
		for _, s := range stages {
			if count[s] == 0 {
				return false, nil
			}
			if avg := sum[s] / float64(count[s]); math.IsNaN(avg) || avg < 0 || avg > 30 {
				return false, fmt.Errorf("stage %q: a mean lag of %gs", s, avg)
			}
		}
		return true, nil
	})
}
