package rpc

import (
	"context"
	"log/slog"
	"time"

	"connectrpc.com/connect"

	"github.com/swapmeet/swapmeet/internal/app"
)

// edge is the interceptor every RPC passes: it resolves the caller from
// the session token, translates errors, and logs the outcome.
func edge(a *app.App, log *slog.Logger, m *Metrics) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			start := time.Now()
			procedure := req.Spec().Procedure
			resp, err := func() (connect.AnyResponse, error) {
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

func codeOf(err error) string {
	if err == nil {
		return "ok"
	}
	return connect.CodeOf(err).String()
}
