package main

import (
	"testing"

	"github.com/racklet/racklet-boot/internal/cli"
)

// TestConventions: every command has an example and, unless it prints no
// data (health reports to the server and says so in one line), -o
// table|json|yaml.
func TestConventions(t *testing.T) {
	for _, p := range cli.Lint(newRoot(), "racklet-agent health") {
		t.Error(p)
	}
}
