// Package config reads Swapmeet's settings from the environment. Every
// setting has a default that matches the local services `make up` starts,
// so a fresh checkout runs without any configuration.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/swapmeet/swapmeet/internal/app"
	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/live"
	"github.com/swapmeet/swapmeet/internal/media"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

// Config holds every setting of every subcommand.
type Config struct {
	PostgresURL string // SWAPMEET_PG_URL
	PGMaxConns  int    // SWAPMEET_PG_MAX_CONNS: the pool of each process
	MongoURL    string // SWAPMEET_MONGO_URL
	MongoDB     string // SWAPMEET_MONGO_DB
	// SWAPMEET_MONGO_WRITE_CONCERN: "majority" (the default) or a number
	// of replica-set members that must acknowledge each projection write.
	MongoWriteConcern string
	RedisURL          string // SWAPMEET_REDIS_URL
	RedisPrefix       string // SWAPMEET_REDIS_PREFIX: namespaces every key
	// SWAPMEET_REDIS_PAGES_URL: where search pages go; empty means
	// SWAPMEET_REDIS_URL (within the page budget either way).
	RedisPagesURL     string
	CachePageMaxBytes int // SWAPMEET_CACHE_PAGE_MAX_BYTES: the largest search page cached
	CachePageKeys     int // SWAPMEET_CACHE_PAGE_KEYS: how many search pages may be cached at once
	// NearCache sizes the in-process document cache in front of Redis:
	// SWAPMEET_NEAR_CACHE_ENTRIES (0 disables it), SWAPMEET_NEAR_CACHE_BYTES,
	// SWAPMEET_NEAR_CACHE_TTL.
	NearCache cache.NearOptions

	S3Endpoint  string // SWAPMEET_S3_ENDPOINT
	S3AccessKey string // SWAPMEET_S3_ACCESS_KEY
	S3SecretKey string // SWAPMEET_S3_SECRET_KEY
	S3Bucket    string // SWAPMEET_S3_BUCKET
	S3Secure    bool   // SWAPMEET_S3_SECURE: https to the store
	S3Region    string // SWAPMEET_S3_REGION

	WebOrigins         []string      // SWAPMEET_WEB_ORIGINS: browser origins the API's and the bucket's CORS admit
	MediaMaxBytes      int           // SWAPMEET_MEDIA_MAX_BYTES: the largest image
	MediaMaxPerListing int           // SWAPMEET_MEDIA_MAX_PER_LISTING
	MediaUploadExpiry  time.Duration // SWAPMEET_MEDIA_UPLOAD_EXPIRY: presigned POST lifetime
	MediaGetExpiry     time.Duration // SWAPMEET_MEDIA_GET_EXPIRY: presigned GET lifetime
	MediaSweepInterval time.Duration // SWAPMEET_MEDIA_SWEEP_INTERVAL: how often serve sweeps media

	HTTPAddr        string        // SWAPMEET_HTTP_ADDR
	CDCMetricsAddr  string        // SWAPMEET_CDC_METRICS_ADDR
	APIMetricsAddr  string        // SWAPMEET_API_METRICS_ADDR
	Profiles        bool          // SWAPMEET_PPROF: Go profiles on the metrics addresses
	MaxRequestBytes int           // SWAPMEET_MAX_REQUEST_BYTES
	ConsistencyWait time.Duration // SWAPMEET_CONSISTENCY_WAIT
	SessionTTL      time.Duration // SWAPMEET_SESSION_TTL
	// SWAPMEET_SESSION_CACHE_TTL: how long an API process trusts a session
	// it looked up, so how long a sign-out through one replica may take to
	// reach the others; 0 looks every session up.
	SessionCacheTTL time.Duration

	Slot          string // SWAPMEET_SLOT: the slot of a first start; the pointer names later ones
	SlotWarnBytes int64  // SWAPMEET_SLOT_WARN_BYTES: retained WAL worth a warning
	Publication   string // SWAPMEET_PUBLICATION
	CDCSpillDocs  int    // SWAPMEET_CDC_SPILL_DOCS: distinct documents per collection before a batch falls back to a full pass
	CDCWorkers    int    // SWAPMEET_CDC_WORKERS: pages of a batch read and written at once
	// SWAPMEET_FEED_RETENTION: how long the change feed keeps history for
	// Watch streams that resume (at least 10 minutes).
	FeedRetention time.Duration
	// SWAPMEET_FEED_MAX_CHANGES: changes of one kind a batch lists in the
	// feed; a larger batch tells every watcher to look again instead.
	FeedMaxChanges int
	// Watch streams: SWAPMEET_WATCH_HEARTBEAT, SWAPMEET_WATCH_MAX_LIFETIME,
	// SWAPMEET_WATCH_MAX_STREAMS (per process), SWAPMEET_WATCH_MAX_STREAMS_PER_USER
	// (per user, or per client address when anonymous), SWAPMEET_WATCH_BUFFER
	// (orders a slow reader may lag by before it is told to resync).
	Watch live.Options

	LogLevel string // SWAPMEET_LOG_LEVEL: debug, info, warn, error

	// Abuse bounds: see README, "Limits and abuse".
	Limits               app.Limits    // SWAPMEET_LIMIT_*, SWAPMEET_HASH_*, SWAPMEET_QUOTA_*
	ClientIPHeader       string        // SWAPMEET_CLIENT_IP_HEADER: set only behind a proxy that sets it
	RequestTimeout       time.Duration // SWAPMEET_REQUEST_TIMEOUT: server deadline of a unary RPC
	PGStatementTimeout   time.Duration // SWAPMEET_PG_STATEMENT_TIMEOUT: the API's Postgres statements
	SessionPurgeInterval time.Duration // SWAPMEET_SESSION_PURGE_INTERVAL
}

