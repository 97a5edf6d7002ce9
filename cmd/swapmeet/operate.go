package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/swapmeet/swapmeet/cdc"
	"github.com/swapmeet/swapmeet/cdc/wal"
	"github.com/swapmeet/swapmeet/internal/config"
	"github.com/swapmeet/swapmeet/internal/media"
	"github.com/swapmeet/swapmeet/internal/mediajobs"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/system"
)

var migrateCommand = command{
	name:    "migrate",
	summary: "apply pending schema migrations and exit",
	about:   "Applies the schema migrations embedded in the binary that the database lacks, then exits.",
	flags: func(*flag.FlagSet) run {
		return func(ctx context.Context, cfg system.Config, log *slog.Logger) error {
			n, err := system.Migrate(ctx, cfg, log)
			if err != nil {
				return err
			}
			log.Info("schema is up to date", "applied", n)
			return nil
		}
	},
}

// collectionFlag declares --collection, naming one collection or all.
func collectionFlag(fs *flag.FlagSet) *[]string {
	names := readstore.Collections
	fs.Func("collection", "the `collection`: users, listings, orders, reviews or all (default all)", func(v string) error {
		switch {
		case v == "all":
			names = readstore.Collections
		case slices.Contains(readstore.Collections, v):
			names = []string{v}
		default:
			return fmt.Errorf("want one of %s or all", strings.Join(readstore.Collections, ", "))
		}
		return nil
	})
	return &names
}

