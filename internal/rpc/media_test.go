package rpc_test

import (
	"bytes"
	"context"
	"errors"
	"image/jpeg"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/swapmeet/swapmeet/db"
	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/media"
	"github.com/swapmeet/swapmeet/internal/media/mediatest"
	"github.com/swapmeet/swapmeet/internal/mediajobs"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

// newMediaMarket is newMarket with a bucket of the test's own, so that
// what one test uploads or sweeps is invisible to the others.
func newMediaMarket(t *testing.T, configure func(*media.Config), opts ...connect.ClientOption) *market {
	e := itest.New(t)
	if configure == nil {
		configure = func(*media.Config) {}
	}
	e.Media = mediatest.Bucket(t, configure)
	srv, a := e.StartAPI(t)
	return clientsOf(t, e, srv, a, opts)
}

// startThumbnails runs the thumbnail worker, as `serve` does, until the test ends.
func (m *market) startThumbnails() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		mediajobs.New(db.NewStore(m.e.PG), m.e.Media, m.e.Log).RunThumbnails(ctx, 20*time.Millisecond)
	}()
	m.t.Cleanup(func() {
		cancel()
		<-done
	})
}

func (m *market) createUpload(seller user, listingID, contentType string, size int) *swapmeetv1.CreateMediaUploadResponse {
	m.t.Helper()
	res, err := m.listings.CreateMediaUpload(ctx, authed(&swapmeetv1.CreateMediaUploadRequest{
		ListingId: listingID, ContentType: contentType, SizeBytes: int64(size)}, seller.token))
	if err != nil {
		m.t.Fatal(err)
	}
	return res.Msg
}

func (m *market) confirm(u user, listingID, mediaID string) (string, error) {
	res, err := m.listings.ConfirmMediaUpload(ctx, authed(&swapmeetv1.ConfirmMediaUploadRequest{ListingId: listingID, MediaId: mediaID}, u.token))
	if err != nil {
		return "", err
	}
	return res.Msg.ConsistencyToken, nil
}

// getListing reads a listing at a consistency token. Whatever it returns
// reflects the write; while the read side is behind it answers Unavailable,
// which a client retries, as this does (a loaded machine can take longer
// than the server's wait).
func (m *market) getListing(id, token string) *swapmeetv1.Listing {
	m.t.Helper()
	var l *swapmeetv1.Listing
	itest.Eventually(m.t, 15*time.Second, "the listing at the token", func() (bool, error) {
		res, err := m.listings.GetListing(ctx, connect.NewRequest(&swapmeetv1.GetListingRequest{ListingId: id, ConsistencyToken: token}))
		if connect.CodeOf(err) == connect.CodeUnavailable {
			return false, err
		}
		if err != nil {
			m.t.Fatal(err)
		}
		l = res.Msg.Listing
		return true, nil
	})
	return l
}

func asUpload(r *swapmeetv1.CreateMediaUploadResponse) media.Upload {
	return media.Upload{URL: r.UploadUrl, Fields: r.FormFields, ExpiresAt: r.ExpiresAt.AsTime()}
}

// mediaRows counts a listing's media rows in Postgres, pending ones included.
func (m *market) mediaRows(listingID string) int {
	m.t.Helper()
	var n int
	if err := m.e.PG.QueryRow(ctx, `SELECT count(*) FROM listing_media WHERE listing_id = $1`, listingID).Scan(&n); err != nil {
		m.t.Fatal(err)
	}
	return n
}

func (m *market) objectGone(key string) bool {
	_, err := m.e.Media.Stat(ctx, key)
	if err != nil && !errors.Is(err, media.ErrNotFound) {
		m.t.Fatal(err)
	}
	return err != nil
}

