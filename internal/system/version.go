package system

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Build is what the binary knows of its own build.
type Build struct {
	Version   string // the module version; "(devel)" for a build from a work tree
	Revision  string // the VCS revision, with "-dirty" when the tree had changes; "" when unknown
	GoVersion string
}

// BuildInfo reads the build from the binary (runtime/debug.ReadBuildInfo).
func BuildInfo() Build {
	b := Build{Version: "(devel)", GoVersion: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if info.Main.Version != "" {
		b.Version = info.Main.Version
	}
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && b.Revision != "" {
		b.Revision += "-dirty"
	}
	return b
}

// newBuildInfoGauge is swapmeet_build_info{version,revision,go_version} = 1.
func newBuildInfoGauge() prometheus.Collector {
	b := BuildInfo()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "swapmeet", Name: "build_info",
		Help:        "The running binary's build: always 1, with the build in the labels.",
		ConstLabels: prometheus.Labels{"version": b.Version, "revision": b.Revision, "go_version": b.GoVersion},
	})
	g.Set(1)
	return g
}
