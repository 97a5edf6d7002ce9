package itest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/swapmeet/swapmeet/cdc"
	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/internal/app"
	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/password"
	"github.com/swapmeet/swapmeet/internal/rpc"
)

// FastPasswords keeps argon2id honest but cheap, so tests can sign up many users.
var FastPasswords = password.Params{MemoryKiB: 1024, Time: 1, Threads: 1}

// Cache returns the cache the system under test uses.
func (e *Env) Cache() *cache.Cache { return cache.New(e.Redis, e.RedisPrefix) }

// StartCDC runs the projector in this process until the test ends.
func (e *Env) StartCDC(t T) {
	t.Helper()
	if err := e.Reads.EnsureIndexes(context.Background()); err != nil {
		t.Fatalf("indexes: %v", err)
	}
	sink := cdc.NewProjector(e.PG, e.Reads, e.Cache(), e.Redis, consistency.KeysFor(e.RedisPrefix), e.Log)
	r := cdc.NewReader(cdc.Config{ConnString: e.PGURL, Slot: e.Slot, Publication: e.Publication, Log: e.Log}, sink)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	e.WaitForSlot(t)
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("cdc: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("cdc did not stop within 10s")
		}
	})
}

// WaitForSlot returns once the CDC has created its slot: from then on,
// every commit reaches the read side.
func (e *Env) WaitForSlot(t T) {
	t.Helper()
	Eventually(t, 15*time.Second, "the replication slot", func() (bool, error) {
		var n int
		err := e.PG.QueryRow(context.Background(), `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, e.Slot).Scan(&n)
		return n == 1, err
	})
}

// StartAPI serves the API over cleartext HTTP/2 (h2c), as `swapmeet serve`
// does, until the test ends. srv.Client() speaks h2c: use it for both
// Connect and gRPC clients.
func (e *Env) StartAPI(t T) (*httptest.Server, *app.App) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w := consistency.NewWatcher(e.Redis, consistency.KeysFor(e.RedisPrefix), e.Log)
	go w.Run(ctx)
	a, err := app.New(app.Deps{
		Store:    db.NewStore(e.PG),
		Reads:    e.Reads,
		Cache:    e.Cache(),
		Watcher:  w,
		Media:    e.Media,
		Log:      e.Log,
		Password: FastPasswords,
	})
	if err != nil {
		t.Fatalf("%v", err)
	}
	srv := httptest.NewUnstartedServer(rpc.NewHandler(a, e.Log, rpc.Options{MaxRequestBytes: 1 << 20}))
	serverProtocols := new(http.Protocols)
	serverProtocols.SetHTTP1(true)
	serverProtocols.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = serverProtocols
	srv.Start()
	clientProtocols := new(http.Protocols)
	clientProtocols.SetUnencryptedHTTP2(true)
	srv.Client().Transport = &http.Transport{Protocols: clientProtocols, MaxIdleConnsPerHost: 64}
	t.Cleanup(srv.Close)
	return srv, a
}
