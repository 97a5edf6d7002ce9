package system

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/swapmeet/swapmeet/internal/app"
	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/config"
	"github.com/swapmeet/swapmeet/internal/live"
	"github.com/swapmeet/swapmeet/internal/media"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/search"
)

// Config holds every setting of every command: the process's own, and
// each package's options (which name their variables themselves).
// docs/configuration.md describes every variable.
type Config struct {
	PostgresURL string `env:"SWAPMEET_PG_URL"`
	// MigrateURL is the schema owner's connection, which `swapmeet
	// migrate` uses; empty means PostgresURL (one role for both).
	MigrateURL string `env:"SWAPMEET_PG_MIGRATE_URL"`
	PGMaxConns int    `env:"SWAPMEET_PG_MAX_CONNS"` // the pool of each process
	// PGStatementTimeout bounds each Postgres statement of the API's
	// requests (not the CDC's or the operator commands' long reads).
	PGStatementTimeout time.Duration `env:"SWAPMEET_PG_STATEMENT_TIMEOUT"`
	MongoURL           string        `env:"SWAPMEET_MONGO_URL"`
	MongoDB            string        `env:"SWAPMEET_MONGO_DB"`
	// MongoWriteConcern is "majority" or the number of replica-set members
	// that must acknowledge each projection write.
	MongoWriteConcern string `env:"SWAPMEET_MONGO_WRITE_CONCERN"`
	// MongoBulkSize is how many documents the CDC sends in one bulk
	// write (readstore.Model.BulkSize); 1 sends single upserts.
	MongoBulkSize int    `env:"SWAPMEET_MONGO_BULK_SIZE"`
	RedisURL      string `env:"SWAPMEET_REDIS_URL"`
	RedisPrefix   string `env:"SWAPMEET_REDIS_PREFIX"` // namespaces every key
	// RedisPagesURL is where search pages go; empty means RedisURL.
	RedisPagesURL     string `env:"SWAPMEET_REDIS_PAGES_URL"`
	CachePageMaxBytes int    `env:"SWAPMEET_CACHE_PAGE_MAX_BYTES"` // the largest search page cached
	CachePageKeys     int    `env:"SWAPMEET_CACHE_PAGE_KEYS"`      // search pages cached at once
	NearCache         cache.NearOptions
	// SearchURL is the search store: a Postgres database of the read side.
	SearchURL string `env:"SWAPMEET_SEARCH_URL"`
	Search    search.Options

	Media              media.Config
	WebOrigins         []string      `env:"SWAPMEET_WEB_ORIGINS"` // origins the API's and the bucket's CORS admit
	MediaSweepInterval time.Duration `env:"SWAPMEET_MEDIA_SWEEP_INTERVAL"`

	HTTPAddr        string        `env:"SWAPMEET_HTTP_ADDR"`
	APIMetricsAddr  string        `env:"SWAPMEET_API_METRICS_ADDR"`
	CDCMetricsAddr  string        `env:"SWAPMEET_CDC_METRICS_ADDR"`
	Profiles        bool          `env:"SWAPMEET_PPROF"` // Go profiles on the metrics addresses
	MaxRequestBytes int           `env:"SWAPMEET_MAX_REQUEST_BYTES"`
	RequestTimeout  time.Duration `env:"SWAPMEET_REQUEST_TIMEOUT"` // the server deadline of a unary RPC
	ClientIPHeader  string        `env:"SWAPMEET_CLIENT_IP_HEADER"`
	ConsistencyWait time.Duration `env:"SWAPMEET_CONSISTENCY_WAIT"`
	SessionTTL      time.Duration `env:"SWAPMEET_SESSION_TTL"`
	// SessionCacheTTL is how long an API process trusts a session it
	// looked up, so how long a sign-out through one replica may take to
	// reach the others; 0 looks every session up.
	SessionCacheTTL      time.Duration `env:"SWAPMEET_SESSION_CACHE_TTL,off"`
	SessionPurgeInterval time.Duration `env:"SWAPMEET_SESSION_PURGE_INTERVAL"`
	Limits               app.Limits
	Watch                live.Options

	Slot          string `env:"SWAPMEET_SLOT"` // the slot of a first start; the pointer names later ones
	Publication   string `env:"SWAPMEET_PUBLICATION"`
	SlotWarnBytes int64  `env:"SWAPMEET_SLOT_WARN_BYTES"` // retained WAL worth a warning
	CDCSpillDocs  int    `env:"SWAPMEET_CDC_SPILL_DOCS"`  // distinct documents per collection before a batch falls back to a full pass
	CDCWorkers    int    `env:"SWAPMEET_CDC_WORKERS"`     // pages of a batch read and written at once
	// FeedRetention is how long the change feed keeps history for Watch
	// streams that resume (at least MinFeedRetention).
	FeedRetention time.Duration `env:"SWAPMEET_FEED_RETENTION"`
	// FeedMaxChanges is how many changes of one kind a batch lists in the
	// feed; a larger batch tells every watcher to look again instead.
	FeedMaxChanges int `env:"SWAPMEET_FEED_MAX_CHANGES"`
	// HistoryRetention is how long the history keeps an entry, at least:
	// whole months older than this are dropped. 0 keeps everything.
	HistoryRetention time.Duration `env:"SWAPMEET_HISTORY_RETENTION,off"`

	LogLevel  string `env:"SWAPMEET_LOG_LEVEL"`  // debug, info, warn or error
	LogFormat string `env:"SWAPMEET_LOG_FORMAT"` // text or json

	// AllowDevDefaults accepts the development credentials off loopback
	// (a disposable environment); AllowPlaintextPG accepts only
	// sslmode=disable (a private network, such as docker compose's).
	AllowDevDefaults bool `env:"SWAPMEET_ALLOW_DEV_DEFAULTS"`
	AllowPlaintextPG bool `env:"SWAPMEET_PG_ALLOW_PLAINTEXT"`
}

