package system

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/swapmeet/swapmeet/cdc"
	"github.com/swapmeet/swapmeet/cdc/projection"
	"github.com/swapmeet/swapmeet/cdc/wal"
	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/db/sqlc"
	"github.com/swapmeet/swapmeet/internal/media"
	"github.com/swapmeet/swapmeet/internal/mediajobs"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/search"
)

// Migrate is `swapmeet migrate`: it applies the pending schema migrations
// of the write model as the schema's owner (SWAPMEET_PG_MIGRATE_URL) and
// returns how many it applied, then migrates the search store.
func Migrate(ctx context.Context, cfg Config, log *slog.Logger) (int, error) {
	pool, err := db.OpenPool(ctx, cfg.MigrationURL(), 2)
	if err != nil {
		return 0, fmt.Errorf("postgres (the migrations' role): %w", err)
	}
	defer pool.Close()
	n, err := db.Migrate(ctx, pool, log)
	if err != nil {
		return n, err
	}
	if open, err := db.AnnotationsOpen(ctx, pool); err != nil {
		return n, err
	} else if open {
		log.Warn("any role of this database may write annotations into the WAL, and so pass its changes off as a user's request in the history: " +
			"as the superuser, REVOKE EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text), pg_logical_emit_message(boolean, text, bytea) FROM PUBLIC " +
			"and GRANT it to the application's role (docs/history.md)")
	}
	return n, migrateSearch(ctx, cfg)
}

// migrateSearch migrates the search store cfg names.
func migrateSearch(ctx context.Context, cfg Config) error {
	s, err := search.Open(ctx, cfg.SearchURL, cfg.Search)
	if err != nil {
		return fmt.Errorf("SWAPMEET_SEARCH_URL: %w", err)
	}
	defer s.Close()
	return s.Migrate(ctx)
}

// SweepMedia is `swapmeet media sweep`: one sweep of the media, as serve
// runs every SWAPMEET_MEDIA_SWEEP_INTERVAL.
func SweepMedia(ctx context.Context, cfg Config, log *slog.Logger, o mediajobs.SweepOptions) (mediajobs.SweepReport, error) {
	pool, err := db.OpenPool(ctx, cfg.PostgresURL, 2)
	if err != nil {
		return mediajobs.SweepReport{}, fmt.Errorf("postgres: %w", err)
	}
	defer pool.Close()
	bucket, err := media.New(cfg.Media)
	if err != nil {
		return mediajobs.SweepReport{}, err
	}
	return mediajobs.New(db.NewStore(pool), bucket, log).SweepMedia(ctx, o)
}

// SetupMedia is `swapmeet media setup`: as the object store's
// administrator, it prepares the bucket and the API's user (media.Setup).
// Off loopback it refuses an administrator secret that is empty, short, a
// placeholder or the development default, as LoadConfig does the others.
func SetupMedia(ctx context.Context, cfg Config, admin media.Admin) (media.SetUp, error) {
	if !cfg.AllowDevDefaults && !isLoopback(hostOnly(cfg.Media.Endpoint)) {
		why := weakSecret(admin.SecretKey)
		if admin.SecretKey == media.DevAdmin.SecretKey {
			why = "is the development default"
		}
		if why != "" {
			return media.SetUp{}, fmt.Errorf("%s is not on loopback, but SWAPMEET_S3_ADMIN_SECRET_KEY %s", hostOnly(cfg.Media.Endpoint), why)
		}
	}
	return media.Setup(ctx, admin, cfg.Media, cfg.WebOrigins)
}

// RebuildOptions are what `swapmeet projections rebuild` is told.
type RebuildOptions struct {
	Collections []string  // the read collections to rebuild
	Progress    io.Writer // where progress goes
	Terminal    bool      // Progress is a terminal: redraw in place
}

