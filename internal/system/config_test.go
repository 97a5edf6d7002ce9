package system_test

import (
	"strings"
	"testing"

	"github.com/swapmeet/swapmeet/internal/system"
)

func TestProductionRefusesDevelopmentDefaults(t *testing.T) {
	real := map[string]string{
		"SWAPMEET_PG_URL":        "postgres://swapmeet:s3cret-Kq7vT2pX@db.internal:5432/swapmeet?sslmode=require",
		"SWAPMEET_SEARCH_URL":    "postgres://search:Zr8-wq2LmN4pB@search.internal:5432/swapmeet_search?sslmode=verify-full",
		"SWAPMEET_S3_ACCESS_KEY": "swapmeet-api",
		"SWAPMEET_S3_SECRET_KEY": "prod-secret-9fJ2kLq0",
	}
	// The values .env.example ships with, as compose passes them on.
	example := merge(real, map[string]string{
		"SWAPMEET_PG_URL":             "postgres://swapmeet:change-me-postgres@postgres:5432/swapmeet?sslmode=disable",
		"SWAPMEET_SEARCH_URL":         "postgres://search:change-me-search@search:5432/swapmeet_search?sslmode=disable",
		"SWAPMEET_S3_ACCESS_KEY":      "change-me-api",
		"SWAPMEET_S3_SECRET_KEY":      "change-me-api-password",
		"SWAPMEET_PG_ALLOW_PLAINTEXT": "true",
	})
	for _, tc := range []struct {
		name    string
		env     map[string]string
		refused string // "" means it starts
	}{
		{"defaults on loopback", map[string]string{}, ""},
		{"remote postgres with the dev password and no TLS", map[string]string{"SWAPMEET_PG_URL": "postgres://swapmeet:swapmeet@db.internal:5432/swapmeet?sslmode=disable"}, "development password"},
		{"the schema owner's dev password", merge(real, map[string]string{"SWAPMEET_PG_MIGRATE_URL": "postgres://swapmeet_owner:swapmeet_owner@db.internal:5432/swapmeet?sslmode=require"}), "SWAPMEET_PG_MIGRATE_URL has the development password"},
		{"the schema owner over plaintext", merge(real, map[string]string{"SWAPMEET_PG_MIGRATE_URL": "postgres://swapmeet_owner:0wner-Kq7vT2pX@db.internal:5432/swapmeet?sslmode=disable"}), "SWAPMEET_PG_MIGRATE_URL has sslmode=disable"},
		{"only redis remote", map[string]string{"SWAPMEET_REDIS_URL": "redis://cache.internal:6379/0"}, "cache.internal is not on loopback"},
		{"one redis cluster node remote", map[string]string{"SWAPMEET_REDIS_URL": "redis://127.0.0.1:17001?addr=127.0.0.1:17002&addr=node3.internal:6379"}, "node3.internal is not on loopback"},
		{"redis cluster on loopback", map[string]string{"SWAPMEET_REDIS_URL": "redis://127.0.0.1:17001?addr=127.0.0.1:17002&addr=127.0.0.1:17003"}, ""},
		{"remote with the dev S3 keys", merge(real, map[string]string{"SWAPMEET_S3_ENDPOINT": "s3.internal:9000", "SWAPMEET_S3_SECRET_KEY": "swapmeet-secret"}), "SWAPMEET_S3_SECRET_KEY"},
		{"remote with real settings", real, ""},
		{"plaintext postgres refused", merge(real, map[string]string{"SWAPMEET_PG_URL": "postgres://swapmeet:s3cret-Kq7vT2pX@db.internal/swapmeet?sslmode=disable"}), "sslmode=disable"},
		{"plaintext postgres allowed explicitly", merge(real, map[string]string{"SWAPMEET_PG_URL": "postgres://swapmeet:s3cret-Kq7vT2pX@db.internal/swapmeet?sslmode=disable", "SWAPMEET_PG_ALLOW_PLAINTEXT": "true"}), ""},
		{"the example file's secrets", example, "SWAPMEET_PG_URL's password is a placeholder"},
		{"the example file's S3 user", example, "SWAPMEET_S3_ACCESS_KEY is a placeholder"},
		{"the example file's S3 secret", example, "SWAPMEET_S3_SECRET_KEY is a placeholder"},
		{"a short postgres password", merge(real, map[string]string{"SWAPMEET_PG_URL": "postgres://swapmeet:hunter2@db.internal/swapmeet?sslmode=require"}), "shorter than 12"},
		{"an empty S3 secret", merge(real, map[string]string{"SWAPMEET_S3_SECRET_KEY": ""}), "SWAPMEET_S3_SECRET_KEY"},
		{"a placeholder redis password", merge(real, map[string]string{"SWAPMEET_REDIS_URL": "redis://:changeme@cache.internal:6379/0"}), "SWAPMEET_REDIS_URL's password is a placeholder"},
		{"postgres with the default sslmode (prefer)", merge(real, map[string]string{"SWAPMEET_PG_URL": "postgres://swapmeet:s3cret-Kq7vT2pX@db.internal/swapmeet"}), "sslmode=prefer"},
		{"the search store over plaintext", merge(real, map[string]string{"SWAPMEET_SEARCH_URL": "postgres://search:Zr8-wq2LmN4pB@search.internal/swapmeet_search?sslmode=prefer"}), "SWAPMEET_SEARCH_URL has sslmode=prefer"},
		{"profiles off loopback", merge(real, map[string]string{"SWAPMEET_PPROF": "true", "SWAPMEET_API_METRICS_ADDR": "0.0.0.0:9465"}), "SWAPMEET_PPROF"},
		{"profiles on loopback", merge(real, map[string]string{"SWAPMEET_PPROF": "true"}), ""},
		{"everything allowed explicitly", map[string]string{"SWAPMEET_MONGO_URL": "mongodb://a.internal,b.internal/", "SWAPMEET_ALLOW_DEV_DEFAULTS": "true"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"SWAPMEET_PG_URL", "SWAPMEET_PG_MIGRATE_URL", "SWAPMEET_SEARCH_URL", "SWAPMEET_PPROF", "SWAPMEET_API_METRICS_ADDR", "SWAPMEET_MONGO_URL", "SWAPMEET_REDIS_URL", "SWAPMEET_REDIS_PAGES_URL", "SWAPMEET_S3_ENDPOINT",
				"SWAPMEET_S3_ACCESS_KEY", "SWAPMEET_S3_SECRET_KEY", "SWAPMEET_ALLOW_DEV_DEFAULTS", "SWAPMEET_PG_ALLOW_PLAINTEXT"} {
				t.Setenv(k, "")
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := system.LoadConfig()
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
				t.Fatalf("err = %v, want a refusal naming %q", err, tc.refused)
			}
		})
	}
}

func merge(a, b map[string]string) map[string]string {
	m := map[string]string{}
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}
