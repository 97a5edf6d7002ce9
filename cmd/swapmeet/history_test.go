package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/jackc/pgx/v5"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/system"
)

// cdcProcess is one `swapmeet cdc` process.
type cdcProcess struct {
	cmd     *exec.Cmd
	out     *itest.Output
	metrics string // its metrics address's base URL
}

func startCDCProcess(t *testing.T, e *itest.Env, env ...string) cdcProcess {
	t.Helper()
	cmd, out := e.StartProcess(t, []string{"cdc"}, append([]string{"SWAPMEET_CDC_METRICS_ADDR=127.0.0.1:0"}, env...)...)
	var base string
	itest.Eventually(t, 60*time.Second, "the cdc's metrics address", func() (bool, error) {
		m := metricsAt.FindStringSubmatch(out.String())
		if m != nil {
			base = strings.TrimSuffix(m[1], "/metrics")
		}
		return m != nil, nil
	})
	return cdcProcess{cmd: cmd, out: out, metrics: base}
}

// readiness is the cdc's /readyz.
func (c cdcProcess) readiness() (int, system.Readiness, error) {
	res, err := http.Get(c.metrics + "/readyz")
	if err != nil {
		return 0, system.Readiness{}, err
	}
	defer res.Body.Close()
	var r system.Readiness
	err = json.NewDecoder(res.Body).Decode(&r)
	return res.StatusCode, r, err
}

// stop ends a process as an operator does (SIGTERM) and waits for it.
func stop(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
}

// lamp is a listing of a seller of its own, read and priced through api.
type lamp struct {
	t       *testing.T
	api     *replica
	session string
	id      string
}

// newLamp signs a seller up through api and lists a lamp at 10.00: it
// returns the lamp and the listing's consistency token.
func newLamp(t *testing.T, api *replica, email string) (*lamp, string) {
	t.Helper()
	ctx := context.Background()
	up, err := api.users.SignUp(ctx, connect.NewRequest(&swapmeetv1.SignUpRequest{
		Email: email, Password: "correct horse battery", DisplayName: "Ada",
	}))
	if err != nil {
		t.Fatal(err)
	}
	created, err := api.listings.CreateListing(ctx, bearer(&swapmeetv1.CreateListingRequest{
		Title: "Lamp", Description: "Brass.", Category: "electronics",
		Condition: swapmeetv1.Condition_CONDITION_GOOD, Price: &swapmeetv1.Money{CurrencyCode: "EUR", AmountMinor: 1000},
	}, up.Msg.SessionToken))
	if err != nil {
		t.Fatal(err)
	}
	l := &lamp{t: t, api: api, session: up.Msg.SessionToken, id: created.Msg.ListingId}
	if p, err := l.price(created.Msg.ConsistencyToken); err != nil || p != 1000 {
		t.Fatalf("the new listing: price %d, %v", p, err)
	}
	return l, created.Msg.ConsistencyToken
}

// price reads the lamp's price with a consistency token.
func (l *lamp) price(token string) (int64, error) {
	res, err := l.api.listings.GetListing(context.Background(), connect.NewRequest(&swapmeetv1.GetListingRequest{ListingId: l.id, ConsistencyToken: token}))
	if err != nil {
		return 0, err
	}
	return res.Msg.GetListing().GetPrice().GetAmountMinor(), nil
}

// setPrice changes the price of version of the lamp and returns the
// write's token.
func (l *lamp) setPrice(version, amount int64) (string, error) {
	res, err := l.api.listings.UpdateListing(context.Background(), bearer(&swapmeetv1.UpdateListingRequest{
		ListingId: l.id, ExpectedVersion: version, Price: &swapmeetv1.Money{CurrencyCode: "EUR", AmountMinor: amount},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"price"}},
	}, l.session))
	if err != nil {
		return "", err
	}
	return res.Msg.ConsistencyToken, nil
}

// priceHistory is the lamp's price history, newest first, as "before →
// after", with " (lost)" for an entry of an abandoned database history.
func (l *lamp) priceHistory(token string) []string {
	l.t.Helper()
	res, err := l.api.history.ListHistory(context.Background(), connect.NewRequest(&swapmeetv1.ListHistoryRequest{
		ObjectType: swapmeetv1.ObjectType_OBJECT_TYPE_LISTING, ObjectId: l.id, ConsistencyToken: token}))
	if err != nil {
		l.t.Fatalf("the lamp's history: %v", err)
	}
	var out []string
	for _, e := range res.Msg.Entries {
		for _, c := range e.Changes {
			if c.Field == "price.amount_minor" {
				s := c.Before + " → " + c.After
				if e.Lost {
					s += " (lost)"
				}
				out = append(out, s)
			}
		}
	}
	return out
}

