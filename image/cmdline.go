package image

import (
	"fmt"
	"strings"
	"text/template"
)

// DefaultCmdline boots racklet's initramfs: a console for the platform and the racklet.*
// words of package bootparams (root hash, salt, data blocks, digests of root.squashfs and
// root.verity, the kernel's boot file name, and the image's node settings), which
// racklet-agent reads as PID 1. retain_initrd keeps the loaded initramfs in memory, where
// the agent measures it as loaded.
const DefaultCmdline = `{{.Console}} retain_initrd {{.Racklet}}`

// KernelVerityCmdline mounts the verified root from the kernel itself, without racklet-agent,
// with dm-mod.create (a dm-verity table: version, data and hash device, block sizes, data
// blocks, hash start block, algorithm, root hash, salt) on a disk's root slot: the hash device
// is the same partition, its tree one block after the superblock at VerityOffset. A template
// for --cmdline where a node boots from its disk without the agent.
//
// With systemd in an initramfs the same facts fit systemd-veritysetup-generator instead:
//
//	roothash={{.RootHash}} systemd.verity_root_data={{.RootDevice}}
//	systemd.verity_root_hash={{.RootDevice}} systemd.verity_root_options=hash-offset={{.VerityOffset}}
const KernelVerityCmdline = `console=serial0,115200 console=tty1 rootwait ro root=/dev/dm-0 rootfstype=squashfs ` +
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
	// Console is the console= words for the platform: the Pi's serial0 and tty1, ttyS0 on
	// x86-64, ttyAMA0 on other arm64 machines (QEMU virt, UEFI), the serial port last so
	// that /dev/console is the serial line.
	Console string
	// Racklet is the racklet.* words (package bootparams) for racklet-agent in the initramfs.
	Racklet string
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
