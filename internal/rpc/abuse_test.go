package rpc_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"

	"github.com/swapmeet/swapmeet/internal/app"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/password"
)

// floodMemoryBound is how much the sign-in flood may grow the heap: a few
// hashes' worth (19 MiB each) and the garbage collector's slack. Without a
// bound on concurrent hashes, 400 sign-ins would hold 400 × 19 MiB.
const floodMemoryBound = 160 << 20

// TestSignInFlood: 400 concurrent sign-ins with random emails, at the
// production argon2id cost, neither exhaust memory nor starve reads, and
// those past the limits are told so.
//
// It runs only without the race detector (make test runs it so): under
// it, argon2id spends its time in instrumentation the scheduler cannot
// preempt, so each garbage collection waits for a whole hash and every
// request stalls with it, which says nothing about the server.
func TestSignInFlood(t *testing.T) {
	if raceEnabled {
		t.Skip("measures latency: run without -race (make test does)")
	}
	const callers = 400
	m := newMarketWith(t, itest.APIOptions{Password: password.Default, Limits: app.Limits{SignInPerClient: 50}})
	m.e.StartCDC(t)
	seller := m.signUp("seller")
	created, err := m.listings.CreateListing(ctx, authed(validListing("Lamp"), seller.token))
	if err != nil {
		t.Fatal(err)
	}
	id := created.Msg.ListingId
	if _, err := m.listings.GetListing(ctx, connect.NewRequest(&swapmeetv1.GetListingRequest{ListingId: id, ConsistencyToken: created.Msg.ConsistencyToken})); err != nil {
		t.Fatal(err)
	}

	// runtime/metrics reads the heap without stopping the world, unlike
	// runtime.ReadMemStats, so sampling does not slow the reads measured.
	heap := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	inUse := func() uint64 {
		metrics.Read(heap)
		return heap[0].Value.Uint64() + heap[1].Value.Uint64()
	}
	runtime.GC()
	before := inUse()
	var peak atomic.Uint64
	flooding, sampled := make(chan struct{}), make(chan struct{})
	go func() { // sample the heap until the flood is over
		defer close(sampled)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			if n := inUse(); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-flooding:
				return
			case <-tick.C:
			}
		}
	}()

	// Readers run throughout the flood, on connections of their own, as
	// other clients' would be.
	h2c := new(http.Protocols)
	h2c.SetUnencryptedHTTP2(true)
	reads := swapmeetv1connect.NewListingServiceClient(&http.Client{Transport: &http.Transport{Protocols: h2c}}, m.srv.URL)
	var latencies []time.Duration
	var readErr error
	var mu sync.Mutex
	var readers sync.WaitGroup
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-flooding:
					return
				default:
				}
				start := time.Now()
				_, err := reads.GetListing(ctx, connect.NewRequest(&swapmeetv1.GetListingRequest{ListingId: id}))
				mu.Lock()
				latencies = append(latencies, time.Since(start))
				if err != nil && readErr == nil {
					readErr = err
				}
				mu.Unlock()
			}
		}()
	}

	start := make(chan struct{})
	codes := make([]connect.Code, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = m.users.SignIn(ctx, connect.NewRequest(&swapmeetv1.SignInRequest{
				Email: fmt.Sprintf("%s@example.com", rand.Text()), Password: "correct horse battery",
			}))
			codes[i] = connect.CodeOf(errs[i])
		}()
	}
	began := time.Now()
	close(start)
	wg.Wait()
	took := time.Since(began)
	close(flooding)
	readers.Wait()
	<-sampled

	count := map[connect.Code]int{}
	for i, c := range codes {
		count[c]++
		switch c {
		case connect.CodeUnauthenticated:
		case connect.CodeResourceExhausted:
			if !hasRetryInfo(errs[i]) {
				t.Errorf("ResourceExhausted without a retry hint: %v", errs[i])
			}
		default:
			t.Errorf("sign-in %d: %v, want Unauthenticated or ResourceExhausted", i, errs[i])
		}
	}
	if count[connect.CodeResourceExhausted] == 0 {
		t.Errorf("none of %d concurrent sign-ins was limited", callers)
	}
	growth := int64(peak.Load()) - int64(before)
	t.Logf("%d sign-ins in %s: %v; heap in use grew by %d MiB at peak", callers, took.Round(time.Millisecond), count, growth>>20)
	if growth > floodMemoryBound {
		t.Errorf("heap grew by %d MiB during the flood, want under %d MiB", growth>>20, floodMemoryBound>>20)
	}

	if readErr != nil {
		t.Errorf("GetListing during the flood: %v", readErr)
	}
	slices.Sort(latencies)
	if len(latencies) < 20 {
		t.Fatalf("only %d reads during the flood", len(latencies))
	}
	p99 := latencies[len(latencies)*99/100]
	t.Logf("%d reads during the flood: p50 %s, p99 %s", len(latencies), latencies[len(latencies)/2], p99)
	if p99 > 500*time.Millisecond {
		t.Errorf("GetListing p99 during the flood = %s, want under 500ms", p99)
	}
}

