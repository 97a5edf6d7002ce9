// Command swapmeet is the whole backend in one binary:
//
//	swapmeet serve     the Connect/gRPC API
//	swapmeet cdc       the projector that tails the WAL into MongoDB and Redis
//	swapmeet migrate   apply the embedded schema migrations
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
	"syscall"

	"github.com/swapmeet/swapmeet/internal/config"
)

const usage = `usage: swapmeet <command>

commands:
  serve     run the API (Connect, gRPC and gRPC-Web on one port)
  cdc       run the projector: Postgres WAL -> MongoDB documents + Redis evictions
  migrate   apply pending schema migrations and exit

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

	var run func(context.Context, config.Config, *slog.Logger) error
	switch os.Args[1] {
	case "serve":
		run = serve
	case "cdc":
		run = runCDC
	case "migrate":
		run = migrate
	default:
		fmt.Fprintf(os.Stderr, "swapmeet: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err := run(ctx, cfg, log); err != nil && !errors.Is(err, context.Canceled) {
		log.Error(os.Args[1]+" failed", "err", err)
		os.Exit(1)
	}
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: l}
	if os.Getenv("SWAPMEET_LOG_FORMAT") == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
