package rpc_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"github.com/swapmeet/swapmeet/internal/app"
	"github.com/swapmeet/swapmeet/internal/consistency"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/media"
	"github.com/swapmeet/swapmeet/internal/media/mediatest"
	"github.com/swapmeet/swapmeet/internal/password"
	"github.com/swapmeet/swapmeet/internal/rpc"
	"github.com/swapmeet/swapmeet/internal/system"
)

// reasonOf is the reason of err's google.rpc.ErrorInfo, "" without one.
func reasonOf(t *testing.T, err error) string {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return ""
	}
	for _, d := range ce.Details() {
		v, derr := d.Value()
		if derr != nil {
			t.Fatalf("a detail that does not decode: %v", derr)
		}
		if info, ok := v.(*errdetails.ErrorInfo); ok {
			if info.Domain != rpc.ReasonDomain {
				t.Fatalf("ErrorInfo of domain %q, want %q", info.Domain, rpc.ReasonDomain)
			}
			return info.Reason
		}
	}
	return ""
}

func wantReason(t *testing.T, what string, err error, code connect.Code, reason app.Reason) {
	t.Helper()
	if connect.CodeOf(err) != code || reasonOf(t, err) != string(reason) {
		t.Fatalf("%s: %v (reason %q), want %s with reason %s", what, err, reasonOf(t, err), code, reason)
	}
}

// The reason tests provoke every reason of app.Reasons through the public
// API, over the Connect and the gRPC protocols, and read the code and the
// reason, never the message. reasonCases has one case per reason;
// TestEveryReasonHasACase fails when a reason has none.

// marketKind is the market a case needs; each kind is started once per
// protocol and its cases run in it, one after another, in the order of
// app.Reasons.
type marketKind int

const (
	// liveMarket runs the CDC, has a bucket of its own that takes at most
	// 2 images per listing, and its sessions look for deadlocks after
	// liveDeadlockTimeout.
	liveMarket marketKind = iota + 1
	// limitsMarket runs no CDC (no token is ever reached), allows 1
	// listing per seller per day and 4 writes per client address (as
	// X-Real-Ip says), and hashes passwords at the production cost in one
	// slot that a caller waits 1 ms for.
	limitsMarket
	// outageMarket's API reaches Postgres through a link of the test's,
	// so that Postgres can go away for this API alone.
	outageMarket
)

// reasonMarket is a market with what the cases need beyond its clients.
type reasonMarket struct {
	*market
	// su is a superuser session on the market's database (liveMarket).
	su *pgx.Conn
	// stopPostgres makes Postgres go away for the API (outageMarket).
	stopPostgres func(t *testing.T)
}

// reasonCase provokes one reason.
type reasonCase struct {
	code   connect.Code
	market marketKind
	// provoke brings about the refusal through the public API, as
	// honestly as the rule can be reached, and returns it.
	provoke func(t *testing.T, m *reasonMarket) error
}

