package media_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/swapmeet/swapmeet/internal/media"
	"github.com/swapmeet/swapmeet/internal/media/mediatest"
)

// TestAPIUserReachesOnlyItsObjects: the user `media setup` gives serve can do
// everything serve does on its bucket (the other tests of this package and
// of the media jobs run as such a user), and nothing else: no other
// bucket's objects, no new bucket, no change to its bucket's policy or
// lifecycle, no administration.
func TestAPIUserReachesOnlyItsObjects(t *testing.T) {
	s := mediatest.Bucket(t)
	other := mediatest.Bucket(t)
	cfg := s.Config()
	api, err := minio.New(cfg.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""), Region: cfg.Region})
	if err != nil {
		t.Fatal(err)
	}

	// Every operation of serve, on its bucket.
	key, thumb := newKey(), newKey()
	img := mediatest.PNG(8, 8)
	up, err := s.PresignedPost(ctx, media.StagingKey(key), "image/png", int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if status, body, err := mediatest.Post(up, img, nil); err != nil || status/100 != 2 {
		t.Fatalf("presigned upload: status %d, err %v: %s", status, err, body)
	}
	if err := s.Promote(ctx, media.StagingKey(key), key); err != nil {
		t.Fatalf("promote: %v", err)
	}
	if err := s.MarkConfirmed(ctx, key); err != nil {
		t.Fatalf("untag: %v", err)
	}
	if _, err := s.Stat(ctx, key); err != nil {
		t.Fatalf("stat: %v", err)
	}
	if err := s.Put(ctx, thumb, "image/jpeg", []byte("thumbnail")); err != nil {
		t.Fatalf("put: %v", err)
	}
	u, _, err := s.PresignedGet(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if status, _, err := mediatest.Get(u); err != nil || status != http.StatusOK {
		t.Fatalf("presigned GET: status %d, err %v", status, err)
	}
	n := 0
	for _, err := range s.List(ctx, "") {
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		n++
	}
	if n < 2 {
		t.Fatalf("list found %d objects, want the image and the thumbnail", n)
	}
	if err := s.Remove(ctx, media.StagingKey(key), key, thumb); err != nil {
		t.Fatalf("remove: %v", err)
	}

	// Nothing else.
	denied := func(what string, err error) {
		t.Helper()
		if code := minio.ToErrorResponse(err).Code; code != "AccessDenied" {
			t.Errorf("%s as the API's user: err %v (code %q), want AccessDenied", what, err, code)
		}
	}
	otherKey := newKey()
	if err := other.Put(ctx, otherKey, "image/png", mediatest.PNG(2, 2)); err != nil {
		t.Fatal(err)
	}
	oc := other.Config()
	_, err = api.StatObject(ctx, oc.Bucket, otherKey, minio.StatObjectOptions{})
	denied("reading another bucket's object", err)
	_, err = api.PutObject(ctx, oc.Bucket, newKey(), bytes.NewReader([]byte("x")), 1, minio.PutObjectOptions{})
	denied("writing into another bucket", err)
	denied("creating a bucket", api.MakeBucket(ctx, cfg.Bucket+"-x", minio.MakeBucketOptions{Region: cfg.Region}))
	denied("making its bucket public", api.SetBucketPolicy(ctx, cfg.Bucket,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::`+cfg.Bucket+`/*"]}]}`))
	_, err = api.GetBucketLifecycle(ctx, cfg.Bucket)
	denied("reading its bucket's lifecycle", err)
	denied("removing its bucket", api.RemoveBucket(ctx, cfg.Bucket))
	if _, err := s.Bootstrap(ctx, []string{mediatest.Origin}); err == nil {
		t.Error("the API's user bootstrapped the bucket; only the administrator may")
	}
	// Administration: setting up another user is refused.
	if _, err := media.Setup(ctx, media.Admin{AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey}, oc, nil); err == nil {
		t.Error("the API's user ran media setup")
	}

	// A second setup with a new secret changes the user's secret, and the
	// old one stops working.
	admin := mediatest.Admin(t)
	renewed := cfg
	renewed.SecretKey = cfg.SecretKey[:len(cfg.SecretKey)-4] + "abcd"
	if _, err := media.Setup(ctx, admin, renewed, []string{mediatest.Origin}); err != nil {
		t.Fatalf("second setup: %v", err)
	}
	if err := s.Ready(ctx); err == nil {
		t.Error("the old secret still works after setup changed it")
	}
	if fresh, err := media.New(renewed); err != nil {
		t.Fatal(err)
	} else if err := fresh.Ready(ctx); err != nil {
		t.Errorf("the new secret: %v", err)
	}
}

func TestSetupRefusesTheAdministratorAsTheAPIUser(t *testing.T) {
	admin := mediatest.Admin(t)
	cfg := media.DefaultConfig
	cfg.AccessKey, cfg.SecretKey = admin.AccessKey, admin.SecretKey
	if _, err := media.Setup(ctx, admin, cfg, nil); err == nil {
		t.Fatal("setup accepted the administrator as the API's user")
	}
	cfg = media.DefaultConfig
	cfg.SecretKey = "short"
	if _, err := media.Setup(ctx, admin, cfg, nil); err == nil {
		t.Fatal("setup accepted a 5-character secret")
	}
	if _, err := media.Setup(ctx, media.Admin{}, media.DefaultConfig, nil); err == nil {
		t.Fatal("setup ran without the administrator's credentials")
	}
}
