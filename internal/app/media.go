package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/db/sqlc"
	"github.com/swapmeet/swapmeet/internal/audit"
	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/media"
)

// Media: the bytes go from the client straight to the object store with a
// presigned POST; Postgres records the key and what was verified; the CDC
// puts confirmed images on the listing document. See docs/media.md.

const (
	// confirmWindow is how long after CreateMediaUpload an upload can be
	// confirmed. It keeps confirmations well clear of the lifecycle rule
	// that expires unconfirmed objects after a day.
	confirmWindow = 12 * time.Hour
	// cleanupTimeout bounds deleting what a refused upload left behind,
	// which goes on even if the caller has gone.
	cleanupTimeout = 10 * time.Second
)

// MediaUpload is where and how to upload one image.
type MediaUpload struct {
	ID uuid.UUID
	media.Upload
}

// CreateMediaUpload records a pending image on the seller's listing and
// returns a presigned POST that lets the client store exactly that image.
// With an idempotency key, a retry of the same request answers with the
// upload the first made, with a freshly signed policy (see idempotent).
func (c *Commands) CreateMediaUpload(ctx context.Context, seller uuid.UUID, listingID, contentType string, sizeBytes int64, idemKey string) (MediaUpload, error) {
	cfg := c.deps.Media.Config()
	var v violations
	lid := v.id("listing_id", listingID)
	v.mediaUpload(contentType, sizeBytes, cfg.MaxUploadBytes)
	if idemKey != "" {
		v.text("idempotency_key", idemKey, idempotencyKeyRule)
	}
	if err := v.err(); err != nil {
		return MediaUpload{}, err
	}
	k, err := newIdempotent(seller, "CreateMediaUpload", idemKey, struct {
		ListingID   uuid.UUID
		ContentType string
		SizeBytes   int64
	}{lid, contentType, sizeBytes})
	if err != nil {
		return MediaUpload{}, err
	}
	if up, ok, err := c.replayUpload(ctx, k, lid); ok || err != nil {
		return up, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return MediaUpload{}, err
	}
	key := media.ObjectKey(lid, id)
	// Signing is local, and done before the row exists: a policy is only
	// handed out once its row is committed, so no object can precede its
	// row (which is what lets the sweeper call any object without a row an
	// orphan).
	// The client uploads to a staging key; only confirmation puts the
	// checked bytes at key, where the client's policy cannot reach.
	up, err := c.deps.Media.PresignedPost(ctx, media.StagingKey(key), contentType, sizeBytes)
	if err != nil {
		return MediaUpload{}, err
	}
	_, err = c.deps.Store.ExecTx(ctx, db.TxOptions{Actor: seller.String(), IdempotencyKey: idemKey}, func(q *sqlc.Queries) error {
		if err := checkListingWritable(ctx, q, lid, seller, anyVersion); err != nil {
			return err
		}
		if err := k.claim(ctx, q, id); err != nil {
			return err
		}
		// Pending rows whose policy has expired cannot get an object any
		// more; they do not count. The listing lock makes count-then-insert safe.
		n, err := q.CountLiveMedia(ctx, sqlc.CountLiveMediaParams{ListingID: lid, PendingSecs: cfg.UploadExpiry.Seconds()})
		if err != nil {
			return err
		}
		if n >= int64(cfg.MaxPerListing) {
			return refusef(CodeFailedPrecondition, ReasonMediaLimit, "a listing has at most %d images; delete one first", cfg.MaxPerListing)
		}
		if err := c.checkUploadQuota(ctx, q, seller, cfg.UploadExpiry); err != nil {
			return err
		}
		return q.CreatePendingMedia(ctx, sqlc.CreatePendingMediaParams{
			ID: id, ListingID: lid, ObjectKey: key, ContentType: contentType, SizeBytes: sizeBytes,
		})
	})
	if errors.Is(err, errKeyClaimed) { // a concurrent retry made it first
		if up, ok, err := c.replayUpload(ctx, k, lid); ok || err != nil {
			return up, err
		}
		return MediaUpload{}, errKeyBusy
	}
	if err != nil {
		return MediaUpload{}, fmt.Errorf("create media upload: %w", err)
	}
	return MediaUpload{ID: id, Upload: up}, nil
}

