// Package disk is what the agent of a disk-booted Raspberry Pi does for an
// A/B update, on the disk layout racklet-image writes (image/disk):
// partition 1 holds autoboot.txt, 2 and 3 are the boot partitions of slots
// A and B, 5 and 6 their root partitions (squashfs, then its dm-verity tree).
//
//  1. WriteSlot writes the inactive slot's boot and root partitions from a
//     signed image (the boot image made for that slot: its cmdline.txt names
//     that slot's root with racklet.rootdev), syncs, and verifies what it
//     wrote by reading it back against the manifest's digests.
//  2. RebootTryboot reboots with "0 tryboot": the firmware's one-shot flag
//     makes this one boot take autoboot.txt's [tryboot] section, which names
//     the inactive slot; the flag is cleared before the OS starts, so a
//     crash or a power cut boots the committed slot again.
//  3. After the healthy report, Commit rewrites autoboot.txt so [all] names
//     the new slot and [tryboot] the old one. The file is at most 512 bytes
//     and keeps its size (padding), so the rewrite is one sector written in
//     place: the firmware reads either the old file or the new one.
//
// A power cut at any step leaves the committed slot bootable: nothing the
// firmware reads on a normal boot is written before Commit, and Commit's one
// sector is the switch. ab/pifw models the firmware's choice for the tests.
//
// The partition table reader and the FAT reader here are small on purpose:
// the agent runs in an initramfs, and it needs the byte offset of
// autoboot.txt's one data sector, which go-diskfs does not expose.
package disk