// reasonCases is keyed by reason: every reason of app.Reasons has a case.
var reasonCases = map[app.Reason]reasonCase{
	app.ReasonListingSold: {connect.CodeFailedPrecondition, liveMarket, func(t *testing.T, m *reasonMarket) error {
		seller, buyer, late := m.signUp("seller"), m.signUp("buyer"), m.signUp("late")
		lamp := m.listing(seller, "Lamp")
		m.order(buyer, lamp)
		return m.placeOrder(late, lamp)
	}},
	app.ReasonListingUnavailable: {connect.CodeFailedPrecondition, liveMarket, func(t *testing.T, m *reasonMarket) error {
		seller, buyer := m.signUp("seller"), m.signUp("buyer")
		lamp := m.listing(seller, "Lamp")
		m.withdraw(seller, lamp)
		return m.placeOrder(buyer, lamp)
	}},
	app.ReasonOwnListing: {connect.CodeFailedPrecondition, liveMarket, func(t *testing.T, m *reasonMarket) error {
		seller := m.signUp("seller")
		return m.placeOrder(seller, m.listing(seller, "Desk"))
	}},
	app.ReasonMixedSellers: {connect.CodeFailedPrecondition, liveMarket, func(t *testing.T, m *reasonMarket) error {
		ada, bob, buyer := m.signUp("ada"), m.signUp("bob"), m.signUp("buyer")
		return m.placeOrder(buyer, m.listing(ada, "Lamp"), m.listing(bob, "Desk"))
	}},
	app.ReasonCurrencyMismatch: {connect.CodeFailedPrecondition, liveMarket, func(t *testing.T, m *reasonMarket) error {
		seller, buyer := m.signUp("seller"), m.signUp("buyer")
		dollars := validListing("Chair")
		dollars.Price = &swapmeetv1.Money{CurrencyCode: "USD", AmountMinor: 900}
		chair, err := m.listings.CreateListing(ctx, authed(dollars, seller.token))
		if err != nil {
			t.Fatal(err)
		}
		return m.placeOrder(buyer, m.listing(seller, "Desk"), chair.Msg.ListingId)
	}},
	app.ReasonIdempotencyKeyReused: {connect.CodeFailedPrecondition, liveMarket, func(t *testing.T, m *reasonMarket) error {
		seller, buyer := m.signUp("seller"), m.signUp("buyer")
		key := fmt.Sprint("reused-", keySeq.Add(1))
		if _, err := m.orders.PlaceOrder(ctx, authed(&swapmeetv1.PlaceOrderRequest{ListingIds: []string{m.listing(seller, "Lamp")}, IdempotencyKey: key}, buyer.token)); err != nil {
			t.Fatal(err)
		}
		_, err := m.orders.PlaceOrder(ctx, authed(&swapmeetv1.PlaceOrderRequest{ListingIds: []string{m.listing(seller, "Desk")}, IdempotencyKey: key}, buyer.token))
		return err
	}},
	app.ReasonIdempotencyKeyBusy: {connect.CodeAborted, liveMarket, provokeKeyBusy},
	app.ReasonOrderNotInState: {connect.CodeFailedPrecondition, liveMarket, func(t *testing.T, m *reasonMarket) error {
		seller, buyer := m.signUp("seller"), m.signUp("buyer")
		placed := m.order(buyer, m.listing(seller, "Lamp"))
		_, err := m.orders.MarkOrderShipped(ctx, authed(&swapmeetv1.MarkOrderShippedRequest{OrderId: placed}, seller.token))
		return err
	}},
	app.ReasonAlreadyReviewed: {connect.CodeAlreadyExists, liveMarket, func(t *testing.T, m *reasonMarket) error {
		seller, buyer := m.signUp("seller"), m.signUp("buyer")
		placed := m.order(buyer, m.listing(seller, "Lamp"))
		if _, err := m.orders.MarkOrderPaid(ctx, authed(&swapmeetv1.MarkOrderPaidRequest{OrderId: placed}, buyer.token)); err != nil {
			t.Fatal(err)
		}
		if _, err := m.orders.MarkOrderShipped(ctx, authed(&swapmeetv1.MarkOrderShippedRequest{OrderId: placed}, seller.token)); err != nil {
			t.Fatal(err)
		}
		if _, err := m.orders.ConfirmDelivery(ctx, authed(&swapmeetv1.ConfirmDeliveryRequest{OrderId: placed}, buyer.token)); err != nil {
			t.Fatal(err)
		}
		review := &swapmeetv1.CreateReviewRequest{OrderId: placed, Rating: 5, Comment: "As described."}
		if _, err := m.reviews.CreateReview(ctx, authed(review, buyer.token)); err != nil {
			t.Fatal(err)
		}
		_, err := m.reviews.CreateReview(ctx, authed(review, buyer.token))
		return err
	}},
	app.ReasonEmailTaken: {connect.CodeAlreadyExists, liveMarket, func(t *testing.T, m *reasonMarket) error {
		req := &swapmeetv1.SignUpRequest{Email: fmt.Sprintf("taken-%d@example.com", userSeq.Add(1)), Password: "correct horse", DisplayName: "Ada"}
		if _, err := m.users.SignUp(ctx, connect.NewRequest(req)); err != nil {
			t.Fatal(err)
		}
		req.DisplayName = "Another Ada"
		_, err := m.users.SignUp(ctx, connect.NewRequest(req))
		return err
	}},
	app.ReasonListingNotEditable: {connect.CodeFailedPrecondition, liveMarket, func(t *testing.T, m *reasonMarket) error {
		seller := m.signUp("seller")
		lamp := m.listing(seller, "Lamp")
		m.withdraw(seller, lamp)
		_, version := m.listingStatus(lamp) // the current version: only the status refuses
		_, err := m.listings.UpdateListing(ctx, authed(&swapmeetv1.UpdateListingRequest{
			ListingId: lamp, ExpectedVersion: version, Title: "Brass lamp", UpdateMask: mask("title")}, seller.token))
		return err
	}},
	app.ReasonVersionConflict: {connect.CodeAborted, liveMarket, func(t *testing.T, m *reasonMarket) error {
		seller := m.signUp("seller")
		chair := m.listing(seller, "Chair")
		if _, err := m.listings.UpdateListing(ctx, authed(&swapmeetv1.UpdateListingRequest{
			ListingId: chair, ExpectedVersion: 1, Title: "Oak chair", UpdateMask: mask("title")}, seller.token)); err != nil {
			t.Fatal(err)
		}
		// Another tab still shows version 1.
		_, err := m.listings.UpdateListing(ctx, authed(&swapmeetv1.UpdateListingRequest{
			ListingId: chair, ExpectedVersion: 1, Price: eur(1000), UpdateMask: mask("price")}, seller.token))
		return err
	}},
	app.ReasonMediaLimit: {connect.CodeFailedPrecondition, liveMarket, func(t *testing.T, m *reasonMarket) error {
		seller := m.signUp("seller")
		camera := m.listing(seller, "Camera")
		for range 2 { // the bucket's MaxPerListing
			m.confirmedImage(seller, camera)
		}
		_, err := m.listings.CreateMediaUpload(ctx, authed(&swapmeetv1.CreateMediaUploadRequest{
			ListingId: camera, ContentType: "image/png", SizeBytes: int64(len(reasonImage))}, seller.token))
		return err
	}},
	app.ReasonMediaSetChanged: {connect.CodeFailedPrecondition, liveMarket, func(t *testing.T, m *reasonMarket) error {
		seller := m.signUp("seller")
		camera := m.listing(seller, "Camera")
		first := m.confirmedImage(seller, camera)
		// The seller's page shows [first]; meanwhile another tab adds an image.
		second := m.confirmedImage(seller, camera)
		if _, err := m.reorder(seller, camera, second, first); err != nil {
			t.Fatalf("reordering every image: %v", err)
		}
		return m.reorderErr(seller, camera, first)
	}},
	app.ReasonUploadExpired: {connect.CodeFailedPrecondition, liveMarket, func(t *testing.T, m *reasonMarket) error {
		seller := m.signUp("seller")
		camera := m.listing(seller, "Camera")
		up := m.createUpload(seller, camera, "image/png", len(reasonImage))
		mediatest.Upload(t, asUpload(up), reasonImage)
		// The confirmation window (12 h) has passed since CreateMediaUpload.
		if _, err := m.e.PG.Exec(ctx, `UPDATE listing_media SET created_at = now() - interval '13 hours' WHERE id = $1`, up.MediaId); err != nil {
			t.Fatal(err)
		}
		_, err := m.confirm(seller, camera, up.MediaId)
		return err
	}},
	app.ReasonUploadMissing: {connect.CodeFailedPrecondition, liveMarket, func(t *testing.T, m *reasonMarket) error {
		seller := m.signUp("seller")
		camera := m.listing(seller, "Camera")
		up := m.createUpload(seller, camera, "image/png", len(reasonImage))
		_, err := m.confirm(seller, camera, up.MediaId) // nothing was uploaded
		return err
	}},
	app.ReasonUploadMismatch: {connect.CodeFailedPrecondition, liveMarket, func(t *testing.T, m *reasonMarket) error {
		seller := m.signUp("seller")
		camera := m.listing(seller, "Camera")
		up := m.createUpload(seller, camera, "image/jpeg", len(reasonImage))
		mediatest.Upload(t, asUpload(up), reasonImage) // a PNG of the declared size, stored as a JPEG
		_, err := m.confirm(seller, camera, up.MediaId)
		return err
	}},
	app.ReasonConsistencyTimeout: {connect.CodeUnavailable, limitsMarket, func(t *testing.T, m *reasonMarket) error {
		seller := m.signUp("seller")
		created, err := m.listings.CreateListing(ctx, authed(validListing("Lamp"), seller.token))
		if err != nil {
			t.Fatal(err)
		}
		// No CDC runs: the read side never reaches the write.
		_, err = m.listings.GetListing(ctx, connect.NewRequest(&swapmeetv1.GetListingRequest{ListingId: created.Msg.ListingId, ConsistencyToken: created.Msg.ConsistencyToken}))
		return err
	}},
	app.ReasonTokenHistoryPending: {connect.CodeUnavailable, liveMarket, func(t *testing.T, m *reasonMarket) error {
		seller := m.signUp("seller")
		lamp := m.listing(seller, "Lamp")
		// A write on the next timeline of the database the read side
		// follows, as after a failover, before the read side is rebuilt
		// onto it.
		followed := m.followed(t)
		promoted := consistency.History{System: followed.History.System, Timeline: followed.History.Timeline + 1}
		token := consistency.WriteToken(consistency.Position{History: promoted, LSN: m.e.CurrentLSN(t)})
		_, err := m.listings.GetListing(ctx, connect.NewRequest(&swapmeetv1.GetListingRequest{ListingId: lamp, ConsistencyToken: token}))
		return err
	}},
	app.ReasonTokenHistoryLost: {connect.CodeFailedPrecondition, liveMarket, provokeHistoryLost},
	app.ReasonRateLimited: {connect.CodeResourceExhausted, limitsMarket, func(t *testing.T, m *reasonMarket) error {
		u := m.signUp("writer")
		from := fmt.Sprintf("192.0.2.%d", 1+keySeq.Add(1)%250) // a client of its own
		rename := func(i int) error {
			name := fmt.Sprint("Writer ", i)
			req := authed(&swapmeetv1.UpdateProfileRequest{DisplayName: &name}, u.token)
			req.Header().Set("X-Real-Ip", from)
			_, err := m.users.UpdateProfile(ctx, req)
			return err
		}
		for i := range 4 { // WritesPerClient
			if err := rename(i); err != nil {
				t.Fatalf("write %d of 4: %v", i+1, err)
			}
		}
		return rename(4)
	}},
	app.ReasonServerBusy: {connect.CodeResourceExhausted, limitsMarket, func(t *testing.T, m *reasonMarket) error {
		// Sign-ins with unknown emails still verify a password (against a
		// dummy hash): 8 at once fill the one slot, and the callers who
		// wait more than 1 ms for it are turned away.
		var last error
		for range 10 {
			_, errs := raceN(8, func() (struct{}, error) {
				_, err := m.users.SignIn(ctx, connect.NewRequest(&swapmeetv1.SignInRequest{
					Email: rand.Text() + "@example.com", Password: "correct horse battery"}))
				return struct{}{}, err
			})
			for _, err := range errs {
				if connect.CodeOf(err) != connect.CodeUnauthenticated {
					last = err
				}
				if app.Reason(reasonOf(t, err)) == app.ReasonServerBusy {
					return err
				}
			}
		}
		return last
	}},
	app.ReasonQuotaExceeded: {connect.CodeResourceExhausted, limitsMarket, func(t *testing.T, m *reasonMarket) error {
		seller := m.signUp("seller")
		m.listing(seller, "Lamp")
		_, err := m.listings.CreateListing(ctx, authed(validListing("Desk"), seller.token))
		return err
	}},
	app.ReasonContention: {connect.CodeAborted, liveMarket, provokeContention},
	app.ReasonUnavailable: {connect.CodeUnavailable, outageMarket, func(t *testing.T, m *reasonMarket) error {
		m.signUp("before") // the API has connections open when Postgres goes away
		m.stopPostgres(t)
		signUp := func() error {
			_, err := m.users.SignUp(ctx, connect.NewRequest(&swapmeetv1.SignUpRequest{
				Email: fmt.Sprintf("outage-%d@example.com", userSeq.Add(1)), Password: "correct horse", DisplayName: "Ada"}))
			return err
		}
		// The first request finds its connection ended, and so does the
		// next (on another ended connection, or refused a new one).
		wantReason(t, "a request on a connection Postgres ended", signUp(), connect.CodeUnavailable, app.ReasonUnavailable)
		return signUp()
	}},
}