// TestMediaUploadConfirmReadAndDelete walks one image through its life:
// a real multipart POST to the store, confirmation, the listing document
// through the CDC, a presigned GET, the thumbnail, and deletion.
func TestMediaUploadConfirmReadAndDelete(t *testing.T) {
	m := newMediaMarket(t, nil)
	m.e.StartCDC(t)
	seller := m.signUp("seller")
	listing := m.listing(seller, "Camera")
	img := mediatest.PNG(640, 480)

	up := m.createUpload(seller, listing, "image/png", len(img))
	key := "listings/" + listing + "/" + up.MediaId
	if up.FormFields["key"] != media.StagingKey(key) || up.FormFields["Content-Type"] != "image/png" || up.FormFields["policy"] == "" {
		t.Fatalf("form fields %v: want the server's key, the content type and a policy", up.FormFields)
	}
	if exp := time.Until(up.ExpiresAt.AsTime()); exp <= 0 || exp > media.DefaultConfig.UploadExpiry {
		t.Fatalf("the policy expires in %s, want within %s", exp, media.DefaultConfig.UploadExpiry)
	}
	mediatest.Upload(t, asUpload(up), img)
	token, err := m.confirm(seller, listing, up.MediaId)
	if err != nil {
		t.Fatal(err)
	}

	// The read side, at the confirmation's token: the image with a URL
	// that serves the uploaded bytes.
	got := m.getListing(listing, token)
	if ms := got.GetMedia(); len(ms) != 1 || ms[0].MediaId != up.MediaId || ms[0].Width != 640 || ms[0].Height != 480 ||
		ms[0].SizeBytes != int64(len(img)) || ms[0].ContentType != "image/png" {
		t.Fatalf("listing media = %v", ms)
	}
	status, body, err := mediatest.Get(got.Media[0].Url)
	if err != nil || status != http.StatusOK || !bytes.Equal(body, img) {
		t.Fatalf("GET the image: status %d, err %v, %d bytes", status, err, len(body))
	}
	doc, err := readstore.Find[readstore.Listing](ctx, m.e.Reads, readstore.Listings, listing)
	if err != nil || len(doc.Media) != 1 || doc.Media[0].ObjectKey != key {
		t.Fatalf("listing document media = %+v, %v", doc.Media, err)
	}

	// Confirming again is harmless.
	if _, err := m.confirm(seller, listing, up.MediaId); err != nil {
		t.Fatalf("second confirmation: %v", err)
	}

	// The thumbnail is made off the request path and reaches the document.
	m.startThumbnails()
	itest.Eventually(t, 30*time.Second, "the thumbnail on the listing document", func() (bool, error) {
		doc, err = readstore.Find[readstore.Listing](ctx, m.e.Reads, readstore.Listings, listing)
		return err == nil && len(doc.Media) == 1 && doc.Media[0].ThumbnailKey != "", err
	})
	thumbKey := doc.Media[0].ThumbnailKey
	if thumbKey != media.ThumbnailKey(key) {
		t.Fatalf("thumbnail key %q, want %q beside the original", thumbKey, media.ThumbnailKey(key))
	}
	thumbURL, _, err := m.e.Media.PresignedGet(ctx, thumbKey)
	if err != nil {
		t.Fatal(err)
	}
	status, body, err = mediatest.Get(thumbURL)
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET the thumbnail: status %d, err %v", status, err)
	}
	if cfg, err := jpeg.DecodeConfig(bytes.NewReader(body)); err != nil || cfg.Width != media.ThumbnailSize || cfg.Height != 240 {
		t.Fatalf("thumbnail is %dx%d (%v), want a %dx240 JPEG", cfg.Width, cfg.Height, err, media.ThumbnailSize)
	}

	// Deletion removes the row, both objects, and the image from the document.
	del, err := m.listings.DeleteMedia(ctx, authed(&swapmeetv1.DeleteMediaRequest{ListingId: listing, MediaId: up.MediaId}, seller.token))
	if err != nil {
		t.Fatal(err)
	}
	if n := m.mediaRows(listing); n != 0 {
		t.Errorf("%d media rows left after DeleteMedia", n)
	}
	if !m.objectGone(key) || !m.objectGone(thumbKey) {
		t.Errorf("objects left after DeleteMedia")
	}
	if ms := m.getListing(listing, del.Msg.ConsistencyToken).GetMedia(); len(ms) != 0 {
		t.Fatalf("after DeleteMedia the listing shows %v", ms)
	}
	_, err = m.listings.DeleteMedia(ctx, authed(&swapmeetv1.DeleteMediaRequest{ListingId: listing, MediaId: up.MediaId}, seller.token))
	wantCode(t, err, connect.CodeNotFound)
}