func hasRetryInfo(err error) bool {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return false
	}
	for _, d := range ce.Details() {
		if v, err := d.Value(); err == nil {
			if ri, ok := v.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
				return true
			}
		}
	}
	return false
}

// wantLimited checks that err is ResourceExhausted with a retry hint.
func wantLimited(t *testing.T, err error, what string) {
	t.Helper()
	if connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("%s: %v, want ResourceExhausted", what, err)
	}
	if !hasRetryInfo(err) {
		t.Fatalf("%s: no retry hint in %v", what, err)
	}
	var ce *connect.Error
	if errors.As(err, &ce) && ce.Meta().Get("Retry-After") == "" {
		t.Fatalf("%s: no Retry-After header", what)
	}
}

// Each per-client limit allows exactly its count, then refuses; a client
// behind the trusted proxy header is counted on its own.
func TestPerClientLimitsAtTheEdge(t *testing.T) {
	m := newMarketWith(t, itest.APIOptions{
		Limits:         app.Limits{SignUpPerClient: 3, SignInPerClient: 4, SignInPerEmail: 100, WritesPerClient: 5},
		ClientIPHeader: "X-Forwarded-For",
	})
	var users []user
	for i := range 3 {
		users = append(users, m.signUp(fmt.Sprint("user", i)))
	}
	_, err := m.users.SignUp(ctx, connect.NewRequest(&swapmeetv1.SignUpRequest{Email: "fourth@example.com", Password: "correct horse", DisplayName: "Four"}))
	wantLimited(t, err, "4th sign-up from one address")

	signIn := func(from string) error {
		req := connect.NewRequest(&swapmeetv1.SignInRequest{Email: "nobody@example.com", Password: "wrong password"})
		if from != "" {
			req.Header().Set("X-Forwarded-For", "192.0.2.50, "+from)
		}
		_, err := m.users.SignIn(ctx, req)
		return err
	}
	for i := range 4 {
		if err := signIn(""); connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Fatalf("sign-in %d of 4: %v, want Unauthenticated", i+1, err)
		}
	}
	wantLimited(t, signIn(""), "5th sign-in from one address")
	if err := signIn("198.51.100.9"); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("another client behind the proxy: %v, want its own count", err)
	}

	name := "Renamed"
	for i := range 5 {
		if _, err := m.users.UpdateProfile(ctx, authed(&swapmeetv1.UpdateProfileRequest{DisplayName: &name}, users[i%3].token)); err != nil {
			t.Fatalf("write %d of 5: %v", i+1, err)
		}
	}
	_, err = m.users.UpdateProfile(ctx, authed(&swapmeetv1.UpdateProfileRequest{DisplayName: &name}, users[0].token))
	wantLimited(t, err, "6th write from one address")
	// Queries are not writes.
	if _, err := m.users.GetUser(ctx, connect.NewRequest(&swapmeetv1.GetUserRequest{UserId: users[0].id})); connect.CodeOf(err) == connect.CodeResourceExhausted {
		t.Fatalf("a query was counted as a write: %v", err)
	}
}

