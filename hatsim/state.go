package hatsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// state is everything the simulated RP2040 keeps in flash. Registers are not
// here: they live in RAM and a power cycle clears them.
type state struct {
	Version     int          `json:"version"`
	SignSeed    []byte       `json:"signSeed"` // Ed25519 seed (32 bytes)
	BoxKey      []byte       `json:"boxKey"`   // X25519 private key (32 bytes)
	Serial      string       `json:"serial"`
	Firmware    uint32       `json:"firmware"`
	BootCounter uint64       `json:"bootCounter"`
	Committed   byte         `json:"committed"`
	Limit       byte         `json:"limit"`
	Attempts    [2]byte      `json:"attempts"`
	NextHandle  uint16       `json:"nextHandle"`
	Sealed      []sealedItem `json:"sealed,omitempty"`
	// PowerOff is true while the HAT keeps the Pi switched off; it survives
	// the HAT's own restarts (a restart never powers a node on or off).
	PowerOff bool `json:"powerOff,omitempty"`
}

type sealedItem struct {
	Handle uint16 `json:"handle"`
	Mask   byte   `json:"mask"`
	Policy []byte `json:"policy"`
	Secret []byte `json:"secret"`
}

// clone returns a deep copy, so a change can be persisted before it is applied.
func (s *state) clone() *state {
	c := *s
	c.Sealed = append([]sealedItem(nil), s.Sealed...)
	return &c
}

func (s *state) validate() error {
	switch {
	case s.Version != 1:
		return fmt.Errorf("state version %d, want 1", s.Version)
	case len(s.SignSeed) != 32 || len(s.BoxKey) != 32:
		return errors.New("state keys have the wrong length")
	case s.Committed > 1:
		return fmt.Errorf("committed slot %d out of range", s.Committed)
	case s.Limit == 0:
		return errors.New("attempt limit is 0")
	}
	return nil
}

// crashHook, when set (tests), is called before each step of a state write;
// an error aborts the write right there, as a power loss would.
type crashHook func(step string) error

// Steps of an atomic state write, in order.
const (
	stepCreate = "create-temp"
	stepWrite  = "write-half"
	stepSync   = "fsync"
	stepRename = "rename"
	stepDir    = "fsync-dir"
)

// writeState writes s to path atomically: a temporary file in the same
// directory, fsync, rename over path, fsync the directory. A crash at any
// point leaves either the old file or the new one, never a mix.
func writeState(path string, s *state, hook crashHook) error {
	step := func(name string) error {
		if hook != nil {
			return hook(name)
		}
		return nil
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if err := step(stepCreate); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write HAT state: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		return fmt.Errorf("write HAT state: %w", err)
	}
	if _, err := f.Write(data[:len(data)/2]); err != nil {
		return fail(err)
	}
	if err := step(stepWrite); err != nil {
		f.Close() // the torn temp file stays behind, as after a real crash
		return err
	}
	if _, err := f.Write(data[len(data)/2:]); err != nil {
		return fail(err)
	}
	if err := step(stepSync); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write HAT state: %w", err)
	}
	if err := step(stepRename); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write HAT state: %w", err)
	}
	if err := step(stepDir); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("write HAT state: sync directory: %w", err)
		}
	}
	return nil
}

// readState loads and checks a state file. Leftover temporary files from an
// interrupted write are removed: the file at path is always the last good one.
func readState(path string) (*state, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s state
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("HAT state file %s is corrupt: %w", path, err)
	}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("HAT state file %s: %w", path, err)
	}
	if tmps, _ := filepath.Glob(path + ".tmp-*"); len(tmps) > 0 {
		for _, t := range tmps {
			os.Remove(t)
		}
	}
	return &s, nil
}

// errCrash is what test crash hooks return.
var errCrash = errors.New("simulated power loss")
