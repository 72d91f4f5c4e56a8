package main

import (
	"testing"

	"github.com/racklet/racklet-boot/internal/cli"
)

// TestConventions: every command has an example and -o table|json|yaml.
func TestConventions(t *testing.T) {
	for _, p := range cli.Lint(newRoot()) {
		t.Error(p)
	}
}
