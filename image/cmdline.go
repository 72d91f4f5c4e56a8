package image

import (
	"fmt"
	"strings"
	"text/template"
)

// DefaultCmdline mounts the verified root straight from the kernel, without an initramfs, with
// dm-mod.create (a dm-verity table: version, data and hash device, block sizes, data blocks,
// hash start block, algorithm, root hash, salt). The hash device is the same partition, its
// tree one block after the superblock at VerityOffset.
//
// With systemd in an initramfs the same facts fit systemd-veritysetup-generator instead:
//
//	roothash={{.RootHash}} systemd.verity_root_data={{.RootDevice}}
//	systemd.verity_root_hash={{.RootDevice}} systemd.verity_root_options=hash-offset={{.VerityOffset}}
const DefaultCmdline = `console=serial0,115200 console=tty1 rootwait ro root=/dev/dm-0 rootfstype=squashfs ` +
	`dm-mod.create="racklet-root,,,ro,0 {{.DataSectors}} verity 1 {{.RootDevice}} {{.RootDevice}} 4096 4096 ` +
	`{{.DataBlocks}} {{.HashStartBlock}} sha256 {{.RootHash}} {{.Salt}}"`

// CmdlineVars are the fields a command line template can use.
type CmdlineVars struct {
	// RootHash and Salt of the dm-verity tree, in hex.
	RootHash, Salt string
	// RootDevice is the root slot: PARTUUID=<disk id>-05 for slot A, -06 for slot B.
	RootDevice string
	// Slot is "a" or "b".
	Slot string
	// DataBlocks is the number of 4 KiB blocks of the squashfs; DataSectors the same in
	// 512-byte sectors.
	DataBlocks, DataSectors uint64
	// VerityOffset is the byte offset of the hash device in the root partition;
	// HashStartBlock the 4 KiB block where the tree starts (after the superblock).
	VerityOffset, HashStartBlock uint64
	// KernelVersion is the name of the /lib/modules directory of the root file system.
	KernelVersion string
}

func parseCmdline(s string) (*template.Template, error) {
	t, err := template.New("cmdline").Option("missingkey=error").Parse(s)
	if err != nil {
		return nil, fmt.Errorf("cmdline template: %w", err)
	}
	return t, nil
}

// RenderCmdline fills a command line template; the result is one line.
func RenderCmdline(tmpl string, v CmdlineVars) (string, error) {
	t, err := parseCmdline(tmpl)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, v); err != nil {
		return "", fmt.Errorf("cmdline template: %w", err)
	}
	return strings.Join(strings.Fields(b.String()), " "), nil
}