// RebuildProjections is `swapmeet projections rebuild`: it rebuilds the
// collections from a snapshot and switches readers to them.
func RebuildProjections(ctx context.Context, cfg Config, log *slog.Logger, o RebuildOptions) error {
	c, err := Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	b := &cdc.Rebuild{
		Reader:      wal.Config{ConnString: cfg.PostgresURL, Publication: cfg.Publication, Log: log},
		BaseSlot:    cfg.Slot,
		PG:          c.PG,
		Reads:       c.Reads,
		Sink:        NewProjector(cfg, c, log),
		Search:      c.Search,
		Collections: o.Collections,
		Progress:    o.Progress,
		Terminal:    o.Terminal,
		Log:         log,
	}
	return b.Run(ctx)
}

// VerifyProjections is `swapmeet projections verify`: every read document
// of the collections compared with Postgres; with the listings, orders
// or reviews, every row of the search store's live generation; and each
// object's history with its row (cdc.VerifyHistory).
func VerifyProjections(ctx context.Context, cfg Config, collections []string) ([]cdc.Drift, error) {
	c, err := Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// The collections' names resolve through the pointer: after a rebuild
	// the documents are in its generations, not under the plain names.
	if _, err := c.Reads.Refresh(ctx); err != nil && !errors.Is(err, readstore.ErrNoPointer) {
		return nil, err
	}
	drifts, err := cdc.Verify(ctx, c.PG, c.Reads, collections)
	if err != nil {
		return nil, err
	}
	if slices.ContainsFunc(collections, func(c string) bool { return slices.Contains(projection.SearchCollections, c) }) {
		// The search rows (of all three) are verified with any of them.
		d, err := cdc.VerifySearch(ctx, c.PG, c.Search)
		if err != nil {
			return nil, err
		}
		drifts = append(drifts, d)
	}
	// The history is not a projection a rebuild replaces, but it must
	// end where the rows are: it is verified every time.
	d, err := cdc.VerifyHistory(ctx, c.PG, c.Search)
	if err != nil {
		return nil, err
	}
	return append(drifts, d), nil
}

// SlotStatus is `swapmeet slot status`: the read side's slot.
func SlotStatus(ctx context.Context, cfg Config) (wal.SlotStatus, error) {
	c, err := Open(ctx, cfg)
	if err != nil {
		return wal.SlotStatus{}, err
	}
	defer c.Close()
	slot, err := readSideSlot(ctx, c, cfg)
	if err != nil {
		return wal.SlotStatus{}, err
	}
	s, err := wal.ReadSlotStatus(ctx, c.PG, slot)
	if p, perr := sqlc.New(c.PG).CurrentPosition(ctx); perr == nil {
		s.Server = db.PositionOf(p).History
	}
	if ptr, perr := c.Reads.LoadPointer(ctx); perr == nil {
		s.ReadSide = ptr.Followed.History
	}
	return s, err
}

// ErrNotConfirmed means DropSlot's confirm said no.
var ErrNotConfirmed = errors.New("not confirmed; nothing dropped")

// DropSlot is `swapmeet slot drop`: it drops the read side's slot once
// confirm, shown its status, agrees. It refuses a slot in use.
func DropSlot(ctx context.Context, cfg Config, confirm func(wal.SlotStatus) bool) (string, error) {
	c, err := Open(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	slot, err := readSideSlot(ctx, c, cfg)
	if err != nil {
		return "", err
	}
	s, err := wal.ReadSlotStatus(ctx, c.PG, slot)
	if err != nil {
		return "", err
	}
	if s.Active {
		return "", fmt.Errorf("slot %s is in use by pid %d: stop the CDC first", slot, s.ActivePID)
	}
	if !confirm(s) {
		return "", ErrNotConfirmed
	}
	if _, err := c.PG.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, slot); err != nil {
		return "", fmt.Errorf("drop slot %s: %w", slot, err)
	}
	return slot, nil
}

// readSideSlot names the slot the read side uses: the pointer's, else the
// configured one (a read side not initialised yet).
func readSideSlot(ctx context.Context, c *Clients, cfg Config) (string, error) {
	if p, err := c.Reads.LoadPointer(ctx); err == nil {
		return p.Slot, nil
	} else if !errors.Is(err, readstore.ErrNoPointer) {
		return "", err
	}
	return cfg.Slot, nil
}
