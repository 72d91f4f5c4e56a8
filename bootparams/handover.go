package bootparams

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// HandoverFile is where racklet-agent leaves what the booted OS needs to
// report to racklet-boot. It lives on /run, which the agent moves into the
// new root at switch_root.
const HandoverFile = "/run/racklet/boot.json"

// Handover is what the initramfs agent tells the booted OS: which server and
// node it is, and which image it booted. The health unit in the image reads it.
type Handover struct {
	Server string `json:"server"` // racklet-boot base URL
	Node   string `json:"node"`   // the node's name
	Image  string `json:"image"`  // the booted image (racklet.root digest)
	// Attested is true when the HAT quote was accepted in this boot.
	Attested bool `json:"attested"`
	// Boot is racklet-boot's A/B decision for this boot; after a healthy
	// report of a trial the health unit commits its slot on the HAT.
	Boot *SlotBoot `json:"boot,omitempty"`
	// HAT is the HAT link the initramfs agent used ("" for none).
	HAT string `json:"hat,omitempty"`
}

// WriteHandover writes h to path (HandoverFile outside tests), atomically.
func WriteHandover(path string, h Handover) error {
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// ReadHandover reads what WriteHandover wrote.
func ReadHandover(path string) (Handover, error) {
	var h Handover
	b, err := os.ReadFile(path)
	if err != nil {
		return h, fmt.Errorf("read boot hand-over: %w", err)
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("read boot hand-over %s: %w", path, err)
	}
	return h, nil
}