// MinFeedRetention is the shortest history the change feed may keep.
const MinFeedRetention = 10 * time.Minute

// DefaultConfig is what an unset variable means: the local services
// `make up` starts, and each package's defaults.
func DefaultConfig() Config {
	return Config{
		PostgresURL:          "postgres://swapmeet:swapmeet@127.0.0.1:15432/swapmeet?sslmode=disable",
		PGMaxConns:           16,
		PGStatementTimeout:   5 * time.Second,
		MongoURL:             "mongodb://127.0.0.1:27018/",
		MongoDB:              "swapmeet",
		MongoWriteConcern:    readstore.DefaultWriteConcern,
		MongoBulkSize:        readstore.DefaultBulkSize,
		RedisURL:             "redis://127.0.0.1:16379/0",
		RedisPrefix:          "swapmeet:",
		CachePageMaxBytes:    cache.DefaultPageMaxBytes,
		CachePageKeys:        cache.DefaultPageKeys,
		NearCache:            cache.DefaultNear,
		SearchURL:            "postgres://ferretdb:ferretdb@127.0.0.1:15433/swapmeet_search?sslmode=disable",
		Search:               search.DefaultOptions(),
		Media:                media.DefaultConfig,
		WebOrigins:           []string{"http://127.0.0.1:8080", "http://localhost:5173"},
		MediaSweepInterval:   time.Hour,
		HTTPAddr:             "127.0.0.1:8080",
		APIMetricsAddr:       "127.0.0.1:9465",
		CDCMetricsAddr:       "127.0.0.1:9464",
		MaxRequestBytes:      1 << 20,
		RequestTimeout:       10 * time.Second,
		ConsistencyWait:      2 * time.Second,
		SessionTTL:           30 * 24 * time.Hour,
		SessionCacheTTL:      10 * time.Second,
		SessionPurgeInterval: 10 * time.Minute,
		Limits:               app.DefaultLimits,
		Watch:                live.DefaultOptions,
		Slot:                 "swapmeet_projections",
		Publication:          "swapmeet_projections",
		SlotWarnBytes:        1 << 30,
		CDCSpillDocs:         100_000,
		CDCWorkers:           2,
		FeedRetention:        15 * time.Minute,
		FeedMaxChanges:       10_000,
		LogLevel:             "info",
		LogFormat:            "text",
	}
}

