//go:build !linux

package pisim

import (
	"context"
	"errors"
)

// MacvlanTransport gives each Pi its own macvlan on Parent. It exists only
// on Linux; elsewhere Open fails.
type MacvlanTransport struct {
	Parent     string
	NetNS      string
	NamePrefix string
}

// Open always fails: macvlans are a Linux feature.
func (t *MacvlanTransport) Open(context.Context, *Pi) (Link, error) {
	return nil, errors.New("simulated pis on macvlans need linux")
}
