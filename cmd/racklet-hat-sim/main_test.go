package main

import (
	"testing"

	"github.com/racklet/racklet-boot/internal/cli"
)

// TestConventions: the simulator has an example; it serves, printing only
// its address, so it takes no -o.
func TestConventions(t *testing.T) {
	for _, p := range cli.Lint(newCommand(), "racklet-hat-sim") {
		t.Error(p)
	}
}
