package media_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/media"
	"github.com/swapmeet/swapmeet/internal/media/mediatest"
)

var ctx = context.Background()

func newKey() string { return media.ObjectKey(uuid.New(), uuid.New()) }

func TestBootstrap(t *testing.T) {
	s := mediatest.Bucket(t) // set up once
	admin := mediatest.AsAdmin(t, s.Config())

	again, err := admin.Bootstrap(ctx, []string{mediatest.Origin})
	if err != nil {
		t.Fatalf("second bootstrap: %v", err)
	}
	if again.Created || again.PolicyRemoved {
		t.Errorf("second bootstrap changed the bucket: %+v", again)
	}
	t.Logf("per-bucket CORS supported: %v", again.BucketCORS)
	rules, err := admin.Lifecycle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 1 || rules[0].ID != media.PendingRule().ID || rules[0].RuleFilter.Tag.Key != media.PendingTag || rules[0].Expiration.Days != media.PendingDays {
		t.Errorf("lifecycle rules = %+v, want only the pending-upload rule", rules)
	}

	// Private: an object is not readable without a signature.
	key := newKey()
	if err := s.Put(ctx, key, "image/png", mediatest.PNG(2, 2)); err != nil {
		t.Fatal(err)
	}
	signed, _, err := s.PresignedGet(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	unsigned, _, _ := strings.Cut(signed, "?")
	if status, _, err := mediatest.Get(unsigned); err != nil || status != http.StatusForbidden {
		t.Errorf("anonymous GET: status %d, err %v; want 403", status, err)
	}

	// A browser on a configured origin may POST uploads and GET images.
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		req, _ := http.NewRequest(http.MethodOptions, unsigned, nil)
		req.Header.Set("Origin", mediatest.Origin)
		req.Header.Set("Access-Control-Request-Method", method)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := res.Header.Get("Access-Control-Allow-Origin"); got != mediatest.Origin && got != "*" {
			t.Errorf("CORS preflight for %s from %s: Access-Control-Allow-Origin = %q", method, mediatest.Origin, got)
		}
	}
}

func TestPresignedPostEnforcesThePolicy(t *testing.T) {
	s := mediatest.Bucket(t)
	img := mediatest.PNG(8, 8)
	policy := func() (string, media.Upload) {
		key := newKey()
		up, err := s.PresignedPost(ctx, key, "image/png", int64(len(img)))
		if err != nil {
			t.Fatal(err)
		}
		if !up.ExpiresAt.After(time.Now()) || up.ExpiresAt.After(time.Now().Add(time.Hour)) {
			t.Fatalf("policy expires at %v: want minutes from now", up.ExpiresAt)
		}
		return key, up
	}
	for _, tc := range []struct {
		name     string
		body     []byte
		override map[string]string
		status   int
		code     string // the S3 error code in the body
	}{
		{"one byte larger", append(img[:len(img):len(img)], 0), nil, http.StatusBadRequest, "EntityTooLarge"},
		{"one byte smaller", img[:len(img)-1], nil, http.StatusBadRequest, "EntityTooSmall"},
		{"another content type", img, map[string]string{"Content-Type": "image/gif"}, http.StatusForbidden, "AccessDenied"},
		{"another key", img, map[string]string{"key": newKey()}, http.StatusForbidden, "AccessDenied"},
		{"without the pending tag", img, map[string]string{"tagging": "<Tagging><TagSet></TagSet></Tagging>"}, http.StatusForbidden, "AccessDenied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, up := policy()
			status, body, err := mediatest.Post(up, tc.body, tc.override)
			if err != nil {
				t.Fatal(err)
			}
			if status != tc.status || !strings.Contains(body, tc.code) {
				t.Errorf("status %d, body %s; want %d with %s", status, body, tc.status, tc.code)
			}
			if _, err := s.Stat(ctx, key); !errors.Is(err, media.ErrNotFound) {
				t.Errorf("a refused upload left an object: %v", err)
			}
		})
	}

	t.Run("within the policy", func(t *testing.T) {
		key, up := policy()
		status, body, err := mediatest.Post(up, img, nil)
		if err != nil || status != http.StatusNoContent {
			t.Fatalf("status %d, err %v: %s", status, err, body)
		}
		o, err := s.Stat(ctx, key)
		if err != nil || o.Size != int64(len(img)) || o.ContentType != "image/png" {
			t.Fatalf("stored %+v, %v", o, err)
		}
		tags, err := s.Tags(ctx, key)
		if err != nil || tags[media.PendingTag] != media.PendingValue {
			t.Fatalf("tags %v, %v: want the pending tag the lifecycle rule expires", tags, err)
		}
		if err := s.MarkConfirmed(ctx, key); err != nil {
			t.Fatal(err)
		}
		if tags, err := s.Tags(ctx, key); err != nil || len(tags) != 0 {
			t.Fatalf("tags after confirmation %v, %v: want none", tags, err)
		}
	})
}