// LoadConfig reads the configuration from the environment over the
// defaults, reporting every bad value at once.
func LoadConfig() (Config, error) {
	c := DefaultConfig()
	errs := []error{config.Load(&c)}
	// Slot and publication names are spliced into replication commands.
	ident := regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
	if !ident.MatchString(c.Slot) {
		errs = append(errs, fmt.Errorf("SWAPMEET_SLOT=%q: want lower-case letters, digits and _", c.Slot))
	}
	if !ident.MatchString(c.Publication) {
		errs = append(errs, fmt.Errorf("SWAPMEET_PUBLICATION=%q: want lower-case letters, digits and _", c.Publication))
	}
	// Announcements list keys one a line.
	if strings.ContainsFunc(c.RedisPrefix, unicode.IsSpace) {
		errs = append(errs, fmt.Errorf("SWAPMEET_REDIS_PREFIX=%q: want no spaces or line breaks", c.RedisPrefix))
	}
	for _, o := range c.WebOrigins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" {
			errs = append(errs, fmt.Errorf("SWAPMEET_WEB_ORIGINS: %q is not an origin like https://example.com", o))
		}
	}
	// S3 refuses presigned requests valid for longer than a week.
	for name, d := range map[string]time.Duration{"SWAPMEET_MEDIA_UPLOAD_EXPIRY": c.Media.UploadExpiry, "SWAPMEET_MEDIA_GET_EXPIRY": c.Media.GetExpiry} {
		if d > 7*24*time.Hour {
			errs = append(errs, fmt.Errorf("%s=%s: presigned requests last at most 168h", name, d))
		}
	}
	errs = append(errs, c.refuseDevDefaults())
	if _, err := readstore.ParseWriteConcern(c.MongoWriteConcern); err != nil {
		errs = append(errs, fmt.Errorf("SWAPMEET_MONGO_WRITE_CONCERN: %w", err))
	}
	if c.MongoBulkSize > readstore.MaxBulkSize {
		errs = append(errs, fmt.Errorf("SWAPMEET_MONGO_BULK_SIZE=%d: at most %d (a page of the CDC's)", c.MongoBulkSize, readstore.MaxBulkSize))
	}
	if c.FeedRetention < MinFeedRetention {
		errs = append(errs, fmt.Errorf("SWAPMEET_FEED_RETENTION=%s: want at least %s, so that a client that reconnects within it misses nothing", c.FeedRetention, MinFeedRetention))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("SWAPMEET_LOG_LEVEL=%q: want debug, info, warn or error", c.LogLevel))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("SWAPMEET_LOG_FORMAT=%q: want text or json", c.LogFormat))
	}
	return c, errors.Join(errs...)
}

// Development defaults: what `make up` starts with. They are fine on
// loopback and nowhere else.
const (
	devPGPassword     = "swapmeet"
	devOwnerPassword  = "swapmeet_owner"
	devSearchPassword = "ferretdb"
)

// MigrationURL is the connection the migrations run on: the schema
// owner's, or the application's when no owner is configured.
func (c Config) MigrationURL() string { return cmp.Or(c.MigrateURL, c.PostgresURL) }

