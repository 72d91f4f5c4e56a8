package main

import (
	"testing"

	"github.com/racklet/racklet-boot/internal/cli"
)

// TestConventions: every command has an example and, unless it prints no
// data (health and kube-join report to the server and say so in one line;
// disk tryboot reboots), -o table|json|yaml.
func TestConventions(t *testing.T) {
	for _, p := range cli.Lint(newRoot(), "racklet-agent health", "racklet-agent kube-join", "racklet-agent disk tryboot") {
		t.Error(p)
	}
}
