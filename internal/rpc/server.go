package rpc

import (
	"log/slog"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"connectrpc.com/otelconnect"

	"github.com/swapmeet/swapmeet/internal/app"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
	"github.com/swapmeet/swapmeet/internal/live"
)

// Options tune the edge.
type Options struct {
	// MaxRequestBytes rejects larger request messages with ResourceExhausted
	// before they are decoded.
	MaxRequestBytes int
	// Metrics, if set, records every request.
	Metrics *Metrics
	// Timeout is the server's deadline for a unary RPC; a query's
	// consistency wait is added on top. Zero means no server deadline.
	Timeout time.Duration
	// ClientIPHeader, if set, is the header a trusted proxy puts the
	// client's address in; otherwise the peer address is the client's.
	ClientIPHeader string
	// Live serves the Watch streams; without it they are Unavailable.
	Live *live.Hub
	// Health, if set, makes the gRPC health service's checker for the
	// services; without it every service always reports SERVING.
	Health func(services ...string) grpchealth.Checker
}

// newTracing is the interceptor that runs each RPC in a span of the
// global TracerProvider, a no-op unless the process configured tracing
// (system.StartTracing). A caller's traceparent header, read with the
// global propagator, is the span's parent: a client's trace continues
// through the write, the CDC and the Watch streams. It records no
// metrics (the edge does), no peer address and no per-message events.
func newTracing() (*otelconnect.Interceptor, error) {
	return otelconnect.NewInterceptor(
		otelconnect.WithTrustRemote(),
		otelconnect.WithoutServerPeerAttributes(),
		otelconnect.WithoutMetrics(),
		otelconnect.WithoutTraceEvents(),
	)
}

// CompressMinBytes is the smallest response that is compressed. Most
// responses are a few hundred bytes: compressing them costs more CPU than
// it saves on the wire.
const CompressMinBytes = 1024

// NewHandler returns the HTTP handler serving every service over Connect,
// gRPC and gRPC-Web, with health checks and reflection. Each service's
// handler, commands and queries together, is in the service's file.
// Queries are NO_SIDE_EFFECTS in the proto, so Connect serves them over
// HTTP GET as well as POST: browsers and proxies may cache them.
//
// Every RPC runs in a span (otelconnect, outside the edge), so that what
// the handler writes is annotated with the RPC's trace.
func NewHandler(a *app.App, log *slog.Logger, opts Options) http.Handler {
	interceptors := []connect.Interceptor{&edge{a: a, log: log, opts: opts}}
	if tracing, err := newTracing(); err != nil {
		log.Error("rpc: tracing is off", "err", err)
	} else {
		interceptors = append([]connect.Interceptor{tracing}, interceptors...)
	}
	handlerOpts := []connect.HandlerOption{
		connect.WithInterceptors(interceptors...),
		connect.WithReadMaxBytes(opts.MaxRequestBytes),
		connect.WithCompressMinBytes(CompressMinBytes),
	}
	mux := http.NewServeMux()
	services := []string{
		swapmeetv1connect.UserServiceName,
		swapmeetv1connect.ListingServiceName,
		swapmeetv1connect.OrderServiceName,
		swapmeetv1connect.ReviewServiceName,
		swapmeetv1connect.HistoryServiceName,
	}
	mux.Handle(swapmeetv1connect.NewUserServiceHandler(&UserHandler{app: a}, handlerOpts...))
	mux.Handle(swapmeetv1connect.NewListingServiceHandler(&ListingHandler{app: a, live: opts.Live}, handlerOpts...))
	mux.Handle(swapmeetv1connect.NewOrderServiceHandler(&OrderHandler{app: a, live: opts.Live}, handlerOpts...))
	mux.Handle(swapmeetv1connect.NewReviewServiceHandler(&ReviewHandler{app: a}, handlerOpts...))
	mux.Handle(swapmeetv1connect.NewHistoryServiceHandler(&HistoryHandler{app: a}, handlerOpts...))

	var health grpchealth.Checker = grpchealth.NewStaticChecker(services...)
	if opts.Health != nil {
		health = opts.Health(services...)
	}
	mux.Handle(grpchealth.NewHandler(health))
	reflector := grpcreflect.NewStaticReflector(services...)
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	return mux
}
