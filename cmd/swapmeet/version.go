package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/swapmeet/swapmeet/internal/system"
)

var versionCommand = command{
	name:     "version",
	summary:  "print the version, the VCS revision and the Go version of this binary",
	about:    "Prints the module version, the VCS revision the binary was built from and its Go version.",
	noConfig: true,
	flags: func(*flag.FlagSet) run {
		return func(context.Context, system.Config, *slog.Logger) error {
			b := system.BuildInfo()
			rev := b.Revision
			if rev == "" {
				rev = "unknown"
			}
			_, err := fmt.Fprintf(os.Stdout, "swapmeet %s\nrevision %s\n%s\n", b.Version, rev, b.GoVersion)
			return err
		}
	},
}