// runReasons runs the cases of the given market kinds, each over both
// protocols, one market per kind and protocol.
func runReasons(t *testing.T, kinds ...marketKind) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			for _, kind := range kinds {
				m := newReasonMarket(t, kind, p.opts...)
				for _, r := range app.Reasons {
					c, ok := reasonCases[r]
					if !ok || c.market != kind {
						continue
					}
					t.Run(string(r), func(t *testing.T) {
						// The market's helpers fail the case, not the market's test.
						parent := m.t
						m.t = t
						defer func() { m.t = parent }()
						wantReason(t, string(r), c.provoke(t, m), c.code, r)
					})
				}
			}
		})
	}
}

// TestRefusalsNameTheirReason: the refusals of the business rules, of the
// images' rules, of tokens of other database histories, and of a
// transaction that keeps deadlocking, each with its reason.
func TestRefusalsNameTheirReason(t *testing.T) {
	runReasons(t, liveMarket)
}

// TestLimitsNameTheirReason: a token the read side does not reach in
// time, a rate limit, full hashing slots, a quota, and a backing service
// that is down, each with its reason.
func TestLimitsNameTheirReason(t *testing.T) {
	runReasons(t, limitsMarket, outageMarket)
}

// TestEveryReasonHasACase: app.Reasons lists every Reason constant of
// internal/app/errors.go once, and each has a case in reasonCases (and
// there is no case of a reason it does not list).
func TestEveryReasonHasACase(t *testing.T) {
	declared := reasonConstants(t)
	listed := map[app.Reason]bool{}
	for _, r := range app.Reasons {
		if listed[r] {
			t.Errorf("app.Reasons lists %s twice", r)
		}
		listed[r] = true
		if !declared[r] {
			t.Errorf("app.Reasons lists %s, which is no Reason constant of internal/app/errors.go", r)
		}
		c, ok := reasonCases[r]
		if !ok {
			t.Errorf("reason %s has no case in reasonCases: provoke it through the API", r)
			continue
		}
		if c.provoke == nil || c.code == 0 || c.market < liveMarket || c.market > outageMarket {
			t.Errorf("the case of %s is incomplete: %+v", r, c)
		}
	}
	for r := range declared {
		if !listed[r] {
			t.Errorf("the Reason constant %s is missing from app.Reasons", r)
		}
	}
	for r := range reasonCases {
		if !listed[r] {
			t.Errorf("reasonCases has a case of %s, which app.Reasons does not list", r)
		}
	}
}

