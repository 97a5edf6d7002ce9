package system_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestComposeRunsNothingAsAnAdministrator: in docker-compose.yml the API, the
// CDC and the migrations hold neither MinIO's root nor a Postgres superuser.
// MinIO's root goes only to the media-setup service, which makes the API's
// own user; each Postgres's superuser is postgres, and the init script makes
// the role that the URLs name; the write side's schema owner is the
// migrations' alone. No MinIO console is published.
func TestComposeRunsNothingAsAnAdministrator(t *testing.T) {
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	compose := string(b)
	for _, re := range []string{
		`SWAPMEET_S3_ACCESS_KEY: \$\{MINIO_ROOT_USER`,
		`SWAPMEET_S3_SECRET_KEY: \$\{MINIO_ROOT_PASSWORD`,
		`"9001:`,
		`--console-address`,
		// The image makes POSTGRES_USER the superuser: it must not be a
		// role that swapmeet connects as.
		`POSTGRES_USER: (swapmeet|search)\b`,
	} {
		if regexp.MustCompile(re).MatchString(compose) {
			t.Errorf("docker-compose.yml matches %s", re)
		}
	}
	must := []string{
		`(?m)^\s+command: \["media", "setup"\]`,
		`SWAPMEET_S3_ADMIN_ACCESS_KEY: \$\{MINIO_ROOT_USER`,
		`SWAPMEET_PG_URL: postgres://swapmeet:`,
		`SWAPMEET_PG_MIGRATE_URL: postgres://swapmeet_owner:`,
		`SWAPMEET_OWNER_ROLE: swapmeet_owner\b`,
		`SWAPMEET_SEARCH_URL: postgres://search:`,
		`SWAPMEET_ROLE: swapmeet\b`,
		`SWAPMEET_ROLE: search\b`,
		`postgres-roles.sh:/docker-entrypoint-initdb.d/`,
	}
	for _, re := range must {
		if !regexp.MustCompile(re).MatchString(compose) {
			t.Errorf("docker-compose.yml does not match %s", re)
		}
	}
	// The schema's owner is the migrations' alone.
	if n := strings.Count(compose, "SWAPMEET_PG_MIGRATE_URL"); n != 1 {
		t.Errorf("SWAPMEET_PG_MIGRATE_URL appears %d times, want 1 (the migrate service)", n)
	}
	if n := strings.Count(compose, "${MINIO_ROOT_USER"); n != 2 {
		t.Errorf("${MINIO_ROOT_USER} appears %d times, want 2 (MinIO itself and media-setup)", n)
	}
	script, err := os.ReadFile("../../scripts/compose/postgres-roles.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(script), "NOSUPERUSER") {
		t.Error("scripts/compose/postgres-roles.sh does not make the role NOSUPERUSER")
	}
}
