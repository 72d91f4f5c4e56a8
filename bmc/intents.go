package bmc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/racklet/racklet-boot/internal/atomicfile"
)

// Intent is an operator's standing power request for a node (racklet-boot
// power on|off). It wins over the config's power: until the config's value
// for the node changes, so that whoever asked last, by CLI or by editing
// rack.yaml, is obeyed.
type Intent struct {
	On     bool      `json:"on"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Config bool      `json:"config"` // the config's power for the node when the intent was made
}

// intentFile keeps intents in a JSON file, rewritten atomically on change.
type intentFile struct {
	path string
	mu   sync.Mutex
	m    map[string]Intent
}

func openIntents(path string) (*intentFile, error) {
	f := &intentFile{path: path, m: map[string]Intent{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read power requests: %w", err)
	}
	if err := json.Unmarshal(data, &f.m); err != nil {
		return nil, fmt.Errorf("power requests file %s is corrupt (move it away to forget the requests): %w", path, err)
	}
	return f, nil
}

// desired resolves a node's power: the intent while the config still says
// what it said when the intent was made, else the config.
func (f *intentFile) desired(node string, config bool) (on bool, by string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if in, ok := f.m[node]; ok && in.Config == config {
		return in.On, in.By
	}
	return config, "config"
}

// prune forgets the intents the config has overtaken: those made while
// the config said something else than it says now (or of nodes it no
// longer names), so an edit of rack.yaml that comes after an operator's
// request wins, even if it is later edited back.
func (f *intentFile) prune(config func(node string) (bool, bool)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var stale []string
	for node, in := range f.m {
		if on, ok := config(node); !ok || on != in.Config {
			stale = append(stale, node)
		}
	}
	if len(stale) == 0 {
		return nil
	}
	for _, n := range stale {
		delete(f.m, n)
	}
	return f.save()
}

func (f *intentFile) put(node string, in Intent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	old, had := f.m[node]
	f.m[node] = in
	if err := f.save(); err != nil {
		if had {
			f.m[node] = old
		} else {
			delete(f.m, node)
		}
		return err
	}
	return nil
}

func (f *intentFile) save() error {
	data, err := json.MarshalIndent(f.m, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(f.path, data, 0o600); err != nil {
		return fmt.Errorf("save power requests: %w", err)
	}
	return nil
}