// TestMediaUploadRefusals: the store itself refuses uploads outside the
// policy, and confirmation refuses what is missing or is not what was
// declared, leaving nothing behind.
func TestMediaUploadRefusals(t *testing.T) {
	m := newMediaMarket(t, func(c *media.Config) { c.MaxPerListing = 2 })
	seller := m.signUp("seller")
	listing := m.listing(seller, "Lamp")
	img := mediatest.PNG(16, 16)

	t.Run("invalid requests", func(t *testing.T) {
		for _, req := range []*swapmeetv1.CreateMediaUploadRequest{
			{ListingId: listing, ContentType: "image/gif", SizeBytes: 10},
			{ListingId: listing, ContentType: "image/png", SizeBytes: 0},
			{ListingId: listing, ContentType: "image/png", SizeBytes: media.DefaultConfig.MaxUploadBytes + 1},
			{ListingId: "not-a-uuid", ContentType: "image/png", SizeBytes: 10},
		} {
			_, err := m.listings.CreateMediaUpload(ctx, authed(req, seller.token))
			wantCode(t, err, connect.CodeInvalidArgument)
		}
	})

	t.Run("a larger body is refused by the store", func(t *testing.T) {
		up := m.createUpload(seller, listing, "image/png", len(img))
		status, body, err := mediatest.Post(asUpload(up), append(bytes.Clone(img), 0), nil)
		if err != nil || status != http.StatusBadRequest || !strings.Contains(body, "EntityTooLarge") {
			t.Fatalf("status %d, err %v: %s; want 400 EntityTooLarge", status, err, body)
		}
		_, err = m.confirm(seller, listing, up.MediaId)
		wantCode(t, err, connect.CodeFailedPrecondition)
		if n := m.mediaRows(listing); n != 0 {
			t.Errorf("%d media rows left after a refused confirmation", n)
		}
	})

	t.Run("another content type is refused by the store", func(t *testing.T) {
		up := m.createUpload(seller, listing, "image/png", len(img))
		status, body, err := mediatest.Post(asUpload(up), img, map[string]string{"Content-Type": "image/svg+xml"})
		if err != nil || status != http.StatusForbidden {
			t.Fatalf("status %d, err %v: %s; want 403", status, err, body)
		}
		if !m.objectGone(up.FormFields["key"]) {
			t.Fatal("the store kept a refused upload")
		}
		_, err = m.confirm(seller, listing, up.MediaId)
		wantCode(t, err, connect.CodeFailedPrecondition)
	})

	t.Run("magic bytes that do not match", func(t *testing.T) {
		// The policy pins the declared type, but the bytes are whatever the
		// client sends: a PNG declared as a JPEG gets in, and confirmation
		// catches it.
		up := m.createUpload(seller, listing, "image/jpeg", len(img))
		mediatest.Upload(t, asUpload(up), img)
		_, err := m.confirm(seller, listing, up.MediaId)
		wantCode(t, err, connect.CodeFailedPrecondition)
		if !strings.Contains(err.Error(), "image/png, not image/jpeg") {
			t.Errorf("error %q does not say what was wrong", err)
		}
		if n := m.mediaRows(listing); n != 0 || !m.objectGone(up.FormFields["key"]) {
			t.Errorf("a refused upload left %d rows or its object", n)
		}
	})

	t.Run("too late to confirm", func(t *testing.T) {
		up := m.createUpload(seller, listing, "image/png", len(img))
		mediatest.Upload(t, asUpload(up), img)
		if _, err := m.e.PG.Exec(ctx, `UPDATE listing_media SET created_at = now() - interval '13 hours' WHERE id = $1`, up.MediaId); err != nil {
			t.Fatal(err)
		}
		_, err := m.confirm(seller, listing, up.MediaId)
		wantCode(t, err, connect.CodeFailedPrecondition)
		if n := m.mediaRows(listing); n != 0 || !m.objectGone(up.FormFields["key"]) {
			t.Errorf("a refused upload left %d rows or its object", n)
		}
	})

	t.Run("at most N images, stale pending uploads not counted", func(t *testing.T) {
		lamp := m.listing(seller, "Another lamp")
		first := m.createUpload(seller, lamp, "image/png", len(img))
		mediatest.Upload(t, asUpload(first), img)
		if _, err := m.confirm(seller, lamp, first.MediaId); err != nil {
			t.Fatal(err)
		}
		pending := m.createUpload(seller, lamp, "image/png", len(img))
		_, err := m.listings.CreateMediaUpload(ctx, authed(&swapmeetv1.CreateMediaUploadRequest{
			ListingId: lamp, ContentType: "image/png", SizeBytes: int64(len(img))}, seller.token))
		wantCode(t, err, connect.CodeFailedPrecondition)
		// Once its policy has expired, a pending upload cannot arrive and
		// stops counting.
		if _, err := m.e.PG.Exec(ctx, `UPDATE listing_media SET created_at = now() - interval '1 hour' WHERE id = $1`, pending.MediaId); err != nil {
			t.Fatal(err)
		}
		third := m.createUpload(seller, lamp, "image/png", len(img))
		// The stale upload did arrive in time, though: confirmation
		// enforces the limit on confirmed images too.
		mediatest.Upload(t, asUpload(pending), img)
		mediatest.Upload(t, asUpload(third), img)
		if _, err := m.confirm(seller, lamp, third.MediaId); err != nil {
			t.Fatal(err)
		}
		_, err = m.confirm(seller, lamp, pending.MediaId)
		wantCode(t, err, connect.CodeFailedPrecondition)
	})

	t.Run("only while AVAILABLE", func(t *testing.T) {
		chair := m.listing(seller, "Chair")
		if _, err := m.listings.WithdrawListing(ctx, authed(&swapmeetv1.WithdrawListingRequest{ListingId: chair, ExpectedVersion: 1}, seller.token)); err != nil {
			t.Fatal(err)
		}
		_, err := m.listings.CreateMediaUpload(ctx, authed(&swapmeetv1.CreateMediaUploadRequest{
			ListingId: chair, ContentType: "image/png", SizeBytes: int64(len(img))}, seller.token))
		wantCode(t, err, connect.CodeFailedPrecondition)
	})
}