// mustSetPrice is setPrice, failing the test on an error.
func (l *lamp) mustSetPrice(version, amount int64) string {
	l.t.Helper()
	token, err := l.setPrice(version, amount)
	if err != nil {
		l.t.Fatalf("set the price to %d: %v", amount, err)
	}
	return token
}

// expectPrice fails the test unless a read with token answers want.
func (l *lamp) expectPrice(what, token string, want int64) {
	l.t.Helper()
	if p, err := l.price(token); err != nil || p != want {
		l.t.Fatalf("%s: price %d, %v; want %d", what, p, err, want)
	}
}

// expectRefused fails the test unless a read with token fails with code.
func (l *lamp) expectRefused(what, token string, code connect.Code) {
	l.t.Helper()
	if p, err := l.price(token); connect.CodeOf(err) != code {
		l.t.Fatalf("%s: price %d, err %v; want %v", what, p, err, code)
	}
}

// watchPrices opens a Watch stream of the lamp from token and returns a
// condition that holds once it has sent price p.
func (l *lamp) watchPrices(ctx context.Context, token string) func(p int64) func() (bool, error) {
	l.t.Helper()
	stream, err := l.api.listings.WatchListing(ctx, connect.NewRequest(&swapmeetv1.WatchListingRequest{ListingId: l.id, ResumeToken: token}))
	if err != nil {
		l.t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []int64
	go func() {
		for stream.Receive() {
			if m := stream.Msg().GetListing(); m != nil {
				mu.Lock()
				seen = append(seen, m.GetPrice().GetAmountMinor())
				mu.Unlock()
			}
		}
	}()
	return func(p int64) func() (bool, error) {
		return func() (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			return slices.Contains(seen, p), fmt.Errorf("the stream sent the prices %v", seen)
		}
	}
}

// waitHalted waits until the cdc's readiness fails with a reason that
// contains why.
func waitHalted(t *testing.T, cdc cdcProcess, why string) {
	t.Helper()
	itest.Eventually(t, 60*time.Second, "the cdc to stop and say why", func() (bool, error) {
		code, r, err := cdc.readiness()
		if err != nil {
			return false, err
		}
		return code == http.StatusServiceUnavailable && strings.Contains(r.Failing["replication"], why),
			fmt.Errorf("/readyz %d: %v", code, r.Failing)
	})
}

// waitLeading waits until the cdc is ready, streaming the slot.
func waitLeading(t *testing.T, cdc cdcProcess, what string) {
	t.Helper()
	itest.Eventually(t, 60*time.Second, what, func() (bool, error) {
		code, r, err := cdc.readiness()
		return err == nil && code == http.StatusOK && r.Details["role"] == "leader", err
	})
}

// moveReadSide runs `projections rebuild` as an operator would with env,
// waits for cdc to stream again, and checks `projections verify`.
func moveReadSide(t *testing.T, e *itest.Env, cdc cdcProcess, env string) {
	t.Helper()
	if code, stdout, stderr := runSwapmeet(t, []string{"projections", "rebuild"}, append(e.Environ(), env)...); code != 0 {
		t.Fatalf("projections rebuild: exit %d\n%s\n%s", code, stdout, stderr)
	}
	waitLeading(t, cdc, "the cdc to stream the new history")
	if code, stdout, stderr := runSwapmeet(t, []string{"projections", "verify"}, append(e.Environ(), env)...); code != 0 {
		t.Fatalf("projections verify after the rebuild: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// migrated starts a primary of the test's own, migrated.
func migrated(t *testing.T, e *itest.Env) *itest.Cluster {
	t.Helper()
	c := itest.StartCluster(t)
	if code, _, stderr := runSwapmeet(t, []string{"migrate"}, append(e.Environ(), "SWAPMEET_PG_URL="+c.URL(), "SWAPMEET_PG_MIGRATE_URL="+c.OwnerURL())...); code != 0 {
		t.Fatalf("migrate the primary: exit %d\n%s", code, stderr)
	}
	return c
}

// TestRestoreMovesTheReadSideOntoTheNewHistory: the write Postgres is
// restored from a base backup (recovered to its end and promoted: a new
// timeline) while Mongo, Redis and the search store keep their later state.
// The CDC stops and says why (its readiness, `slot status`); a write on the
// restored database is not read as applied (its token waits, never serving
// the read side's state of the lost writes); `projections rebuild` moves
// the read side onto the new history; then the read side equals the
// restored database, the new write's token is honoured, the token of a
// write the restore lost is refused with FailedPrecondition, and one from
// before the backup is honoured.
func TestRestoreMovesTheReadSideOntoTheNewHistory(t *testing.T) {
	e := itest.New(t)
	primary := migrated(t, e)
	onPrimary := "SWAPMEET_PG_URL=" + primary.URL()
	cdc := startCDCProcess(t, e, onPrimary)
	api := startReplica(t, e, "serve", onPrimary)
	l, beforeBackup := newLamp(t, &api, "restore@example.com")

	// The backup, restored at once as the database's new primary; the
	// old primary goes on taking a write that the restore loses.
	restored := primary.Restore(t)
	lost := l.mustSetPrice(1, 2000)
	l.expectPrice("the write the restore will lose, read with its token", lost, 2000)

	// The API and the CDC now reach the restored database.
	stop(t, cdc.cmd)
	stop(t, api.cmd)
	primary.Stop(t)
	onRestored := "SWAPMEET_PG_URL=" + restored.URL()
	cdc = startCDCProcess(t, e, onRestored)
	api = startReplica(t, e, "serve", onRestored)

	waitHalted(t, cdc, "history")
	// A stream on the restored side, open across the rebuild.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	streamed := l.watchPrices(ctx, beforeBackup)
	if _, stdout, _ := runSwapmeet(t, []string{"slot", "status"}, append(e.Environ(), onRestored)...); !strings.Contains(stdout, "the write Postgres follows") {
		t.Errorf("slot status does not say that the history moved:\n%s", stdout)
	}

	// A write on the restored database: version 1 again, since the
	// restore lost version 2. Its token must not be honoured by a read
	// side that still shows the lost write.
	fresh := l.mustSetPrice(1, 3000)
	l.expectRefused("the restored database's write, read with its token before the rebuild", fresh, connect.CodeUnavailable)

	moveReadSide(t, e, cdc, onRestored)
	l.expectPrice("the restored database's write, read with its token after the rebuild", fresh, 3000)
	l.expectRefused("the lost write's token after the rebuild", lost, connect.CodeFailedPrecondition)
	l.expectPrice("a token from before the backup, after the rebuild", beforeBackup, 3000)
	// The lost write's history entry is kept, marked lost; the restored
	// database's write is not.
	prices := l.priceHistory(fresh)
	if len(prices) != 3 || prices[0] != "1000 → 3000" || prices[1] != "1000 → 2000 (lost)" || prices[2] != " → 1000" {
		t.Errorf("the price history after the rebuild: %q, want the restored write over the lost one over the creation", prices)
	}
	itest.Eventually(t, 30*time.Second, "the stream open across the rebuild to send the restored state", streamed(3000))
	// The CDC applies the new history's writes.
	l.expectPrice("a write after the rebuild, read with its token", l.mustSetPrice(2, 4000), 4000)
}

// TestFailoverIsFollowedThroughTheMultiHostURL: the API and the CDC reach
// a primary and its streaming standby through one multi-host URL
// (target_session_attrs=read-write). The standby stops receiving, the
// primary takes one more write, then is killed, and the standby is
// promoted without it. Both processes follow the promotion without a
// restart; the CDC stops on the new timeline (its slot did not survive
// either, on Postgres 15) and the new primary's writes are not read as
// applied; `projections rebuild` moves the read side onto the new history.
// Then the read side equals the new primary, its writes' tokens are
// honoured, the lost write's token is refused, and a Watch stream opened
// before the failover reaches the new primary's state.
func TestFailoverIsFollowedThroughTheMultiHostURL(t *testing.T) {
	e := itest.New(t)
	primary := migrated(t, e)
	standby := primary.Standby(t)
	both := fmt.Sprintf("SWAPMEET_PG_URL=postgres://swapmeet:swapmeet@127.0.0.1:%d,127.0.0.1:%d/swapmeet?sslmode=disable&target_session_attrs=read-write",
		primary.Port, standby.Port)
	cdc := startCDCProcess(t, e, both)
	api := startReplica(t, e, "serve", both)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, beforeFailover := newLamp(t, &api, "failover@example.com")
	waitLeading(t, cdc, "the cdc to lead")

	// A stream opened before the failover, from the listing's creation.
	streamed := l.watchPrices(ctx, beforeFailover)

	// A write the standby never receives, then the primary dies.
	lose := standby.PauseReceiving(t)
	lost := l.mustSetPrice(1, 2000)
	l.expectPrice("the write the failover will lose, read with its token", lost, 2000)
	primary.Stop(t)
	lose()
	standby.Promote(t)

	// The API follows the promotion: a write reaches the new primary, on
	// which the listing is at version 1 again.
	var fresh string
	itest.Eventually(t, 60*time.Second, "a write through the API to reach the new primary", func() (bool, error) {
		var err error
		fresh, err = l.setPrice(1, 3000)
		return err == nil, err
	})
	waitHalted(t, cdc, "history")
	l.expectRefused("the new primary's write, read with its token before the rebuild", fresh, connect.CodeUnavailable)

	moveReadSide(t, e, cdc, both) // the same cdc process streams the new history
	l.expectPrice("the new primary's write, read with its token after the rebuild", fresh, 3000)
	l.expectRefused("the lost write's token after the rebuild", lost, connect.CodeFailedPrecondition)
	l.expectPrice("a token from before the failover, after the rebuild", beforeFailover, 3000)
	itest.Eventually(t, 30*time.Second, "the stream opened before the failover to send the new primary's state", streamed(3000))
	l.expectPrice("a write after the rebuild, read with its token", l.mustSetPrice(2, 4000), 4000)
	itest.Eventually(t, 30*time.Second, "the stream to send the next write", streamed(4000))
}

// TestCopyWithoutRecoveryIsRefused: the write Postgres is replaced by a
// copy of its data directory started as is (crash recovery, the same
// timeline) while the read side keeps its later state. Its positions
// cannot be told from the ones it lost: the CDC stops and says so, and
// `projections rebuild` refuses, asking for a recovery onto a new timeline.
func TestCopyWithoutRecoveryIsRefused(t *testing.T) {
	e := itest.New(t)
	primary := migrated(t, e)
	onPrimary := "SWAPMEET_PG_URL=" + primary.URL()
	cdc := startCDCProcess(t, e, onPrimary)
	api := startReplica(t, e, "serve", onPrimary)
	ctx := context.Background()
	copied := primary.Copy(t)

	// After the copy, the primary writes a few MB of WAL (more than the
	// copy writes as it starts) and takes a write that the read side
	// applies.
	pg, err := pgx.Connect(ctx, primary.OwnerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(ctx)
	if _, err := pg.Exec(ctx, `CREATE TABLE filler AS SELECT g, repeat('x', 1000) AS pad FROM generate_series(1, 4000) AS g`); err != nil {
		t.Fatal(err)
	}
	up, err := api.users.SignUp(ctx, connect.NewRequest(&swapmeetv1.SignUpRequest{
		Email: "copy@example.com", Password: "correct horse battery", DisplayName: "Ada",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.users.GetUser(ctx, connect.NewRequest(&swapmeetv1.GetUserRequest{UserId: up.Msg.UserId, ConsistencyToken: up.Msg.ConsistencyToken})); err != nil {
		t.Fatalf("the write after the copy, read with its token: %v", err)
	}

	stop(t, cdc.cmd)
	stop(t, api.cmd)
	primary.Stop(t)
	onCopy := "SWAPMEET_PG_URL=" + copied.URL()
	cdc = startCDCProcess(t, e, onCopy)
	waitHalted(t, cdc, "without starting a new timeline")
	code, stdout, stderr := runSwapmeet(t, []string{"projections", "rebuild"}, append(e.Environ(), onCopy)...)
	if code == 0 || !strings.Contains(stdout+stderr, "Recover it onto a new timeline") {
		t.Fatalf("projections rebuild on the copy: exit %d, want a refusal that asks for a new timeline\n%s\n%s", code, stdout, stderr)
	}
}
