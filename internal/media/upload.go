package media

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"
)

// Object keys. Every object of a listing lives under its prefix, and a
// thumbnail sits beside its original, so both can be found from the row
// and an object without a row can be recognised as an orphan.

// ListingsPrefix is where every listing's objects live.
const ListingsPrefix = "listings/"

// ObjectKey is the key an uploaded image gets: chosen by the server, never
// by the client.
func ObjectKey(listingID, mediaID uuid.UUID) string {
	return ListingsPrefix + listingID.String() + "/" + mediaID.String()
}

// UploadsPrefix is where clients' uploads land. A presigned POST names a
// staging key under it; confirmation copies the checked object to its
// final key under ListingsPrefix, which no client can ever write to, so
// the bytes served are the bytes checked.
const UploadsPrefix = "uploads/"

// StagingKey is where the client uploads the object that will be at key.
func StagingKey(key string) string {
	return UploadsPrefix + strings.TrimPrefix(key, ListingsPrefix)
}

// FinalKey is the key a staging key's object is confirmed to; other keys
// are returned as they are.
func FinalKey(key string) string {
	if rest, ok := strings.CutPrefix(key, UploadsPrefix); ok {
		return ListingsPrefix + rest
	}
	return key
}

// ThumbnailKey is where the thumbnail of the object at key goes.
func ThumbnailKey(key string) string { return key + ".thumb.jpg" }

// ImageKeys are the objects of an image row: the original, and the
// thumbnail if the row names one of its own. (A thumbnail stored by a
// worker that died before recording it is left to the sweeper.)
func ImageKeys(key string, thumbnail *string) []string {
	if thumbnail == nil || *thumbnail == key {
		return []string{key}
	}
	return []string{key, *thumbnail}
}

// An upload carries the object tag PendingTag=PendingValue until it is
// confirmed. The bucket's lifecycle rule expires tagged objects after
// PendingDays, so an upload that is never confirmed disappears even if
// no sweeper ever runs.
const (
	PendingTag   = "swapmeet-upload"
	PendingValue = "pending"
	PendingDays  = 1
)

// pendingTagging is the POST form's "tagging" field: the S3 XML for the tag.
const pendingTagging = "<Tagging><TagSet><Tag><Key>" + PendingTag + "</Key><Value>" + PendingValue + "</Value></Tag></TagSet></Tagging>"

// Upload is a presigned POST: a browser sends a multipart/form-data body
// to URL with every field of Fields, then the file, last, as "file".
type Upload struct {
	URL       string
	Fields    map[string]string
	ExpiresAt time.Time
}

// PresignedPost returns a policy that lets its holder store exactly one
// object: at key, with contentType, of exactly size bytes, tagged as
// pending, until the upload expiry. The store checks all of it: a body of
// another size, another content type or another key is refused. Signing
// is local.
func (s *Bucket) PresignedPost(ctx context.Context, key, contentType string, size int64) (Upload, error) {
	expires := time.Now().Add(s.cfg.UploadExpiry)
	p := minio.NewPostPolicy()
	for _, err := range []error{
		p.SetBucket(s.cfg.Bucket),
		p.SetKey(key),
		p.SetContentType(contentType),
		// The exact size: the client declared it, and it is what Confirm checks.
		p.SetContentLengthRange(size, size),
		p.SetTagging(pendingTagging),
		p.SetExpires(expires),
	} {
		if err != nil {
			return Upload{}, fmt.Errorf("post policy for %s: %w", key, err)
		}
	}
	u, fields, err := s.client.PresignedPostPolicy(ctx, p)
	if err != nil {
		return Upload{}, classify(fmt.Errorf("presign post %s: %w", key, err))
	}
	return Upload{URL: u.String(), Fields: fields, ExpiresAt: expires}, nil
}

// Promote copies the staged upload at staging to key, without the pending
// tag, so the lifecycle rule never applies to the copy. The copy is done
// by the store; its metadata (the content type) comes along.
func (s *Bucket) Promote(ctx context.Context, staging, key string) error {
	_, err := s.client.CopyObject(ctx,
		minio.CopyDestOptions{Bucket: s.cfg.Bucket, Object: key, ReplaceTags: true},
		minio.CopySrcOptions{Bucket: s.cfg.Bucket, Object: staging})
	if err != nil {
		return classify(notFound(fmt.Errorf("copy %s to %s: %w", staging, key, err)))
	}
	return nil
}

// MarkConfirmed removes the pending tag, so the lifecycle rule no longer
// applies to the object. It must happen before the row is confirmed:
// otherwise a confirmed row could point at an object that expires.
func (s *Bucket) MarkConfirmed(ctx context.Context, key string) error {
	if err := s.client.RemoveObjectTagging(ctx, s.cfg.Bucket, key, minio.RemoveObjectTaggingOptions{}); err != nil {
		return classify(notFound(fmt.Errorf("untag %s: %w", key, err)))
	}
	return nil
}

// Tags returns an object's tags (for tests and operators).
func (s *Bucket) Tags(ctx context.Context, key string) (map[string]string, error) {
	t, err := s.client.GetObjectTagging(ctx, s.cfg.Bucket, key, minio.GetObjectTaggingOptions{})
	if err != nil {
		return nil, classify(notFound(fmt.Errorf("tags of %s: %w", key, err)))
	}
	return t.ToMap(), nil
}