// TestMediaAuthorizationMatrix calls the media RPCs as an anonymous
// caller, as another user, and as the seller.
func TestMediaAuthorizationMatrix(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			m := newMediaMarket(t, nil, p.opts...)
			seller, stranger, none := m.signUp("seller"), m.signUp("stranger"), user{}
			listing := m.listing(seller, "Radio")
			img := mediatest.PNG(4, 4)
			var mediaID string

			for _, rpc := range []struct {
				name string
				do   func(u user) error
			}{
				{"CreateMediaUpload", func(u user) error {
					res, err := m.listings.CreateMediaUpload(ctx, authed(&swapmeetv1.CreateMediaUploadRequest{
						ListingId: listing, ContentType: "image/png", SizeBytes: int64(len(img))}, u.token))
					if err == nil {
						mediaID = res.Msg.MediaId
						mediatest.Upload(t, asUpload(res.Msg), img)
					}
					return err
				}},
				{"ConfirmMediaUpload", func(u user) error {
					_, err := m.confirm(u, listing, mediaID)
					return err
				}},
				{"DeleteMedia", func(u user) error {
					_, err := m.listings.DeleteMedia(ctx, authed(&swapmeetv1.DeleteMediaRequest{ListingId: listing, MediaId: mediaID}, u.token))
					return err
				}},
			} {
				for _, c := range []struct {
					as   user
					want connect.Code
				}{{none, connect.CodeUnauthenticated}, {stranger, connect.CodePermissionDenied}, {seller, 0}} {
					err := rpc.do(c.as)
					if got := connect.CodeOf(err); (c.want == 0 && err != nil) || (c.want != 0 && got != c.want) {
						t.Errorf("%s as %s: got %v, want %v", rpc.name, who(c.as, seller, user{}, stranger), err, c.want)
					}
				}
			}
			// The stranger changed nothing: the seller's image went through
			// its whole life and is gone.
			if n := m.mediaRows(listing); n != 0 {
				t.Errorf("%d media rows left", n)
			}
		})
	}
}

