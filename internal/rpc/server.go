package rpc

import (
	"log/slog"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"

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

// CompressMinBytes is the smallest response that is compressed. Most
// responses are a few hundred bytes: compressing them costs more CPU than
// it saves on the wire.
const CompressMinBytes = 1024

// NewHandler returns the HTTP handler serving every service over Connect,
// gRPC and gRPC-Web, with health checks and reflection. Each service's
// handler, commands and queries together, is in the service's file.
// Queries are NO_SIDE_EFFECTS in the proto, so Connect serves them over
// HTTP GET as well as POST: browsers and proxies may cache them.
func NewHandler(a *app.App, log *slog.Logger, opts Options) http.Handler {
	handlerOpts := []connect.HandlerOption{
		connect.WithInterceptors(&edge{a: a, log: log, opts: opts}),
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
