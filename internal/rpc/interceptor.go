package rpc

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/swapmeet/swapmeet/internal/app"
	"github.com/swapmeet/swapmeet/internal/audit"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
)

// edge is the interceptor every RPC passes: it sets a unary RPC's
// deadline, resolves the caller from the session token, counts writes
// against the client's limit, translates errors, and logs the outcome.
type edge struct {
	a    *app.App
	log  *slog.Logger
	opts Options
}

// identify records the caller a session token proves, if one is sent.
func (e *edge) identify(ctx context.Context, h http.Header) (context.Context, error) {
	token, ok, err := bearerToken(h.Get("Authorization"))
	if err != nil || !ok {
		return ctx, err
	}
	id, err := e.a.Commands.Authenticate(ctx, token)
	if err != nil {
		return ctx, err
	}
	return context.WithValue(ctx, callerKey{}, caller{userID: id, token: token}), nil
}

// done translates, counts and logs an RPC's outcome.
func (e *edge) done(ctx context.Context, procedure string, start time.Time, err error) error {
	if err != nil {
		err = toConnect(e.log, procedure, err)
	}
	took := time.Since(start)
	code := codeOf(err)
	e.opts.Metrics.observe(procedure, code, took)
	if e.log.Enabled(ctx, slog.LevelDebug) {
		e.log.LogAttrs(ctx, slog.LevelDebug, "rpc",
			slog.String("procedure", procedure),
			slog.String("request_id", audit.RequestFrom(ctx).RequestID),
			slog.String("code", code),
			slog.Duration("took", took))
	}
	return err
}

func (e *edge) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		start := time.Now()
		procedure := req.Spec().Procedure
		rid := requestID(req.Header())
		ctx = audit.WithRequest(ctx, audit.Request{RPC: strings.TrimPrefix(procedure, "/"), RequestID: rid})
		resp, err := func() (connect.AnyResponse, error) {
			query := req.Spec().IdempotencyLevel == connect.IdempotencyNoSideEffects
			if e.opts.Timeout > 0 {
				// A query's consistency wait comes on top: the deadline
				// never cuts it short. A client's earlier deadline stands.
				d := e.opts.Timeout
				if query {
					d += e.a.Queries.ConsistencyWait()
				}
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, d)
				defer cancel()
			}
			ctx = app.WithClient(ctx, clientAddr(req.Peer().Addr, req.Header(), e.opts.ClientIPHeader))
			switch {
			case query:
				if err := e.a.Commands.AllowQuery(ctx); err != nil {
					return nil, err
				}
			case !selfLimited[procedure]:
				if err := e.a.Commands.AllowWrite(ctx); err != nil {
					return nil, err
				}
			}
			ctx, err := e.identify(ctx, req.Header())
			if err != nil {
				return nil, err
			}
			resp, err := next(ctx, req)
			if resp != nil && req.Header().Get("Authorization") != "" {
				// An answer to a caller with credentials (an order, a
				// buyer's list) is theirs alone: no shared cache keeps it,
				// and no cache keeps it at all (Connect serves queries
				// over GET, which caches would otherwise store).
				resp.Header().Set("Cache-Control", "private, no-store")
			}
			return resp, err
		}()
		err = e.done(ctx, procedure, start, err)
		if resp != nil {
			resp.Header().Set(requestIDHeader, rid)
		}
		var cerr *connect.Error
		if errors.As(err, &cerr) {
			cerr.Meta().Set(requestIDHeader, rid)
		}
		return resp, err
	}
}

// requestIDHeader names the request in both directions: a client's valid
// id is kept (audit.ValidRequestID), any other replaced by a new one, and
// the answer carries the id the request was recorded under.
const requestIDHeader = "X-Request-Id"

func requestID(h http.Header) string {
	if id := h.Get(requestIDHeader); audit.ValidRequestID(id) {
		return id
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// WrapStreamingHandler serves the Watch streams: no deadline (a stream
// ends at its maximum lifetime) and no write limit (it writes nothing),
// but opening one counts against the client's stream opens.
func (e *edge) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		start := time.Now()
		procedure := conn.Spec().Procedure
		ctx = audit.WithRequest(ctx, audit.Request{RPC: strings.TrimPrefix(procedure, "/"), RequestID: requestID(conn.RequestHeader())})
		ctx = app.WithClient(ctx, clientAddr(conn.Peer().Addr, conn.RequestHeader(), e.opts.ClientIPHeader))
		err := e.a.Commands.AllowStreamOpen(ctx)
		if err == nil {
			ctx, err = e.identify(ctx, conn.RequestHeader())
		}
		if err == nil {
			err = next(ctx, conn)
		}
		return e.done(ctx, procedure, start, err)
	}
}

func (e *edge) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// selfLimited are the writes the app limits itself, more tightly.
var selfLimited = map[string]bool{
	swapmeetv1connect.UserServiceSignUpProcedure: true,
	swapmeetv1connect.UserServiceSignInProcedure: true,
}

// codeOK is the code label of a success.
const codeOK = "ok"

func codeOf(err error) string {
	if err == nil {
		return codeOK
	}
	return connect.CodeOf(err).String()
}
