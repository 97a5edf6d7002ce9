package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/system"
)

// readyz fetches url's /readyz: its status and the checks it says fail.
func readyz(base string) (int, map[string]string, error) {
	res, err := http.Get(base + "/readyz")
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	var r system.Readiness
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		return res.StatusCode, nil, err
	}
	return res.StatusCode, r.Failing, nil
}

// grpcHealth asks the gRPC health service (over Connect's JSON) for the
// whole server's status.
func grpcHealth(base string) (string, error) {
	res, err := http.Post(base+"/grpc.health.v1.Health/Check", "application/json", strings.NewReader(`{}`))
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var r struct{ Status string }
	if err := json.Unmarshal(b, &r); err != nil {
		return "", err
	}
	return r.Status, nil
}

// TestReadinessFollowsTheStores: `serve` and `cdc` answer /healthz while
// they run, and /readyz, the gRPC health service and `swapmeet ready` say
// ready only while their dependencies answer: serve is not ready before a
// CDC has initialised the read side (no projections pointer) and while its
// Postgres does not answer, and is ready again after each.
func TestReadinessFollowsTheStores(t *testing.T) {
	e := itest.New(t)
	pg, err := url.Parse(e.PGURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := itest.StartProxy(t, pg.Host)
	proxied := *pg
	proxied.Host = proxy.Addr()

	api := startReplica(t, e, "serve", "SWAPMEET_PG_URL="+proxied.String())
	publicURL, metricsURL := "http://"+api.addr, strings.TrimSuffix(api.metrics, "/metrics")
	readyCmd := func() int {
		code, _, _ := runSwapmeet(t, []string{"ready"}, append(e.Environ(), "SWAPMEET_API_METRICS_ADDR="+strings.TrimPrefix(metricsURL, "http://"))...)
		return code
	}

	for _, base := range []string{publicURL, metricsURL} {
		res, err := http.Get(base + "/healthz")
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("%s/healthz: %v %v", base, res, err)
		}
		res.Body.Close()
	}
	expect := func(what string, ready bool, failing string) {
		t.Helper()
		itest.Eventually(t, 30*time.Second, what, func() (bool, error) {
			code, why, err := readyz(metricsURL)
			if err != nil {
				return false, err
			}
			if ready != (code == http.StatusOK) || (failing != "" && why[failing] == "") {
				return false, fmt.Errorf("/readyz answered %d, failing %v", code, why)
			}
			pcode, pwhy, err := readyz(publicURL)
			if err != nil || pcode != code {
				return false, err
			}
			for name, v := range pwhy {
				if v != "failing" {
					t.Errorf("the public /readyz says why %s fails: %q", name, v)
				}
			}
			status, err := grpcHealth(publicURL)
			if err != nil {
				return false, err
			}
			return (status == "SERVING_STATUS_SERVING") == ready, fmt.Errorf("gRPC health says %s", status)
		})
		if code := readyCmd(); (code == 0) != ready {
			t.Errorf("%s: swapmeet ready exited %d", what, code)
		}
	}
	expect("serve not ready before the read side is initialised", false, "pointer")

	_, cdcOut := e.StartProcess(t, []string{"cdc"}, "SWAPMEET_CDC_METRICS_ADDR=127.0.0.1:0")
	var cdcMetrics string
	itest.Eventually(t, 60*time.Second, "the cdc's metrics address", func() (bool, error) {
		m := metricsAt.FindStringSubmatch(cdcOut.String())
		if m != nil {
			cdcMetrics = strings.TrimSuffix(m[1], "/metrics")
		}
		return m != nil, nil
	})
	// A first start creates a slot, which waits for every transaction
	// open on the cluster: other packages' tests share it.
	itest.Eventually(t, 2*time.Minute, "the cdc to be ready, as the leader", func() (bool, error) {
		res, err := http.Get(cdcMetrics + "/readyz")
		if err != nil {
			return false, err
		}
		defer res.Body.Close()
		var r system.Readiness
		if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
			return false, err
		}
		return res.StatusCode == http.StatusOK && r.Details["role"] == "leader", fmt.Errorf("/readyz %d: %+v", res.StatusCode, r)
	})
	expect("serve ready once the cdc initialised the read side", true, "")

	proxy.Hold()
	expect("serve not ready while its Postgres does not answer", false, "postgres")
	proxy.Release()
	expect("serve ready again once its Postgres answers", true, "")
}
