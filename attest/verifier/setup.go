package verifier

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// File names under racklet-boot's data directory.
const (
	EnrollmentFileName = "attest-enrollments.json"
	SecretFileName     = "attest-secrets.json"
)

// OpenDataDir opens (or starts) the enrollment and node-secret files in
// racklet-boot's data directory.
func OpenDataDir(dir string) (*EnrollmentFile, *SecretFile, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("attestation data directory: %w", err)
	}
	enr, err := OpenEnrollmentFile(filepath.Join(dir, EnrollmentFileName))
	if err != nil {
		return nil, nil, err
	}
	sec, err := OpenSecretFile(filepath.Join(dir, SecretFileName))
	if err != nil {
		return nil, nil, err
	}
	return enr, sec, nil
}

// Preprovision enrolls the HAT keys the rack config names (node → key in
// hatlink.EncodeKey form) as approved. Call it at start and on every config
// reload; nodes whose key is unchanged are left alone, a changed key
// replaces the old one. Keys enrolled by an operator for nodes the map does
// not name are kept.
func (v *Verifier) Preprovision(ctx context.Context, keys map[string]string) error {
	nodes := make([]string, 0, len(keys))
	for n := range keys {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	for _, n := range nodes {
		if _, err := v.Enroll(ctx, n, keys[n]); err != nil {
			return fmt.Errorf("HAT key of node %s: %w", n, err)
		}
	}
	return nil
}