func TestPresignedGetExpires(t *testing.T) {
	const expiry = 2 * time.Second
	s := mediatest.Bucket(t, func(c *media.Config) { c.GetExpiry = expiry })
	key := newKey()
	img := mediatest.PNG(3, 3)
	if err := s.Put(ctx, key, "image/png", img); err != nil {
		t.Fatal(err)
	}
	signed := time.Now()
	url, expires, err := s.PresignedGet(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if d := expires.Sub(signed); d < expiry-time.Second || d > expiry+time.Second {
		t.Errorf("expires in %s, want %s", d, expiry)
	}
	status, body, err := mediatest.Get(url)
	if err != nil || status != http.StatusOK || string(body) != string(img) {
		t.Fatalf("GET before expiry: status %d, err %v", status, err)
	}
	// Expiry is a matter of the clock, so this waits on time: it polls
	// until the store refuses the URL. X-Amz-Date has whole seconds, so
	// the refusal may come up to a second before the nominal expiry.
	itest.Eventually(t, expiry+5*time.Second, "the URL to expire", func() (bool, error) {
		status, _, err := mediatest.Get(url)
		return status == http.StatusForbidden, err
	})
	if waited := time.Since(signed); waited < expiry-time.Second {
		t.Errorf("the URL stopped working after %s, before its expiry of %s", waited, expiry)
	}
}

// A URL is reused only briefly: whatever a caller receives is valid for
// at least 90% of GetExpiry, and works.
func TestPresignedGetReused(t *testing.T) {
	const expiry = 10 * time.Second
	const reuse = expiry / media.PresignReuseDivisor
	s := mediatest.Bucket(t, func(c *media.Config) { c.GetExpiry = expiry })
	key := newKey()
	img := mediatest.PNG(2, 2)
	if err := s.Put(ctx, key, "image/png", img); err != nil {
		t.Fatal(err)
	}
	first, firstExp, err := s.PresignedGet(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	var again string
	var againExp time.Time
	for start := time.Now(); time.Since(start) < 2*reuse; time.Sleep(reuse / 10) {
		u, exp, err := s.PresignedGet(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if left := time.Until(exp); left < expiry*9/10 {
			t.Fatalf("handed out a URL valid for %s more, want at least %s", left, expiry*9/10)
		}
		again, againExp = u, exp
	}
	if again == first || !againExp.After(firstExp) {
		t.Errorf("the URL signed first was still handed out after %s", 2*reuse)
	}
	for _, u := range []string{first, again} {
		if status, body, err := mediatest.Get(u); err != nil || status != http.StatusOK || string(body) != string(img) {
			t.Fatalf("GET %s: status %d, err %v", u, status, err)
		}
	}
	time.Sleep(reuse) // whatever is held is too old now
	fresh, _, err := s.PresignedGet(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if u, _, err := s.PresignedGet(ctx, key); err != nil || u != fresh {
		t.Errorf("an immediate second call signed again (%v)", err)
	}
}

func TestRemoveAndList(t *testing.T) {
	s := mediatest.Bucket(t)
	key := newKey()
	if err := s.Put(ctx, key, "image/png", mediatest.PNG(1, 1)); err != nil {
		t.Fatal(err)
	}
	var listed []string
	for o, err := range s.List(ctx, media.ListingsPrefix) {
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, o.Key)
	}
	if len(listed) != 1 || listed[0] != key {
		t.Fatalf("listed %v, want [%s]", listed, key)
	}
	if err := s.Remove(ctx, key, key+".missing"); err != nil {
		t.Fatalf("remove (a missing key is not an error): %v", err)
	}
	if _, err := s.Stat(ctx, key); !errors.Is(err, media.ErrNotFound) {
		t.Fatalf("stat after remove: %v", err)
	}
	r, err := s.Open(ctx, key)
	if err == nil {
		_, err = r.Read(make([]byte, 1))
		r.Close()
	}
	if !errors.Is(err, media.ErrNotFound) {
		t.Fatalf("read after remove: %v, want ErrNotFound", err)
	}
}
