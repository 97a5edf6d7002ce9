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

	"github.com/swapmeet/swapmeet/cdc"
	"github.com/swapmeet/swapmeet/cdc/wal"
	"github.com/swapmeet/swapmeet/internal/config"
	"github.com/swapmeet/swapmeet/internal/readstore"
	"github.com/swapmeet/swapmeet/internal/system"
)

// parseCollections parses the arguments of a command whose one flag is
// --collection, naming one collection or all.
func parseCollections(command string, args []string) ([]string, error) {
	fs := flag.NewFlagSet(command, flag.ContinueOnError)
	c := fs.String("collection", "all", "users, listings, orders, reviews or all")
	if err := fs.Parse(args); err != nil {
		return nil, exitError(2)
	}
	if *c == "all" {
		return readstore.Collections, nil
	}
	if !slices.Contains(readstore.Collections, *c) {
		return nil, fmt.Errorf("--collection %q: want one of %s or all", *c, strings.Join(readstore.Collections, ", "))
	}
	return []string{*c}, nil
}

func verifyProjections(ctx context.Context, cfg config.Config, _ *slog.Logger, args []string) error {
	names, err := parseCollections("projections verify", args)
	if err != nil {
		return err
	}
	d, err := system.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	drifts, err := cdc.Verify(ctx, d.PG, d.Reads, names)
	if err != nil {
		return err
	}
	if !cdc.PrintDrift(os.Stdout, drifts) {
		return exitError(1)
	}
	return nil
}

func slotStatus(ctx context.Context, cfg config.Config, _ *slog.Logger, args []string) error {
	if len(args) > 0 {
		return errors.New("slot status takes no arguments")
	}
	d, err := system.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	slot, err := readSideSlot(ctx, d, cfg)
	if err != nil {
		return err
	}
	s, err := wal.ReadSlotStatus(ctx, d.PG, slot)
	if err != nil {
		return err
	}
	s.Print(os.Stdout)
	if s.RetainedBytes > cfg.SlotWarnBytes {
		fmt.Printf("WARNING: the slot retains %d bytes of WAL, over SWAPMEET_SLOT_WARN_BYTES (%d): is the CDC running and keeping up?\n",
			s.RetainedBytes, cfg.SlotWarnBytes)
	}
	return nil
}

func rebuildProjections(ctx context.Context, cfg config.Config, log *slog.Logger, args []string) error {
	names, err := parseCollections("projections rebuild", args)
	if err != nil {
		return err
	}
	d, err := system.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	b := &cdc.Rebuild{
		Reader:      wal.Config{ConnString: cfg.PostgresURL, Publication: cfg.Publication, Log: log},
		BaseSlot:    cfg.Slot,
		PG:          d.PG,
		Reads:       d.Reads,
		Sink:        system.NewProjector(cfg, d, log),
		Collections: names,
		Progress:    os.Stderr,
		Terminal:    isTerminal(os.Stderr),
		Log:         log,
	}
	return b.Run(ctx)
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// readSideSlot names the slot the read side uses: the pointer's, else the
// configured one (a read side not initialised yet).
func readSideSlot(ctx context.Context, d *system.Clients, cfg config.Config) (string, error) {
	if p, err := d.Reads.LoadPointer(ctx); err == nil {
		return p.Slot, nil
	} else if !errors.Is(err, readstore.ErrNoPointer) {
		return "", err
	}
	return cfg.Slot, nil
}

func slotDrop(ctx context.Context, cfg config.Config, _ *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("slot drop", flag.ContinueOnError)
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	if err := fs.Parse(args); err != nil {
		return exitError(2)
	}
	d, err := system.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	slot, err := readSideSlot(ctx, d, cfg)
	if err != nil {
		return err
	}
	s, err := wal.ReadSlotStatus(ctx, d.PG, slot)
	if err != nil {
		return err
	}
	s.Print(os.Stdout)
	if s.Active {
		return fmt.Errorf("slot %s is in use by pid %d: stop the CDC first", slot, s.ActivePID)
	}
	if !*yes {
		fmt.Printf("\nDropping %s loses the changes it holds: the read side can then only be\n"+
			"repaired by 'swapmeet projections rebuild'. Type the slot name to confirm: ", slot)
		answer, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		if strings.TrimSpace(answer) != slot {
			return errors.New("not confirmed; nothing dropped")
		}
	}
	if _, err := d.PG.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, slot); err != nil {
		return fmt.Errorf("drop slot %s: %w", slot, err)
	}
	fmt.Printf("dropped %s\n", slot)
	return nil
}
