package cache_test

import (
	"strings"
	"testing"

	"github.com/swapmeet/swapmeet/internal/cache"
)

func TestOpen(t *testing.T) {
	for _, tc := range []struct {
		url     string
		cluster bool
		err     string // "" means it opens
	}{
		{url: "redis://127.0.0.1:16379/0"},
		{url: "rediss://user:pw@cache.internal:6380/2"},
		{url: "redis://127.0.0.1:17001?addr=127.0.0.1:17002&addr=127.0.0.1:17003", cluster: true},
		{url: "redis://127.0.0.1:17001/0?addr=127.0.0.1:17002", cluster: true},
		{url: "redis://127.0.0.1:17001/1?addr=127.0.0.1:17002", err: "only database 0"},
		{url: "redis://127.0.0.1:17001?addr=17002", err: "addr param"},
		{url: "redis://127.0.0.1:17001?addr=127.0.0.1:17002&db=1", err: "unexpected option: db"},
		{url: "redis://127.0.0.1:16379/0?nonsense=1", err: "unexpected option"},
		{url: "http://127.0.0.1:16379", err: "scheme"},
		{url: "127.0.0.1:16379", err: "cannot parse"},
		{url: "redis://", err: "no host"},
		{url: "redis://[::1", err: "cannot parse"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			rdb, err := cache.Open(tc.url)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer rdb.Close()
			if got := cache.IsCluster(rdb); got != tc.cluster {
				t.Fatalf("cluster = %v, want %v", got, tc.cluster)
			}
		})
	}
}

func TestOpenHidesThePassword(t *testing.T) {
	for _, url := range []string{
		"redis://user:s3cret@127.0.0.1:17001/1?addr=127.0.0.1:17002",
		"redis://user:s3cret@127.0.0.1:16379/0?nonsense=1",
		"redis://user:s3cret@[::1/0",
	} {
		_, err := cache.Open(url)
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: err = %v, want one without the password", url, err)
		}
	}
}
