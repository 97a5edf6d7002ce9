package media

import (
	"context"
	"fmt"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/cors"
	"github.com/minio/minio-go/v7/pkg/lifecycle"
)

// pendingRuleID names the lifecycle rule that Bootstrap owns; other rules
// in the bucket's configuration are left alone.
const pendingRuleID = "swapmeet-expire-unconfirmed-uploads"

// Bootstrapped says what Bootstrap found and did.
type Bootstrapped struct {
	Created       bool // the bucket did not exist
	PolicyRemoved bool // a bucket policy (possibly public access) was removed
	// BucketCORS is false when the server does not implement per-bucket
	// CORS (MinIO answers NotImplemented and applies one server-wide
	// setting, MINIO_API_CORS_ALLOW_ORIGIN, which defaults to "*").
	BucketCORS bool
}

// Bootstrap makes the bucket ready; it is idempotent and safe to run from
// several processes at once:
//   - it creates the bucket if it is missing;
//   - it keeps it private: objects are reached only through presigned
//     requests, so any bucket policy is removed;
//   - it lets the web origins POST uploads and GET images (CORS);
//   - it expires uploads still tagged pending after PendingDays.
func (s *Bucket) Bootstrap(ctx context.Context, webOrigins []string) (Bootstrapped, error) {
	var b Bootstrapped
	exists, err := s.client.BucketExists(ctx, s.cfg.Bucket)
	if err != nil {
		return b, fmt.Errorf("bucket %s: %w", s.cfg.Bucket, err)
	}
	if !exists {
		err := s.client.MakeBucket(ctx, s.cfg.Bucket, minio.MakeBucketOptions{Region: s.cfg.Region})
		if code := minio.ToErrorResponse(err).Code; err != nil && code != minio.BucketAlreadyOwnedByYou && code != minio.BucketAlreadyExists {
			return b, fmt.Errorf("create bucket %s: %w", s.cfg.Bucket, err)
		}
		b.Created = err == nil
	}

	policy, err := s.client.GetBucketPolicy(ctx, s.cfg.Bucket)
	if err != nil {
		return b, fmt.Errorf("bucket %s policy: %w", s.cfg.Bucket, err)
	}
	if policy != "" {
		if err := s.client.SetBucketPolicy(ctx, s.cfg.Bucket, ""); err != nil {
			return b, fmt.Errorf("remove bucket %s policy: %w", s.cfg.Bucket, err)
		}
		b.PolicyRemoved = true
	}

	if len(webOrigins) > 0 {
		err = s.client.SetBucketCors(ctx, s.cfg.Bucket, cors.NewConfig([]cors.Rule{{
			AllowedOrigin: webOrigins,
			AllowedMethod: []string{"GET", "HEAD", "POST"},
			AllowedHeader: []string{"*"},
			ExposeHeader:  []string{"ETag", "Location"},
			MaxAgeSeconds: 3600,
		}}))
		switch {
		case err == nil:
			b.BucketCORS = true
		case minio.ToErrorResponse(err).Code == minio.NotImplemented:
			// Server-wide CORS applies instead; the caller reports it.
		default:
			return b, fmt.Errorf("bucket %s cors: %w", s.cfg.Bucket, err)
		}
	}

	if err := s.ensurePendingRule(ctx); err != nil {
		return b, err
	}
	return b, nil
}

// ensurePendingRule puts our lifecycle rule into the bucket's configuration.
func (s *Bucket) ensurePendingRule(ctx context.Context) error {
	cfg, err := s.client.GetBucketLifecycle(ctx, s.cfg.Bucket)
	if err != nil {
		if minio.ToErrorResponse(err).Code != "NoSuchLifecycleConfiguration" {
			return fmt.Errorf("bucket %s lifecycle: %w", s.cfg.Bucket, err)
		}
		cfg = lifecycle.NewConfiguration()
	}
	rule := PendingRule()
	rules := []lifecycle.Rule{rule}
	for _, r := range cfg.Rules {
		if r.ID != rule.ID {
			rules = append(rules, r)
		}
	}
	cfg.Rules = rules
	if err := s.client.SetBucketLifecycle(ctx, s.cfg.Bucket, cfg); err != nil {
		return fmt.Errorf("bucket %s lifecycle: %w", s.cfg.Bucket, err)
	}
	return nil
}

// PendingRule is the lifecycle rule that expires unconfirmed uploads.
func PendingRule() lifecycle.Rule {
	return lifecycle.Rule{
		ID:         pendingRuleID,
		Status:     "Enabled",
		RuleFilter: lifecycle.Filter{Tag: lifecycle.Tag{Key: PendingTag, Value: PendingValue}},
		Expiration: lifecycle.Expiration{Days: PendingDays},
	}
}

// Lifecycle returns the bucket's lifecycle rules (for tests and operators).
func (s *Bucket) Lifecycle(ctx context.Context) ([]lifecycle.Rule, error) {
	cfg, err := s.client.GetBucketLifecycle(ctx, s.cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("bucket %s lifecycle: %w", s.cfg.Bucket, err)
	}
	return cfg.Rules, nil
}

// RemoveBucket deletes every object and then the bucket (for tests).
func (s *Bucket) RemoveBucket(ctx context.Context) error {
	for o, err := range s.List(ctx, "") {
		if err != nil {
			return err
		}
		if err := s.Remove(ctx, o.Key); err != nil {
			return err
		}
	}
	return s.client.RemoveBucket(ctx, s.cfg.Bucket)
}