// replayUpload answers a retry with the upload its key made, and a policy
// signed anew for it: the first answer's may have been lost with it.
func (c *Commands) replayUpload(ctx context.Context, k idempotent, listing uuid.UUID) (MediaUpload, bool, error) {
	id, ok, err := k.previous(ctx, c.deps.Store)
	if !ok || err != nil {
		return MediaUpload{}, false, err
	}
	m, err := c.deps.Store.GetListingMedia(ctx, sqlc.GetListingMediaParams{ListingID: listing, MediaID: id})
	if err != nil && !errors.Is(err, db.ErrNotFound) {
		return MediaUpload{}, false, fmt.Errorf("create media upload: the upload of the idempotency key: %w", err)
	}
	if err != nil || !m.MediaID.Valid {
		return MediaUpload{}, false, refusef(CodeFailedPrecondition, ReasonUploadExpired,
			"the upload this idempotency_key made is gone (refused, deleted or expired); start again with a new key")
	}
	up, err := c.deps.Media.PresignedPost(ctx, media.StagingKey(*m.ObjectKey), *m.ContentType, *m.SizeBytes)
	if err != nil {
		return MediaUpload{}, false, err
	}
	return MediaUpload{ID: id, Upload: up}, true, nil
}

// ConfirmMediaUpload checks that the uploaded object is the image that was
// declared and attaches it to the listing. An upload that is missing or
// not what was declared is refused, and it and its row are deleted.
// Confirming an image twice is harmless.
func (c *Commands) ConfirmMediaUpload(ctx context.Context, seller uuid.UUID, listingID, mediaID string) (string, error) {
	lid, mid, err := mediaIDs(listingID, mediaID)
	if err != nil {
		return "", err
	}
	m, err := c.deps.Store.GetListingMedia(ctx, sqlc.GetListingMediaParams{ListingID: lid, MediaID: mid})
	if err := mediaRules(m, err, seller); err != nil {
		return "", err
	}
	if *m.Status == "CONFIRMED" {
		return c.currentToken(ctx)
	}
	if m.ListingStatus != StatusAvailable {
		return "", refusef(CodeFailedPrecondition, ReasonListingNotEditable, "the listing is %s; only an AVAILABLE listing can be changed", m.ListingStatus)
	}
	key := *m.ObjectKey
	if time.Since(*m.CreatedAt) > confirmWindow {
		c.discardUpload(ctx, mid, key)
		return "", refusef(CodeFailedPrecondition, ReasonUploadExpired, "the upload was not confirmed within %s; start again with CreateMediaUpload", confirmWindow)
	}

	var refused error
	commit, err := c.deps.Store.ExecTx(ctx, db.TxOptions{Actor: seller.String()}, func(q *sqlc.Queries) error {
		refused = nil
		if err := checkListingWritable(ctx, q, lid, seller, anyVersion); err != nil {
			return err
		}
		// Under the listing lock, every confirmation of this listing is
		// serial: nothing else writes key while this one copies and checks
		// it, and once the row is confirmed no confirmation copies again.
		now, err := q.GetListingMedia(ctx, sqlc.GetListingMediaParams{ListingID: lid, MediaID: mid})
		if err := mediaRules(now, err, seller); err != nil {
			return err // deleted meanwhile: NotFound
		}
		if *now.Status == "CONFIRMED" {
			return nil // a concurrent confirmation won
		}
		n, err := q.CountConfirmedMedia(ctx, lid)
		if err != nil {
			return err
		}
		if limit := c.deps.Media.Config().MaxPerListing; n >= int64(limit) {
			return refusef(CodeFailedPrecondition, ReasonMediaLimit, "a listing has at most %d images; delete one first", limit)
		}
		info, err := c.promote(ctx, key, *m.ContentType, *m.SizeBytes)
		if ErrorCode(err) == CodeFailedPrecondition {
			refused = err
			return err
		}
		if err != nil {
			if ctx.Err() != nil {
				return err // the caller has gone
			}
			return mediaUnavailable(err)
		}
		w, h := int32(info.Width), int32(info.Height)
		_, err = q.ConfirmMedia(ctx, sqlc.ConfirmMediaParams{ID: mid, ListingID: lid, Width: &w, Height: &h})
		return err
	})
	if refused != nil {
		c.discardUpload(ctx, mid, key)
		return "", refused
	}
	if err != nil {
		return "", fmt.Errorf("confirm media %s: %w", mid, err)
	}
	// The staged object has served its purpose; if removing it fails, the
	// lifecycle rule expires it (it still carries the pending tag).
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := c.deps.Media.Remove(cctx, media.StagingKey(key)); err != nil {
		c.deps.Log.Warn("staged upload not removed; the lifecycle rule will", "media_id", mid, "err", err)
	}
	return consistency.WriteToken(commit.Position()), nil
}

