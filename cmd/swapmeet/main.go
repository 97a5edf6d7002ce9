// Command swapmeet is the whole backend in one binary; `swapmeet help`
// lists its commands and `swapmeet <command> --help` explains one.
// Settings come from SWAPMEET_* environment variables
// (docs/configuration.md). Every command is assembled by internal/system:
// this package only parses arguments and reports.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/swapmeet/swapmeet/internal/system"
)

// command is one thing the binary does.
type command struct {
	name    string // "serve", or "projections rebuild"
	summary string // one line in the list of commands
	about   string // what --help says before the flags
	// flags declares the command's flags on fs and returns what runs once
	// they are parsed. nil: the command takes no flags.
	flags func(fs *flag.FlagSet) run
	// noConfig: the command reads no settings (version).
	noConfig bool
}

type run func(ctx context.Context, cfg system.Config, log *slog.Logger) error

// commands, in the order the usage lists them: serve.go, cdc.go,
// operate.go (the operator commands) and version.go define them.
var commands []command

func init() {
	commands = []command{serveCommand, cdcCommand, migrateCommand, rebuildCommand, verifyCommand,
		slotStatusCommand, slotDropCommand, mediaSweepCommand, mediaSetupCommand, readyCommand, versionCommand}
}

// Exit statuses. A command may end with others of its own (exitError).
const (
	exitFailed = 1 // the command ran and failed
	exitUsage  = 2 // the arguments or the settings are wrong; nothing was done
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Main runs the command args name and returns the exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		fmt.Fprint(stdout, usage())
		return 0
	case "help":
		if len(args) == 1 {
			fmt.Fprint(stdout, usage())
			return 0
		}
		args = append(slices.Clone(args[1:]), "--help")
	}
	cmd, rest, err := find(args)
	if err != nil {
		fmt.Fprintf(stderr, "swapmeet: %v\nRun 'swapmeet help' for the commands.\n", err)
		return exitUsage
	}
	fs := flag.NewFlagSet("swapmeet "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported below, help goes to stdout
	var do run
	if cmd.flags != nil {
		do = cmd.flags(fs)
	}
	switch err := fs.Parse(rest); {
	case errors.Is(err, flag.ErrHelp):
		cmd.help(stdout, fs)
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "swapmeet %s: %v\nRun 'swapmeet %s --help' for its usage.\n", cmd.name, err, cmd.name)
		return exitUsage
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "swapmeet %s: unexpected argument %q\nRun 'swapmeet %s --help' for its usage.\n", cmd.name, fs.Arg(0), cmd.name)
		return exitUsage
	}
	if cmd.noConfig {
		return exitStatus(do(ctx, system.Config{}, nil), cmd.name, nil)
	}
	cfg, err := system.LoadConfig()
	if err != nil {
		fmt.Fprintf(stderr, "swapmeet: configuration: %v\n", err)
		return exitUsage
	}
	log := newLogger(cfg, stderr)
	return exitStatus(do(ctx, cfg, log), cmd.name, log)
}

// find returns the command args name (one word, or two for a group such
// as "projections") and the arguments after its name.
func find(args []string) (command, []string, error) {
	for _, c := range commands {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.name {
			return c, args[len(words):], nil
		}
	}
	var group []string
	for _, c := range commands {
		if first, sub, ok := strings.Cut(c.name, " "); ok && first == args[0] {
			group = append(group, sub)
		}
	}
	if len(group) > 0 {
		if len(args) == 1 {
			return command{}, nil, fmt.Errorf("%s needs a subcommand: %s", args[0], strings.Join(group, ", "))
		}
		return command{}, nil, fmt.Errorf("unknown command %q: %s has %s", args[0]+" "+args[1], args[0], strings.Join(group, ", "))
	}
	return command{}, nil, fmt.Errorf("unknown command %q", args[0])
}

func (c command) help(w io.Writer, fs *flag.FlagSet) {
	synopsis := ""
	fs.VisitAll(func(*flag.Flag) { synopsis = " [flags]" })
	fmt.Fprintf(w, "usage: swapmeet %s%s\n\n%s\n", c.name, synopsis, strings.TrimSpace(c.about))
	if synopsis != "" {
		fmt.Fprintln(w, "\nflags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	if !c.noConfig {
		fmt.Fprintln(w, "\nSettings come from SWAPMEET_* environment variables: see docs/configuration.md.")
	}
}

func usage() string {
	var b strings.Builder
	b.WriteString("usage: swapmeet <command> [flags]\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-21s %s\n", c.name, c.summary)
	}
	b.WriteString("\n'swapmeet <command> --help' explains a command. Settings come from SWAPMEET_*\n" +
		"environment variables (docs/configuration.md); the defaults match the local\n" +
		"services that 'make up' starts.\n")
	return b.String()
}

// exitError ends the process with a status but no error log: the command
// has already said what it found.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func exitStatus(err error, name string, log *slog.Logger) int {
	var exit exitError
	switch {
	case err == nil || errors.Is(err, context.Canceled):
		return 0
	case errors.As(err, &exit):
		return int(exit)
	}
	if log == nil {
		log = slog.Default()
	}
	log.Error(name+" failed", "err", err)
	return exitFailed
}

func newLogger(cfg system.Config, w io.Writer) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(cfg.LogLevel)) // LoadConfig checked it
	opts := &slog.HandlerOptions{Level: l}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
