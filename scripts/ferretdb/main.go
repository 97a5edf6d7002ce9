// Command swapmeet-ferretdb runs an embedded FerretDB v1 (MongoDB wire
// protocol) on top of a PostgreSQL backend.
//
// It exists because FerretDB's own cmd/ferretdb panics when built from the
// module proxy (its build/version package insists on generated version files
// when the main module is github.com/FerretDB/FerretDB). Embedding the public
// github.com/FerretDB/FerretDB/ferretdb package avoids that code path.
//
// Telemetry: the embedded package never creates a telemetry reporter, and
// ferretdb.New explicitly disables and locks telemetry in its state provider.
// FERRETDB_TELEMETRY / DO_NOT_TRACK are additionally set for good measure.
//
// Started by scripts/services.sh; it is its own Go module so that the main
// module does not inherit FerretDB's dependency graph.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listenAddr := flag.String("listen-addr", "127.0.0.1:27018", "TCP address to listen on for MongoDB wire protocol")
	pgURL := flag.String("postgresql-url", "postgres://ferretdb:ferretdb@127.0.0.1:15433/ferretdb", "PostgreSQL backend URL")
	logLevel := flag.String("log-level", "info", "log level: debug, info, warn, error")
	flag.Parse()

	if err := run(*listenAddr, *pgURL, *logLevel); err != nil {
		fmt.Fprintln(os.Stderr, "swapmeet-ferretdb:", err)
		os.Exit(1)
	}
}

func run(listenAddr, pgURL, logLevel string) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToUpper(logLevel))); err != nil {
		return fmt.Errorf("invalid -log-level %q: %w", logLevel, err)
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(logger)

	// Belt and braces: the embedded package does not report telemetry anyway.
	_ = os.Setenv("FERRETDB_TELEMETRY", "disable")
	_ = os.Setenv("DO_NOT_TRACK", "1")

	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{
			TCP: listenAddr,
		},
		Logger:        logger,
		Handler:       "postgresql",
		PostgreSQLURL: pgURL,
	})
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	logger.Info("swapmeet-ferretdb starting", "listen", listenAddr)

	// Run blocks until ctx is canceled, then closes the listener, all client
	// connections and the backend pool.
	if err := f.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("run: %w", err)
	}

	logger.Info("swapmeet-ferretdb stopped")

	return nil
}