// The per-account limit stops guessing without locking the owner out: once
// an account has had its failures, the addresses that failed are refused
// (whatever the password), while the owner's correct password from an
// address that has not failed still signs in, and an address that has not
// failed gets one guess.
func TestSignInPerEmailLimitCannotLockTheOwnerOut(t *testing.T) {
	m := newMarketWith(t, itest.APIOptions{Limits: app.Limits{SignInPerEmail: 2}, ClientIPHeader: "X-Real-Ip"})
	const email = "locked-out@example.com"
	if _, err := m.users.SignUp(ctx, connect.NewRequest(&swapmeetv1.SignUpRequest{Email: email, Password: "correct horse", DisplayName: "Ada"})); err != nil {
		t.Fatal(err)
	}
	signIn := func(from, pw string) error {
		req := connect.NewRequest(&swapmeetv1.SignInRequest{Email: email, Password: pw})
		req.Header().Set("X-Real-Ip", from)
		_, err := m.users.SignIn(ctx, req)
		return err
	}
	for i := range 2 {
		if err := signIn(fmt.Sprintf("203.0.113.%d", i+1), "wrong password"); connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Fatalf("failure %d of 2: %v, want Unauthenticated", i+1, err)
		}
	}
	// The account is over its failures: an address that failed is refused,
	// even with the right password, and without a hash.
	wantLimited(t, signIn("203.0.113.1", "wrong password"), "a third guess from an address that failed")
	wantLimited(t, signIn("203.0.113.2", "correct horse"), "the right password from an address that failed")
	// The owner, from an address that has not failed, signs in.
	if err := signIn("198.51.100.7", "correct horse"); err != nil {
		t.Fatalf("the owner from another address after strangers' failures: %v", err)
	}
	// A new address gets one guess, then it is one that failed.
	if err := signIn("192.0.2.99", "wrong password"); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("one guess from a new address: %v, want Unauthenticated", err)
	}
	wantLimited(t, signIn("192.0.2.99", "wrong password"), "a second guess from that address")
}

// The server's deadline ends a write stuck behind a lock, but a query's
// consistency wait comes on top of it and runs to its end.
func TestServerDeadline(t *testing.T) {
	const timeout = 300 * time.Millisecond
	m := newMarketWith(t, itest.APIOptions{Timeout: timeout}) // no CDC: tokens are never reached
	u := m.signUp("stuck")

	// Hold the user's row, so that UpdateProfile waits on the lock.
	tx, err := m.e.PG.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, u.id); err != nil {
		t.Fatal(err)
	}
	name := "Blocked"
	start := time.Now()
	_, err = m.users.UpdateProfile(ctx, authed(&swapmeetv1.UpdateProfileRequest{DisplayName: &name}, u.token))
	took := time.Since(start)
	wantCode(t, err, connect.CodeDeadlineExceeded)
	if took > timeout+2*time.Second {
		t.Errorf("the write was cut after %s, want about %s", took, timeout)
	}

	up, err := m.users.SignUp(ctx, connect.NewRequest(&swapmeetv1.SignUpRequest{Email: "waits@example.com", Password: "correct horse", DisplayName: "Waits"}))
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	_, err = m.users.GetUser(ctx, connect.NewRequest(&swapmeetv1.GetUserRequest{UserId: up.Msg.UserId, ConsistencyToken: up.Msg.ConsistencyToken}))
	wantCode(t, err, connect.CodeUnavailable) // the wait's own answer, not the deadline's
	if took := time.Since(start); took < time.Second {
		t.Errorf("the consistency wait was cut short after %s; it is 2s", took)
	}
}