// reasonConstants parses internal/app/errors.go for the values of its
// constants of type Reason.
func reasonConstants(t *testing.T) map[app.Reason]bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../app/errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[app.Reason]bool{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			v := s.(*ast.ValueSpec)
			if id, ok := v.Type.(*ast.Ident); !ok || id.Name != "Reason" {
				continue
			}
			for _, val := range v.Values {
				lit, ok := val.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("a Reason constant whose value is not a string literal: %#v", val)
				}
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				out[app.Reason(s)] = true
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no Reason constants found in internal/app/errors.go")
	}
	return out
}

// TestReasonsAreDocumented: docs/errors.md has a row for every reason, and
// proto/swapmeet/v1/common.proto names every reason.
func TestReasonsAreDocumented(t *testing.T) {
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	docs, proto := read("../../docs/errors.md"), read("../../proto/swapmeet/v1/common.proto")
	for _, r := range app.Reasons {
		if !regexp.MustCompile("(?m)^\\| `" + string(r) + "` \\|").MatchString(docs) {
			t.Errorf("docs/errors.md has no row for %s", r)
		}
		if !regexp.MustCompile(`\b` + string(r) + `\b`).MatchString(proto) {
			t.Errorf("proto/swapmeet/v1/common.proto does not name %s", r)
		}
	}
}

