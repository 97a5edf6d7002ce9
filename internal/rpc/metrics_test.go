package rpc

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetricsObserve(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	const a, b = "/svc.A/Get", "/svc.B/Put"
	for range 3 {
		m.observe(a, codeOK, time.Millisecond)
	}
	m.observe(a, "not_found", time.Millisecond)
	m.observe(b, "invalid_argument", time.Second)
	m.observe(b, codeOK, time.Second)

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}   // procedure code -> requests
	latencies := map[string]uint64{} // procedure -> observations
	for _, f := range families {
		for _, s := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch f.GetName() {
			case "swapmeet_rpc_requests_total":
				counts[labels["procedure"]+" "+labels["code"]] = s.GetCounter().GetValue()
			case "swapmeet_rpc_request_seconds":
				latencies[labels["procedure"]] = s.GetHistogram().GetSampleCount()
			}
		}
	}
	wantCounts := map[string]float64{a + " ok": 3, a + " not_found": 1, b + " invalid_argument": 1, b + " ok": 1}
	if len(counts) != len(wantCounts) {
		t.Errorf("requests_total = %v, want %v", counts, wantCounts)
	}
	for k, v := range wantCounts {
		if counts[k] != v {
			t.Errorf("requests_total{%s} = %v, want %v", k, counts[k], v)
		}
	}
	if latencies[a] != 4 || latencies[b] != 2 || len(latencies) != 2 {
		t.Errorf("request_seconds counts = %v, want %s: 4, %s: 2", latencies, a, b)
	}
	var nilMetrics *Metrics
	nilMetrics.observe(a, codeOK, time.Millisecond) // records nothing, no panic
}
