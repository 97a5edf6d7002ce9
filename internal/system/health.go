package system

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"golang.org/x/sync/errgroup"
)

// Health is what a process says about itself to orchestrators and load
// balancers: /healthz (alive: it answers at all), /readyz (ready: every
// check passes) and the gRPC health service, which reports the same
// readiness. The checks run at most once per healthTTL, together, each
// bounded by healthTimeout, so a flood of probes costs the stores nothing.
type Health struct {
	checks []healthCheck
	extra  func() map[string]any // details the report adds (the CDC's role and lag)

	mu   sync.Mutex
	at   time.Time
	last Readiness
}

type healthCheck struct {
	name string
	fn   func(context.Context) error
}

// Readiness is one round of checks.
type Readiness struct {
	Ready   bool              `json:"ready"`
	Failing map[string]string `json:"failing,omitempty"` // check name: why
	Details map[string]any    `json:"details,omitempty"`
}

const (
	healthTTL     = time.Second
	healthTimeout = 2 * time.Second
)

// NewHealth returns a Health with no checks: ready.
func NewHealth() *Health { return &Health{} }

// storeHealth checks that each store of c answers: Postgres, the read
// store, the search store and Redis.
func storeHealth(c *Clients) *Health {
	return NewHealth().
		Check("postgres", func(ctx context.Context) error { return c.PG.Ping(ctx) }).
		Check("mongo", c.Reads.Ping).
		Check("search", func(ctx context.Context) error { return c.Search.Pool().Ping(ctx) }).
		Check("redis", func(ctx context.Context) error { return c.Redis.Ping(ctx).Err() })
}

// Check adds a named check: it passes when fn returns nil.
func (h *Health) Check(name string, fn func(context.Context) error) *Health {
	h.checks = append(h.checks, healthCheck{name, fn})
	return h
}

// Details adds what f returns to every report.
func (h *Health) Details(f func() map[string]any) *Health {
	h.extra = f
	return h
}

// Readiness runs the checks, or returns the last round if it is recent.
func (h *Health) Readiness(ctx context.Context) Readiness {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.at.IsZero() && time.Since(h.at) < healthTTL {
		return h.last
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), healthTimeout)
	defer cancel()
	why := make([]error, len(h.checks))
	var g errgroup.Group
	for i, c := range h.checks {
		g.Go(func() error {
			why[i] = c.fn(ctx)
			return nil
		})
	}
	_ = g.Wait()
	r := Readiness{Ready: true}
	for i, c := range h.checks {
		if why[i] != nil {
			if r.Failing == nil {
				r.Failing = map[string]string{}
			}
			r.Ready = false
			r.Failing[c.name] = why[i].Error()
		}
	}
	if h.extra != nil {
		r.Details = h.extra()
	}
	h.at, h.last = time.Now(), r
	return r
}

// Handler serves GET /healthz and GET /readyz. With detail, /readyz
// names why each failing check fails (for the operators' address);
// without, only which checks fail (for the public one: errors name hosts).
func (h *Health) Handler(detail bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		rd := h.Readiness(r.Context())
		if !detail {
			names := make(map[string]string, len(rd.Failing))
			for n := range rd.Failing {
				names[n] = "failing"
			}
			rd = Readiness{Ready: rd.Ready, Failing: names}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !rd.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(rd)
	})
	return mux
}

// Routes sends /healthz and /readyz to h and every other path to next.
func (h *Health) Routes(detail bool, next http.Handler) http.Handler {
	hh := h.Handler(detail)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			hh.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// GRPC is the gRPC health service's checker for services: SERVING while
// ready, NOT_SERVING otherwise, for the whole server ("") and each of them.
func (h *Health) GRPC(services ...string) grpchealth.Checker {
	return grpcHealth{h, services}
}

type grpcHealth struct {
	h        *Health
	services []string
}

func (g grpcHealth) Check(ctx context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	if req.Service != "" && !slices.Contains(g.services, req.Service) {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("unknown service "+req.Service))
	}
	if g.h.Readiness(ctx).Ready {
		return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
}

// AskReady asks the process whose metrics address is addr for /readyz. An
// unspecified host (0.0.0.0, ::, none) means this host.
func AskReady(ctx context.Context, addr string) (ready bool, body string, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false, "", err
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, healthTimeout+3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/readyz", nil)
	if err != nil {
		return false, "", err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return false, "", err
	}
	return res.StatusCode == http.StatusOK, string(b), nil
}