// refuseDevDefaults fails when any service is reached off loopback with
// the development credentials, or Postgres without TLS: settings that
// were most likely forgotten, not chosen.
func (c Config) refuseDevDefaults() error {
	if c.AllowDevDefaults {
		return nil
	}
	remote := ""
	for _, h := range c.serviceHosts() {
		if !isLoopback(h) {
			remote = h
			break
		}
	}
	if remote == "" {
		return nil
	}
	var found []string
	for _, u := range []struct{ name, url string }{{"SWAPMEET_PG_URL", c.PostgresURL}, {"SWAPMEET_PG_MIGRATE_URL", c.MigrateURL}, {"SWAPMEET_SEARCH_URL", c.SearchURL}} {
		pg, err := pgconn.ParseConfig(u.url)
		if err != nil || u.url == "" {
			continue
		}
		switch {
		case pg.Password == devPGPassword || pg.Password == devOwnerPassword || pg.Password == devSearchPassword:
			found = append(found, u.name+" has the development password")
		case pg.Password == "" && pg.TLSConfig != nil && len(pg.TLSConfig.Certificates) > 0:
			// a client certificate authenticates instead
		default:
			if why := weakSecret(pg.Password); why != "" {
				found = append(found, u.name+"'s password "+why)
			}
		}
		if mode := pgSSLMode(u.url); !c.AllowPlaintextPG && (mode == "" || mode == "disable" || mode == "allow" || mode == "prefer") {
			found = append(found, fmt.Sprintf("%s has sslmode=%s, which may talk in plaintext (use require or verify-full; SWAPMEET_PG_ALLOW_PLAINTEXT=true accepts it on a private network)", u.name, cmp.Or(mode, "prefer (the default)")))
		}
	}
	if c.Media.AccessKey == media.DefaultConfig.AccessKey || c.Media.SecretKey == media.DefaultConfig.SecretKey {
		found = append(found, "SWAPMEET_S3_ACCESS_KEY or SWAPMEET_S3_SECRET_KEY is the development default")
	} else {
		if isPlaceholder(c.Media.AccessKey) {
			found = append(found, "SWAPMEET_S3_ACCESS_KEY is a placeholder")
		}
		if why := weakSecret(c.Media.SecretKey); why != "" {
			found = append(found, "SWAPMEET_S3_SECRET_KEY "+why)
		}
	}
	for _, u := range []struct{ name, url string }{{"SWAPMEET_REDIS_URL", c.RedisURL}, {"SWAPMEET_REDIS_PAGES_URL", c.RedisPagesURL}, {"SWAPMEET_MONGO_URL", c.MongoURL}} {
		if parsed, err := url.Parse(u.url); err == nil && parsed.User != nil {
			if pw, ok := parsed.User.Password(); ok {
				if why := weakSecret(pw); why != "" {
					found = append(found, u.name+"'s password "+why)
				}
			}
		}
	}
	if c.Profiles {
		for _, a := range []struct{ name, addr string }{{"SWAPMEET_API_METRICS_ADDR", c.APIMetricsAddr}, {"SWAPMEET_CDC_METRICS_ADDR", c.CDCMetricsAddr}} {
			if a.addr != "" && !isLoopback(hostOnly(a.addr)) {
				found = append(found, "SWAPMEET_PPROF serves Go profiles (memory contents, load on demand) on "+a.name+"="+a.addr+", which is not loopback")
			}
		}
	}
	if len(found) == 0 {
		return nil
	}
	return fmt.Errorf("%s is not on loopback, but %s; set real values (or SWAPMEET_ALLOW_DEV_DEFAULTS=true for a disposable environment)",
		remote, strings.Join(found, "; "))
}

// minSecretLen is the shortest password or key accepted off loopback.
const minSecretLen = 12

// isPlaceholder reports a value copied from an example without changing it.
func isPlaceholder(s string) bool {
	l := strings.ToLower(s)
	for _, p := range []string{"change-me", "changeme", "change_me", "replace-me", "replaceme", "placeholder", "example", "your-", "xxxx"} {
		if strings.Contains(l, p) {
			return true
		}
	}
	return false
}

// weakSecret says what is wrong with a secret, or "" if nothing is.
func weakSecret(s string) string {
	switch {
	case s == "":
		return "is empty"
	case isPlaceholder(s):
		return "is a placeholder (" + s[:min(len(s), 12)] + "…)"
	case len(s) < minSecretLen:
		return fmt.Sprintf("is shorter than %d characters", minSecretLen)
	}
	return ""
}

// serviceHosts are the hosts of every backing service.
func (c Config) serviceHosts() []string {
	var hosts []string
	for _, raw := range []string{c.PostgresURL, c.MigrateURL, c.SearchURL} {
		if pg, err := pgconn.ParseConfig(raw); err == nil && raw != "" {
			hosts = append(hosts, pg.Host)
			for _, f := range pg.Fallbacks {
				hosts = append(hosts, f.Host)
			}
		}
	}
	for _, raw := range []string{c.MongoURL, c.RedisURL, c.RedisPagesURL} {
		if u, err := url.Parse(raw); err == nil && raw != "" {
			for _, h := range strings.Split(u.Host, ",") {
				hosts = append(hosts, hostOnly(h))
			}
			for _, h := range u.Query()["addr"] { // the other nodes of a Redis Cluster
				hosts = append(hosts, hostOnly(h))
			}
		}
	}
	return append(hosts, hostOnly(c.Media.Endpoint))
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

func isLoopback(host string) bool {
	if host == "localhost" || strings.HasPrefix(host, "/") { // a unix socket is local too
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func pgSSLMode(pg string) string {
	if u, err := url.Parse(pg); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		return u.Query().Get("sslmode")
	}
	for _, kv := range strings.Fields(pg) {
		if v, ok := strings.CutPrefix(kv, "sslmode="); ok {
			return v
		}
	}
	return ""
}
