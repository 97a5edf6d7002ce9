// Package mediatest gives tests a private bucket on the real object store
// and the client side of a presigned POST, as a browser performs it.
package mediatest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"slices"
	"time"

	"github.com/minio/madmin-go/v3"

	"github.com/swapmeet/swapmeet/internal/config"
	"github.com/swapmeet/swapmeet/internal/media"
)

// T is what the helpers need of a test.
type T interface {
	Helper()
	Cleanup(func())
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Origin is a web origin that Bucket's CORS admits.
const Origin = "http://localhost:5173"

// Bucket returns a store on a new bucket of the configured object store,
// set up as `swapmeet media setup` does and removed when the test ends. It
// holds what serve holds: a user of its own whose policy allows only the
// API's object operations on that bucket. Each test gets its own bucket,
// so a sweep in one test cannot see another's objects. configure, if
// given, adjusts the settings first.
func Bucket(t T, configure ...func(*media.Config)) *media.Bucket {
	t.Helper()
	mc := media.DefaultConfig
	if err := config.Load(&mc); err != nil {
		t.Fatalf("configuration: %v", err)
	}
	admin := Admin(t)
	id := make([]byte, 6)
	_, _ = rand.Read(id)
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	mc.Bucket = "swapmeet-test-" + hex.EncodeToString(id)
	// MinIO allows access keys of 3 to 20 characters.
	mc.AccessKey, mc.SecretKey = "smt-"+hex.EncodeToString(id), hex.EncodeToString(secret)
	for _, f := range configure {
		f(&mc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := media.Setup(ctx, admin, mc, []string{Origin}); err != nil {
		t.Fatalf("object store at %s: %v; start the local services with `make up`", mc.Endpoint, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := AsAdmin(t, mc).RemoveBucket(ctx); err != nil {
			t.Logf("remove bucket %s: %v", mc.Bucket, err)
		}
		adm, err := madmin.New(mc.Endpoint, admin.AccessKey, admin.SecretKey, mc.Secure)
		if err == nil {
			err = errors.Join(adm.RemoveUser(ctx, mc.AccessKey), adm.RemoveCannedPolicy(ctx, media.PolicyName(mc.Bucket)))
		}
		if err != nil {
			t.Logf("remove user %s: %v", mc.AccessKey, err)
		}
	})
	s, err := media.New(mc)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return s
}

// Admin returns the object store administrator's credentials (the local
// services' unless SWAPMEET_S3_ADMIN_* say otherwise).
func Admin(t T) media.Admin {
	t.Helper()
	a := media.DevAdmin
	if err := config.Load(&a); err != nil {
		t.Fatalf("configuration: %v", err)
	}
	return a
}

// AsAdmin returns a store on cfg's bucket that holds the administrator's
// credentials, for what only `swapmeet media setup` may do.
func AsAdmin(t T, cfg media.Config) *media.Bucket {
	t.Helper()
	a := Admin(t)
	cfg.AccessKey, cfg.SecretKey = a.AccessKey, a.SecretKey
	s, err := media.New(cfg)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return s
}

// Post performs a presigned POST upload as a browser does: a
// multipart/form-data body with every form field, then the file, last.
// override replaces or adds form fields (to break the policy on purpose).
// It returns the status and the response body.
func Post(up media.Upload, file []byte, override map[string]string) (int, string, error) {
	fields := maps.Clone(up.Fields)
	maps.Copy(fields, override)
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if err := w.WriteField(k, fields[k]); err != nil {
			return 0, "", err
		}
	}
	part, err := w.CreateFormFile("file", "photo")
	if err != nil {
		return 0, "", err
	}
	if _, err := part.Write(file); err != nil {
		return 0, "", err
	}
	if err := w.Close(); err != nil {
		return 0, "", err
	}
	req, err := http.NewRequest(http.MethodPost, up.URL, &body)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Origin", Origin)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), nil
}

// Upload posts file and fails the test unless the store accepts it.
func Upload(t T, up media.Upload, file []byte) {
	t.Helper()
	status, body, err := Post(up, file, nil)
	if err != nil || status != http.StatusNoContent {
		t.Fatalf("upload: status %d, err %v: %s", status, err, body)
	}
}

// Get fetches a URL and returns its status and body.
func Get(url string) (int, []byte, error) {
	res, err := http.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// PNG is a w×h PNG: a gradient, so that no two images of different sizes
// are alike.
func PNG(w, h int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{R: uint8(255 * x / max(1, w-1)), G: uint8(255 * y / max(1, h-1)), B: 128, A: 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(fmt.Sprintf("encode png: %v", err))
	}
	return b.Bytes()
}
