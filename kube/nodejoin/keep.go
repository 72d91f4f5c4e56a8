package nodejoin

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/racklet/racklet-boot/kube/join"
)

// Keep is what the initramfs agent does with its release before
// switch_root: it leaves the join facts (secrets[join.SecretName], if
// released) in dir (SecretDir outside tests: /run, RAM, moved into the
// booted root), the directory 0700 and the file 0600, for
// racklet-kube-join.service. Nothing is written for a node in no cluster.
func Keep(secrets map[string][]byte, dir string) error {
	data, ok := secrets[join.SecretName]
	if !ok {
		return nil
	}
	if _, err := join.ParseInfo(data); err != nil {
		return fmt.Errorf("released %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keep the kubernetes join facts: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("keep the kubernetes join facts: %w", err)
	}
	p := filepath.Join(dir, join.SecretName)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("keep the kubernetes join facts: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("keep the kubernetes join facts: %w", err)
	}
	return nil
}
