// Command swapmeet is the whole backend in one binary:
//
//	swapmeet serve                 the Connect/gRPC API
//	swapmeet cdc                   the projector that tails the WAL into MongoDB and Redis
//	swapmeet migrate               apply the embedded schema migrations
//	swapmeet projections rebuild   rebuild read collections from Postgres without downtime
//	swapmeet projections verify    compare every read document with Postgres
//	swapmeet slot status           the replication slot's position, lag and retained WAL
//	swapmeet slot drop             drop the replication slot (asks for confirmation)
//	swapmeet media sweep           delete stale uploads, withdrawn listings' images and orphaned objects
//
// Settings come from SWAPMEET_* environment variables (see internal/config).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/swapmeet/swapmeet/internal/config"
)

const usage = `usage: swapmeet <command>

commands:
  serve                 run the API (Connect, gRPC and gRPC-Web on one port)
  cdc                   run the projector: Postgres WAL -> MongoDB documents + Redis evictions;
                        exits 3 if the slot is lost (rebuild), 4 if the replication
                        setup is wrong (publication, privileges; nothing is lost)
  migrate               apply pending schema migrations and exit
  projections rebuild   rebuild read collections from a snapshot and switch readers
                        to them without downtime; shows progress
                        [--collection users|listings|orders|reviews|all]
  projections verify    compare every read document with Postgres; exit 1 on drift
                        [--collection users|listings|orders|reviews|all]
  slot status           print the replication slot's position, lag and retained WAL
  slot drop             drop the replication slot the read side uses [--yes]
  media sweep           delete pending uploads older than a day, images of withdrawn
                        listings and objects without a row; idempotent
                        [--older-than 24h] [--orphan-grace 1h]

Configuration is read from SWAPMEET_* environment variables; the defaults
match the local services that 'make up' starts.
`

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		fmt.Fprint(os.Stderr, usage)
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	cfg, err := config.FromEnv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "swapmeet: configuration: %v\n", err)
		os.Exit(2)
	}
	log := newLogger(cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cmd, args := os.Args[1], os.Args[2:]
	if (cmd == "projections" || cmd == "slot" || cmd == "media") && len(args) > 0 {
		cmd, args = cmd+" "+args[0], args[1:]
	}
	var run func(context.Context, config.Config, *slog.Logger, []string) error
	switch cmd {
	case "serve":
		run = serve
	case "cdc":
		run = runCDC
	case "migrate":
		run = migrate
	case "projections rebuild":
		run = rebuildProjections
	case "slot drop":
		run = slotDrop
	case "projections verify":
		run = verifyProjections
	case "slot status":
		run = slotStatus
	case "media sweep":
		run = mediaSweep
	default:
		fmt.Fprintf(os.Stderr, "swapmeet: unknown command %q\n\n%s", strings.Join(os.Args[1:], " "), usage)
		os.Exit(2)
	}
	if err := run(ctx, cfg, log, args); err != nil && !errors.Is(err, context.Canceled) {
		var exit exitError
		if errors.As(err, &exit) {
			os.Exit(int(exit))
		}
		log.Error(cmd+" failed", "err", err)
		os.Exit(1)
	}
}

// exitError ends the process with a status but no error log: the command
// has already said what it found.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: l}
	if os.Getenv("SWAPMEET_LOG_FORMAT") == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