// promote copies the staged upload to key and checks the copy against
// what was declared: what is checked is what will be served, whatever the
// client uploads to the staging key afterwards.
func (c *Commands) promote(ctx context.Context, key, contentType string, size int64) (media.Info, error) {
	err := c.deps.Media.Promote(ctx, media.StagingKey(key), key)
	if errors.Is(err, media.ErrNotFound) {
		return media.Info{}, refusef(CodeFailedPrecondition, ReasonUploadMissing, "no upload arrived for this media; start again with CreateMediaUpload")
	}
	if err != nil {
		return media.Info{}, err
	}
	return c.inspectUpload(ctx, key, contentType, size)
}

// DeleteMedia removes an image from the seller's listing: the row first,
// then the objects. The row never points at nothing; if removing an object
// fails, the sweeper removes it later as an orphan.
func (c *Commands) DeleteMedia(ctx context.Context, seller uuid.UUID, listingID, mediaID string) (string, error) {
	lid, mid, err := mediaIDs(listingID, mediaID)
	if err != nil {
		return "", err
	}
	var row sqlc.DeleteMediaRow
	commit, err := c.deps.Store.ExecTx(ctx, db.TxOptions{Actor: seller.String()}, func(q *sqlc.Queries) error {
		if err := checkListingWritable(ctx, q, lid, seller, anyVersion); err != nil {
			return err
		}
		row, err = q.DeleteMedia(ctx, sqlc.DeleteMediaParams{ID: mid, ListingID: lid})
		if errors.Is(err, db.ErrNotFound) {
			return errorf(CodeNotFound, "media not found")
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("delete media %s: %w", mid, err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := c.deps.Media.Remove(ctx, append(media.ImageKeys(row.ObjectKey, row.ThumbnailKey), media.StagingKey(row.ObjectKey))...); err != nil {
		c.deps.Log.Warn("media objects not removed; the sweeper will", "media_id", mid, "err", err)
	}
	return consistency.WriteToken(commit.Position()), nil
}

// ReorderMedia sets the order of a listing's confirmed images: ids names
// each of them once, first image first. Under the listing's lock, the set
// cannot change while it is compared and written. An order the listing
// already has writes nothing and answers with the current position.
func (c *Commands) ReorderMedia(ctx context.Context, seller uuid.UUID, listingID string, mediaIDs []string) (string, error) {
	var v violations
	lid := v.id("listing_id", listingID)
	limit := c.deps.Media.Config().MaxPerListing
	ids := make([]uuid.UUID, 0, len(mediaIDs))
	seen := make(map[uuid.UUID]bool, len(mediaIDs))
	switch {
	case len(mediaIDs) == 0:
		v.add("media_ids", "must name every confirmed image of the listing")
	case len(mediaIDs) > limit:
		v.add("media_ids", "may name at most %d images, the most a listing has", limit)
	default:
		for i, s := range mediaIDs {
			id := v.id(fmt.Sprintf("media_ids[%d]", i), s)
			if seen[id] && id != uuid.Nil {
				v.add(fmt.Sprintf("media_ids[%d]", i), "repeats an image")
			}
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if err := v.err(); err != nil {
		return "", err
	}
	commit, err := c.deps.Store.ExecTx(ctx, db.TxOptions{Actor: seller.String()}, func(q *sqlc.Queries) error {
		if err := checkListingWritable(ctx, q, lid, seller, anyVersion); err != nil {
			return err
		}
		have, err := q.ListConfirmedMediaIDs(ctx, lid)
		if err != nil {
			return err
		}
		same := len(have) == len(ids)
		for _, id := range have {
			same = same && seen[id]
		}
		if !same {
			return refusef(CodeFailedPrecondition, ReasonMediaSetChanged,
				"the listing has %d confirmed images and media_ids must name each of them once: reload the listing and retry", len(have))
		}
		n, err := q.SetMediaPositions(ctx, sqlc.SetMediaPositionsParams{Ids: ids, ListingID: lid})
		if err == nil && n == 0 {
			return errAlreadyDone
		}
		return err
	})
	if errors.Is(err, errAlreadyDone) {
		return c.currentToken(ctx)
	}
	if err != nil {
		return "", fmt.Errorf("reorder media of %s: %w", lid, err)
	}
	return consistency.WriteToken(commit.Position()), nil
}

// inspectUpload checks the object at key against what was declared. A
// mismatch is a FailedPrecondition; anything else is the store failing.
func (c *Commands) inspectUpload(ctx context.Context, key, contentType string, size int64) (media.Info, error) {
	obj, err := c.deps.Media.Stat(ctx, key)
	switch {
	case errors.Is(err, media.ErrNotFound):
		return media.Info{}, refusef(CodeFailedPrecondition, ReasonUploadMissing, "no upload arrived for this media; start again with CreateMediaUpload")
	case err != nil:
		return media.Info{}, err
	case obj.Size != size:
		return media.Info{}, refusef(CodeFailedPrecondition, ReasonUploadMismatch, "the upload is %d bytes, not the %d declared", obj.Size, size)
	case obj.ContentType != contentType:
		return media.Info{}, refusef(CodeFailedPrecondition, ReasonUploadMismatch, "the upload is stored as %q, not %q", truncate(obj.ContentType, 50), contentType)
	}
	r, err := c.deps.Media.Open(ctx, key)
	if err != nil {
		return media.Info{}, err
	}
	defer r.Close() // a PNG or WebP is read only as far as its header; closing abandons the rest
	info, err := media.Inspect(io.LimitReader(r, size), contentType)
	switch {
	case errors.Is(err, media.ErrInvalidImage):
		return media.Info{}, refusef(CodeFailedPrecondition, ReasonUploadMismatch, "%s", err.Error())
	case errors.Is(err, media.ErrNotFound):
		return media.Info{}, refusef(CodeFailedPrecondition, ReasonUploadMissing, "the upload has disappeared; start again with CreateMediaUpload")
	}
	return info, err
}

// discardUpload deletes a refused upload: its row, then its object. It
// goes on if the caller has gone; what it cannot delete, the sweeper or
// the lifecycle rule will.
func (c *Commands) discardUpload(ctx context.Context, id uuid.UUID, key string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	var deleted int64
	_, err := c.deps.Store.ExecTx(ctx, db.TxOptions{Actor: audit.System}, func(q *sqlc.Queries) error {
		var err error
		deleted, err = q.DeletePendingMedia(ctx, id)
		return err
	})
	// A row confirmed meanwhile keeps its object: only a deleted row's
	// objects are nobody's.
	if err == nil && deleted == 1 {
		err = c.deps.Media.Remove(ctx, key, media.StagingKey(key))
	}
	if err != nil {
		c.deps.Log.Warn("refused upload not fully discarded; the sweeper will", "media_id", id, "err", err)
	}
}

// mediaRules turns the lookup of a listing's media row into the caller's
// answer: the listing must exist and be theirs before the row is looked at.
func mediaRules(m sqlc.GetListingMediaRow, err error, seller uuid.UUID) error {
	switch {
	case errors.Is(err, db.ErrNotFound):
		return errorf(CodeNotFound, "listing not found")
	case err != nil:
		return err
	case m.SellerID != seller:
		return errorf(CodePermissionDenied, "only the seller may change this listing's images")
	case !m.MediaID.Valid:
		return errorf(CodeNotFound, "media not found")
	}
	return nil
}

func mediaIDs(listingID, mediaID string) (uuid.UUID, uuid.UUID, error) {
	var v violations
	lid := v.id("listing_id", listingID)
	mid := v.id("media_id", mediaID)
	return lid, mid, v.err()
}

func (v *violations) mediaUpload(contentType string, size, maxBytes int64) {
	if !media.IsContentType(contentType) {
		v.add("content_type", "must be one of %s", strings.Join(media.ContentTypes, ", "))
	}
	if size < 1 || size > maxBytes {
		v.add("size_bytes", "must be the file's size: 1 to %d bytes", maxBytes)
	}
}

func mediaUnavailable(err error) error {
	return &Error{Code: CodeUnavailable, Message: "the media store is unavailable; retry shortly", Err: err}
}
