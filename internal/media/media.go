// Package media is the object store for listing images (MinIO or any S3).
// Postgres holds only object keys and metadata; clients move the bytes
// straight to and from the store with short-lived presigned requests.
package media

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Config says where the bucket is and how long presigned URLs live.
type Config struct {
	Endpoint  string // host:port
	AccessKey string
	SecretKey string
	Bucket    string
	Secure    bool // https
	// GetExpiry is the lifetime of a presigned GET URL.
	GetExpiry time.Duration
}

// Store is one bucket of media.
type Store struct {
	client *minio.Client
	cfg    Config
}

// New returns a Store; it does not contact the server.
func New(cfg Config) (*Store, error) {
	if cfg.GetExpiry == 0 {
		cfg.GetExpiry = 10 * time.Minute
	}
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: cfg.Secure,
	})
	if err != nil {
		return nil, fmt.Errorf("media store %s: %w", cfg.Endpoint, err)
	}
	return &Store{client: c, cfg: cfg}, nil
}

// PresignedGet returns a URL that reads the object until it expires.
// Signing is local: it costs no request to the store.
func (s *Store) PresignedGet(ctx context.Context, key string) (string, time.Time, error) {
	expires := time.Now().Add(s.cfg.GetExpiry)
	u, err := s.client.PresignedGetObject(ctx, s.cfg.Bucket, key, s.cfg.GetExpiry, url.Values{})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("presign %s: %w", key, err)
	}
	return u.String(), expires, nil
}