var rebuildCommand = command{
	name:    "projections rebuild",
	summary: "rebuild read collections from a snapshot and switch readers to them",
	about: `Rebuilds read collections from a snapshot of Postgres into new collections
while the system runs, then switches readers to them without downtime. It
shows its progress.`,
	flags: func(fs *flag.FlagSet) run {
		names := collectionFlag(fs)
		return func(ctx context.Context, cfg system.Config, log *slog.Logger) error {
			return system.RebuildProjections(ctx, cfg, log, system.RebuildOptions{
				Collections: *names, Progress: os.Stderr, Terminal: isTerminal(os.Stderr),
			})
		}
	},
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

var verifyCommand = command{
	name:    "projections verify",
	summary: "compare every read document with Postgres; exit 1 on drift",
	about:   "Compares every document of the read collections with Postgres, and the end of each object's history with its row, and lists what differs; exit status 1 on drift.",
	flags: func(fs *flag.FlagSet) run {
		names := collectionFlag(fs)
		return func(ctx context.Context, cfg system.Config, _ *slog.Logger) error {
			drifts, err := system.VerifyProjections(ctx, cfg, *names)
			if err != nil {
				return err
			}
			if !cdc.PrintDrift(os.Stdout, drifts) {
				return exitError(exitFailed)
			}
			return nil
		}
	},
}

var slotStatusCommand = command{
	name:    "slot status",
	summary: "print the replication slot's position, lag and retained WAL",
	about: `Prints the position, lag and retained WAL of the replication slot the read
side uses, with a warning past SWAPMEET_SLOT_WARN_BYTES.`,
	flags: func(*flag.FlagSet) run {
		return func(ctx context.Context, cfg system.Config, _ *slog.Logger) error {
			s, err := system.SlotStatus(ctx, cfg)
			if err != nil {
				if s.HistoryMoved() {
					// After a failover the slot is gone too; say why first.
					fmt.Printf("history         the write Postgres follows %s, the read side %s: rebuild the read side onto it with `swapmeet projections rebuild`\n", s.Server, s.ReadSide)
				}
				return err
			}
			s.Print(os.Stdout)
			if s.RetainedBytes > cfg.SlotWarnBytes {
				fmt.Printf("WARNING: the slot retains %d bytes of WAL, over SWAPMEET_SLOT_WARN_BYTES (%d): is the CDC running and keeping up?\n",
					s.RetainedBytes, cfg.SlotWarnBytes)
			}
			return nil
		}
	},
}

var slotDropCommand = command{
	name:    "slot drop",
	summary: "drop the replication slot the read side uses (asks for confirmation)",
	about: `Drops the replication slot the read side uses, after showing its status and
asking for its name. A slot in use is refused: stop the CDC first.`,
	flags: func(fs *flag.FlagSet) run {
		yes := fs.Bool("yes", false, "do not ask for confirmation")
		return func(ctx context.Context, cfg system.Config, _ *slog.Logger) error {
			slot, err := system.DropSlot(ctx, cfg, func(s wal.SlotStatus) bool {
				s.Print(os.Stdout)
				if *yes {
					return true
				}
				fmt.Printf("\nDropping %s loses the changes it holds: the read side can then only be\n"+
					"repaired by 'swapmeet projections rebuild'. Type the slot name to confirm: ", s.Name)
				answer, _ := bufio.NewReader(os.Stdin).ReadString('\n')
				return strings.TrimSpace(answer) == s.Name
			})
			if err != nil {
				return err
			}
			fmt.Printf("dropped %s\n", slot)
			return nil
		}
	},
}

var mediaSweepCommand = command{
	name:    "media sweep",
	summary: "delete stale uploads, withdrawn listings' images and orphaned objects",
	about: `Deletes uploads never confirmed, the images of withdrawn listings and objects
without a row, as serve does every SWAPMEET_MEDIA_SWEEP_INTERVAL. It is
idempotent; exit status 1 if some objects could not be deleted (the next
sweep retries them).`,
	flags: func(fs *flag.FlagSet) run {
		o := mediajobs.SweepOptions{PendingOlderThan: system.SweepPendingOlderThan, OrphanGrace: system.SweepOrphanGrace}
		durationFlag(fs, &o.PendingOlderThan, "older-than", "remove uploads never confirmed after this `duration`", false)
		durationFlag(fs, &o.OrphanGrace, "orphan-grace", "never remove objects younger than this `duration` as orphans", true)
		return func(ctx context.Context, cfg system.Config, log *slog.Logger) error {
			rep, err := system.SweepMedia(ctx, cfg, log, o)
			fmt.Printf("pending uploads older than %s removed:  %d\n", o.PendingOlderThan, rep.StalePending)
			fmt.Printf("images of withdrawn listings removed: %d\n", rep.Withdrawn)
			fmt.Printf("orphaned objects removed:             %d\n", rep.Orphans)
			fmt.Printf("objects deleted:                      %d\n", rep.ObjectsRemoved)
			fmt.Printf("objects that could not be deleted:    %d\n", rep.ObjectErrors)
			if err != nil {
				return err
			}
			if rep.ObjectErrors > 0 {
				return exitError(exitFailed)
			}
			return nil
		}
	},
}

var mediaSetupCommand = command{
	name:    "media setup",
	summary: "prepare the bucket and the API's object store user, as the store's administrator",
	about: `Prepares the object store for serve, with the administrator's credentials
(SWAPMEET_S3_ADMIN_ACCESS_KEY, SWAPMEET_S3_ADMIN_SECRET_KEY), which serve
never holds: it creates the bucket (SWAPMEET_S3_BUCKET) if missing, keeps it
private, lets the web origins (SWAPMEET_WEB_ORIGINS) upload and read, expires
unconfirmed uploads, and creates or updates the API's user
(SWAPMEET_S3_ACCESS_KEY, SWAPMEET_S3_SECRET_KEY) with a policy that allows
only the object operations serve performs, on that bucket alone. It is
idempotent: run it again after changing any of these settings. With
--print-policy it prints the API user's IAM policy and contacts nothing (to
create the user with another store's tools, such as AWS IAM).`,
	flags: func(fs *flag.FlagSet) run {
		printPolicy := fs.Bool("print-policy", false, "print the API user's policy document and exit")
		return func(ctx context.Context, cfg system.Config, log *slog.Logger) error {
			if *printPolicy {
				fmt.Printf("%s\n", media.APIPolicy(cfg.Media.Bucket))
				return nil
			}
			var admin media.Admin
			if err := config.Load(&admin); err != nil {
				return fmt.Errorf("configuration: %w", err)
			}
			done, err := system.SetupMedia(ctx, cfg, admin)
			if err != nil {
				return err
			}
			log.Info("object store ready for serve", "endpoint", cfg.Media.Endpoint, "bucket", cfg.Media.Bucket,
				"created", done.Created, "policy_removed", done.PolicyRemoved, "user", done.User, "policy", done.Policy)
			if !done.BucketCORS {
				log.Info("the object store has no per-bucket CORS; browsers rely on its server-wide setting (MinIO: MINIO_API_CORS_ALLOW_ORIGIN)",
					"origins", cfg.WebOrigins)
			}
			return nil
		}
	},
}

var readyCommand = command{
	name:    "ready",
	summary: "ask a running serve or cdc whether it is ready (a health check)",
	about: `Asks the serve (or, with --of cdc, the cdc) process of these settings for
its readiness, on its metrics address (SWAPMEET_API_METRICS_ADDR or
SWAPMEET_CDC_METRICS_ADDR; an unspecified host means this host), prints the
answer and exits 0 when it is ready, 1 when it is not or does not answer.
Container health checks use it: the image has no shell or curl.`,
	flags: func(fs *flag.FlagSet) run {
		of := "serve"
		fs.Func("of", "the `process` to ask: serve or cdc (default serve)", func(v string) error {
			if v != "serve" && v != "cdc" {
				return errors.New("want serve or cdc")
			}
			of = v
			return nil
		})
		return func(ctx context.Context, cfg system.Config, _ *slog.Logger) error {
			addr := cfg.APIMetricsAddr
			if of == "cdc" {
				addr = cfg.CDCMetricsAddr
			}
			ready, body, err := system.AskReady(ctx, addr)
			if err != nil {
				fmt.Fprintf(os.Stderr, "swapmeet ready: %s: %v\n", of, err)
				return exitError(exitFailed)
			}
			fmt.Print(body)
			if !ready {
				return exitError(exitFailed)
			}
			return nil
		}
	},
}

// durationFlag declares a duration flag that must be positive (or, with
// zeroOK, at least 0).
func durationFlag(fs *flag.FlagSet, d *time.Duration, name, usage string, zeroOK bool) {
	fs.Func(name, fmt.Sprintf("%s (default %s)", usage, *d), func(v string) error {
		p, err := time.ParseDuration(v)
		if err != nil || p < 0 || (p == 0 && !zeroOK) {
			return fmt.Errorf("want a positive duration like 24h")
		}
		*d = p
		return nil
	})
}