// MediaConfig is the object store's part of the configuration.
func (c Config) MediaConfig() media.Config {
	return media.Config{
		Endpoint: c.S3Endpoint, AccessKey: c.S3AccessKey, SecretKey: c.S3SecretKey, Bucket: c.S3Bucket, Secure: c.S3Secure,
		Region: c.S3Region, GetExpiry: c.MediaGetExpiry, UploadExpiry: c.MediaUploadExpiry,
		MaxUploadBytes: int64(c.MediaMaxBytes), MaxPerListing: c.MediaMaxPerListing,
	}
}

// FromEnv reads the configuration, reporting every bad value at once.
func FromEnv() (Config, error) {
	var errs []error
	str := func(name, def string) string {
		if v, ok := os.LookupEnv(name); ok && v != "" {
			return v
		}
		return def
	}
	dur := func(name string, def time.Duration) time.Duration {
		v := str(name, "")
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a positive duration like 2s", name, v))
			return def
		}
		return d
	}
	num := func(name string, def int) int {
		v := str(name, "")
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a positive integer", name, v))
			return def
		}
		return n
	}
	// count is a limit: 0 switches it off.
	count := func(name string, def int) int {
		v := str(name, "")
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a count, or 0 for no limit", name, v))
			return def
		}
		if n == 0 {
			return -1
		}
		return n
	}
	c := Config{
		PostgresURL:       str("SWAPMEET_PG_URL", "postgres://swapmeet:swapmeet@127.0.0.1:15432/swapmeet?sslmode=disable"),
		PGMaxConns:        num("SWAPMEET_PG_MAX_CONNS", 16),
		MongoURL:          str("SWAPMEET_MONGO_URL", "mongodb://127.0.0.1:27018/"),
		MongoDB:           str("SWAPMEET_MONGO_DB", "swapmeet"),
		MongoWriteConcern: str("SWAPMEET_MONGO_WRITE_CONCERN", readstore.DefaultWriteConcern),
		RedisURL:          str("SWAPMEET_REDIS_URL", "redis://127.0.0.1:16379/0"),
		RedisPrefix:       str("SWAPMEET_REDIS_PREFIX", "swapmeet:"),
		S3Endpoint:        str("SWAPMEET_S3_ENDPOINT", "127.0.0.1:19000"),
		S3AccessKey:       str("SWAPMEET_S3_ACCESS_KEY", "swapmeet"),
		S3SecretKey:       str("SWAPMEET_S3_SECRET_KEY", "swapmeet-secret"),
		S3Bucket:          str("SWAPMEET_S3_BUCKET", "swapmeet-media"),
		S3Secure:          str("SWAPMEET_S3_SECURE", "false") == "true",
		HTTPAddr:          str("SWAPMEET_HTTP_ADDR", "127.0.0.1:8080"),
		CDCMetricsAddr:    str("SWAPMEET_CDC_METRICS_ADDR", "127.0.0.1:9464"),
		APIMetricsAddr:    str("SWAPMEET_API_METRICS_ADDR", "127.0.0.1:9465"),
		MaxRequestBytes:   num("SWAPMEET_MAX_REQUEST_BYTES", 1<<20),
		ConsistencyWait:   dur("SWAPMEET_CONSISTENCY_WAIT", 2*time.Second),
		SessionTTL:        dur("SWAPMEET_SESSION_TTL", 30*24*time.Hour),
		Slot:              str("SWAPMEET_SLOT", "swapmeet_projections"),
		SlotWarnBytes:     int64(num("SWAPMEET_SLOT_WARN_BYTES", 1<<30)),
		Publication:       str("SWAPMEET_PUBLICATION", "swapmeet_projections"),
		CDCSpillDocs:      num("SWAPMEET_CDC_SPILL_DOCS", 100_000),
		CDCWorkers:        num("SWAPMEET_CDC_WORKERS", 2),
		LogLevel:          str("SWAPMEET_LOG_LEVEL", "info"),
	}
	// Media: the object store's region, the browser origins its CORS admits, and the upload limits.
	c.S3Region = str("SWAPMEET_S3_REGION", media.DefaultRegion)
	c.WebOrigins = strings.Split(str("SWAPMEET_WEB_ORIGINS", "http://127.0.0.1:8080,http://localhost:5173"), ",")
	c.MediaMaxBytes = num("SWAPMEET_MEDIA_MAX_BYTES", media.DefaultMaxUploadBytes)
	c.MediaMaxPerListing = num("SWAPMEET_MEDIA_MAX_PER_LISTING", media.DefaultMaxPerListing)
	c.MediaUploadExpiry = dur("SWAPMEET_MEDIA_UPLOAD_EXPIRY", media.DefaultUploadExpiry)
	c.MediaGetExpiry = dur("SWAPMEET_MEDIA_GET_EXPIRY", media.DefaultGetExpiry)
	c.MediaSweepInterval = dur("SWAPMEET_MEDIA_SWEEP_INTERVAL", time.Hour)
	// Abuse bounds.
	d := app.DefaultLimits
	c.Limits = app.Limits{
		Window:          dur("SWAPMEET_LIMIT_WINDOW", d.Window),
		SignInPerEmail:  count("SWAPMEET_LIMIT_SIGNIN_PER_EMAIL", d.SignInPerEmail),
		SignInPerClient: count("SWAPMEET_LIMIT_SIGNIN_PER_CLIENT", d.SignInPerClient),
		SignUpPerClient: count("SWAPMEET_LIMIT_SIGNUP_PER_CLIENT", d.SignUpPerClient),
		WritesPerClient: count("SWAPMEET_LIMIT_WRITES_PER_CLIENT", d.WritesPerClient),
		HashWait:        dur("SWAPMEET_HASH_WAIT", d.HashWait),
		ListingsPerDay:  count("SWAPMEET_QUOTA_LISTINGS_PER_DAY", d.ListingsPerDay),
		ActiveListings:  count("SWAPMEET_QUOTA_ACTIVE_LISTINGS", d.ActiveListings),
		PendingUploads:  count("SWAPMEET_QUOTA_PENDING_UPLOADS", d.PendingUploads),
	}
	if v := str("SWAPMEET_HASH_CONCURRENCY", "auto"); v != "auto" {
		c.Limits.HashConcurrency = num("SWAPMEET_HASH_CONCURRENCY", 0)
	}
	c.RedisPagesURL = str("SWAPMEET_REDIS_PAGES_URL", "")
	c.CachePageMaxBytes = num("SWAPMEET_CACHE_PAGE_MAX_BYTES", cache.DefaultPageMaxBytes)
	c.CachePageKeys = num("SWAPMEET_CACHE_PAGE_KEYS", cache.DefaultPageKeys)
	c.NearCache = cache.NearOptions{
		Entries: cache.DefaultNear.Entries,
		Bytes:   int64(num("SWAPMEET_NEAR_CACHE_BYTES", int(cache.DefaultNear.Bytes))),
		TTL:     dur("SWAPMEET_NEAR_CACHE_TTL", cache.DefaultNear.TTL),
	}
	if v := str("SWAPMEET_NEAR_CACHE_ENTRIES", ""); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("SWAPMEET_NEAR_CACHE_ENTRIES=%q: want a count, or 0 for no near cache", v))
		} else {
			c.NearCache.Entries = n
		}
	}
	c.Profiles = str("SWAPMEET_PPROF", "false") == "true"
	c.ClientIPHeader = str("SWAPMEET_CLIENT_IP_HEADER", "")
	c.RequestTimeout = dur("SWAPMEET_REQUEST_TIMEOUT", 10*time.Second)
	c.PGStatementTimeout = dur("SWAPMEET_PG_STATEMENT_TIMEOUT", 5*time.Second)
	c.SessionPurgeInterval = dur("SWAPMEET_SESSION_PURGE_INTERVAL", 10*time.Minute)
	c.FeedRetention = dur("SWAPMEET_FEED_RETENTION", 15*time.Minute)
	c.FeedMaxChanges = num("SWAPMEET_FEED_MAX_CHANGES", 10_000)
	w := live.DefaultOptions
	c.Watch = live.Options{
		Heartbeat:          dur("SWAPMEET_WATCH_HEARTBEAT", w.Heartbeat),
		MaxLifetime:        dur("SWAPMEET_WATCH_MAX_LIFETIME", w.MaxLifetime),
		MaxStreams:         num("SWAPMEET_WATCH_MAX_STREAMS", w.MaxStreams),
		MaxStreamsPerOwner: num("SWAPMEET_WATCH_MAX_STREAMS_PER_USER", w.MaxStreamsPerOwner),
		Buffer:             num("SWAPMEET_WATCH_BUFFER", w.Buffer),
		SessionCheck:       w.SessionCheck,
	}
	c.SessionCacheTTL = 10 * time.Second
	if v := os.Getenv("SWAPMEET_SESSION_CACHE_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil || d < 0:
			errs = append(errs, fmt.Errorf("SWAPMEET_SESSION_CACHE_TTL=%q: want a duration like 10s, or 0 for no cache", v))
		case d == 0:
			c.SessionCacheTTL = -1 // the app's "disabled"
		default:
			c.SessionCacheTTL = d
		}
	}
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
	for name, d := range map[string]time.Duration{"SWAPMEET_MEDIA_UPLOAD_EXPIRY": c.MediaUploadExpiry, "SWAPMEET_MEDIA_GET_EXPIRY": c.MediaGetExpiry} {
		if d > 7*24*time.Hour {
			errs = append(errs, fmt.Errorf("%s=%s: presigned requests last at most 168h", name, d))
		}
	}
	if err := c.refuseDevDefaults(str("SWAPMEET_ALLOW_DEV_DEFAULTS", "") == "true", str("SWAPMEET_PG_ALLOW_PLAINTEXT", "") == "true"); err != nil {
		errs = append(errs, err)
	}
	if _, err := readstore.ParseWriteConcern(c.MongoWriteConcern); err != nil {
		errs = append(errs, fmt.Errorf("SWAPMEET_MONGO_WRITE_CONCERN: %w", err))
	}
	if c.FeedRetention < MinFeedRetention {
		errs = append(errs, fmt.Errorf("SWAPMEET_FEED_RETENTION=%s: want at least %s, so that a client that reconnects within it misses nothing", c.FeedRetention, MinFeedRetention))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("SWAPMEET_LOG_LEVEL=%q: want debug, info, warn or error", c.LogLevel))
	}
	return c, errors.Join(errs...)
}