// TestConfirmedUploadCannotBeSwapped: re-posting other bytes with the
// form of a confirmed upload changes neither what the listing serves nor
// the object's freedom from the lifecycle rule.
func TestConfirmedUploadCannotBeSwapped(t *testing.T) {
	m := newMediaMarket(t, nil)
	m.e.StartCDC(t)
	seller := m.signUp("seller")
	listing := m.listing(seller, "Vase")
	img := mediatest.PNG(320, 240)
	up := m.createUpload(seller, listing, "image/png", len(img))
	mediatest.Upload(t, asUpload(up), img)
	token, err := m.confirm(seller, listing, up.MediaId)
	if err != nil {
		t.Fatal(err)
	}
	url := m.getListing(listing, token).GetMedia()[0].Url

	// Other bytes of the same size, the same form, after confirmation.
	other := bytes.Repeat([]byte{0xAB}, len(img))
	status, body, err := mediatest.Post(asUpload(up), other, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("re-POST after confirmation: HTTP %d %s", status, body)
	// Confirming again must not pick the new bytes up either.
	if _, err := m.confirm(seller, listing, up.MediaId); err != nil {
		t.Fatalf("second confirmation: %v", err)
	}

	for _, u := range []string{url, m.getListing(listing, "").GetMedia()[0].Url} {
		status, got, err := mediatest.Get(u)
		if err != nil || status != http.StatusOK || !bytes.Equal(got, img) {
			t.Fatalf("GET the image after the re-POST: status %d, err %v, same bytes as confirmed: %v", status, err, bytes.Equal(got, img))
		}
	}
	key := "listings/" + listing + "/" + up.MediaId
	if tags, err := m.e.Media.Tags(ctx, key); err != nil || len(tags) != 0 {
		t.Fatalf("the confirmed object's tags are %v, %v: want none, so the lifecycle rule never expires it", tags, err)
	}
}

// mediaOrder is the ids of a listing's images as the read side shows them.
func mediaOrder(l *swapmeetv1.Listing) []string {
	var ids []string
	for _, m := range l.GetMedia() {
		ids = append(ids, m.MediaId)
	}
	return ids
}

// TestReorderMedia: the seller's order of the images is the listing's, on
// the read side and in an order's thumbnail; a new image goes last;
// reordering to the order the listing has writes nothing; only the seller
// may reorder, and only with every image named once.
func TestReorderMedia(t *testing.T) {
	m := newMediaMarket(t, nil)
	m.e.StartCDC(t)
	seller, buyer := m.signUp("seller"), m.signUp("buyer")
	listing := m.listing(seller, "Camera")
	var ids []string
	var token string
	for i := range 3 {
		img := mediatest.PNG(64+i, 48)
		up := m.createUpload(seller, listing, "image/png", len(img))
		mediatest.Upload(t, asUpload(up), img)
		tok, err := m.confirm(seller, listing, up.MediaId)
		if err != nil {
			t.Fatal(err)
		}
		ids, token = append(ids, up.MediaId), tok
	}
	if got := mediaOrder(m.getListing(listing, token)); !slices.Equal(got, ids) {
		t.Fatalf("before any reorder the images are %v, want upload order %v", got, ids)
	}

	reorder := func(u user, ids ...string) (string, error) {
		res, err := m.listings.ReorderMedia(ctx, authed(&swapmeetv1.ReorderMediaRequest{ListingId: listing, MediaIds: ids}, u.token))
		if err != nil {
			return "", err
		}
		return res.Msg.ConsistencyToken, nil
	}
	want := []string{ids[2], ids[0], ids[1]}
	_, version := m.listingStatus(listing)
	token, err := reorder(seller, want...)
	if err != nil {
		t.Fatal(err)
	}
	got := m.getListing(listing, token)
	if !slices.Equal(mediaOrder(got), want) {
		t.Fatalf("after ReorderMedia(%v) the listing shows %v", want, mediaOrder(got))
	}
	if got.Version != version {
		t.Errorf("reordering moved the version from %d to %d", version, got.Version)
	}

	// The same order again writes nothing, and answers a token at or
	// after the first's.
	rowVersions := func() string {
		var s string
		if err := m.e.PG.QueryRow(ctx, `SELECT string_agg(xmin::text, ',' ORDER BY id) FROM listing_media WHERE listing_id = $1`, listing).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	rows := rowVersions()
	again, err := reorder(seller, want...)
	if err != nil {
		t.Fatal(err)
	}
	first, err := parseToken(token)
	if err != nil {
		t.Fatal(err)
	}
	if next, err := parseToken(again); err != nil || next < first {
		t.Errorf("a repeated reorder answered position %d (%v), before the first's %d", next, err, first)
	}
	if now := rowVersions(); now != rows {
		t.Errorf("a repeated reorder rewrote the rows: xmin %s, was %s", now, rows)
	}

	// A new image goes last.
	img := mediatest.PNG(80, 60)
	up := m.createUpload(seller, listing, "image/png", len(img))
	mediatest.Upload(t, asUpload(up), img)
	token, err = m.confirm(seller, listing, up.MediaId)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, up.MediaId)
	if got := mediaOrder(m.getListing(listing, token)); !slices.Equal(got, want) {
		t.Fatalf("a new image after a reorder: the listing shows %v, want %v", got, want)
	}

	// An order's thumbnail is the first image in the seller's order.
	placed, err := m.orders.PlaceOrder(ctx, authed(&swapmeetv1.PlaceOrderRequest{ListingIds: []string{listing}, IdempotencyKey: "thumb"}, buyer.token))
	if err != nil {
		t.Fatal(err)
	}
	itest.Eventually(t, 15*time.Second, "the order on the read side", func() (bool, error) {
		o, err := m.orders.GetOrder(ctx, authed(&swapmeetv1.GetOrderRequest{OrderId: placed.Msg.OrderId, ConsistencyToken: placed.Msg.ConsistencyToken}, buyer.token))
		if connect.CodeOf(err) == connect.CodeUnavailable {
			return false, err
		}
		if err != nil {
			t.Fatal(err)
		}
		if th := o.Msg.Order.GetItems()[0].GetThumbnail().GetMediaId(); th != want[0] {
			t.Fatalf("the order's thumbnail is %q, want the first image %q", th, want[0])
		}
		return true, nil
	})
}

// TestReorderMediaRefusals: malformed or repeated ids change nothing;
// another user may not reorder; a sold listing cannot be reordered.
func TestReorderMediaRefusals(t *testing.T) {
	m := newMediaMarket(t, nil)
	seller, other := m.signUp("seller"), m.signUp("other")
	listing := m.listing(seller, "Camera")
	var ids []string
	for range 2 {
		img := mediatest.PNG(64, 48)
		up := m.createUpload(seller, listing, "image/png", len(img))
		mediatest.Upload(t, asUpload(up), img)
		if _, err := m.confirm(seller, listing, up.MediaId); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, up.MediaId)
	}
	positions := func() string {
		var s string
		if err := m.e.PG.QueryRow(ctx, `SELECT string_agg(id::text || ':' || position, ',' ORDER BY id) FROM listing_media WHERE listing_id = $1`, listing).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	start := positions()
	for _, c := range []struct {
		what string
		u    user
		ids  []string
		code connect.Code
	}{
		{"no ids", seller, nil, connect.CodeInvalidArgument},
		{"a malformed id", seller, []string{ids[1], "not-a-uuid"}, connect.CodeInvalidArgument},
		{"a repeated id", seller, []string{ids[1], ids[1]}, connect.CodeInvalidArgument},
		{"too many ids", seller, slices.Repeat([]string{ids[0]}, 9), connect.CodeInvalidArgument},
		{"another user", other, []string{ids[1], ids[0]}, connect.CodePermissionDenied},
	} {
		_, err := m.listings.ReorderMedia(ctx, authed(&swapmeetv1.ReorderMediaRequest{ListingId: listing, MediaIds: c.ids}, c.u.token))
		if connect.CodeOf(err) != c.code {
			t.Errorf("%s: %v, want %s", c.what, err, c.code)
		}
	}
	if now := positions(); now != start {
		t.Fatalf("refused reorders moved the images: %s, was %s", now, start)
	}
	m.order(m.signUp("buyer"), listing)
	_, err := m.listings.ReorderMedia(ctx, authed(&swapmeetv1.ReorderMediaRequest{ListingId: listing, MediaIds: []string{ids[1], ids[0]}}, seller.token))
	wantCode(t, err, connect.CodeFailedPrecondition)
}
