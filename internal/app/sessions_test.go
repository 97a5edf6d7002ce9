package app_test

import (
	"context"
	"testing"

	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/internal/app"
	"github.com/swapmeet/swapmeet/internal/itest"
)

// Expired sessions go, in batches, and live ones stay.
func TestPurgeSessions(t *testing.T) {
	e := itest.New(t)
	ctx := context.Background()
	a, err := app.New(app.Deps{Store: db.NewStore(e.PG), Log: e.Log, Password: itest.FastPasswords})
	if err != nil {
		t.Fatal(err)
	}
	live, err := a.Commands.SignUp(ctx, "live@example.com", "correct horse", "Live")
	if err != nil {
		t.Fatal(err)
	}
	// 2500 expired sessions: more than two batches.
	if _, err := e.PG.Exec(ctx, `INSERT INTO sessions (token_hash, user_id, expires_at)
		SELECT sha256(i::text::bytea), $1, now() - interval '1 minute' FROM generate_series(1, 2500) i`, live.UserID); err != nil {
		t.Fatal(err)
	}
	n, err := a.Commands.PurgeSessions(ctx)
	if err != nil || n != 2500 {
		t.Fatalf("purged %d, %v; want the 2500 expired", n, err)
	}
	if id, err := a.Commands.Authenticate(ctx, live.Token); err != nil || id != live.UserID {
		t.Fatalf("the live session after the purge: %v, %v", id, err)
	}
	var left int
	if err := e.PG.QueryRow(ctx, `SELECT count(*) FROM sessions`).Scan(&left); err != nil || left != 1 {
		t.Fatalf("%d sessions left, %v; want the live one", left, err)
	}
}
