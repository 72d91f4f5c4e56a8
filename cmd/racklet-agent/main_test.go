package main

import (
	"testing"

	"github.com/racklet/racklet-boot/internal/cli"
)

// TestConventions: every command has an example and, unless it prints no
// data (health reports to the server and says so in one line; disk
// tryboot reboots), -o
// table|json|yaml.
func TestConventions(t *testing.T) {
	for _, p := range cli.Lint(newRoot(), "racklet-agent health", "racklet-agent disk tryboot") {
		t.Error(p)
	}
}
