package rpc_test

import (
	"runtime/metrics"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/media"
	"github.com/swapmeet/swapmeet/internal/media/mediatest"
)

// TestHostileImagesThroughTheAPI: a tiny JPEG of 3000 scans, which Go's
// decoder would spend minutes on, is refused at confirmation and leaves
// nothing behind; an image that passes but is costly to decode is
// decoded in the sandbox's child process, so another seller's ordinary
// image, confirmed right after, still gets its thumbnail, and the API's
// own heap does not pay for the decode.
func TestHostileImagesThroughTheAPI(t *testing.T) {
	m := newMediaMarket(t, nil)
	hostile, other := m.signUp("hostile"), m.signUp("other")
	listing := m.listing(hostile, "Lamp")

	scans := mediatest.ManyScansJPEG(3000, 2000, 3000)
	up := m.createUpload(hostile, listing, "image/jpeg", len(scans))
	mediatest.Upload(t, asUpload(up), scans)
	if _, err := m.confirm(hostile, listing, up.MediaId); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("ConfirmMediaUpload of a %d-byte JPEG of 3000 scans = %v, want FailedPrecondition", len(scans), err)
	}
	if n := m.mediaRows(listing); n != 0 || !m.objectGone("listings/"+listing+"/"+up.MediaId) {
		t.Fatalf("after the refusal: %d rows, object gone %v; want nothing left", n, m.objectGone("listings/"+listing+"/"+up.MediaId))
	}

	costly := mediatest.ManyScansJPEG(7000, 7000, media.MaxJPEGScans)
	up = m.createUpload(hostile, listing, "image/jpeg", len(costly))
	mediatest.Upload(t, asUpload(up), costly)
	if _, err := m.confirm(hostile, listing, up.MediaId); err != nil {
		t.Fatal(err)
	}
	otherListing := m.listing(other, "Chair")
	img := mediatest.PNG(400, 300)
	ordinary := m.createUpload(other, otherListing, "image/png", len(img))
	mediatest.Upload(t, asUpload(ordinary), img)
	if _, err := m.confirm(other, otherListing, ordinary.MediaId); err != nil {
		t.Fatal(err)
	}

	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(sample)
	allocated := sample[0].Value.Uint64()
	m.startThumbnails()
	itest.Eventually(t, 60*time.Second, "the ordinary image's thumbnail", func() (bool, error) {
		var key *string
		err := m.e.PG.QueryRow(ctx, `SELECT thumbnail_key FROM listing_media WHERE id = $1`, ordinary.MediaId).Scan(&key)
		return err == nil && key != nil && *key == media.ThumbnailKey("listings/"+otherListing+"/"+ordinary.MediaId), err
	})
	metrics.Read(sample)
	if a := sample[0].Value.Uint64() - allocated; a > 100<<20 {
		t.Errorf("the API process allocated %d MiB while the thumbnails were made; a decode of the costly image takes 245", a>>20)
	}
}
