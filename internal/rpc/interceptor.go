package rpc

import (
	"context"
	"log/slog"
	"time"

	"connectrpc.com/connect"

	"github.com/swapmeet/swapmeet/internal/app"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
)

// edge is the interceptor every RPC passes: it sets the server's deadline,
// resolves the caller from the session token, counts writes against the
// client's limit, translates errors, and logs the outcome.
func edge(a *app.App, log *slog.Logger, opts Options) connect.UnaryInterceptorFunc {
	m := opts.Metrics
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			start := time.Now()
			procedure := req.Spec().Procedure
			resp, err := func() (connect.AnyResponse, error) {
				query := req.Spec().IdempotencyLevel == connect.IdempotencyNoSideEffects
				if opts.Timeout > 0 {
					// A query's consistency wait comes on top: the deadline
					// never cuts it short. A client's earlier deadline stands.
					d := opts.Timeout
					if query {
						d += a.Queries.ConsistencyWait()
					}
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, d)
					defer cancel()
				}
				ctx = app.WithClient(ctx, clientAddr(req.Peer().Addr, req.Header(), opts.ClientIPHeader))
				if !query && !selfLimited[procedure] {
					if err := a.Commands.AllowWrite(ctx); err != nil {
						return nil, err
					}
				}
				token, ok, err := bearerToken(req.Header().Get("Authorization"))
				if err != nil {
					return nil, err
				}
				if ok {
					id, err := a.Commands.Authenticate(ctx, token)
					if err != nil {
						return nil, err
					}
					ctx = context.WithValue(ctx, callerKey{}, caller{userID: id, token: token})
				}
				return next(ctx, req)
			}()
			if err != nil {
				err = toConnect(log, procedure, err)
			}
			took := time.Since(start)
			m.observe(procedure, codeOf(err), took)
			log.LogAttrs(ctx, slog.LevelDebug, "rpc",
				slog.String("procedure", procedure),
				slog.String("code", codeOf(err)),
				slog.Duration("took", took))
			return resp, err
		}
	}
}

// selfLimited are the writes the app limits itself, more tightly.
var selfLimited = map[string]bool{
	swapmeetv1connect.UserServiceSignUpProcedure: true,
	swapmeetv1connect.UserServiceSignInProcedure: true,
}

func codeOf(err error) string {
	if err == nil {
		return "ok"
	}
	return connect.CodeOf(err).String()
}
