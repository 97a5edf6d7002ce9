// Package media is the object store for listing images (MinIO or any S3).
// Postgres holds only object keys and metadata; clients move the bytes
// straight to and from the store with short-lived presigned requests.
package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Config says where the bucket is, how long presigned URLs live, and the
// limits on what may be uploaded.
type Config struct {
	Endpoint  string `env:"SWAPMEET_S3_ENDPOINT"` // host:port
	AccessKey string `env:"SWAPMEET_S3_ACCESS_KEY"`
	SecretKey string `env:"SWAPMEET_S3_SECRET_KEY"`
	Bucket    string `env:"SWAPMEET_S3_BUCKET"`
	Secure    bool   `env:"SWAPMEET_S3_SECURE"` // https
	// Region is the store's region. Knowing it keeps presigning local: the
	// client would otherwise ask the server for the bucket's location.
	Region string `env:"SWAPMEET_S3_REGION"`
	// GetExpiry is the lifetime of a presigned GET URL.
	GetExpiry time.Duration `env:"SWAPMEET_MEDIA_GET_EXPIRY"`
	// UploadExpiry is the lifetime of a presigned POST policy.
	UploadExpiry time.Duration `env:"SWAPMEET_MEDIA_UPLOAD_EXPIRY"`
	// MaxUploadBytes bounds one image.
	MaxUploadBytes int64 `env:"SWAPMEET_MEDIA_MAX_BYTES"`
	// MaxPerListing bounds the images of one listing, pending ones included.
	MaxPerListing int `env:"SWAPMEET_MEDIA_MAX_PER_LISTING"`
}

// DefaultConfig is the local store `make up` starts, with the default
// lifetimes and limits; none of them may be zero.
var DefaultConfig = Config{
	Endpoint: "127.0.0.1:19000", AccessKey: "swapmeet", SecretKey: "swapmeet-secret", Bucket: "swapmeet-media",
	Region:         "us-east-1", // MinIO's unless configured otherwise
	GetExpiry:      10 * time.Minute,
	UploadExpiry:   15 * time.Minute,
	MaxUploadBytes: 10 << 20,
	MaxPerListing:  8,
}

// Bucket is the one bucket that holds the media.
type Bucket struct {
	client *minio.Client
	cfg    Config
	gets   *presignCache
}

// New returns a Bucket; it does not contact the server.
func New(cfg Config) (*Bucket, error) {
	if cfg.GetExpiry <= 0 || cfg.UploadExpiry <= 0 || cfg.MaxUploadBytes <= 0 || cfg.MaxPerListing <= 0 {
		return nil, errors.New("media: expiries and limits must be positive (start from DefaultConfig)")
	}
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: cfg.Secure,
		Region: cfg.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("media store %s: %w", cfg.Endpoint, err)
	}
	return &Bucket{client: c, cfg: cfg, gets: newPresignCache(cfg.GetExpiry/PresignReuseDivisor, presignCacheSize)}, nil
}

// PresignedGet returns a URL that reads the object until it expires.
// Signing is local: it costs no request to the store. A URL signed for
// the same key less than GetExpiry/PresignReuseDivisor ago is returned
// again, so the URL is valid for at least 90% of GetExpiry from now.
func (s *Bucket) PresignedGet(ctx context.Context, key string) (string, time.Time, error) {
	now := time.Now()
	if p, ok := s.gets.get(key, now); ok {
		return p.url, p.expires, nil
	}
	expires := now.Add(s.cfg.GetExpiry)
	u, err := s.client.PresignedGetObject(ctx, s.cfg.Bucket, key, s.cfg.GetExpiry, url.Values{})
	if err != nil {
		return "", time.Time{}, classify(fmt.Errorf("presign %s: %w", key, err))
	}
	p := presigned{url: u.String(), expires: expires, signed: now}
	s.gets.put(key, p)
	return p.url, p.expires, nil
}

// Config returns the store's settings, defaults filled in.
func (s *Bucket) Config() Config { return s.cfg }

// ErrNotFound means the object does not exist.
var ErrNotFound = errors.New("object not found")

// Object is what the store reports about an object.
type Object struct {
	Key          string
	Size         int64
	ContentType  string
	LastModified time.Time
}

// Stat reports an object, or ErrNotFound.
func (s *Bucket) Stat(ctx context.Context, key string) (Object, error) {
	info, err := s.client.StatObject(ctx, s.cfg.Bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return Object{}, classify(notFound(fmt.Errorf("stat %s: %w", key, err)))
	}
	return Object{Key: key, Size: info.Size, ContentType: info.ContentType, LastModified: info.LastModified}, nil
}

// Open streams an object. Errors, ErrNotFound included, surface on the
// first read.
func (s *Bucket) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	o, err := s.client.GetObject(ctx, s.cfg.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, classify(fmt.Errorf("get %s: %w", key, err))
	}
	return &object{o: o, key: key}, nil
}

type object struct {
	o   *minio.Object
	key string
}

func (r *object) Read(p []byte) (int, error) {
	n, err := r.o.Read(p)
	if err != nil && err != io.EOF {
		err = classify(notFound(fmt.Errorf("read %s: %w", r.key, err)))
	}
	return n, err
}

func (r *object) Close() error { return r.o.Close() }

// Put stores a small object the server made itself (a thumbnail).
func (s *Bucket) Put(ctx context.Context, key, contentType string, data []byte) error {
	_, err := s.client.PutObject(ctx, s.cfg.Bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{ContentType: contentType})
	if err != nil {
		return classify(fmt.Errorf("put %s: %w", key, err))
	}
	return nil
}

// Remove deletes objects. A key that is already gone is not an error, so
// every cleanup can be retried.
func (s *Bucket) Remove(ctx context.Context, keys ...string) error {
	var errs []error
	for _, k := range keys {
		if err := s.client.RemoveObject(ctx, s.cfg.Bucket, k, minio.RemoveObjectOptions{}); err != nil {
			errs = append(errs, classify(fmt.Errorf("remove %s: %w", k, err)))
		}
	}
	return errors.Join(errs...)
}

// List yields every object whose key starts with prefix.
func (s *Bucket) List(ctx context.Context, prefix string) iter.Seq2[Object, error] {
	return func(yield func(Object, error) bool) {
		for info := range s.client.ListObjectsIter(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if info.Err != nil {
				yield(Object{}, classify(fmt.Errorf("list %s: %w", prefix, info.Err)))
				return
			}
			if !yield(Object{Key: info.Key, Size: info.Size, LastModified: info.LastModified}, nil) {
				return
			}
		}
	}
}

// notFound marks err as ErrNotFound when the store said the key is missing.
func notFound(err error) error {
	var er minio.ErrorResponse
	if errors.As(err, &er) && (er.Code == minio.NoSuchKey || er.StatusCode == http.StatusNotFound) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}
