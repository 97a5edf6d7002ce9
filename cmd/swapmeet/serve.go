package main

import (
	"flag"

	"github.com/swapmeet/swapmeet/internal/system"
)

var serveCommand = command{
	name:    "serve",
	summary: "run the API (Connect, gRPC and gRPC-Web on one port)",
	about: `Serves the API and the web app on SWAPMEET_HTTP_ADDR and the metrics on
SWAPMEET_API_METRICS_ADDR until interrupted, then stops gracefully.`,
	flags: func(*flag.FlagSet) run { return system.Serve },
}
