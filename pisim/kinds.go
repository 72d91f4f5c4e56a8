package pisim

import "fmt"

// RackOf returns n simulated Pis of a kind: "rpi4", "rpi5", or "mixed"
// (alternating, NewMixedRack). The same seed always gives the same rack.
func RackOf(n int, kind string, seed uint64) ([]*Pi, error) {
	if n < 1 || n > 1000 {
		return nil, fmt.Errorf("%d Pis: want 1 to 1000", n)
	}
	switch kind {
	case "rpi4":
		return NewPis(n, 4, seed), nil
	case "rpi5":
		return NewPis(n, 5, seed), nil
	case "mixed", "":
		return NewMixedRack(n, seed)
	}
	return nil, fmt.Errorf("unknown Pi kind %q: use rpi4, rpi5 or mixed", kind)
}
