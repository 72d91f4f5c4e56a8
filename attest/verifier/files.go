package verifier

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/racklet/racklet-boot/attest"
)

// BootFiles names what to measure for one node: paths of its kernel and
// initramfs on the server, its command line (the text, as cmdline.txt holds
// it) and the verity root hash of its root filesystem.
type BootFiles struct {
	Kernel    string
	Initramfs string
	Cmdline   string
	RootHash  string
	Image     string // for messages: the image reference or boot directory
}

// MeasuredFiles is an Expected that measures the files Lookup names for a
// node. File digests are cached by path, size and modification time, so a
// rack of nodes attesting after a reboot hashes each kernel once, and an
// edited file is measured again.
type MeasuredFiles struct {
	// Lookup returns the node's boot files, or an error wrapping
	// ErrUnknownNode for a node the config does not name.
	Lookup func(ctx context.Context, node string) (BootFiles, error)

	mu    sync.Mutex
	cache map[string]fileDigest
}

type fileDigest struct {
	size   int64
	mtime  time.Time
	digest string
}

var _ Expected = (*MeasuredFiles)(nil)

// Expected implements Expected.
func (m *MeasuredFiles) Expected(ctx context.Context, node string) (attest.Measurements, error) {
	bf, err := m.Lookup(ctx, node)
	if err != nil {
		return attest.Measurements{}, err
	}
	out := attest.Measurements{Cmdline: attest.NormalizeCmdline(bf.Cmdline), RootHash: bf.RootHash, Image: bf.Image}
	if out.Kernel, err = m.digest(bf.Kernel); err != nil {
		return attest.Measurements{}, err
	}
	if out.Initramfs, err = m.digest(bf.Initramfs); err != nil {
		return attest.Measurements{}, err
	}
	if _, err := out.Digests(); err != nil {
		return attest.Measurements{}, fmt.Errorf("boot files of node %s: %w", node, err)
	}
	return out, nil
}

func (m *MeasuredFiles) digest(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("measure: %w", err)
	}
	m.mu.Lock()
	c, ok := m.cache[path]
	m.mu.Unlock()
	if ok && c.size == st.Size() && c.mtime.Equal(st.ModTime()) {
		return c.digest, nil
	}
	d, err := attest.FileDigest(path)
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	if m.cache == nil {
		m.cache = map[string]fileDigest{}
	}
	m.cache[path] = fileDigest{size: st.Size(), mtime: st.ModTime(), digest: d}
	m.mu.Unlock()
	return d, nil
}