// Each per-seller quota allows exactly its count, then refuses with
// ResourceExhausted and says which quota.
func TestQuotasAtTheEdge(t *testing.T) {
	m := newMarketWith(t, itest.APIOptions{Limits: app.Limits{ListingsPerDay: 3, ActiveListings: 2, PendingUploads: 2}})
	seller := m.signUp("seller")
	create := func() (string, error) {
		res, err := m.listings.CreateListing(ctx, authed(validListing("Chair"), seller.token))
		if err != nil {
			return "", err
		}
		return res.Msg.ListingId, nil
	}
	withdraw := func(id string) {
		t.Helper()
		if _, err := m.listings.WithdrawListing(ctx, authed(&swapmeetv1.WithdrawListingRequest{ListingId: id, ExpectedVersion: 1}, seller.token)); err != nil {
			t.Fatal(err)
		}
	}
	wantQuota := func(err error, says string) {
		t.Helper()
		if connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), says) {
			t.Fatalf("%v: want ResourceExhausted saying %q", err, says)
		}
	}

	first, err := create()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := create(); err != nil {
		t.Fatal(err)
	}
	_, err = create()
	wantQuota(err, "2 active listings")
	withdraw(first)
	third, err := create() // one active slot free again: the day's 3rd
	if err != nil {
		t.Fatalf("after withdrawing one: %v", err)
	}
	withdraw(third)
	_, err = create() // an active slot is free, but the day's quota is used
	wantQuota(err, "3 listings in the last 24 hours")

	other := m.signUp("other")
	res, err := m.listings.CreateListing(ctx, authed(validListing("Desk"), other.token))
	if err != nil {
		t.Fatal(err)
	}
	upload := func() error {
		_, err := m.listings.CreateMediaUpload(ctx, authed(&swapmeetv1.CreateMediaUploadRequest{
			ListingId: res.Msg.ListingId, ContentType: "image/png", SizeBytes: 1000}, other.token))
		return err
	}
	for i := range 2 {
		if err := upload(); err != nil {
			t.Fatalf("upload %d of 2: %v", i+1, err)
		}
	}
	wantQuota(upload(), "2 uploads waiting")
}

// An error is never much larger than the request that caused it: an
// update_mask of 60,000 unknown paths (about 600 KB) was answered with one
// violation per path (17.5 MB in Connect JSON).
func TestErrorsDoNotAmplifyRequests(t *testing.T) {
	m := newMarket(t)
	seller := m.signUp("seller")
	created, err := m.listings.CreateListing(ctx, authed(validListing("Lamp"), seller.token))
	if err != nil {
		t.Fatal(err)
	}
	paths := make([]string, 60000)
	for i := range paths {
		paths[i] = fmt.Sprintf("f%d", i)
	}
	req := &swapmeetv1.UpdateListingRequest{ListingId: created.Msg.ListingId, ExpectedVersion: 1, Title: "x", UpdateMask: mask(paths...)}
	_, err = m.listings.UpdateListing(ctx, authed(req, seller.token))
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("60,000 unknown paths: %v, want InvalidArgument", err)
	}
	size := func(err error) int {
		var ce *connect.Error
		errors.As(err, &ce)
		n := len(ce.Message())
		for _, d := range ce.Details() {
			n += len(d.Bytes())
		}
		return n
	}
	if n := size(err); n > 4096 {
		t.Fatalf("the error to a request of %d bytes is %d bytes", proto.Size(req), n)
	}
	// Many problems of many kinds are counted past the first ones, not listed.
	long := strings.Repeat("x", 300)
	bad := &swapmeetv1.CreateListingRequest{Title: long, Description: strings.Repeat("y", 20000), Category: "-", Price: eur(-1), Attributes: map[string]string{}}
	for i := range 32 {
		bad.Attributes[fmt.Sprintf("$key%d", i)] = "\x00"
	}
	_, err = m.listings.CreateListing(ctx, authed(bad, seller.token))
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("a listing with every field wrong: %v, want InvalidArgument", err)
	}
	if fields := fieldViolations(err); len(fields) > 21 {
		t.Fatalf("%d violations listed, want at most 20 and a count of the rest", len(fields))
	}
}