// MinFeedRetention is the shortest history the change feed may keep.
const MinFeedRetention = 10 * time.Minute

// Development defaults: what `make up` starts with. They are fine on
// loopback and nowhere else.
const (
	devPGPassword = "swapmeet"
	devS3Access   = "swapmeet"
	devS3Secret   = "swapmeet-secret"
)

// refuseDevDefaults fails when any service is reached off loopback with
// the development credentials, or Postgres without TLS: settings that
// were most likely forgotten, not chosen. allowAll accepts all of it (a
// disposable environment); allowPlaintext accepts only sslmode=disable (a
// private network, such as docker compose's).
func (c Config) refuseDevDefaults(allowAll, allowPlaintext bool) error {
	if allowAll {
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
	if pg, err := pgconn.ParseConfig(c.PostgresURL); err == nil && pg.Password == devPGPassword {
		found = append(found, "SWAPMEET_PG_URL has the development password")
	}
	if !allowPlaintext && pgSSLMode(c.PostgresURL) == "disable" {
		found = append(found, "SWAPMEET_PG_URL has sslmode=disable (SWAPMEET_PG_ALLOW_PLAINTEXT=true accepts it on a private network)")
	}
	if c.S3AccessKey == devS3Access || c.S3SecretKey == devS3Secret {
		found = append(found, "SWAPMEET_S3_ACCESS_KEY or SWAPMEET_S3_SECRET_KEY is the development default")
	}
	if len(found) == 0 {
		return nil
	}
	return fmt.Errorf("%s is not on loopback, but %s; set real values (or SWAPMEET_ALLOW_DEV_DEFAULTS=true for a disposable environment)",
		remote, strings.Join(found, "; "))
}

// serviceHosts are the hosts of every backing service.
func (c Config) serviceHosts() []string {
	var hosts []string
	if pg, err := pgconn.ParseConfig(c.PostgresURL); err == nil {
		hosts = append(hosts, pg.Host)
		for _, f := range pg.Fallbacks {
			hosts = append(hosts, f.Host)
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
	return append(hosts, hostOnly(c.S3Endpoint))
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
