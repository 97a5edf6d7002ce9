package media

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/minio/madmin-go/v3"
)

// Admin is the object store's administrator, which only `swapmeet media
// setup` uses: serve never holds these credentials.
type Admin struct {
	AccessKey string `env:"SWAPMEET_S3_ADMIN_ACCESS_KEY"`
	SecretKey string `env:"SWAPMEET_S3_ADMIN_SECRET_KEY"`
}

// DevAdmin is the administrator of the local object store that `make up`
// starts (its API user is DefaultConfig's).
var DevAdmin = Admin{AccessKey: "swapmeet-admin", SecretKey: "swapmeet-admin-secret"}

// APIActions are the S3 actions serve performs, and all that its user's
// policy allows: on the bucket, locating and listing it (the sweep); on its
// objects, presigned uploads and reads, the copy and untagging of a
// confirmation, thumbnails and deletions. Nothing on any other bucket, and
// nothing that changes the bucket itself (its policy, CORS or lifecycle).
var (
	APIBucketActions = []string{"s3:GetBucketLocation", "s3:ListBucket"}
	APIObjectActions = []string{
		"s3:GetObject", "s3:PutObject", "s3:DeleteObject",
		"s3:GetObjectTagging", "s3:PutObjectTagging", "s3:DeleteObjectTagging",
	}
)

// PolicyName is the name of the canned policy that Setup gives the API's
// user of a bucket.
func PolicyName(bucket string) string { return "swapmeet-api-" + bucket }

// APIPolicy is the IAM policy document of the API's user of bucket.
func APIPolicy(bucket string) []byte {
	type statement struct {
		Effect   string
		Action   []string
		Resource []string
	}
	doc := struct {
		Version   string
		Statement []statement
	}{"2012-10-17", []statement{
		{"Allow", APIBucketActions, []string{"arn:aws:s3:::" + bucket}},
		{"Allow", APIObjectActions, []string{"arn:aws:s3:::" + bucket + "/*"}},
	}}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err) // a fixed shape of strings
	}
	return b
}

// SetUp says what Setup did.
type SetUp struct {
	Bootstrapped
	Policy string // the canned policy given to the API's user
	User   string // the API's access key
}

// Setup prepares the object store for serve, as its administrator: it
// bootstraps the bucket (see Bootstrap), writes the API's policy and
// creates or updates the API's user (cfg's access key and secret) with
// that policy alone. It is idempotent: run it again after changing the
// secret, the bucket or the web origins.
func Setup(ctx context.Context, admin Admin, cfg Config, webOrigins []string) (SetUp, error) {
	var done SetUp
	switch {
	case admin.AccessKey == "" || admin.SecretKey == "":
		return done, errors.New("SWAPMEET_S3_ADMIN_ACCESS_KEY and SWAPMEET_S3_ADMIN_SECRET_KEY must name the object store's administrator")
	case cfg.AccessKey == "" || cfg.SecretKey == "":
		return done, errors.New("SWAPMEET_S3_ACCESS_KEY and SWAPMEET_S3_SECRET_KEY must name the API's user")
	case cfg.AccessKey == admin.AccessKey:
		return done, errors.New("SWAPMEET_S3_ACCESS_KEY is the administrator: the API needs a user of its own")
	case len(cfg.SecretKey) < 8 || len(cfg.SecretKey) > 40:
		// MinIO's bounds on a secret key.
		return done, errors.New("SWAPMEET_S3_SECRET_KEY must have 8 to 40 characters")
	}
	asAdmin := cfg
	asAdmin.AccessKey, asAdmin.SecretKey = admin.AccessKey, admin.SecretKey
	b, err := New(asAdmin)
	if err != nil {
		return done, err
	}
	if done.Bootstrapped, err = b.Bootstrap(ctx, webOrigins); err != nil {
		return done, err
	}
	adm, err := madmin.New(cfg.Endpoint, admin.AccessKey, admin.SecretKey, cfg.Secure)
	if err != nil {
		return done, fmt.Errorf("object store admin %s: %w", cfg.Endpoint, err)
	}
	done.Policy, done.User = PolicyName(cfg.Bucket), cfg.AccessKey
	if err := adm.AddCannedPolicy(ctx, done.Policy, APIPolicy(cfg.Bucket)); err != nil {
		return done, fmt.Errorf("policy %s: %w", done.Policy, err)
	}
	// AddUser creates the user or sets its secret and enables it.
	if err := adm.AddUser(ctx, cfg.AccessKey, cfg.SecretKey); err != nil {
		return done, fmt.Errorf("user %s: %w", cfg.AccessKey, err)
	}
	// SetPolicy replaces the user's policies with this one, so a policy
	// given by hand earlier does not survive a setup.
	if err := adm.SetPolicy(ctx, done.Policy, cfg.AccessKey, false); err != nil { //nolint:staticcheck // AttachPolicy adds and fails on a policy already attached
		return done, fmt.Errorf("give %s policy %s: %w", cfg.AccessKey, done.Policy, err)
	}
	return done, nil
}

// Ready reports whether the bucket exists and this user may list it; serve
// waits for it before its media jobs start.
func (s *Bucket) Ready(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.cfg.Bucket)
	if err != nil {
		return classify(fmt.Errorf("bucket %s: %w", s.cfg.Bucket, err))
	}
	if !ok {
		return fmt.Errorf("bucket %s does not exist", s.cfg.Bucket)
	}
	return nil
}
