package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"

	"github.com/swapmeet/swapmeet/cdc/wal"
	"github.com/swapmeet/swapmeet/internal/system"
)

var cdcCommand = command{
	name:    "cdc",
	summary: "run the projector: Postgres WAL -> MongoDB documents + Redis evictions",
	about: `Tails the Postgres WAL into the read side (MongoDB documents, Redis
evictions and the change feed), leading or standing by for the slot, with
its metrics on SWAPMEET_CDC_METRICS_ADDR.

Exit status 3: the slot is lost; rebuild the read side with
'swapmeet projections rebuild'. Exit status 4: the replication setup is
wrong (publication, privileges, wal_level); nothing is lost.`,
	flags: func(*flag.FlagSet) run { return runCDC },
}

// Exit statuses of `swapmeet cdc` that tell an operator (or a supervisor)
// what to do next.
const (
	exitSlotLost = 3 // rebuild the read side
	exitSetup    = 4 // fix the replication setup; nothing is lost
)

func runCDC(ctx context.Context, cfg system.Config, log *slog.Logger) error {
	err := system.RunCDC(ctx, cfg, log)
	switch {
	case errors.Is(err, wal.ErrSlotLost):
		log.Error("the replication slot is gone, so changes may have been lost and the CDC will not guess; "+
			"rebuild the read side from Postgres with 'swapmeet projections rebuild', then start the CDC again", "err", err)
		return exitError(exitSlotLost)
	case errors.Is(err, wal.ErrSetup):
		log.Error("Postgres refuses to stream the slot for a reason that retrying will not cure; the slot and "+
			"its changes are intact: fix the setup (publication, role privileges, wal_level) and start the CDC again", "err", err)
		return exitError(exitSetup)
	}
	return err
}
