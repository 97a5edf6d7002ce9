package rpc

import (
	"context"
	"errors"
	"strings"

	"connectrpc.com/connect"
	"github.com/google/uuid"
)

type callerKey struct{}

// caller is who made the request, as proven by their session token.
type caller struct {
	userID uuid.UUID
	token  string
}

func callerFrom(ctx context.Context) (caller, bool) {
	c, ok := ctx.Value(callerKey{}).(caller)
	return c, ok
}

// requireCaller returns the signed-in caller or Unauthenticated.
func requireCaller(ctx context.Context) (caller, error) {
	c, ok := callerFrom(ctx)
	if !ok {
		return caller{}, connect.NewError(connect.CodeUnauthenticated, errors.New("sign in first: send Authorization: Bearer <session_token>"))
	}
	return c, nil
}

// bearerToken extracts the token of an "Authorization: Bearer" header.
func bearerToken(h string) (string, bool, error) {
	if h == "" {
		return "", false, nil
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", false, connect.NewError(connect.CodeUnauthenticated, errors.New("the Authorization header must be: Bearer <session_token>"))
	}
	return strings.TrimSpace(token), true, nil
}
