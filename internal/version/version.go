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

// String returns "VERSION (commit, go version, os/arch)".
func String() string {
	v, rev, dirty := Version, "unknown", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
				if len(rev) > 12 {
					rev = rev[:12]
				}
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	return fmt.Sprintf("%s (%s%s, %s, %s/%s)", v, rev, dirty, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