// Queries and the opening of Watch streams are counted per client like
// writes, and refused past their limits with a retry hint; another
// client keeps its own count.
func TestQueryAndStreamOpenLimitsAtTheEdge(t *testing.T) {
	m := newMarketWith(t, itest.APIOptions{
		Limits:         app.Limits{QueriesPerClient: 5, StreamOpensPerClient: 2},
		ClientIPHeader: "X-Real-Ip",
	})
	m.e.StartCDC(t)
	seller := m.signUp("seller")
	created, err := m.listings.CreateListing(ctx, authed(validListing("Lamp"), seller.token))
	if err != nil {
		t.Fatal(err)
	}
	search := func(from string) error {
		req := connect.NewRequest(&swapmeetv1.SearchListingsRequest{})
		req.Header().Set("X-Real-Ip", from)
		_, err := m.listings.SearchListings(ctx, req)
		return err
	}
	for i := range 5 {
		if err := search("203.0.113.1"); err != nil {
			t.Fatalf("query %d of 5: %v", i+1, err)
		}
	}
	wantLimited(t, search("203.0.113.1"), "a 6th query from one address")
	if err := search("203.0.113.2"); err != nil {
		t.Fatalf("a query from another address: %v", err)
	}

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	open := func() error {
		req := connect.NewRequest(&swapmeetv1.WatchListingRequest{ListingId: created.Msg.ListingId, ResumeToken: created.Msg.ConsistencyToken})
		req.Header().Set("X-Real-Ip", "198.51.100.1")
		s, err := m.listings.WatchListing(sctx, req)
		if err != nil {
			return err
		}
		if !s.Receive() {
			return s.Err()
		}
		return nil
	}
	for i := range 2 {
		if err := open(); err != nil {
			t.Fatalf("stream %d of 2: %v", i+1, err)
		}
	}
	wantLimited(t, open(), "a 3rd stream opened from one address")
}

// A rename rewrites every document that shows the name, so renames are
// limited per account on their own, however many addresses send them;
// a bio is not a rename. The fan-out each rename causes is counted.
func TestRenamesAreLimitedPerAccount(t *testing.T) {
	m := newMarketWith(t, itest.APIOptions{Limits: app.Limits{RenamesPerUser: 2}, ClientIPHeader: "X-Real-Ip"})
	ada := m.signUp("ada")
	rename := func(name, from string) error {
		req := authed(&swapmeetv1.UpdateProfileRequest{DisplayName: &name}, ada.token)
		req.Header().Set("X-Real-Ip", from)
		_, err := m.users.UpdateProfile(ctx, req)
		return err
	}
	for i := range 2 {
		if err := rename(fmt.Sprint("Ada ", i), fmt.Sprintf("203.0.113.%d", i+1)); err != nil {
			t.Fatalf("rename %d of 2: %v", i+1, err)
		}
	}
	wantLimited(t, rename("Ada 3", "198.51.100.9"), "a 3rd rename from another address")
	bio := "Still here."
	if _, err := m.users.UpdateProfile(ctx, authed(&swapmeetv1.UpdateProfileRequest{Bio: &bio}, ada.token)); err != nil {
		t.Fatalf("a bio after the renames ran out: %v", err)
	}
	if err := rename("Bob's name", "198.51.100.9"); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("another rename: %v", err)
	}
	other := m.signUp("bob")
	name := "Bob"
	if _, err := m.users.UpdateProfile(ctx, authed(&swapmeetv1.UpdateProfileRequest{DisplayName: &name}, other.token)); err != nil {
		t.Fatalf("another account's rename: %v", err)
	}
}
