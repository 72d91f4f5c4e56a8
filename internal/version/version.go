// Package version reports the build's version, from the module build info
// (set by `go build` from the VCS state) unless overridden with -ldflags.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is set with -ldflags "-X github.com/racklet/racklet-boot/internal/version.Version=v1.2.3".
var Version = ""

// Build describes the running binary.
type Build struct {
	Version   string `json:"version"`   // Version, else the module version, else "(devel)"
	Revision  string `json:"revision"`  // VCS revision (12 hex digits), "unknown" without VCS information
	Modified  bool   `json:"modified"`  // built from a work tree with uncommitted changes
	GoVersion string `json:"goVersion"` // the toolchain, as runtime.Version
}

// Get returns the running binary's build description.
func Get() Build {
	b := Build{Version: Version, Revision: "unknown", GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" {
			b.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
				if len(b.Revision) > 12 {
					b.Revision = b.Revision[:12]
				}
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	return b
}

// String returns "VERSION (commit, go version, os/arch)".
func String() string {
	b := Get()
	dirty := ""
	if b.Modified {
		dirty = "-dirty"
	}
	return fmt.Sprintf("%s (%s%s, %s, %s/%s)", b.Version, b.Revision, dirty, b.GoVersion, runtime.GOOS, runtime.GOARCH)
}