// newReasonMarket starts a market of the kind, with clients of opts.
func newReasonMarket(t *testing.T, kind marketKind, opts ...connect.ClientOption) *reasonMarket {
	t.Helper()
	switch kind {
	case liveMarket:
		e := itest.New(t)
		e.Media = mediatest.Bucket(t, func(c *media.Config) { c.MaxPerListing = 2 })
		su := e.Superuser(t)
		// Sessions opened from now on (the API's, the CDC's) look for a
		// deadlock once they have waited this long for a lock.
		if _, err := su.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s SET deadlock_timeout = '%dms'",
			pgx.Identifier{su.Config().Database}.Sanitize(), liveDeadlockTimeout.Milliseconds())); err != nil {
			t.Fatal(err)
		}
		e.StartCDC(t)
		srv, a := e.StartAPI(t)
		return &reasonMarket{market: clientsOf(t, e, srv, a, opts), su: su}
	case limitsMarket:
		return &reasonMarket{market: newMarketWith(t, itest.APIOptions{
			Password:       password.Default,
			Limits:         app.Limits{ListingsPerDay: 1, WritesPerClient: 4, HashConcurrency: 1, HashWait: time.Millisecond},
			ClientIPHeader: "X-Real-Ip",
		}, opts...)}
	case outageMarket:
		e := itest.New(t)
		srv, a, stop := startAPIThroughLink(t, e)
		return &reasonMarket{market: clientsOf(t, e, srv, a, opts), stopPostgres: stop}
	}
	t.Fatalf("unknown market kind %d", kind)
	return nil
}

// liveDeadlockTimeout is the live market's deadlock_timeout: longer than
// the test takes to close a cycle once the API waits (see
// provokeContention), short enough that the 8 attempts of a transaction
// take a few seconds.
const liveDeadlockTimeout = 250 * time.Millisecond

var reasonImage = mediatest.PNG(8, 8)

func (m *reasonMarket) placeOrder(buyer user, listingIDs ...string) error {
	_, err := m.orders.PlaceOrder(ctx, authed(&swapmeetv1.PlaceOrderRequest{
		ListingIds: listingIDs, IdempotencyKey: fmt.Sprint("key-", keySeq.Add(1))}, buyer.token))
	return err
}

func (m *reasonMarket) withdraw(seller user, listingID string) {
	m.t.Helper()
	_, version := m.listingStatus(listingID)
	if _, err := m.listings.WithdrawListing(ctx, authed(&swapmeetv1.WithdrawListingRequest{ListingId: listingID, ExpectedVersion: version}, seller.token)); err != nil {
		m.t.Fatal(err)
	}
}

// confirmedImage uploads and confirms an image of the listing.
func (m *reasonMarket) confirmedImage(seller user, listingID string) string {
	m.t.Helper()
	up := m.createUpload(seller, listingID, "image/png", len(reasonImage))
	mediatest.Upload(m.t, asUpload(up), reasonImage)
	if _, err := m.confirm(seller, listingID, up.MediaId); err != nil {
		m.t.Fatal(err)
	}
	return up.MediaId
}

