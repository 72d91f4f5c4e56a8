package attest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/racklet/racklet-boot/hatlink"
)

// Measurements is what a node must have booted: the digests of its kernel
// and initramfs, its kernel command line and the dm-verity root hash of its
// root filesystem. Racklet-boot computes it from the node's assigned, signed
// image; the node agent computes it from the files it booted.
type Measurements struct {
	Kernel    string `json:"kernel"`    // sha256 of the kernel image, hex
	Initramfs string `json:"initramfs"` // sha256 of the initramfs, hex
	Cmdline   string `json:"cmdline"`   // the kernel command line
	RootHash  string `json:"rootHash"`  // dm-verity root hash, hex
	// Image names the image these come from, for messages only (a reference or digest).
	Image string `json:"image,omitempty"`
}

// RegisterNames names the boot registers, in register order, for messages.
var RegisterNames = [4]string{"kernel", "initramfs", "kernel command line", "root filesystem (verity root hash)"}

// NormalizeCmdline is the command line as measured: surrounding whitespace,
// including the trailing newline of cmdline.txt, removed.
func NormalizeCmdline(s string) string { return strings.TrimSpace(s) }

// Digests returns the four digests the agent extends, in register order:
// RegKernel, RegInitramfs, RegCmdline, RegRootHash. The root hash is
// extended as its raw bytes when it is 32 bytes long, else as their sha256.
func (m Measurements) Digests() ([4][32]byte, error) {
	var d [4][32]byte
	for i, h := range []string{m.Kernel, m.Initramfs} {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != 32 {
			return d, fmt.Errorf("%s digest %q is not 64 hex digits", RegisterNames[i], h)
		}
		copy(d[i][:], b)
	}
	d[hatlink.RegCmdline] = sha256.Sum256([]byte(NormalizeCmdline(m.Cmdline)))
	root, err := hex.DecodeString(strings.TrimSpace(m.RootHash))
	if err != nil || len(root) == 0 {
		return d, fmt.Errorf("verity root hash %q is not hex", m.RootHash)
	}
	if len(root) == 32 {
		copy(d[hatlink.RegRootHash][:], root)
	} else {
		d[hatlink.RegRootHash] = sha256.Sum256(root)
	}
	return d, nil
}

// Registers returns the register values a HAT holds after a boot of m: each
// boot register extended once, from zero, with its digest.
func (m Measurements) Registers() (hatlink.Registers, error) {
	d, err := m.Digests()
	if err != nil {
		return hatlink.Registers{}, err
	}
	r := hatlink.Registers{Mask: hatlink.BootMask}
	for i := range d {
		r.Values[i] = hatlink.ExtendValue([32]byte{}, d[i])
	}
	return r, nil
}

// FileDigest returns the sha256 of a file, hex.
func FileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("measure: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("measure %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// MeasureFiles measures a kernel and initramfs on disk with a command line
// and root hash, as the node agent and the operator's tools do.
func MeasureFiles(kernel, initramfs, cmdline, rootHash string) (Measurements, error) {
	m := Measurements{Cmdline: NormalizeCmdline(cmdline), RootHash: strings.ToLower(strings.TrimSpace(rootHash))}
	var err error
	if m.Kernel, err = FileDigest(kernel); err != nil {
		return m, err
	}
	if m.Initramfs, err = FileDigest(initramfs); err != nil {
		return m, err
	}
	_, err = m.Digests()
	return m, err
}