func (m *reasonMarket) reorder(seller user, listingID string, mediaIDs ...string) (string, error) {
	res, err := m.listings.ReorderMedia(ctx, authed(&swapmeetv1.ReorderMediaRequest{ListingId: listingID, MediaIds: mediaIDs}, seller.token))
	if err != nil {
		return "", err
	}
	return res.Msg.ConsistencyToken, nil
}

func (m *reasonMarket) reorderErr(seller user, listingID string, mediaIDs ...string) error {
	_, err := m.reorder(seller, listingID, mediaIDs...)
	return err
}

// followed is the database history the read side follows, as the
// projections pointer records it.
func (m *reasonMarket) followed(t *testing.T) consistency.Followed {
	t.Helper()
	p, err := m.e.Reads.LoadPointer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.Followed.History.IsZero() {
		t.Fatal("the projections pointer records no history")
	}
	return p.Followed
}

// waitForSession waits until a session of the market's database other
// than the caller's matches cond (SQL over pg_stat_activity), and fails
// the test after 30 s.
func (m *reasonMarket) waitForSession(t *testing.T, what, cond string) {
	t.Helper()
	itest.Eventually(t, 30*time.Second, what, func() (bool, error) {
		var n int
		err := m.e.PG.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND `+cond).Scan(&n)
		return err == nil && n > 0, err
	})
}

// provokeKeyBusy: CreateListing with a key that another request's
// transaction has claimed, and that is gone again (purged) by the time
// the request looks up what it made. The test plays the other request
// (a transaction that inserts the key and commits) and the purge (a
// transaction that deletes it); a lock on the table orders the three:
//
//  1. the other request's transaction claims the key and stays open;
//  2. CreateListing finds no key, and its claim waits for that transaction;
//  3. the purge asks for the table, queued behind both;
//  4. the other request commits: the claim fails on the key, the API
//     rolls back, and the purge gets the table before the API can look
//     the key up; the purge deletes the key and commits;
//  5. the API finds no key: it cannot answer with the object, and asks
//     the client to retry.
func provokeKeyBusy(t *testing.T, m *reasonMarket) error {
	seller := m.signUp("seller")
	req := validListing("Lamp")
	req.IdempotencyKey = fmt.Sprint("busy-", keySeq.Add(1))

	other, err := m.e.PG.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback(ctx) //nolint:errcheck
	if _, err := other.Exec(ctx, `INSERT INTO idempotency_keys (owner_id, operation, key, digest, object_id)
		VALUES ($1, 'CreateListing', $2, $3, gen_random_uuid())`, seller.id, req.IdempotencyKey, make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := m.listings.CreateListing(ctx, authed(req, seller.token))
		done <- err
	}()
	m.waitForSession(t, "CreateListing's claim to wait for the other request's",
		`wait_event = 'transactionid' AND query LIKE '%ClaimIdempotencyKey%'`)

	purge, err := m.e.PG.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer purge.Rollback(ctx) //nolint:errcheck
	locked := make(chan error, 1)
	go func() {
		_, err := purge.Exec(ctx, `LOCK TABLE idempotency_keys IN ACCESS EXCLUSIVE MODE`)
		locked <- err
	}()
	m.waitForSession(t, "the purge to queue for the table", `wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE idempotency_keys%'`)
	if err := other.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-locked; err != nil {
		t.Fatal(err)
	}
	if _, err := purge.Exec(ctx, `DELETE FROM idempotency_keys WHERE owner_id = $1 AND operation = 'CreateListing' AND key = $2`, seller.id, req.IdempotencyKey); err != nil {
		t.Fatal(err)
	}
	m.waitForSession(t, "CreateListing to look the key up again", `wait_event_type = 'Lock' AND query LIKE '%FindIdempotencyKey%'`)
	if err := purge.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("CreateListing did not answer within 30 s")
		return nil
	}
}

// provokeHistoryLost: the read side was rebuilt onto the history it
// follows from an older one (a restore or a failover), which the two
// share up to a point; a write of the old history past that point is
// lost. The test records that move on the projections pointer as a
// rebuild does (consistency.Followed's ancestors), keeping the current
// history and base, which the running CDC streams.
func provokeHistoryLost(t *testing.T, m *reasonMarket) error {
	seller := m.signUp("seller")
	created, err := m.listings.CreateListing(ctx, authed(validListing("Lamp"), seller.token))
	if err != nil {
		t.Fatal(err)
	}
	lamp := created.Msg.ListingId
	m.getListing(lamp, created.Msg.ConsistencyToken) // projected
	p, err := m.e.Reads.LoadPointer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	old := consistency.History{System: p.Followed.History.System + 1, Timeline: 1}
	const shared = 1 << 24
	p.Followed.Ancestors = append(p.Followed.Ancestors, consistency.Ancestor{History: old, End: shared})
	if err := m.e.Reads.SavePointer(ctx, p); err != nil {
		t.Fatal(err)
	}
	get := func(lsn uint64) error {
		token := consistency.WriteToken(consistency.Position{History: old, LSN: lsn})
		_, err := m.listings.GetListing(ctx, connect.NewRequest(&swapmeetv1.GetListingRequest{ListingId: lamp, ConsistencyToken: token}))
		return err
	}
	// A write the two histories share is honoured.
	if err := get(shared); err != nil {
		t.Fatalf("a token of the old history before the fork point: %v", err)
	}
	return get(shared + 1)
}

// provokeContention: PlaceOrder of two listings, a < b, locks a, then b.
// Another session holds b; each time the order's transaction holds a and
// waits for b, that session asks for a and closes a cycle, which Postgres
// breaks by aborting the order's transaction (it has waited longest: its
// deadlock_timeout runs out first). The API retries a deadlock; after its
// last attempt it gives up.
func provokeContention(t *testing.T, m *reasonMarket) error {
	seller, buyer := m.signUp("seller"), m.signUp("buyer")
	a, b := m.listing(seller, "Left"), m.listing(seller, "Right")
	if b < a {
		a, b = b, a
	}
	// The other session waits far longer before it looks for a deadlock:
	// the API's session always finds the cycle.
	if _, err := m.su.Exec(ctx, `SET deadlock_timeout = '60s'`); err != nil {
		t.Fatal(err)
	}
	tx, err := m.su.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if _, err := tx.Exec(ctx, `SELECT FROM listings WHERE id = $1 FOR UPDATE`, b); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.placeOrder(buyer, a, b) }()
	deadline := time.Now().Add(60 * time.Second)
	for cycles := 0; ; {
		// Wait until the order's transaction waits for b (holding a), or
		// the order is answered.
		for waiting := false; !waiting; {
			select {
			case err := <-done:
				t.Logf("PlaceOrder answered after %d deadlocks", cycles)
				return err
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("PlaceOrder still running after %d deadlocks", cycles)
			}
			if err := m.e.PG.QueryRow(ctx, `SELECT count(*) > 0 FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%LockListingsForOrder%'`).Scan(&waiting); err != nil {
				t.Fatal(err)
			}
			if !waiting {
				time.Sleep(time.Millisecond)
			}
		}
		if _, err := tx.Exec(ctx, `SAVEPOINT cycle`); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `SELECT FROM listings WHERE id = $1 FOR UPDATE`, a); err != nil {
			t.Fatalf("closing cycle %d: %v (the API's session must find the deadlock first)", cycles+1, err)
		}
		if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT cycle`); err != nil { // lets a go again
			t.Fatal(err)
		}
		cycles++
	}
}

// startAPIThroughLink serves the API as itest's StartAPI does, except that
// it reaches Postgres through a link of the test's. stop makes Postgres go
// away for the API as a shutdown would: the link refuses new connections,
// and the server ends each session the API has open (57P01, "terminating
// connection due to administrator command"). Nothing else is touched: the
// test's own sessions, and everyone else's, stay up.
func startAPIThroughLink(t *testing.T, e *itest.Env) (srv *httptest.Server, a *app.App, stop func(*testing.T)) {
	t.Helper()
	cfg := e.Config()
	u, err := url.Parse(cfg.PostgresURL)
	if err != nil {
		t.Fatal(err)
	}
	l := startLink(t, u.Host)
	u.Host = l.ln.Addr().String()
	cfg.PostgresURL = u.String()
	pg, err := system.OpenAPIPool(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	clients := e.Clients()
	clients.PG = pg
	api, err := system.NewAPI(cfg, clients, e.Log, system.APIOptions{Password: itest.FastPasswords, Media: e.Media})
	if err != nil {
		pg.Close()
		t.Fatal(err)
	}
	actx, cancel := context.WithCancel(context.Background())
	stopAPI := api.Start(actx)
	srv = httptest.NewUnstartedServer(nil)
	srv.Config = api.HTTPServer()
	srv.Start()
	h2c := new(http.Protocols)
	h2c.SetUnencryptedHTTP2(true)
	srv.Client().Transport = &http.Transport{Protocols: h2c}
	t.Cleanup(func() { cancel(); stopAPI(); pg.Close(); srv.Close() })
	stop = func(t *testing.T) {
		t.Helper()
		ports := l.refuse()
		if len(ports) == 0 {
			t.Fatal("the API has no connection to Postgres open")
		}
		const theirs = `datname = current_database() AND client_port = ANY($1)`
		if _, err := e.PG.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE `+theirs, ports); err != nil {
			t.Fatal(err)
		}
		itest.Eventually(t, 10*time.Second, "the API's sessions to end", func() (bool, error) {
			var n int
			err := e.PG.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE `+theirs, ports).Scan(&n)
			return err == nil && n == 0, err
		})
	}
	return srv, api.App, stop
}

// link forwards TCP connections to a target.
type link struct {
	ln       net.Listener
	target   string
	mu       sync.Mutex
	conns    []net.Conn
	upstream []int32 // the local ports of the connections to target
	closed   bool
}

func startLink(t *testing.T, target string) *link {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &link{ln: ln, target: target}
	go l.accept()
	t.Cleanup(l.close)
	return l
}

func (l *link) accept() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", l.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_, _ = c.Close(), s.Close()
			return
		}
		l.conns = append(l.conns, c, s)
		l.upstream = append(l.upstream, int32(s.LocalAddr().(*net.TCPAddr).Port))
		l.mu.Unlock()
		go func() { _, _ = io.Copy(s, c); _ = s.Close() }()
		go func() { _, _ = io.Copy(c, s); _ = c.Close() }()
	}
}

// refuse stops accepting connections (they are refused from now on) and
// returns the local ports of the connections to target made so far,
// which stay up.
func (l *link) refuse() []int32 {
	_ = l.ln.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int32(nil), l.upstream...)
}

// close closes the listener and every connection through the link.
func (l *link) close() {
	_ = l.ln.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for _, c := range l.conns {
		_ = c.Close()
	}
}

// raceN runs fn from n goroutines at once and returns their results.
func raceN[T any](n int, fn func() (T, error)) ([]T, []error) {
	out, errs := make([]T, n), make([]error, n)
	start := make(chan struct{})
	done := make(chan int)
	for i := range n {
		go func() {
			<-start
			out[i], errs[i] = fn()
			done <- i
		}()
	}
	close(start)
	for range n {
		<-done
	}
	return out, errs
}

// TestCreatesAreIdempotent: CreateListing and CreateMediaUpload retried
// with one idempotency key from 8 goroutines at once make one listing and
// one upload, and every retry answers with it; the same key with another
// request is refused with IDEMPOTENCY_KEY_REUSED.
func TestCreatesAreIdempotent(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			m := newMarket(t, p.opts...)
			seller := m.signUp("seller")
			req := validListing("Lamp")
			req.IdempotencyKey = "create-lamp-1"
			created, errs := raceN(8, func() (string, error) {
				res, err := m.listings.CreateListing(ctx, authed(req, seller.token))
				if err != nil {
					return "", err
				}
				return res.Msg.ListingId, nil
			})
			for i, err := range errs {
				if err != nil || created[i] != created[0] {
					t.Fatalf("retry %d: %q, %v; want listing %s", i, created[i], err, created[0])
				}
			}
			var n int
			if err := m.e.PG.QueryRow(ctx, `SELECT count(*) FROM listings WHERE seller_id = $1`, seller.id).Scan(&n); err != nil || n != 1 {
				t.Fatalf("%d listings after 8 retries, %v", n, err)
			}
			other := validListing("Lamp, cheaper")
			other.IdempotencyKey = req.IdempotencyKey
			_, err := m.listings.CreateListing(ctx, authed(other, seller.token))
			wantReason(t, "the key again with other fields", err, connect.CodeFailedPrecondition, app.ReasonIdempotencyKeyReused)

			up := &swapmeetv1.CreateMediaUploadRequest{ListingId: created[0], ContentType: "image/png", SizeBytes: 2048, IdempotencyKey: "photo-1"}
			media, errs := raceN(8, func() (string, error) {
				res, err := m.listings.CreateMediaUpload(ctx, authed(up, seller.token))
				if err != nil {
					return "", err
				}
				if res.Msg.UploadUrl == "" || len(res.Msg.FormFields) == 0 {
					return "", errors.New("no policy")
				}
				return res.Msg.MediaId, nil
			})
			for i, err := range errs {
				if err != nil || media[i] != media[0] {
					t.Fatalf("upload retry %d: %q, %v; want media %s", i, media[i], err, media[0])
				}
			}
			if err := m.e.PG.QueryRow(ctx, `SELECT count(*) FROM listing_media WHERE listing_id = $1`, created[0]).Scan(&n); err != nil || n != 1 {
				t.Fatalf("%d uploads after 8 retries, %v", n, err)
			}
			bigger := &swapmeetv1.CreateMediaUploadRequest{ListingId: created[0], ContentType: "image/png", SizeBytes: 4096, IdempotencyKey: "photo-1"}
			_, err = m.listings.CreateMediaUpload(ctx, authed(bigger, seller.token))
			wantReason(t, "the upload key again with another size", err, connect.CodeFailedPrecondition, app.ReasonIdempotencyKeyReused)
		})
	}
}
